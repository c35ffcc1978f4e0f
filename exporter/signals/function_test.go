package signals

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/telemetry"
)

const (
	fnHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	fnTrace  = "5759e988bd862e3fe1be46a994272793"
)

func TestFunctionParent(t *testing.T) {
	tid, _ := trace.TraceIDFromHex(fnTrace)
	start := func(spanID string) telemetry.Event {
		return telemetry.Event{Time: at(0), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: "r1",
			Tracing: &telemetry.Tracing{SpanID: spanID, Type: "X-Amzn-Trace-Id", Value: fnHeader}}}
	}
	t.Run("after platform.start: the span is tracing.spanId, the parent the X-Ray Parent", func(t *testing.T) {
		var spans []sdktrace.ReadOnlySpan
		m := newTestMapper(t, testConfig(), &spans)
		m.Invoke(Invocation{RequestID: "r1", TraceHeader: fnHeader})
		m.Consume(start("24cd7d670fa455f0"))
		sc, parent, ok := m.FunctionParent(tid)
		if !ok || sc.SpanID().String() != "24cd7d670fa455f0" || parent.String() != "53995c3f42cd8ad8" {
			t.Errorf("ok %v span %s parent %s", ok, sc.SpanID(), parent)
		}
	})
	t.Run("before platform.start the answer pins the span ID the invocation span keeps", func(t *testing.T) {
		var spans []sdktrace.ReadOnlySpan
		m := newTestMapper(t, testConfig(), &spans)
		m.Invoke(Invocation{RequestID: "r1", TraceHeader: fnHeader})
		sc, _, ok := m.FunctionParent(tid)
		if !ok {
			t.Fatal("no invocation for the INVOKE's trace")
		}
		m.Consume(start("24cd7d670fa455f0"))
		m.Consume(telemetry.Event{Time: at(10), Type: telemetry.TypeRuntimeDone, Record: &telemetry.RuntimeDone{RequestID: "r1", Status: telemetry.StatusSuccess}})
		m.Consume(telemetry.Event{Time: at(12), Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: "r1", Status: telemetry.StatusSuccess}})
		if srv := serverSpans(spans); len(srv) != 1 || srv[0].SpanContext().SpanID() != sc.SpanID() {
			t.Fatalf("invocation spans %v, want one with span ID %s", srv, sc.SpanID())
		}
		t.Run("and a finished invocation is still found by trace and by request ID", func(t *testing.T) {
			if got, _, ok := m.FunctionParent(tid); !ok || got.SpanID() != sc.SpanID() {
				t.Errorf("by trace: ok %v span %s", ok, got.SpanID())
			}
			if got, ok := m.InvocationSpan("r1"); !ok || got.SpanID() != sc.SpanID() {
				t.Errorf("by request ID: ok %v span %s", ok, got.SpanID())
			}
		})
	})
	t.Run("another trace is not found", func(t *testing.T) {
		var spans []sdktrace.ReadOnlySpan
		m := newTestMapper(t, testConfig(), &spans)
		m.Invoke(Invocation{RequestID: "r1", TraceHeader: fnHeader})
		other, _ := trace.TraceIDFromHex("0102030405060708090a0b0c0d0e0f10")
		if _, _, ok := m.FunctionParent(other); ok {
			t.Error("found")
		}
		if _, ok := m.InvocationSpan("unknown"); ok {
			t.Error("unknown request ID found")
		}
	})
}
