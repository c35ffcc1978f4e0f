//go:build e2e

package e2e

// End-to-end tests against AWS's runtime interface emulator (RIE) as an
// independent peer (RIE_NOTES.md): the real agent
// binary in /opt/extensions/slipstream, a real aws-lambda-go function as
// /var/task/bootstrap, and the probe extension testdata/rieext next to the
// agent, which reports to the test what RIE sent so that assertions about
// the agent rest on an independent record. RIE_NOTES.md lists where RIE
// differs from the spec and from our emulator.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// rieAgentEnv is the agent's environment (RIE passes its own environment
// on to the extensions it starts).
func rieAgentEnv(t *testing.T, probe *rieProbe, otlpEndpoint string) []string {
	return []string{
		"RIEEXT_REPORT_URL=" + probe.srv.URL,
		"SLIPSTREAM_LOG_LEVEL=debug",
		"SLIPSTREAM_OTLP_ENDPOINT=" + otlpEndpoint,
		"SLIPSTREAM_LISTENER_PORT=0", // a free port, named in the subscription
	}
}

// rieStartSink starts the OTLP sink the agent exports to.
func rieStartSink(t *testing.T) (*sink.Sink, string) {
	t.Helper()
	s := sink.New(sink.Options{})
	endpoint, err := s.Start("")
	if err != nil {
		t.Fatalf("start OTLP sink: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close OTLP sink: %v", err)
		}
	})
	return s, endpoint
}

// rieCheckAgentLog checks the agent's JSON log on stderr: no error, and
// exactly wantTelemetryWarnings warnings about the Telemetry API.
func rieCheckAgentLog(t *testing.T, bins *rieBinaries, recs []rieAgentLine, wantTelemetryWarnings int) {
	t.Helper()
	if !bins.agentLogs {
		t.Skipf("the agent is %s, which does not log JSON", bins.agentKind)
	}
	if len(recs) == 0 {
		t.Errorf("no JSON log record with \"extension\":%q in RIE's output: the agent logged nothing to stderr", rieAgentName)
	}
	var warnings []string
	for _, rec := range recs {
		switch rec.Level {
		case "ERROR":
			t.Errorf("agent logged an error: %s", rec.raw)
		case "WARN":
			if strings.Contains(strings.ToLower(rec.Msg+rec.raw), "telemetry") {
				warnings = append(warnings, rec.raw)
			} else {
				t.Logf("agent warning: %s", rec.raw)
			}
		}
	}
	if len(warnings) != wantTelemetryWarnings {
		t.Errorf("agent logged %d warnings about telemetry, want %d:\n%s",
			len(warnings), wantTelemetryWarnings, strings.Join(warnings, "\n"))
	}
}

// rieCheckShutdown checks what is common to both modes once RIE has exited
// after SIGTERM: the probe received SHUTDOWN with reason, the agent logged
// the same reason, RIE (which waits for its extensions) was gone before the
// SHUTDOWN deadline, and no process outlived it.
func rieCheckShutdown(t *testing.T, bins *rieBinaries, r *rieInstance, probe *rieProbe, reason string, recs []rieAgentLine) {
	t.Helper()
	evs := probe.events(t)
	if len(evs) == 0 || evs[len(evs)-1].EventType != "SHUTDOWN" {
		t.Fatalf("probe's last event is not SHUTDOWN: %+v", evs)
	}
	shutdown := evs[len(evs)-1]
	if shutdown.ShutdownReason != reason {
		t.Errorf("SHUTDOWN reason %q, want %q", shutdown.ShutdownReason, reason)
	}
	deadline := time.UnixMilli(shutdown.DeadlineMs)
	t.Logf("SHUTDOWN %+v: RIE exited %v before its deadline (exit status: %v)", shutdown, deadline.Sub(r.exitAt).Round(time.Millisecond), r.exitErr)
	if !r.exitAt.Before(deadline) {
		t.Errorf("RIE exited at %v, after the SHUTDOWN deadline %v: an extension was still running", r.exitAt, deadline)
	}
	for _, l := range r.out.snapshot() {
		// Classic: "Sending SIGKILL to extension-slipstream-1(pid)";
		// LMI: msg="Sending SIGKILL to process" name=extension-slipstream.
		if strings.Contains(l.text, "SIGKILL") && strings.Contains(l.text, "extension-"+rieAgentName) {
			t.Errorf("RIE killed the agent after its deadline: %s", l.text)
		}
	}
	var sawShutdown bool
	for _, rec := range recs {
		var attrs struct {
			Reason string `json:"shutdown_reason"`
		}
		if json.Unmarshal([]byte(rec.raw), &attrs) == nil && attrs.Reason != "" {
			sawShutdown = true
			if attrs.Reason != reason {
				t.Errorf("agent logged shutdown_reason %q, want %q: %s", attrs.Reason, reason, rec.raw)
			}
		}
	}
	if !sawShutdown && bins.agentLogs {
		t.Errorf("agent logged no record with shutdown_reason: it did not receive SHUTDOWN")
	}
	if pids := r.namespacePIDs(); len(pids) > 0 {
		var names []string
		for _, pid := range pids {
			names = append(names, rieProcessName(pid))
		}
		t.Errorf("processes outlived RIE: %s", strings.Join(names, "; "))
	}
}

// TestRieClassic runs the agent in RIE's classic mode, which has the
// Extensions API but answers every Telemetry API subscription with 202
// Telemetry.NotSupported (RIE_NOTES.md): the agent must register for INVOKE and
// SHUTDOWN, follow every invocation, warn once that telemetry is
// unavailable, never delay the function, and exit before its deadline when
// RIE is terminated.
func TestRieClassic(t *testing.T) {
	rieRequire(t)
	bins := rieBuilt(t)
	t.Logf("agent %s, function %s", bins.agentKind, bins.function.kind)
	probe := rieStartProbe(t)
	otlp, endpoint := rieStartSink(t)
	r := rieStart(t, bins, rieOptions{env: rieAgentEnv(t, probe, endpoint)})

	ctx, cancel := context.WithTimeout(context.Background(), rieInvokeTimeout)
	defer cancel()
	const invocations = 3
	var ids []string
	for i := range invocations {
		id := rieRequestID()
		ids = append(ids, id)
		// Classic RIE answers an invocation only once every extension is
		// back in /event/next, so each answer also says the agent handled
		// its INVOKE without delaying the environment.
		var trace string
		if i == 0 { // does classic RIE pass the X-Ray header on in INVOKE?
			trace, _ = rieTraceHeader()
		}
		res, err := r.invoke(ctx, id, trace, bins.function.payload(i))
		if err != nil {
			t.Fatalf("invocation %d: %v (the agent or the function hangs)", i, err)
		}
		if res.status != 200 {
			t.Fatalf("invocation %d: status %d: %s", i, res.status, res.body)
		}
		if err := bins.function.check(i, id, res.body); err != nil {
			t.Errorf("invocation %d: %v", i, err)
		}
	}

	sctx, scancel := context.WithTimeout(context.Background(), rieShutdownTimeout)
	defer scancel()
	if err := r.terminate(sctx); err != nil {
		t.Fatal(err)
	}
	lines := r.out.snapshot()

	t.Run("the agent registers for INVOKE and SHUTDOWN", func(t *testing.T) {
		reg, ok := rieRegistrations(lines)[rieAgentName]
		if !ok {
			t.Fatalf("RIE logged no registration of %q", rieAgentName)
		}
		if !slices.Equal(reg.events, []string{"INVOKE", "SHUTDOWN"}) {
			t.Errorf("agent registered for %v, want [INVOKE SHUTDOWN]", reg.events)
		}
		// One /event/next per INVOKE plus the one SHUTDOWN answers.
		if got := rieAPICalls(lines, "/2020-01-01/extension/event/next", reg.id); got != invocations+1 {
			t.Errorf("agent called /event/next %d times, want %d (one per INVOKE, one for SHUTDOWN)", got, invocations+1)
		}
		// Classic RIE logs nothing about its Telemetry API stub: that the
		// agent met Telemetry.NotSupported shows in its log (below).
	})

	t.Run("RIE sends INVOKE for every invocation and answers subscriptions with Telemetry.NotSupported", func(t *testing.T) {
		var got []string
		for _, ev := range probe.events(t) {
			if ev.EventType == "INVOKE" {
				got = append(got, ev.RequestID)
				t.Logf("INVOKE %+v tracing %+v", ev, ev.Tracing)
			}
		}
		if !slices.Equal(got, ids) {
			t.Errorf("INVOKE request IDs %v, want %v", got, ids)
		}
		subs := probe.of("subscribe")
		if len(subs) != 1 {
			t.Fatalf("probe reported %d subscriptions, want 1", len(subs))
		}
		var sub struct {
			Result rieAPIResult `json:"result"`
		}
		if err := json.Unmarshal(subs[0].Data, &sub); err != nil {
			t.Fatal(err)
		}
		if sub.Result.Status != 202 || !bytes.Contains(sub.Result.Body, []byte(`"Telemetry.NotSupported"`)) {
			t.Errorf("subscription answer %d %s, want 202 Telemetry.NotSupported", sub.Result.Status, sub.Result.Body)
		}
	})

	recs := rieAgentLog(lines, rieAgentName)
	t.Run("the agent warns once that telemetry is unavailable and logs no error", func(t *testing.T) {
		rieCheckAgentLog(t, bins, recs, 1)
	})

	t.Run("SHUTDOWN SandboxTerminated reaches the agent, which exits before the deadline", func(t *testing.T) {
		rieCheckShutdown(t, bins, r, probe, "SandboxTerminated", recs)
	})

	// Without the Telemetry API the agent has nothing but INVOKE events:
	// what it exports then is recorded, not asserted (see the report).
	snap := otlp.Snapshot()
	t.Logf("OTLP sink after classic mode: requests %v, %d spans", snap.Requests(), len(snap.Spans()))
	for _, s := range snap.Spans() {
		t.Logf("  span %q status %s %q invocation %v", s.Name, s.Status, s.StatusMessage, s.Attributes["faas.invocation_id"])
	}
}

// rieUnavailable is the errorType of RIE-LMI's answer when no runtime
// worker is idle: it does not queue invocations (RIE_NOTES.md).
const rieUnavailable = "Runtime.Unavailable"

// rieInvokeManaged invokes and, when RIE answers Runtime.Unavailable
// because the worker that just answered has not asked for its next event
// yet, tries again once RIE logged a runtime's /next (or after a short
// backoff, since RIE logs it just before the worker counts as idle).
// rejected, when not nil, receives each Runtime.Unavailable answer.
func rieInvokeManaged(ctx context.Context, r *rieInstance, id, trace string, payload []byte, rejected func(rieInvokeResult)) (rieInvokeResult, int, error) {
	const maxAttempts = 50
	for attempt := 0; ; attempt++ {
		from := len(r.out.snapshot())
		res, err := r.invoke(ctx, id, trace, payload)
		if err != nil || !bytes.Contains(res.body, []byte(rieUnavailable)) {
			return res, attempt, err
		}
		rejected(res)
		if attempt == maxAttempts {
			return res, attempt, fmt.Errorf("invoke %s: %s after %d attempts", id, res.body, attempt+1)
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_ = r.out.waitFor(wctx, func(lines []rieLine) bool { // a timeout only ends the backoff
			return rieCount(lines[from:], "InvokeRouter: received runtime /next") > 0
		})
		cancel()
		if err := ctx.Err(); err != nil {
			return res, attempt, err
		}
	}
}

// TestRieManagedInstances runs the agent in RIE's Lambda Managed Instances
// mode (AWS_LAMBDA_MAX_CONCURRENCY set), the only mode of RIE with a
// Telemetry API (schema 2025-01-29, no INVOKE for extensions, concurrent
// invocations; RIE_NOTES.md): the agent must register for SHUTDOWN only,
// subscribe, survive invocations two at a time, and export one span per
// invocation, carrying faas.invocation_id, to the OTLP sink.
func TestRieManagedInstances(t *testing.T) {
	rieRequire(t)
	bins := rieBuilt(t)
	t.Logf("agent %s, function %s", bins.agentKind, bins.function.kind)
	probe := rieStartProbe(t)
	otlp, endpoint := rieStartSink(t)
	const workers = 2
	r := rieStart(t, bins, rieOptions{maxConcurrency: workers, env: rieAgentEnv(t, probe, endpoint)})

	ctx, cancel := context.WithTimeout(context.Background(), rieInvokeTimeout)
	defer cancel()
	const invocations = 10
	type call struct {
		i           int
		id, traceID string
		header      string
	}
	calls := make([]call, invocations)
	for i := range calls {
		header, traceID := rieTraceHeader()
		calls[i] = call{i: i, id: rieRequestID(), traceID: traceID, header: header}
	}
	queue := make(chan call)
	var retries atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex // guards failures and rejections
	var failures []string
	rejections := map[string]int{}
	rejected := func(res rieInvokeResult) {
		mu.Lock()
		defer mu.Unlock()
		rejections[fmt.Sprintf("%d %s", res.status, bytes.TrimSpace(res.body))]++
	}
	for range workers {
		wg.Go(func() {
			for c := range queue {
				res, n, err := rieInvokeManaged(ctx, r, c.id, c.header, bins.function.payload(c.i), rejected)
				retries.Add(int64(n))
				if err == nil && res.status != 200 {
					err = fmt.Errorf("status %d: %s", res.status, res.body)
				}
				if err == nil {
					err = bins.function.check(c.i, c.id, res.body)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("invocation %d (%s): %v", c.i, c.id, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, c := range calls {
		queue <- c
	}
	close(queue)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d invocations, %d at a time: %d retried after RIE's answers %v", invocations, workers, retries.Load(), rejections)
	if t.Failed() {
		t.FailNow()
	}

	// The agent is still running: RIE logs every process termination.
	if n := rieCount(r.out.snapshot(), "Name:extension-"+rieAgentName+" "); n > 0 {
		t.Fatalf("the agent terminated during the invocations")
	}

	wantIDs := map[string]bool{}
	for _, c := range calls {
		wantIDs[c.id] = true
	}
	exportedAll := func(s *sink.Snapshot) bool {
		seen := map[string]bool{}
		for _, sp := range s.Spans() {
			if id, ok := sp.Attributes["faas.invocation_id"].(string); ok && wantIDs[id] {
				seen[id] = true
			}
		}
		return len(seen) == len(wantIDs)
	}
	if bins.agentExports {
		// Observation only: whether the spans arrive while the environment
		// keeps running (no freeze in this mode), or only at shutdown.
		octx, ocancel := context.WithTimeout(context.Background(), 5*time.Second)
		before := otlp.WaitFor(octx, exportedAll)
		ocancel()
		t.Logf("every invocation's span at the sink before SHUTDOWN: %v (%v)", before == nil, before)
	}

	sctx, scancel := context.WithTimeout(context.Background(), rieShutdownTimeout)
	defer scancel()
	if err := r.terminate(sctx); err != nil {
		t.Fatal(err)
	}
	lines := r.out.snapshot()
	recs := rieAgentLog(lines, rieAgentName)

	t.Run("the agent registers for SHUTDOWN only and subscribes with schema 2025-01-29", func(t *testing.T) {
		reg, ok := rieRegistrations(lines)[rieAgentName]
		if !ok {
			t.Fatalf("RIE logged no registration of %q", rieAgentName)
		}
		if !slices.Equal(reg.events, []string{"SHUTDOWN"}) {
			t.Errorf("agent registered for %v, want [SHUTDOWN]", reg.events)
		}
		// RIE-LMI accepts schemaVersion 2025-01-29 only and logs each
		// subscription it created.
		if rieCount(lines, `msg="Telemetry subscription created" agentName=`+rieAgentName+" ") != 1 {
			t.Errorf("RIE logged no telemetry subscription created for %q", rieAgentName)
		}
		for _, rec := range recs {
			var attrs struct {
				Schema string `json:"schema_version"`
			}
			if json.Unmarshal([]byte(rec.raw), &attrs) == nil && attrs.Schema != "" && attrs.Schema != "2025-01-29" {
				t.Errorf("agent subscribed with schema %q, want 2025-01-29: %s", attrs.Schema, rec.raw)
			}
		}
	})

	t.Run("RIE delivers platform.start and platform.report for every invocation", func(t *testing.T) {
		starts, reports := map[string]bool{}, map[string]bool{}
		types := map[string]int{}
		for _, ev := range probe.telemetry(t) {
			types[ev.Type]++
			var rec struct {
				RequestID string `json:"requestId"`
			}
			_ = json.Unmarshal(ev.Record, &rec) // function and extension records are strings
			switch ev.Type {
			case "platform.start":
				starts[rec.RequestID] = true
			case "platform.report":
				reports[rec.RequestID] = true
			}
		}
		t.Logf("telemetry the probe received, by type: %v", types)
		for id := range wantIDs {
			if !starts[id] || !reports[id] {
				t.Errorf("request %s: platform.start %v, platform.report %v", id, starts[id], reports[id])
			}
		}
	})

	t.Run("the agent logs no warning about telemetry and no error", func(t *testing.T) {
		rieCheckAgentLog(t, bins, recs, 0)
	})

	t.Run("SHUTDOWN spindown reaches the agent, which exits cleanly before the deadline", func(t *testing.T) {
		rieCheckShutdown(t, bins, r, probe, "spindown", recs)
		if rieCount(lines, "Name:extension-"+rieAgentName+" Cause:exited Signo:<nil> ExitStatus:0 ") != 1 {
			t.Errorf("RIE did not log the agent's exit with status 0")
		}
	})

	t.Run("every invocation's span reaches the OTLP sink with faas.invocation_id", func(t *testing.T) {
		if !bins.agentExports {
			t.Skipf("the agent is %s, which does not export", bins.agentKind)
		}
		// The agent has exited: whatever it exported is at the sink.
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer wcancel()
		if err := otlp.WaitFor(wctx, exportedAll); err != nil {
			t.Errorf("spans at the sink: %v", err)
		}
		traceOf := map[string]string{}
		for _, c := range calls {
			traceOf[c.id] = c.traceID
		}
		matched, names := 0, map[string]int{}
		for _, sp := range otlp.Snapshot().Spans() {
			names[sp.Name+" ("+sp.Status+")"]++
			id, _ := sp.Attributes["faas.invocation_id"].(string)
			if traceOf[id] != "" && sp.TraceID == traceOf[id] {
				matched++
			}
		}
		t.Logf("spans by name and status: %v", names)
		t.Logf("%d spans at the sink, %d carry the trace ID of their invocation's X-Ray header", len(otlp.Snapshot().Spans()), matched)
	})
}
