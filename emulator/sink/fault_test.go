package sink_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// emptyTraces is a valid, empty ExportTraceServiceRequest in JSON.
var emptyTraces = []byte(`{"resourceSpans":[]}`)

func TestServiceUnavailableWithRetryAfter(t *testing.T) {
	s := start(t, sink.Options{Faults: []sink.Fault{{Status: 503, RetryAfter: 1500 * time.Millisecond, Times: 2}}})
	url := s.URL(sink.SignalTraces)

	for i, want := range []int{503, 503, 200} {
		resp := post(t, url, "application/json", "", emptyTraces)
		if resp.status != want {
			t.Fatalf("request %d: status %d, want %d", i+1, resp.status, want)
		}
		if want == 503 {
			if resp.retryAfter != "2" {
				t.Errorf("request %d: Retry-After %q, want 2 (whole seconds, rounded up)", i+1, resp.retryAfter)
			}
			if !strings.Contains(string(resp.body), `"code":14`) {
				t.Errorf("request %d: body %q, want a google.rpc.Status with code UNAVAILABLE", i+1, resp.body)
			}
		}
	}
	if c := s.Requests()[sink.SignalTraces]; c.Received != 3 || c.Faulted != 2 || c.Accepted != 1 {
		t.Errorf("requests = %+v", c)
	}
}

// statusRecorder records the status and Retry-After of every response an exporter receives.
type statusRecorder struct {
	mu    sync.Mutex
	seen  []string
	inner http.RoundTripper
}

func (r *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.inner.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.seen = append(r.seen, resp.Status[:3]+" retry-after="+resp.Header.Get("Retry-After"))
		r.mu.Unlock()
	}
	return resp, err
}

func TestTheOfficialExporterSeesTheInjectedThrottle(t *testing.T) {
	s := start(t, sink.Options{})
	s.InjectFault(sink.Fault{Signal: sink.SignalTraces, Status: http.StatusTooManyRequests, RetryAfter: 3 * time.Second, Times: 1})
	rec := &statusRecorder{inner: http.DefaultTransport}
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(s.URL(sink.SignalTraces)),
		otlptracehttp.WithHTTPClient(&http.Client{Transport: rec}),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(ctx)
	spans := tracetest.SpanStubs{invocationStub()}.Snapshots()

	if err := exp.ExportSpans(ctx, spans); err == nil {
		t.Error("first export succeeded, want the throttle")
	}
	if err := exp.ExportSpans(ctx, spans); err != nil {
		t.Errorf("second export: %v", err)
	}
	if got := strings.Join(rec.seen, "; "); got != "429 retry-after=3; 200 retry-after=" {
		t.Errorf("responses = %s", got)
	}
	if len(s.Spans()) != 1 {
		t.Errorf("spans = %d, want 1 (the throttled request is not kept)", len(s.Spans()))
	}
}

func TestFaultMatching(t *testing.T) {
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }

	t.Run("a fault for one signal leaves the others alone", func(t *testing.T) {
		s := start(t, sink.Options{Now: clock})
		s.InjectFault(sink.Fault{Signal: sink.SignalMetrics, Status: 503})
		if got := post(t, s.URL(sink.SignalTraces), "application/json", "", emptyTraces).status; got != 200 {
			t.Errorf("traces: %d, want 200", got)
		}
		if got := post(t, s.URL(sink.SignalMetrics), "application/json", "", []byte(`{}`)).status; got != 503 {
			t.Errorf("metrics: %d, want 503", got)
		}
	})
	t.Run("a fault for a duration ends with it", func(t *testing.T) {
		s := start(t, sink.Options{Now: clock})
		s.InjectFault(sink.Fault{Status: 500, For: 10 * time.Second})
		if got := post(t, s.URL(sink.SignalTraces), "application/json", "", emptyTraces).status; got != 500 {
			t.Errorf("during: %d, want 500", got)
		}
		advance(10 * time.Second)
		if got := post(t, s.URL(sink.SignalTraces), "application/json", "", emptyTraces).status; got != 200 {
			t.Errorf("after: %d, want 200", got)
		}
	})
	t.Run("faults apply in the order injected", func(t *testing.T) {
		s := start(t, sink.Options{Now: clock})
		s.InjectFault(sink.Fault{Status: 502, Times: 1})
		s.InjectFault(sink.Fault{Status: 504, Times: 1})
		var got []int
		for range 3 {
			got = append(got, post(t, s.URL(sink.SignalLogs), "application/json", "", []byte(`{}`)).status)
		}
		if got[0] != 502 || got[1] != 504 || got[2] != 200 {
			t.Errorf("statuses = %v, want [502 504 200]", got)
		}
	})
	t.Run("cleared faults no longer apply", func(t *testing.T) {
		s := start(t, sink.Options{Now: clock})
		s.InjectFault(sink.Fault{Status: 503})
		s.ClearFaults()
		if got := post(t, s.URL(sink.SignalTraces), "application/json", "", emptyTraces).status; got != 200 {
			t.Errorf("status = %d, want 200", got)
		}
	})
	t.Run("a protobuf request gets a protobuf status", func(t *testing.T) {
		s := start(t, sink.Options{Now: clock})
		s.InjectFault(sink.Fault{Status: 503})
		resp := post(t, s.URL(sink.SignalTraces), "application/x-protobuf", "", nil)
		// google.rpc.Status{code: 14, message: "injected fault"}
		if resp.contentType != "application/x-protobuf" || string(resp.body[:2]) != "\x08\x0e" {
			t.Errorf("got %q %q", resp.contentType, resp.body)
		}
	})
}

// postAsync posts an empty trace export in the background and delivers the status (or -1).
func postAsync(ctx context.Context, url string) <-chan int {
	done := make(chan int, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(emptyTraces)))
		if err != nil {
			done <- -1
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return done
}

func waitHeld(t *testing.T, s *sink.Sink, n int) {
	t.Helper()
	err := s.WaitFor(context.Background(), func(snap *sink.Snapshot) bool {
		return snap.Requests()[sink.SignalTraces].Held == n
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHeldRequests(t *testing.T) {
	t.Run("a stalled request is accepted once released", func(t *testing.T) {
		s := start(t, sink.Options{})
		release := make(chan struct{})
		s.InjectFault(sink.Fault{Stall: release, Times: 1})
		done := postAsync(context.Background(), s.URL(sink.SignalTraces))
		waitHeld(t, s, 1)
		close(release)
		if got := <-done; got != 200 {
			t.Errorf("status = %d, want 200", got)
		}
		if c := s.Requests()[sink.SignalTraces]; c.Accepted != 1 || c.Held != 0 {
			t.Errorf("requests = %+v", c)
		}
	})
	t.Run("a stalled request can then be refused", func(t *testing.T) {
		s := start(t, sink.Options{})
		release := make(chan struct{})
		s.InjectFault(sink.Fault{Stall: release, Status: 503, Times: 1})
		done := postAsync(context.Background(), s.URL(sink.SignalTraces))
		waitHeld(t, s, 1)
		close(release)
		if got := <-done; got != 503 {
			t.Errorf("status = %d, want 503", got)
		}
	})
	t.Run("a delayed request is released when its client gives up", func(t *testing.T) {
		s := start(t, sink.Options{})
		s.InjectFault(sink.Fault{Delay: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := postAsync(ctx, s.URL(sink.SignalTraces))
		waitHeld(t, s, 1)
		cancel()
		if got := <-done; got != -1 {
			t.Errorf("status = %d, want a client error", got)
		}
		waitHeld(t, s, 0)
		if c := s.Requests()[sink.SignalTraces]; c.Faulted != 1 || c.Accepted != 0 {
			t.Errorf("requests = %+v", c)
		}
	})
	t.Run("closing the sink answers held requests 503", func(t *testing.T) {
		s := sink.New(sink.Options{})
		if _, err := s.Start(""); err != nil {
			t.Fatal(err)
		}
		s.InjectFault(sink.Fault{Stall: make(chan struct{})})
		done := postAsync(context.Background(), s.URL(sink.SignalTraces))
		waitHeld(t, s, 1)
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := <-done; got != 503 {
			t.Errorf("status = %d, want 503", got)
		}
	})
	t.Run("a hang-up closes the connection without an answer", func(t *testing.T) {
		s := start(t, sink.Options{})
		s.InjectFault(sink.Fault{Hangup: true, Times: 1})
		ctx := context.Background()
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(s.URL(sink.SignalTraces)),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		if err != nil {
			t.Fatal(err)
		}
		defer exp.Shutdown(ctx)
		err = exp.ExportSpans(ctx, tracetest.SpanStubs{invocationStub()}.Snapshots())
		if err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("export error = %v, want a connection error", err)
		}
		if c := s.Requests()[sink.SignalTraces]; c.Faulted != 1 {
			t.Errorf("requests = %+v", c)
		}
	})
}
