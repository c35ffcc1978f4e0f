package exporter

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// hungStages are the stages an in-memory backend can hang at, and the
// name the WARN line gives each.
var hungStages = []struct{ name, stage string }{
	{"when the TCP connection is never established", "connect"},
	{"when the TLS handshake never completes", "TLS handshake"},
	{"when the request is written and never answered", "response"},
}

// reachStage calls the httptrace hooks the real transport calls on the
// way to stage.
func reachStage(req *http.Request, stage string) {
	tr := httptrace.ContextClientTrace(req.Context())
	if tr == nil {
		return
	}
	tr.ConnectStart("tcp", "127.0.0.1:4318")
	if stage == "connect" {
		return
	}
	tr.ConnectDone("tcp", "127.0.0.1:4318", nil)
	tr.TLSHandshakeStart()
	if stage == "TLS handshake" {
		return
	}
	tr.TLSHandshakeDone(tls.ConnectionState{}, nil)
	tr.GotConn(httptrace.GotConnInfo{})
	tr.WroteRequest(httptrace.WroteRequestInfo{})
}

// hangAt makes every request reach stage and wait there until release is
// closed (then the collector answers) or the request is canceled.
func hangAt(rt *memRT, stage string, release <-chan struct{}) {
	rt.setRefuse(func(req *http.Request) error {
		reachStage(req, stage)
		select {
		case <-release:
			return nil
		case <-req.Context().Done():
			return context.Cause(req.Context())
		}
	})
}

// logged returns the log records whose message starts with msg.
func (s *syncBuffer) logged(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(s.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m, _ := rec["msg"].(string); strings.HasPrefix(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

const (
	hangWarn  = "OTLP endpoint does not answer"
	hangRecov = "OTLP endpoint answers again"
)

// hangConfig is testConfig with an awake-time timeout that never runs out
// in these tests, so that only the INVOKEs detect a hang.
func hangConfig(t *testing.T, mode config.FlushMode) *config.Config {
	cfg := testConfig(t, "http://collector.invalid", mode)
	for _, s := range []*config.Signal{&cfg.OTLP.Traces, &cfg.OTLP.Logs, &cfg.OTLP.Metrics} {
		s.Timeout = time.Hour
	}
	return cfg
}

// invokeAfter freezes the environment for gap, then hands an INVOKE
// over and lets the worker take it.
func invokeAfter(h *harness, clk *jumpClock, gap time.Duration, id string) {
	clk.freeze(gap)
	h.p.Invoke(context.Background(), invokeEvent(id, clk.now().Add(time.Minute)))
	synctest.Wait()
}

// A request that makes no progress while three INVOKEs arrive is canceled
// as hung, whatever the stage it hangs at: one WARN names the endpoint and
// the stage (never the headers), the failure counts for the breaker, the
// retries that hang again log nothing more, and once the backend answers
// the data gets through and one INFO line says so.
func TestAHungRequestIsCanceledAtTheThirdInvocation(t *testing.T) {
	for _, tt := range hungStages {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				col := sink.New(sink.Options{})
				clk := &jumpClock{}
				rt := &memRT{backend: col}
				h := newHarness(t, hangConfig(t, config.FlushAsync), knobs{HTTPClient: &http.Client{Transport: rt},
					Now: clk.now, BatchDelay: time.Millisecond, BreakerThreshold: 2})
				release := make(chan struct{})
				hangAt(rt, tt.stage, release)
				h.run(t)
				invokeAfter(h, clk, 0, "a")
				h.p.Enqueue(context.Background(), invocation("a", 2, clk.now()))
				time.Sleep(10 * time.Millisecond)
				synctest.Wait()
				if n := rt.callCount(); n != 2 {
					t.Fatalf("%d requests in flight, want traces and logs", n)
				}
				for i := 1; i <= 2; i++ {
					invokeAfter(h, clk, time.Minute, fmt.Sprintf("quiet-%d", i))
					if st := h.p.tally(); st.Traces.Retried+st.Logs.Retried != 0 {
						t.Fatalf("after %d INVOKEs: %+v, want the requests still in flight", i, st)
					}
				}
				invokeAfter(h, clk, time.Minute, "third")
				st := h.p.tally()
				if st.Traces.Retried != 1 || st.Logs.Retried != 2 {
					t.Errorf("after the third INVOKE: traces %+v, logs %+v; want both requests canceled for a retry", st.Traces, st.Logs)
				}
				if st.Breaker != "open" {
					t.Errorf("breaker %s after two hung requests (threshold 2), want open", st.Breaker)
				}
				warns := h.logs.logged(t, hangWarn)
				if len(warns) != 1 {
					t.Fatalf("%d hang WARN lines, want 1:\n%s", len(warns), h.logs)
				}
				if w := warns[0]; w["level"] != "WARN" || w["stage"] != tt.stage || w["endpoint"] != "http://collector.invalid" {
					t.Errorf("WARN %v, want stage %q and the endpoint", w, tt.stage)
				}
				if strings.Contains(h.logs.String(), "s3cr3t") {
					t.Error("a header value was logged")
				}

				// The retries, on fresh connections, hang again: detected,
				// not logged again.
				calls := rt.callCount()
				for i := range 6 {
					invokeAfter(h, clk, time.Minute, fmt.Sprintf("again-%d", i))
				}
				if rt.callCount() == calls {
					t.Fatal("no retry while the backend hung")
				}
				if n := len(h.logs.logged(t, hangWarn)); n != 1 {
					t.Errorf("%d hang WARN lines after the retries hung, want still 1", n)
				}

				close(release)
				for i := 0; requestsFor(col, sink.SignalTraces) == 0 && i < 5; i++ {
					invokeAfter(h, clk, time.Minute, fmt.Sprintf("answers-%d", i))
					time.Sleep(time.Second)
					synctest.Wait()
				}
				if spans, logs := received(col); spans["a"] != 1 || logs["a line a"] != 1 {
					t.Errorf("spans %v, logs %v once the backend answers: want a's span and logs", spans, logs)
				}
				if n := len(h.logs.logged(t, hangRecov)); n != 1 {
					t.Errorf("%d recovery lines, want 1", n)
				}
				if h.p.hg.blocking() {
					t.Error("the endpoint is still marked as hanging after it answered")
				}
				h.close(t)
			})
		})
	}
}

// A request held up by freezes advances at each thaw, one round trip at a
// time; it is not taken for a hung one as long as it makes progress at
// least every other invocation.
func TestARequestThatProgressesAcrossInvocationsIsNotHung(t *testing.T) {
	tests := []struct {
		name  string
		every int // a step of the request every this many INVOKEs
	}{
		{"when it advances at every invocation", 1},
		{"when it advances at every other invocation", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				col := sink.New(sink.Options{})
				clk := &jumpClock{}
				rt := &memRT{backend: col}
				h := newHarness(t, hangConfig(t, config.FlushAsync), knobs{HTTPClient: &http.Client{Transport: rt},
					Now: clk.now, BatchDelay: time.Millisecond})
				step := make(chan struct{})
				rt.setRefuse(func(req *http.Request) error {
					tr := httptrace.ContextClientTrace(req.Context())
					tr.ConnectStart("tcp", "127.0.0.1:4318")
					for _, hook := range []func(){
						func() { tr.ConnectDone("tcp", "127.0.0.1:4318", nil) },
						func() { tr.TLSHandshakeDone(tls.ConnectionState{}, nil) },
						func() { tr.WroteRequest(httptrace.WroteRequestInfo{}) },
						func() { tr.GotFirstResponseByte() },
					} {
						select {
						case <-step:
						case <-req.Context().Done():
							return context.Cause(req.Context())
						}
						hook()
					}
					return nil
				})
				h.run(t)
				invokeAfter(h, clk, 0, "a")
				h.p.Enqueue(context.Background(), invocation("a", 0, clk.now()))
				time.Sleep(10 * time.Millisecond)
				synctest.Wait()
				for i := range 4 * tt.every {
					invokeAfter(h, clk, time.Minute, fmt.Sprintf("b%d", i))
					if i%tt.every == tt.every-1 {
						step <- struct{}{} // a packet processed after the thaw
						synctest.Wait()
					}
				}
				if spans, _ := received(col); spans["a"] != 1 {
					t.Errorf("spans %v, want a's span delivered by the slow request", spans)
				}
				if st := h.p.tally(); st.Traces.Retried != 0 || len(h.logs.logged(t, hangWarn)) != 0 {
					t.Errorf("traces %+v; log:\n%s\nwant no hang", st.Traces, h.logs)
				}
				h.close(t)
			})
		})
	}
}

// A function invoked many times a second does not take a slow backend for
// a hung one: the request must also have made no progress for
// defaultHangQuiet of wall time.
func TestFrequentInvocationsAloneDoNotMakeARequestHung(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		rt := &memRT{backend: col}
		h := newHarness(t, hangConfig(t, config.FlushAsync), knobs{HTTPClient: &http.Client{Transport: rt}, BatchDelay: time.Millisecond})
		hangAt(rt, "response", make(chan struct{}))
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("a", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("a", 0, time.Now()))
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if rt.callCount() != 1 {
			t.Fatal("the request did not start")
		}
		// Ten INVOKEs a second: the request lives through 19 of them in
		// 1.9s without being canceled.
		const every = 100 * time.Millisecond
		for i := 1; i < int(defaultHangQuiet/every); i++ {
			time.Sleep(every)
			h.p.Invoke(context.Background(), invokeEvent(fmt.Sprint(i), time.Now().Add(time.Minute)))
			synctest.Wait()
			if n := h.p.tally().Traces.Retried; n != 0 {
				t.Fatalf("request canceled at INVOKE %d, want not before %v without progress", i, defaultHangQuiet)
			}
		}
		time.Sleep(every)
		h.p.Invoke(context.Background(), invokeEvent("late", time.Now().Add(time.Minute)))
		synctest.Wait()
		if n := h.p.tally().Traces.Retried; n != 1 {
			t.Errorf("request not canceled at the first INVOKE after %v without progress", defaultHangQuiet)
		}
		h.close(t)
	})
}

// A request that runs out of awake time with no answer is a hang too: one
// WARN names it, and invocations stop waiting.
func TestAnAwakeTimeoutIsAHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		rt := &memRT{backend: col}
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}, BatchDelay: time.Millisecond})
		hangAt(rt, "TLS handshake", make(chan struct{}))
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("a", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("a", 0, time.Now()))
		time.Sleep(cfg.OTLP.Traces.Timeout + time.Second)
		synctest.Wait()
		warns := h.logs.logged(t, hangWarn)
		if len(warns) != 1 || warns[0]["stage"] != "TLS handshake" || warns[0]["detected_by"] != "awake-time timeout" {
			t.Errorf("hang WARN lines %v, want one naming the TLS handshake and the awake-time timeout", warns)
		}
		if !h.p.hg.blocking() {
			t.Error("invocations still wait for an endpoint that timed out")
		}
		h.close(t)
	})
}

// The invocations that wait for their flush (every one in end mode; in
// adaptive mode the first and those after a gap longer than
// SLIPSTREAM_MAX_DATA_AGE) each pay SLIPSTREAM_FLUSH_TIMEOUT while the
// hang is undetected, none from the INVOKE that detects it until a
// request is answered again, and wait again after that.
func TestWaitedInvocationsStopWaitingForAHungEndpoint(t *testing.T) {
	for _, mode := range []config.FlushMode{config.FlushEnd, config.FlushAdaptive} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				col := sink.New(sink.Options{})
				rt := &memRT{backend: col}
				cfg := hangConfig(t, mode)
				gate := make(chan struct{})
				// The breaker stays closed: the hang alone stops the waits.
				h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}, BreakerThreshold: 1000,
					NewMapper: func(o signals.MapperOptions) (Mapper, error) {
						m, err := newFakeMapper(o)
						return blockingMapper{Mapper: m, gate: gate}, err
					}})
				release := make(chan struct{})
				hangAt(rt, "response", release)
				h.run(t)
				// invoke runs one invocation two minutes after the last one
				// and returns how long Invoke held it; with busy, the
				// worker is held up meanwhile (mapping a log line).
				invoke := func(id string, busy bool) time.Duration {
					time.Sleep(2 * time.Minute)
					if busy {
						h.p.Enqueue(context.Background(), []telemetry.Event{logLine(blockLine, time.Now())})
						synctest.Wait()
						defer func() { gate <- struct{}{} }()
					}
					t0 := time.Now()
					done := make(chan struct{})
					go func() {
						defer close(done)
						h.p.Invoke(context.Background(), invokeEvent(id, t0.Add(time.Minute)))
					}()
					synctest.Wait()
					h.p.Enqueue(context.Background(), invocation(id, 1, time.Now()))
					<-done
					return time.Since(t0)
				}
				for i := 1; i <= hangInvokes; i++ {
					if d := invoke(fmt.Sprint(i), false); d != cfg.FlushTimeout {
						t.Errorf("invocation %d held %v before the hang is detected, want the flush timeout %v", i, d, cfg.FlushTimeout)
					}
				}
				// The INVOKE that detects the hang is released by the
				// worker; the next ones do not wait at all, even for a
				// busy worker.
				for i := hangInvokes + 1; i <= hangInvokes+3; i++ {
					if d := invoke(fmt.Sprint(i), i > hangInvokes+1); d != 0 {
						t.Errorf("invocation %d held %v once the hang is detected, want no wait", i, d)
					}
				}
				if st := h.p.tally(); st.Breaker != "closed" || len(h.logs.logged(t, hangWarn)) != 1 {
					t.Errorf("breaker %s, log:\n%s\nwant closed and one hang WARN", st.Breaker, h.logs)
				}
				close(release)
				time.Sleep(time.Second)
				synctest.Wait()
				if spans, _ := received(col); spans["1"] != 1 || spans["4"] != 1 {
					t.Errorf("spans %v once the backend answers, want the held invocations' spans", spans)
				}
				invoke("after", false)
				if spans, _ := received(col); spans["after"] != 1 {
					t.Errorf("spans %v: the invocation after recovery did not wait for its flush", spans)
				}
				h.close(t)
			})
		})
	}
}

// blockLine is the log line at which a blockingMapper holds the worker.
const blockLine = "hold the worker"

// blockingMapper holds the worker in Consume at each blockLine until gate
// receives.
type blockingMapper struct {
	Mapper
	gate <-chan struct{}
}

func (m blockingMapper) Consume(ev telemetry.Event) {
	if l, ok := ev.Record.(*telemetry.Log); ok && l.Text == blockLine {
		<-m.gate
	}
	m.Mapper.Consume(ev)
}

// The WARN line names an endpoint by scheme and host only: a path, query
// or user info may carry credentials.
func TestEndpointNameKeepsSchemeAndHostOnly(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"an HTTP endpoint loses its path", "https://otlp.example.com:4318/v1/traces", "https://otlp.example.com:4318"},
		{"user info and query are dropped", "https://user:pass@otlp.example.com/v1/logs?api_key=k", "https://otlp.example.com"},
		{"a gRPC host:port stays as it is", "otlp.example.com:4317", "otlp.example.com:4317"},
		{"a gRPC host:port loses user info and path", "user:pass@otlp.example.com:4317/x", "otlp.example.com:4317"},
		{"an unparsable URL is not echoed", "http://[::1", "(unparsable endpoint)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := endpointName(tt.in); got != tt.want {
				t.Errorf("endpointName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
