package signals

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// sumWhere returns the total of a counter's data points whose attributes
// include every key and value of attrs.
func (mm *meteredMapper) sumWhere(t *testing.T, name string, attrs map[string]string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := mm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			d, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != name || !ok {
				continue
			}
		points:
			for _, dp := range d.DataPoints {
				for k, v := range attrs {
					if got, ok := dp.Attributes.Value(attribute.Key(k)); !ok || got.AsString() != v {
						continue points
					}
				}
				n += dp.Value
			}
		}
	}
	return n
}

// spanNamed returns the first span with the name, or nil.
func spanNamed(spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// initEvents is an init of the given type from t0 to t0+dur (ms).
func initEvents(typ telemetry.InitType, t0, dur int) []telemetry.Event {
	return []telemetry.Event{
		{Time: at(t0), Type: telemetry.TypeInitStart, Record: &telemetry.InitStart{InitializationType: typ, Phase: telemetry.PhaseInit}},
		{Time: at(t0 + dur - 1), Type: telemetry.TypeInitRuntimeDone, Record: &telemetry.InitRuntimeDone{InitializationType: typ, Phase: telemetry.PhaseInit, Status: telemetry.StatusSuccess}},
		{Time: at(t0 + dur), Type: telemetry.TypeInitReport, Record: &telemetry.InitReport{InitializationType: typ, Phase: telemetry.PhaseInit,
			Status: telemetry.StatusSuccess, Metrics: telemetry.DurationMetrics{DurationMs: float64(dur)}}},
	}
}

// restoreEvents is a SnapStart restore from t0 to t0+dur (ms).
func restoreEvents(t0, dur int) []telemetry.Event {
	return []telemetry.Event{
		{Time: at(t0), Type: telemetry.TypeRestoreStart, Record: &telemetry.RestoreStart{RuntimeVersion: "java:21.v12"}},
		{Time: at(t0 + dur), Type: telemetry.TypeRestoreReport, Record: &telemetry.RestoreReport{Status: telemetry.StatusSuccess,
			Metrics: telemetry.DurationMetrics{DurationMs: float64(dur)}}},
	}
}

// withInitDuration sets the report's initDurationMs, as Lambda does on the
// first invocation after an init.
func withInitDuration(evs []telemetry.Event, ms float64) []telemetry.Event {
	evs[len(evs)-1].Record.(*telemetry.Report).Metrics.InitDurationMs = &ms
	return evs
}

// A cold start is an init or restore that delayed the invocation, decided
// from the lifecycle the same way whether the agent waits for the
// invocation (end mode, adaptive's first invocation) or not: the mapper
// has no flush mode to read.
func TestColdStartIsDecidedFromTheLifecycleInEveryFlushMode(t *testing.T) {
	tests := []struct {
		name        string
		cfg         func(*config.Config)
		evs         func() []telemetry.Event
		wantCold    bool
		wantPhase   string // span name of the phase, "" for none
		wantPrewarm string // slipstream.prewarm on the phase span, "" for none
	}{
		{"an on-demand init just before the first invocation is a cold start", nil, func() []telemetry.Event {
			return append(initEvents(telemetry.InitOnDemand, 0, 300), withInitDuration(invocationEvents("r1", 310), 300)...)
		}, true, spanInit, ""},
		{"an on-demand init that ended 30 s before the first invocation is proactive, not a cold start", nil, func() []telemetry.Event {
			return append(initEvents(telemetry.InitOnDemand, 0, 300), withInitDuration(invocationEvents("r1", 30300), 300)...)
		}, false, spanInit, prewarmProactive},
		{"a gap of exactly the threshold still delayed the invocation", nil, func() []telemetry.Event {
			return append(initEvents(telemetry.InitOnDemand, 0, 300), invocationEvents("r1", 10300)...)
		}, true, spanInit, ""},
		{"the threshold is SLIPSTREAM_PROACTIVE_INIT_THRESHOLD", func(c *config.Config) { c.ProactiveInitThreshold = time.Minute }, func() []telemetry.Event {
			return append(initEvents(telemetry.InitOnDemand, 0, 300), invocationEvents("r1", 30300)...)
		}, true, spanInit, ""},
		{"a provisioned-concurrency init is not a cold start", nil, func() []telemetry.Event {
			return append(initEvents(telemetry.InitProvisionedConcurrency, 0, 800), invocationEvents("r1", 900)...)
		}, false, spanInit, prewarmProvisioned},
		{"an init without initializationType in a provisioned-concurrency environment is not a cold start",
			func(c *config.Config) { c.InitType = string(telemetry.InitProvisionedConcurrency) }, func() []telemetry.Event {
				return append(initEvents("", 0, 800), invocationEvents("r1", 900)...)
			}, false, spanInit, prewarmProvisioned},
		{"a report's initDurationMs alone does not make a cold start", nil, func() []telemetry.Event {
			return withInitDuration(invocationEvents("r1", 0), 250)
		}, false, "", ""},
		{"a SnapStart restore just before the invocation is a cold start", func(c *config.Config) { c.InitType = string(telemetry.InitSnapStart) }, func() []telemetry.Event {
			return append(restoreEvents(0, 250), invocationEvents("r1", 280)...)
		}, true, spanRestore, ""},
	}
	for _, tt := range tests {
		for _, flush := range []config.FlushMode{config.FlushAsync, config.FlushEnd} {
			name := tt.name + " (" + string(flush) + ")"
			t.Run(name, func(t *testing.T) {
				cfg := testConfig()
				cfg.Flush = flush
				if tt.cfg != nil {
					tt.cfg(cfg)
				}
				mm := newMeteredMapper(t, cfg)
				mm.Invoke(Invocation{RequestID: "r1"})
				mm.consume(tt.evs()...)
				mm.consume(invocationEvents("r2", 60000)...)
				srv := serverSpans(mm.spans)
				if len(srv) != 2 {
					t.Fatalf("%d invocation spans, want 2", len(srv))
				}
				if got := boolAttr(attrOf(srv[0], "faas.coldstart")); got != tt.wantCold {
					t.Errorf("first invocation: faas.coldstart = %v, want %v", got, tt.wantCold)
				}
				if boolAttr(attrOf(srv[1], "faas.coldstart")) {
					t.Error("second invocation: faas.coldstart = true")
				}
				wantN := 0.0
				if tt.wantCold {
					wantN = 1
				}
				if got := mm.sum(t, "faas.coldstarts"); got != wantN {
					t.Errorf("faas.coldstarts = %v, want %v", got, wantN)
				}
				if tt.wantPhase == "" {
					return
				}
				ph := spanNamed(mm.spans, tt.wantPhase)
				if ph == nil {
					t.Fatalf("no %s span", tt.wantPhase)
				}
				if v, ok := attrOf(ph, "faas.coldstart"); !ok || v.AsBool() != tt.wantCold {
					t.Errorf("%s span: faas.coldstart = %v (present %v), want %v", tt.wantPhase, v.AsBool(), ok, tt.wantCold)
				}
				v, _ := attrOf(ph, string(attrPrewarm))
				if v.AsString() != tt.wantPrewarm {
					t.Errorf("%s span: slipstream.prewarm = %q, want %q", tt.wantPhase, v.AsString(), tt.wantPrewarm)
				}
				inv := srv[0]
				if tt.wantCold {
					// Beside the invocation it delayed: same trace, same parent.
					if ph.SpanContext().TraceID() != inv.SpanContext().TraceID() || ph.Parent().SpanID() != inv.Parent().SpanID() {
						t.Errorf("%s span is not beside the invocation span (trace %s parent %s, want %s %s)", tt.wantPhase,
							ph.SpanContext().TraceID(), ph.Parent().SpanID(), inv.SpanContext().TraceID(), inv.Parent().SpanID())
					}
					return
				}
				if ph.SpanContext().TraceID() == inv.SpanContext().TraceID() {
					t.Errorf("%s span that delayed nothing is in the invocation's trace", tt.wantPhase)
				}
				linked := false
				for _, l := range inv.Links() {
					linked = linked || l.SpanContext.SpanID() == ph.SpanContext().SpanID()
				}
				if !linked {
					t.Errorf("the first invocation span does not link the %s span", tt.wantPhase)
				}
				if got := mm.sumWhere(t, metricPrewarmInits, map[string]string{string(attrPrewarm): tt.wantPrewarm}); got != 1 {
					t.Errorf("%s{%s} = %d, want 1", metricPrewarmInits, tt.wantPrewarm, got)
				}
			})
		}
	}
}

// An on-demand init that no invocation followed is proactive when
// SHUTDOWN comes long after it.
func TestInitWithoutInvocationIsProactiveWhenLongBeforeShutdown(t *testing.T) {
	tests := []struct {
		name       string
		shutdownMs int
		want       int64
	}{
		{"shutdown 5 minutes after the init", 300000, 1},
		{"shutdown 1 s after the init", 1300, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := newMeteredMapper(t, testConfig())
			mm.consume(initEvents(telemetry.InitOnDemand, 0, 300)...)
			mm.Shutdown("spindown", at(tt.shutdownMs))
			if got := mm.sumWhere(t, metricPrewarmInits, map[string]string{string(attrPrewarm): prewarmProactive}); got != tt.want {
				t.Errorf("%s{proactive} = %d, want %d", metricPrewarmInits, got, tt.want)
			}
			ph := spanNamed(mm.spans, spanInit)
			if ph == nil {
				t.Fatal("no init span")
			}
			_, marked := attrOf(ph, string(attrPrewarm))
			if marked != (tt.want == 1) {
				t.Errorf("init span marked %v, want %v", marked, tt.want == 1)
			}
			if ph.Status().Code != codes.Unset {
				t.Errorf("init span status %v", ph.Status())
			}
		})
	}
}
