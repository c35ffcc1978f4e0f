//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// e2eStep is one scripted invocation of the example function.
type e2eStep struct {
	payload string
	want    emulator.Status
}

// TestE2ELifecycle runs the agent through init, varied invocations (one
// timeout, which resets the environment), and a shutdown, and checks every
// invocation's span at the sink.
func TestE2ELifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, endpoint := e2eSink(t, "")
	r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint, timeout: 2 * time.Second})

	script := []e2eStep{
		{`{"action":"succeed"}`, emulator.StatusSuccess},
		{`{"action":"log","lines":3}`, emulator.StatusSuccess},
		{`{"action":"json-log","lines":3}`, emulator.StatusSuccess},
		{`{"action":"error"}`, emulator.StatusError},
		{`{"action":"alloc","mb":16}`, emulator.StatusSuccess},
		{`{"action":"sleep","ms":20}`, emulator.StatusSuccess},
		{`{"action":"timeout"}`, emulator.StatusTimeout}, // resets: a new agent process follows
		{`{"action":"log","lines":2}`, emulator.StatusSuccess},
		{`{"action":"error","message":"second error"}`, emulator.StatusError},
		{`{"action":"succeed"}`, emulator.StatusSuccess},
	}
	var results []emulator.InvokeResult
	for _, st := range script {
		res := r.invoke(ctx, st.payload, "")
		if res.Status != st.want {
			t.Fatalf("invocation %s: status %s (%s), want %s; response %s", st.payload, res.Status, res.ErrorType, st.want, res.Response)
		}
		results = append(results, res)
	}
	sres := r.shutdown(ctx)
	var ids []string
	for _, res := range results {
		ids = append(ids, res.RequestID)
	}
	if !e2eWait(ctx, t, s, "every invocation span", e2eHasSpans(ids)) {
		return
	}
	snap := s.Snapshot()
	spans := e2eInvocationSpans(snap)

	t.Run("the agent subscribed to the Telemetry API in each environment generation", func(t *testing.T) {
		var subscribed int
		for _, ev := range r.platformEvents(emulator.TypeTelemetrySubscription) {
			var rec struct{ Name, State string }
			e2eRecord(t, ev, &rec)
			if rec.Name == e2eAgentName && rec.State == "Subscribed" {
				subscribed++
			}
		}
		if inits := r.emu.Stats().Inits; int64(subscribed) != inits {
			t.Errorf("%d subscriptions by %s for %d init phases", subscribed, e2eAgentName, inits)
		}
		if st := r.emu.Stats(); st.Events == 0 || st.FailedBatches != 0 {
			t.Errorf("telemetry delivery to the agent: %+v", st)
		}
	})
	t.Run("every invocation has exactly one span with the platform's status and error type", func(t *testing.T) {
		for i, res := range results {
			got := spans[res.RequestID]
			if len(got) != 1 {
				t.Errorf("invocation %d (%s): %d spans, want 1", i+1, script[i].payload, len(got))
				continue
			}
			sp := got[0]
			et, _ := sp.Attributes["error.type"].(string)
			switch {
			case res.Status == emulator.StatusSuccess && (sp.Status == "Error" || et != ""):
				t.Errorf("invocation %d (%s) succeeded: span status %s, error.type %q", i+1, script[i].payload, sp.Status, et)
			case res.Status != emulator.StatusSuccess && (sp.Status != "Error" || et != res.ErrorType):
				t.Errorf("invocation %d (%s) ended %s (%s): span status %s, error.type %q", i+1, script[i].payload, res.Status, res.ErrorType, sp.Status, et)
			}
			// Every invocation span closes at runtimeDone; the report's
			// figures follow on the postRuntime span beside it.
			for _, pr := range e2ePostRuntimeSpans(snap)[res.RequestID] {
				if v, ok := pr.Attributes["slipstream.billed_duration"]; !ok || fmt.Sprint(v) != fmt.Sprint(float64(res.BilledDuration.Milliseconds())/1000) {
					t.Errorf("invocation %d: postRuntime billed duration %v s (present %v), report says %d ms", i+1, v, ok, res.BilledDuration.Milliseconds())
				}
			}
		}
	})
	t.Run("only the first invocation of each runtime process is a cold start", func(t *testing.T) {
		// The timeout resets the environment: the next invocation runs a
		// suppressed init in a new runtime process, and the example
		// function reports coldStart itself.
		for i, res := range results {
			want := i == 0 || results[i-1].Status == emulator.StatusTimeout
			var body struct {
				ColdStart *bool `json:"coldStart"`
			}
			if json.Unmarshal(res.Response, &body) == nil && body.ColdStart != nil && *body.ColdStart != want {
				t.Fatalf("invocation %d: the function says coldStart %v, the test expects %v", i+1, *body.ColdStart, want)
			}
			if got := spans[res.RequestID]; len(got) > 0 {
				if cold, _ := got[0].Attributes["faas.coldstart"].(bool); cold != want {
					t.Errorf("invocation %d (%s): faas.coldstart %v, want %v", i+1, script[i].payload, cold, want)
				}
			}
		}
	})
	t.Run("the agent exits on its own before the SHUTDOWN deadline", func(t *testing.T) {
		e2eCheckExit(t, sres)
		if sres.Reason != emulator.ReasonSpindown {
			t.Errorf("shutdown reason %q", sres.Reason)
		}
	})
}

// TestE2EFreeze freezes the environment between every invocation (SIGSTOP
// of the function and the agent): delivery is at-least-once, nothing is
// missing and duplicates stay within 1 %.
func TestE2EFreeze(t *testing.T) {
	const n, lines = 100, 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, endpoint := e2eSink(t, "")
	r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint, freeze: true})
	var ids []string
	for i := range n {
		payload := `{"action":"succeed"}`
		switch {
		case i%2 == 1:
			payload = fmt.Sprintf(`{"action":"log","lines":%d}`, lines)
		case i%10 == 8:
			// Long enough for the agent's batch timer to start exports
			// while awake, which the freeze then cuts mid-flight.
			payload = `{"action":"sleep","ms":250}`
		}
		res := r.invoke(ctx, payload, "")
		if err := e2eResponseOK(res); err != nil {
			t.Fatalf("invocation %d: %v", i+1, err)
		}
		ids = append(ids, res.RequestID)
	}
	sres := r.shutdown(ctx)
	logged := func(i int) bool { return i%2 == 1 }
	e2eWait(ctx, t, s, "every invocation span and log record", func(snap *sink.Snapshot) bool {
		if !e2eHasSpans(ids)(snap) {
			return false
		}
		logs := e2eLogsByInvocation(snap)
		for i, id := range ids {
			if logged(i) && len(logs[id]) < lines {
				return false
			}
		}
		return true
	})
	snap := s.Snapshot()

	t.Run("every invocation's span arrives, duplicates within 1 percent", func(t *testing.T) {
		dups, missing := e2eDuplicates(e2eInvocationSpans(snap), ids, 1)
		t.Logf("%d invocations, %d duplicate spans", n, dups)
		if len(missing) > 0 {
			t.Errorf("%d invocations without a span: %v", len(missing), missing)
		}
		if dups*100 > n {
			t.Errorf("%d duplicate invocation spans for %d invocations (more than 1%%)", dups, n)
		}
	})
	t.Run("every log line arrives, duplicates within 1 percent", func(t *testing.T) {
		logs := e2eLogsByInvocation(snap)
		var withLogs []string
		for i, id := range ids {
			if logged(i) {
				withLogs = append(withLogs, id)
			}
		}
		dups, missing := e2eLogCopies(logs, withLogs, lines)
		t.Logf("%d log lines written, %d duplicate records", len(withLogs)*lines, dups)
		if len(missing) > 0 {
			t.Errorf("%d invocations with fewer than %d log records: %v", len(missing), lines, missing)
		}
		if dups*100 > len(withLogs)*lines {
			t.Errorf("%d duplicate log records for %d lines (more than 1%%)", dups, len(withLogs)*lines)
		}
	})
	t.Run("the agent exits on its own before the SHUTDOWN deadline", func(t *testing.T) {
		e2eCheckExit(t, sres)
	})
}

// TestE2ERefusedBackend points the agent at a port nobody listens on: the
// function and the agent stay healthy.
func TestE2ERefusedBackend(t *testing.T) {
	const n = 10
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	closed := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	r := e2eStart(ctx, t, e2eConfig{endpoint: closed})
	var results []emulator.InvokeResult
	for i := range n {
		payload := `{"action":"succeed"}`
		if i%2 == 1 {
			payload = `{"action":"log","lines":3}`
		}
		results = append(results, r.invoke(ctx, payload, ""))
	}
	sres := r.shutdown(ctx)

	t.Run("every invocation succeeds with its normal response", func(t *testing.T) {
		for i, res := range results {
			if err := e2eResponseOK(res); err != nil {
				t.Errorf("invocation %d: %v", i+1, err)
			}
		}
	})
	t.Run("the agent exits on its own before the SHUTDOWN deadline", func(t *testing.T) {
		e2eCheckExit(t, sres)
	})
	t.Run("post-runtime time is recorded", func(t *testing.T) {
		// Not a protocol guarantee, so only recorded: the flush policy and
		// the breaker bound it, the benchmarks measure it.
		var post []time.Duration
		for _, res := range results {
			post = append(post, res.PostRuntime)
		}
		sorted := slices.Clone(post)
		slices.Sort(sorted)
		t.Logf("post-runtime ms per invocation: %s (max %.1f)", e2eMillis(post), float64(sorted[len(sorted)-1].Microseconds())/1000)
		t.Logf("spill files left: %v", e2eSpillFiles(r.spillDir))
	})
}

// TestE2EXRayTrace invokes the cold environment with an X-Ray header: the
// trace takes its trace ID, the init span sits inside it beside the
// invocation span (under the caller's span), and the function's log
// records carry the invocation span's IDs.
func TestE2EXRayTrace(t *testing.T) {
	const (
		header  = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
		traceID = "5759e988bd862e3fe1be46a994272793"
		parent  = "53995c3f42cd8ad8"
		lines   = 3
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, endpoint := e2eSink(t, "")
	r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint})
	res := r.invoke(ctx, fmt.Sprintf(`{"action":"log","lines":%d}`, lines), header)
	if err := e2eResponseOK(res); err != nil {
		t.Fatal(err)
	}
	e2eCheckExit(t, r.shutdown(ctx))
	e2eWait(ctx, t, s, "the invocation span, the init span and the log records", func(snap *sink.Snapshot) bool {
		var initSpan bool
		for _, sp := range snap.Spans() {
			initSpan = initSpan || sp.Name == "init"
		}
		return initSpan && e2eHasSpans([]string{res.RequestID})(snap) && len(e2eLogsByInvocation(snap)[res.RequestID]) >= lines
	})
	snap := s.Snapshot()
	invs := e2eInvocationSpans(snap)[res.RequestID]
	if len(invs) != 1 {
		t.Fatalf("%d invocation spans for %s, want 1", len(invs), res.RequestID)
	}
	inv := invs[0]

	t.Run("the invocation span joins the caller's trace", func(t *testing.T) {
		if inv.TraceID != traceID || inv.ParentSpanID != parent {
			t.Errorf("invocation span in trace %s under %s, want trace %s under %s", inv.TraceID, inv.ParentSpanID, traceID, parent)
		}
		if cold, _ := inv.Attributes["faas.coldstart"].(bool); !cold {
			t.Errorf("faas.coldstart = %v on the first invocation", inv.Attributes["faas.coldstart"])
		}
	})
	t.Run("the cold start's init span is beside the invocation span, under the caller", func(t *testing.T) {
		var inits []string
		for _, sp := range snap.Spans() {
			if sp.Name != "init" {
				continue
			}
			inits = append(inits, sp.TraceID+"/"+sp.ParentSpanID)
			if sp.TraceID != traceID || sp.ParentSpanID != parent {
				t.Errorf("init span in trace %s under %s, want trace %s under the caller's span %s", sp.TraceID, sp.ParentSpanID, traceID, parent)
			}
		}
		if len(inits) != 1 {
			t.Errorf("%d init spans (%v), want 1", len(inits), inits)
		}
	})
	t.Run("the function's log records carry the invocation span's IDs", func(t *testing.T) {
		logs := e2eLogsByInvocation(snap)[res.RequestID]
		if len(logs) != lines {
			t.Errorf("%d log records for the invocation, want %d", len(logs), lines)
		}
		for _, lr := range logs {
			if lr.TraceID != traceID || lr.SpanID != inv.SpanID {
				t.Errorf("log record %q: trace %s span %s, want trace %s span %s", lr.Body, lr.TraceID, lr.SpanID, traceID, inv.SpanID)
			}
		}
	})
}
