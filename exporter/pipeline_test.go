package exporter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// A healthy backend over real HTTP receives every span and log record
// exactly once, and the metrics.
func TestHealthyBackendReceivesEverythingExactlyOnce(t *testing.T) {
	for _, mode := range []config.FlushMode{config.FlushAsync, config.FlushEnd, config.FlushAdaptive} {
		t.Run(string(mode), func(t *testing.T) {
			col := sink.New(sink.Options{})
			srv := httptest.NewServer(col.Handler())
			defer srv.Close()
			h := newHarness(t, testConfig(t, srv.URL, mode), knobs{})
			h.run(t)
			ctx := context.Background()
			now := time.Now()
			const n = 20
			for i := range n {
				id := fmt.Sprintf("req-%02d", i)
				h.p.Enqueue(context.Background(), invocation(id, 3, now))
				h.p.Invoke(ctx, invokeEvent(id, now.Add(time.Minute)))
			}
			if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
				t.Fatal(err)
			}
			spans, logs := received(col)
			if len(spans) != n {
				t.Errorf("got spans of %d invocations, want %d", len(spans), n)
			}
			for id, c := range spans {
				if c != 1 {
					t.Errorf("span %s received %d times", id, c)
				}
			}
			if len(logs) != 3*n {
				t.Errorf("got %d distinct log records, want %d", len(logs), 3*n)
			}
			for b, c := range logs {
				if c != 1 {
					t.Errorf("log %q received %d times", b, c)
				}
			}
			if metricPoints(col) == 0 {
				t.Error("no metric data points received")
			}
			names := col.Snapshot().MetricNames()
			want := []string{"faas.invocations", "slipstream.exporter.items", "slipstream.queue.size", "slipstream.export.duration", "slipstream.breaker.state"}
			if runtime.GOOS == "linux" {
				want = append(want, "slipstream.agent.memory.peak") // read from /proc/self/status
			}
			for _, name := range want {
				if !slices.Contains(names, name) {
					t.Errorf("metric %s not received (got %v)", name, names)
				}
			}
			st := h.p.tally()
			if st.Traces.Sent != n || st.Logs.Sent != 3*n || st.Traces.Dropped+st.Logs.Dropped != 0 {
				t.Errorf("stats = %+v", st)
			}
			if strings.Contains(h.logs.String(), "s3cr3t") {
				t.Error("a header value was logged")
			}
			h.close(t)
		})
	}
}

// synctestHarness builds a pipeline over an in-memory transport.
func synctestHarness(t *testing.T, mode config.FlushMode, col *sink.Sink, opts knobs) (*harness, *memRT) {
	rt := &memRT{backend: col}
	opts.HTTPClient = &http.Client{Transport: rt}
	cfg := testConfig(t, "http://collector.invalid", mode)
	h := newHarness(t, cfg, opts)
	return h, rt
}

// 503 with Retry-After: the next attempt waits for exactly that long, then
// the data goes through once.
func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		col.InjectFault(sink.Fault{Status: http.StatusServiceUnavailable, RetryAfter: 3 * time.Second, Times: 1})
		h, _ := synctestHarness(t, config.FlushAsync, col, knobs{BatchDelay: time.Millisecond})
		h.run(t)
		t0 := time.Now()
		h.p.Invoke(context.Background(), invokeEvent("a", t0.Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("a", 0, t0))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		arrived := col.Snapshot().Arrivals()
		if len(arrived) < 2 {
			t.Fatalf("got %d requests, want a retry", len(arrived))
		}
		if d := arrived[1].Time.Sub(arrived[0].Time); d != 3*time.Second {
			t.Errorf("retry came %v after the 503, want 3s (Retry-After)", d)
		}
		spans, _ := received(col)
		if spans["a"] != 1 {
			t.Errorf("span received %d times, want 1", spans["a"])
		}
		if st := h.p.tally(); st.Traces.Retried != 1 || st.Traces.Sent != 1 {
			t.Errorf("stats = %+v", st.Traces)
		}
	})
}

// Refused connections open the breaker; then an end-mode Invoke costs
// nothing and nothing is attempted until the breaker's backoff expires.
func TestRefusedConnectionsOpenTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		h, rt := synctestHarness(t, config.FlushEnd, col, knobs{BreakerThreshold: 2, BreakerMinOpen: time.Minute})
		rt.setRefuse(func(*http.Request) error { return errRefused })
		h.run(t)
		ctx := context.Background()
		for i := range 5 {
			id := fmt.Sprintf("r%d", i)
			h.p.Enqueue(context.Background(), invocation(id, 1, time.Now()))
			h.p.Invoke(ctx, invokeEvent(id, time.Now().Add(time.Minute)))
		}
		if got := h.p.tally().Breaker; got != "open" {
			t.Fatalf("breaker = %s, want open", got)
		}
		calls := rt.callCount()
		t0 := time.Now()
		for i := range 10 {
			id := fmt.Sprintf("x%d", i)
			h.p.Enqueue(context.Background(), invocation(id, 1, time.Now()))
			h.p.Invoke(ctx, invokeEvent(id, time.Now().Add(time.Minute)))
		}
		if d := time.Since(t0); d != 0 {
			t.Errorf("10 invocations with the breaker open waited %v, want 0", d)
		}
		synctest.Wait()
		if got := rt.callCount(); got != calls {
			t.Errorf("%d requests attempted while the breaker was open", got-calls)
		}
		// After the backoff a probe goes out and, the backend being back,
		// everything queued is delivered.
		rt.setRefuse(nil)
		time.Sleep(2 * time.Minute)
		h.p.Enqueue(context.Background(), invocation("late", 0, time.Now()))
		time.Sleep(time.Second)
		synctest.Wait()
		spans, _ := received(col)
		if spans["x9"] != 1 || spans["late"] != 1 {
			t.Errorf("after recovery spans = %v", spans)
		}
		if got := h.p.tally().Breaker; got != "closed" {
			t.Errorf("breaker = %s after recovery, want closed", got)
		}
	})
}

// 401 is not retried and is logged once, naming the headers variable.
func TestUnauthorizedIsLoggedOnceAndNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		col.InjectFault(sink.Fault{Status: http.StatusUnauthorized})
		h, rt := synctestHarness(t, config.FlushAsync, col, knobs{BatchDelay: time.Millisecond, BreakerThreshold: 100})
		h.run(t)
		for i := range 3 {
			id := fmt.Sprintf("u%d", i)
			h.p.Invoke(context.Background(), invokeEvent(id, time.Now().Add(time.Minute)))
			h.p.Enqueue(context.Background(), invocation(id, 1, time.Now()))
			time.Sleep(time.Second)
			synctest.Wait()
		}
		st := h.p.tally()
		if st.Traces.Retried+st.Logs.Retried != 0 {
			t.Errorf("401 was retried: %+v", st)
		}
		if st.Traces.Dropped != 3 || st.Logs.Dropped != 3 {
			t.Errorf("dropped = %d spans, %d logs; want 3, 3", st.Traces.Dropped, st.Logs.Dropped)
		}
		if got := h.logs.count("SLIPSTREAM_OTLP_HEADERS"); got != 1 {
			t.Errorf("headers variable named in %d log lines, want 1:\n%s", got, h.logs)
		}
		if strings.Contains(h.logs.String(), "s3cr3t") {
			t.Error("a header value was logged")
		}
		if rt.callCount() < 6 {
			t.Errorf("only %d requests", rt.callCount())
		}
	})
}

// end mode: Invoke returns once runtimeDone is mapped and what is known is
// sent; without runtimeDone it returns at FlushTimeout, never later, and
// never past the deadline minus the margin.
func TestEndModeWaitsForRuntimeDoneWithinBudget(t *testing.T) {
	t.Run("returns after runtimeDone with the logs sent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			col := sink.New(sink.Options{})
			h, _ := synctestHarness(t, config.FlushEnd, col, knobs{})
			h.run(t)
			returned := make(chan struct{})
			go func() {
				h.p.Invoke(context.Background(), invokeEvent("e1", time.Now().Add(time.Minute)))
				close(returned)
			}()
			h.p.Enqueue(context.Background(), []telemetry.Event{start("e1", time.Now()), logLine("hello", time.Now())})
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
			select {
			case <-returned:
				t.Fatal("Invoke returned before runtimeDone")
			default:
			}
			h.p.Enqueue(context.Background(), []telemetry.Event{runtimeDone("e1", time.Now())})
			<-returned
			if _, logs := received(col); logs["hello"] != 1 {
				t.Errorf("logs at return = %v, want hello sent", logs)
			}
		})
	})
	t.Run("without runtimeDone it waits until the deadline minus the margin, not FlushTimeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := synctestHarness(t, config.FlushEnd, sink.New(sink.Options{}), knobs{Margin: 100 * time.Millisecond})
			h.run(t)
			t0 := time.Now()
			h.p.Invoke(context.Background(), invokeEvent("e2", t0.Add(3*time.Second)))
			if d := time.Since(t0); d != 2900*time.Millisecond {
				t.Errorf("Invoke waited %v, want deadline-margin (2.9s)", d)
			}
		})
	})
	t.Run("never waits past the deadline minus the margin", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := synctestHarness(t, config.FlushEnd, sink.New(sink.Options{}), knobs{Margin: 50 * time.Millisecond})
			h.run(t)
			t0 := time.Now().Truncate(time.Millisecond)
			time.Sleep(time.Until(t0.Add(time.Millisecond)))
			t0 = time.Now()
			h.p.Invoke(context.Background(), invokeEvent("e3", t0.Add(200*time.Millisecond)))
			if d := time.Since(t0); d != 150*time.Millisecond {
				t.Errorf("Invoke waited %v, want deadline-margin (150ms)", d)
			}
		})
	})
	t.Run("a slow backend holds Invoke no longer than FlushTimeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			col := sink.New(sink.Options{})
			h, _ := synctestHarness(t, config.FlushEnd, col, knobs{})
			stall := make(chan struct{})
			col.InjectFault(sink.Fault{Stall: stall})
			h.run(t)
			h.p.Enqueue(context.Background(), invocation("s1", 1, time.Now()))
			t0 := time.Now()
			h.p.Invoke(context.Background(), invokeEvent("s1", t0.Add(time.Minute)))
			if d := time.Since(t0); d != 500*time.Millisecond {
				t.Errorf("Invoke waited %v with a slow backend, want 500ms", d)
			}
			// The request is not cut when Invoke stops waiting: it completes
			// (1s later, within its timeout) and is not sent twice.
			time.Sleep(time.Second)
			close(stall)
			time.Sleep(time.Second)
			synctest.Wait()
			st := h.p.tally()
			if st.Traces.Sent != 1 || st.Traces.Retried != 0 || st.Traces.DuplicateSuspected != 0 {
				t.Errorf("slow request: %+v, want sent once, no retry", st.Traces)
			}
			if spans, _ := received(col); spans["s1"] != 1 {
				t.Errorf("span received %d times", spans["s1"])
			}
		})
	})
}

// adaptive: end for the first invocation and after a gap > MaxDataAge,
// async otherwise.
func TestAdaptiveChoosesEndOrAsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := synctestHarness(t, config.FlushAdaptive, sink.New(sink.Options{}), knobs{})
		h.run(t)
		ctx := context.Background()
		waited := func(id string) time.Duration {
			t0 := time.Now()
			h.p.Invoke(ctx, invokeEvent(id, t0.Add(time.Minute)))
			return time.Since(t0)
		}
		if d := waited("first"); d != time.Minute-100*time.Millisecond {
			t.Errorf("first invocation waited %v, want end mode (until the deadline without runtimeDone)", d)
		}
		if d := waited("busy"); d != 0 {
			t.Errorf("invocation right after waited %v, want async (0)", d)
		}
		time.Sleep(30 * time.Second)
		if d := waited("busy2"); d != 0 {
			t.Errorf("invocation 30s later waited %v, want async (0)", d)
		}
		time.Sleep(61 * time.Second)
		if d := waited("rare"); d != time.Minute-100*time.Millisecond {
			t.Errorf("invocation after a 61s gap waited %v, want end mode", d)
		}
	})
}

// Shutdown waits for the last invocation's report (which arrives after
// SHUTDOWN), bounded by 1s; an invocation still open then is closed with
// the shutdown reason and sent.
func TestShutdownWaitsForTheLastReport(t *testing.T) {
	t.Run("report arrives", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			col := sink.New(sink.Options{})
			h, _ := synctestHarness(t, config.FlushAsync, col, knobs{})
			h.run(t)
			ctx := context.Background()
			h.p.Invoke(ctx, invokeEvent("last", time.Now().Add(time.Minute)))
			h.p.Enqueue(context.Background(), []telemetry.Event{start("last", time.Now()), runtimeDone("last", time.Now())})
			done := make(chan error, 1)
			t0 := time.Now()
			go func() { done <- h.p.Shutdown(ctx, shutdownEvent(t0.Add(2*time.Second), "spindown")) }()
			time.Sleep(300 * time.Millisecond)
			synctest.Wait()
			select {
			case <-done:
				t.Fatal("Shutdown returned before the last report")
			default:
			}
			h.p.Enqueue(context.Background(), []telemetry.Event{report("last", time.Now())})
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if d := time.Since(t0); d != 300*time.Millisecond {
				t.Errorf("Shutdown took %v, want 300ms (until the report)", d)
			}
			if spans, _ := received(col); spans["last"] != 1 || statusOf(col, "last") != "ok" {
				t.Errorf("span of the last invocation: %v, status %q", spans, statusOf(col, "last"))
			}
		})
	})
	t.Run("report never arrives", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			col := sink.New(sink.Options{})
			h, _ := synctestHarness(t, config.FlushAsync, col, knobs{})
			h.run(t)
			ctx := context.Background()
			h.p.Enqueue(context.Background(), []telemetry.Event{start("lost", time.Now())})
			t0 := time.Now()
			if err := h.p.Shutdown(ctx, shutdownEvent(t0.Add(2*time.Second), "timeout")); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(t0); d != time.Second {
				t.Errorf("Shutdown waited %v, want the 1s bound", d)
			}
			if spans, _ := received(col); spans["lost"] != 1 || statusOf(col, "lost") != "timeout" {
				t.Errorf("open invocation not closed with the reason: %v, status %q", spans, statusOf(col, "lost"))
			}
		})
	})
	t.Run("short deadline shortens the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := synctestHarness(t, config.FlushAsync, sink.New(sink.Options{}), knobs{})
			h.run(t)
			h.p.Enqueue(context.Background(), []telemetry.Event{start("lost", time.Now())})
			t0 := time.Now()
			plan := shutdownEvent(t0.Add(1500*time.Millisecond), "spindown")
			if err := h.p.Shutdown(context.Background(), plan); err != nil {
				t.Fatal(err)
			}
			// The plan ends the wait for reports so that the final flush
			// keeps its share: 0.6s here, before the 1s it waits at most.
			if want := plan.Reports.Sub(t0); want >= time.Second || time.Since(t0) != want {
				t.Errorf("Shutdown waited %v, want the plan's %v", time.Since(t0), want)
			}
		})
	})
}

// A request frozen mid-flight gets its timeout in awake time: a long clock
// jump does not fail it.
func TestFrozenRequestGetsAwakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		var jump time.Duration
		var jumpMu = make(chan struct{}, 1)
		jumpMu <- struct{}{}
		now := func() time.Time {
			<-jumpMu
			defer func() { jumpMu <- struct{}{} }()
			return time.Now().Add(jump)
		}
		h, _ := synctestHarness(t, config.FlushAsync, col, knobs{Now: now, BatchDelay: time.Millisecond})
		release := make(chan struct{})
		col.InjectFault(sink.Fault{Stall: release})
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("f", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("f", 0, time.Now()))
		time.Sleep(1500 * time.Millisecond) // 1.5s awake of the 2s timeout
		<-jumpMu
		jump += time.Hour // the environment was frozen for an hour
		jumpMu <- struct{}{}
		time.Sleep(400 * time.Millisecond) // awake again, still within 2s awake
		synctest.Wait()
		close(release)
		time.Sleep(time.Second)
		synctest.Wait()
		st := h.p.tally()
		if st.Traces.Sent != 1 || st.Traces.Retried != 0 {
			t.Errorf("frozen request: %+v, want sent once without retry", st.Traces)
		}
	})
}

// A request whose body was written but that got no response is retried,
// and the items are counted as duplicate_suspected once delivered.
func TestLostResponseCountsDuplicateSuspected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		lose := true
		rt := &lostResponseRT{base: &memRT{backend: col}, lose: &lose}
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}, BatchDelay: time.Millisecond})
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("d", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("d", 0, time.Now()))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		st := h.p.tally()
		if st.Traces.Retried != 1 || st.Traces.DuplicateSuspected != 1 || st.Traces.Sent != 1 {
			t.Errorf("stats = %+v", st.Traces)
		}
		if spans, _ := received(col); spans["d"] != 2 {
			t.Errorf("collector got the span %d times, want 2 (one duplicate)", spans["d"])
		}
	})
}

// lostResponseRT delivers the first traces request, then reports an error
// as if the connection broke before the response.
type lostResponseRT struct {
	base http.RoundTripper
	// mu guards *lose (signals are sent concurrently).
	mu   sync.Mutex
	lose *bool
}

func (l *lostResponseRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && *l.lose && req.URL.Path == "/v1/traces" {
		*l.lose = false
		resp.Body.Close()
		return nil, fmt.Errorf("read tcp: connection reset by peer")
	}
	return resp, err
}

// The real mapping (exporter/signals) plugged in through the default
// NewMapper: every invocation's span and log lines reach the backend once.
func TestWithTheSignalsMapper(t *testing.T) {
	col := sink.New(sink.Options{})
	srv := httptest.NewServer(col.Handler())
	defer srv.Close()
	cfg := testConfig(t, srv.URL, config.FlushAsync)
	cfg.ServiceName = "fn"
	h := newHarness(t, cfg, knobs{NewMapper: realMapper})
	h.run(t)
	ctx := context.Background()
	now := time.Now()
	const n = 5
	for i := range n {
		id := fmt.Sprintf("sig-%d", i)
		at := now.Add(time.Duration(i) * time.Second)
		h.p.Invoke(ctx, invokeEvent(id, at.Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation(id, 2, at))
	}
	if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
		t.Fatal(err)
	}
	spans, logs := received(col)
	for i := range n {
		id := fmt.Sprintf("sig-%d", i)
		if spans[id] != 1 {
			t.Errorf("span of %s received %d times, want 1 (all: %v)", id, spans[id], spans)
		}
		for _, l := range []string{id + " line a", id + " line b"} {
			if logs[l] != 1 {
				t.Errorf("log %q received %d times, want 1", l, logs[l])
			}
		}
	}
	if metricPoints(col) == 0 {
		t.Error("no metrics")
	}
	h.close(t)
}

// periodic,<d>: data leaves on the period, not before; Invoke never waits.
func TestPeriodicFlushesOnThePeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		rt := &memRT{backend: col}
		cfg := testConfig(t, "http://collector.invalid", config.FlushPeriodic)
		cfg.FlushPeriod = 5 * time.Second
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}})
		h.run(t)
		t0 := time.Now()
		h.p.Invoke(context.Background(), invokeEvent("p", t0.Add(time.Minute)))
		if time.Since(t0) != 0 {
			t.Error("Invoke waited in periodic mode")
		}
		h.p.Enqueue(context.Background(), invocation("p", 1, t0))
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if n := requestCount(col); n != 0 {
			t.Fatalf("%d requests before the period", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		spans, logs := received(col)
		if spans["p"] != 1 || logs["p line a"] != 1 {
			t.Errorf("after the period: spans %v logs %v", spans, logs)
		}
		if metricPoints(col) == 0 {
			t.Error("metrics not sent on the period")
		}
		// Idle: no more requests, and the worker does not spin.
		n := requestCount(col)
		time.Sleep(time.Minute)
		synctest.Wait()
		if requestCount(col) != n {
			t.Errorf("%d requests while idle", requestCount(col)-n)
		}
	})
}

// async: during a long invocation, data and metrics leave on timers while
// the environment is awake, and nothing is sent before the first INVOKE.
func TestAsyncSendsDuringLongInvocations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		h, _ := synctestHarness(t, config.FlushAsync, col, knobs{MetricInterval: 10 * time.Second})
		h.run(t)
		h.p.Enqueue(context.Background(), []telemetry.Event{logLine("before invoke", time.Now())})
		time.Sleep(time.Second)
		synctest.Wait()
		if requestCount(col) != 0 {
			t.Fatal("sent before the first INVOKE")
		}
		h.p.Invoke(context.Background(), invokeEvent("long", time.Now().Add(time.Hour)))
		h.p.Enqueue(context.Background(), []telemetry.Event{start("long", time.Now())})
		for i := range 30 {
			h.p.Enqueue(context.Background(), []telemetry.Event{logLine(fmt.Sprintf("tick %02d", i), time.Now())})
			time.Sleep(time.Second)
		}
		synctest.Wait()
		_, logs := received(col)
		if len(logs) != 31 {
			t.Errorf("got %d log records during the invocation, want 31", len(logs))
		}
		if metricPoints(col) == 0 {
			t.Error("no metrics during a 30s invocation")
		}
	})
}

// The exporters are built from Config only: OTEL_EXPORTER_OTLP_* set for
// the function's own SDK change nothing.
func TestExportersIgnoreTheOTELEnvironment(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:1/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-env=leak")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
	col := sink.New(sink.Options{})
	srv := httptest.NewServer(col.Handler())
	defer srv.Close()
	cfg := testConfig(t, srv.URL, config.FlushAsync)
	cfg.OTLP.Logs.Headers = nil
	h := newHarness(t, cfg, knobs{})
	h.run(t)
	ctx := context.Background()
	h.p.Enqueue(context.Background(), invocation("env", 1, time.Now()))
	h.p.Invoke(ctx, invokeEvent("env", time.Now().Add(time.Minute)))
	if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
		t.Fatal(err)
	}
	spans, logs := received(col)
	if spans["env"] != 1 || logs["env line a"] != 1 {
		t.Errorf("configured endpoint got spans %v logs %v", spans, logs)
	}
	for _, a := range col.Snapshot().Arrivals() {
		if a.Header.Get("X-Env") != "" {
			t.Error("OTEL_EXPORTER_OTLP_HEADERS reached the backend")
			break
		}
	}
}

// A stalled request fails after its timeout of awake time and is retried.
func TestStalledRequestTimesOutAndIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		h, _ := synctestHarness(t, config.FlushAsync, col, knobs{BatchDelay: time.Millisecond, RetryInitial: time.Second})
		// The first traces request is never answered; its context ends it.
		col.InjectFault(sink.Fault{Signal: sink.SignalTraces, Stall: make(chan struct{}), Times: 1})
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("st", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("st", 0, time.Now()))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := h.p.tally(); st.Traces.Retried != 1 || st.Traces.Sent != 1 {
			t.Errorf("stats = %+v, want one retry after the 2s timeout", st.Traces)
		}
	})
}

// The pre-queue filter runs before anything is queued: what it removes is
// neither sent nor spilled.
func TestFilterRunsBeforeQueueing(t *testing.T) {
	col := sink.New(sink.Options{})
	srv := httptest.NewServer(col.Handler())
	defer srv.Close()
	filter := func(evs []telemetry.Event) []telemetry.Event {
		out := evs[:0:0]
		for _, ev := range evs {
			if l, ok := ev.Record.(*telemetry.Log); ok && strings.Contains(l.Text, "line b") {
				continue
			}
			out = append(out, ev)
		}
		return out
	}
	h := newHarnessWith(t, testConfig(t, srv.URL, config.FlushAsync), Options{Filter: filter}, knobs{})
	h.run(t)
	ctx := context.Background()
	h.p.Enqueue(ctx, invocation("f1", 2, time.Now()))
	h.p.Invoke(ctx, invokeEvent("f1", time.Now().Add(time.Minute)))
	if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
		t.Fatal(err)
	}
	_, logs := received(col)
	if logs["f1 line a"] != 1 || logs["f1 line b"] != 0 {
		t.Errorf("logs = %v, want line b filtered out", logs)
	}
}

// With Lambda Managed Instances there is no INVOKE: sending starts with the
// first platform.start (init is over).
func TestSendingStartsWithoutInvoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		h, _ := synctestHarness(t, config.FlushAsync, col, knobs{})
		h.run(t)
		h.p.Enqueue(context.Background(), invocation("lmi", 1, time.Now()))
		time.Sleep(time.Second)
		synctest.Wait()
		if spans, _ := received(col); spans["lmi"] != 1 {
			t.Errorf("spans = %v", spans)
		}
	})
}

// Without platform events no runtimeDone can arrive: end and adaptive run
// as async so an invocation is never held until its deadline.
func TestWithoutPlatformEventsEndModeRunsAsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushEnd)
		cfg.TelemetryTypes = []string{"function"}
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: &memRT{backend: sink.New(sink.Options{})}}})
		h.run(t)
		t0 := time.Now()
		h.p.Invoke(context.Background(), invokeEvent("f1", t0.Add(time.Minute)))
		if d := time.Since(t0); d != 0 {
			t.Errorf("Invoke waited %v with no platform events subscribed, want 0", d)
		}
	})
}

// A signal switched off in the configuration (SLIPSTREAM_TRACES_EXPORTER=none,
// or a bad destination setting for it) is neither mapped nor sent; the
// others go on.
func TestSignalSwitchedOffIsNotSent(t *testing.T) {
	for _, off := range []string{"traces", "logs", "metrics"} {
		t.Run(off+" off", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				col := sink.New(sink.Options{})
				rt := &memRT{backend: col}
				cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
				switch off {
				case "traces":
					cfg.OTLP.Traces.Off = "SLIPSTREAM_TRACES_EXPORTER"
				case "logs":
					cfg.OTLP.Logs.Off = "SLIPSTREAM_LOGS_EXPORTER"
				default:
					cfg.OTLP.Metrics.Off = "SLIPSTREAM_METRICS_EXPORTER"
				}
				h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}})
				h.run(t)
				ctx := context.Background()
				h.p.Invoke(ctx, invokeEvent("a", time.Now().Add(time.Minute)))
				h.p.Enqueue(ctx, invocation("a", 2, time.Now()))
				if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
					t.Fatal(err)
				}
				for _, sig := range []sink.Signal{sink.SignalTraces, sink.SignalLogs, sink.SignalMetrics} {
					if got := requestsFor(col, sig); (got > 0) == (string(sig) == off) {
						t.Errorf("%d requests to /v1/%s with %s off", got, sig, off)
					}
				}
				if st := h.p.tally(); st.Traces.Dropped+st.Logs.Dropped+st.Metrics.Dropped != 0 {
					t.Errorf("drops counted for a signal switched off: %+v", st)
				}
				h.close(t)
			})
		})
	}
}
