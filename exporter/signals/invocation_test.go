package signals

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// checkNesting fails the test for a span that starts before its parent or
// ends after it (parents among spans).
func checkNesting(t *testing.T, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	for _, s := range spans {
		p, ok := byID[s.Parent().SpanID()]
		if !ok {
			continue
		}
		if s.StartTime().Before(p.StartTime()) || s.EndTime().After(p.EndTime()) {
			t.Errorf("span %s [%v, %v] is outside its parent %s [%v, %v]", s.Name(), s.StartTime(), s.EndTime(), p.Name(), p.StartTime(), p.EndTime())
		}
	}
}

// Every invocation span means the same thing, whatever the flush mode: the
// runtime's work, from platform.start to platform.runtimeDone. The
// report's figures follow on a postRuntime span beside it.
func TestEveryInvocationSpanEndsAtRuntimeDone(t *testing.T) {
	cold := func() []telemetry.Event {
		return append(initEvents(telemetry.InitOnDemand, 0, 300), withInitDuration(invocationEvents("r1", 310), 300)...)
	}
	warm := func() []telemetry.Event { return invocationEvents("r1", 0) }
	// A platform span that runs past runtimeDone.
	overrun := func() []telemetry.Event {
		evs := invocationEvents("r1", 0)
		evs[1].Record.(*telemetry.RuntimeDone).Spans = []telemetry.Span{{Name: "responseDuration", Start: at(9), DurationMs: 5}}
		return evs
	}
	tests := []struct {
		name     string
		flush    config.FlushMode
		evs      func() []telemetry.Event
		rdMs     int // runtimeDone's time
		wantInit bool
	}{
		{"a warm invocation in async mode", config.FlushAsync, warm, 10, false},
		{"a warm invocation the agent waits for", config.FlushEnd, warm, 10, false},
		{"a cold start in async mode", config.FlushAsync, cold, 320, true},
		{"a cold start the agent waits for (adaptive's first invocation)", config.FlushAdaptive, cold, 320, true},
		{"an invocation whose platform span runs past runtimeDone", config.FlushAsync, overrun, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Flush = tt.flush
			mm := newMeteredMapper(t, cfg)
			mm.Invoke(Invocation{RequestID: "r1"})
			evs := tt.evs()
			mm.consume(evs[:len(evs)-1]...)
			srv := serverSpans(mm.spans)
			if len(srv) != 1 {
				t.Fatalf("before the report: %d invocation spans, want 1 (it leaves at runtimeDone)", len(srv))
			}
			inv := srv[0]
			if !inv.EndTime().Equal(at(tt.rdMs)) {
				t.Errorf("invocation span ends %v, want runtimeDone's time %v", inv.EndTime(), at(tt.rdMs))
			}
			if _, ok := attrOf(inv, "slipstream.runtime_duration"); !ok {
				t.Error("invocation span without slipstream.runtime_duration")
			}
			if spanNamed(mm.spans, spanPostRuntime) != nil {
				t.Error("a postRuntime span before the report")
			}

			mm.consume(evs[len(evs)-1])
			if n := len(serverSpans(mm.spans)); n != 1 {
				t.Fatalf("after the report: %d invocation spans, want 1", n)
			}
			pr := spanNamed(mm.spans, spanPostRuntime)
			if pr == nil {
				t.Fatal("no postRuntime span after the report")
			}
			if pr.SpanContext().TraceID() != inv.SpanContext().TraceID() || pr.Parent().SpanID() != inv.Parent().SpanID() {
				t.Error("postRuntime is not beside the invocation span (same trace, same parent)")
			}
			if v, _ := attrOf(pr, "faas.invocation_id"); v.AsString() != "r1" {
				t.Errorf("postRuntime faas.invocation_id = %q", v.AsString())
			}
			for _, k := range []string{"slipstream.duration", "slipstream.billed_duration", "slipstream.max_memory_used", "slipstream.memory_size"} {
				if _, ok := attrOf(pr, k); !ok {
					t.Errorf("postRuntime without %s", k)
				}
			}
			if _, ok := attrOf(pr, "slipstream.init_duration"); ok != tt.wantInit {
				t.Errorf("postRuntime has slipstream.init_duration: %v, want %v", ok, tt.wantInit)
			}
			if pr.StartTime().Before(inv.StartTime()) || !pr.EndTime().After(pr.StartTime()) {
				t.Errorf("postRuntime [%v, %v], invocation [%v, %v]", pr.StartTime(), pr.EndTime(), inv.StartTime(), inv.EndTime())
			}
			for _, k := range []string{"slipstream.billed_duration", "slipstream.max_memory_used", "slipstream.duration"} {
				if _, ok := attrOf(inv, k); ok {
					t.Errorf("invocation span carries %s: the report's figures belong to postRuntime", k)
				}
			}
			checkNesting(t, mm.spans)
		})
	}
}

// Lambda Managed Instances send no runtimeDone: the span ends at the report
// and carries its figures; there is no postRuntime span.
func TestInvocationWithoutRuntimeDoneEndsAtTheReport(t *testing.T) {
	cfg := testConfig()
	cfg.ManagedInstances = true
	mm := newMeteredMapper(t, cfg)
	evs := invocationEvents("r1", 0)
	mm.consume(evs[0], evs[2])
	srv := serverSpans(mm.spans)
	if len(srv) != 1 || !srv[0].EndTime().Equal(at(12)) {
		t.Fatalf("invocation spans %d, want 1 ending at the report", len(srv))
	}
	if _, ok := attrOf(srv[0], "slipstream.duration"); !ok {
		t.Error("invocation span without the report's slipstream.duration")
	}
	if spanNamed(mm.spans, spanPostRuntime) != nil {
		t.Error("a postRuntime span without runtimeDone")
	}
}

// The report of an invocation SHUTDOWN closed arrives late: its figures
// still reach the invocation's trace.
func TestLateReportAddsAPostRuntimeSpan(t *testing.T) {
	tests := []struct {
		name string
		evs  func([]telemetry.Event) []telemetry.Event // consumed before SHUTDOWN
	}{
		{"runtimeDone came before SHUTDOWN", func(e []telemetry.Event) []telemetry.Event { return e[:2] }},
		{"neither runtimeDone nor report came before SHUTDOWN", func(e []telemetry.Event) []telemetry.Event { return e[:1] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := newMeteredMapper(t, testConfig())
			evs := invocationEvents("r1", 0)
			mm.consume(tt.evs(evs)...)
			mm.Shutdown("spindown", at(500))
			mm.consume(evs[2])
			if n := len(serverSpans(mm.spans)); n != 1 {
				t.Errorf("%d invocation spans, want 1", n)
			}
			pr := spanNamed(mm.spans, spanPostRuntime)
			if pr == nil {
				t.Fatal("no postRuntime span for the late report")
			}
			inv := serverSpans(mm.spans)[0]
			if pr.SpanContext().TraceID() != inv.SpanContext().TraceID() || pr.Parent().SpanID() != inv.Parent().SpanID() {
				t.Error("postRuntime of the late report is not beside the invocation span")
			}
			if _, ok := attrOf(pr, "slipstream.billed_duration"); !ok {
				t.Error("postRuntime without the late report's figures")
			}
		})
	}
}
