package signals

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// meteredMapper is a mapper recording spans, with a manual reader for its
// metrics.
type meteredMapper struct {
	*Mapper
	spans  []sdktrace.ReadOnlySpan
	reader *sdkmetric.ManualReader
}

func newMeteredMapper(t *testing.T, cfg *config.Config) *meteredMapper {
	t.Helper()
	mm := &meteredMapper{reader: sdkmetric.NewManualReader()}
	m, err := NewMapper(MapperOptions{
		Config: cfg, AccountID: "123456789012",
		Spans: func(_ Phase, s []sdktrace.ReadOnlySpan) { mm.spans = append(mm.spans, s...) },
		Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(mm.reader)),
		Now:   func() time.Time { return fixedNow }, Rand: detRand(), Arch: "arm64",
	})
	if err != nil {
		t.Fatal(err)
	}
	mm.Mapper = m
	return mm
}

// sum returns the total of a counter, or the count of a histogram.
func (mm *meteredMapper) sum(t *testing.T, name string) float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := mm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					n += float64(dp.Value)
				}
			case metricdata.Sum[float64]:
				for _, dp := range d.DataPoints {
					n += dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					n += float64(dp.Count)
				}
			case metricdata.Histogram[int64]:
				for _, dp := range d.DataPoints {
					n += float64(dp.Count)
				}
			}
		}
	}
	return n
}

func (mm *meteredMapper) consume(evs ...telemetry.Event) {
	for _, ev := range evs {
		mm.Consume(ev)
	}
}

// serverSpans returns the invocation spans (the postRuntime spans carry
// faas.invocation_id too).
func serverSpans(spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if _, ok := attrOf(s, "faas.invocation_id"); ok && s.SpanKind() == trace.SpanKindServer {
			out = append(out, s)
		}
	}
	return out
}

func i64(v int64) *int64                       { return &v }
func f64(v float64) *float64                   { return &v }
func boolAttr(v attribute.Value, ok bool) bool { return ok && v.AsBool() }

// invocationEvents is one complete warm invocation.
func invocationEvents(id string, t0 int) []telemetry.Event {
	tr := &telemetry.Tracing{Type: "X-Amzn-Trace-Id", Value: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}
	return []telemetry.Event{
		{Time: at(t0), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: id, Version: "$LATEST", Tracing: tr}},
		{Time: at(t0 + 10), Type: telemetry.TypeRuntimeDone, Record: &telemetry.RuntimeDone{RequestID: id, Status: telemetry.StatusSuccess,
			Metrics: &telemetry.RuntimeDoneMetrics{DurationMs: 10, ProducedBytes: i64(5)}}},
		{Time: at(t0 + 12), Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: id, Status: telemetry.StatusSuccess,
			Metrics: telemetry.ReportMetrics{DurationMs: 12, BilledDurationMs: i64(12), MemorySizeMB: i64(128), MaxMemoryUsedMB: i64(40)}}},
	}
}

// Lambda resends a batch whose POST was not answered 2xx (a freeze
// mid-POST, a slow listener): the same events then arrive twice.
func TestDuplicateDeliveriesAreNotCountedTwice(t *testing.T) {
	tests := []struct {
		name  string
		batch func() []telemetry.Event
		want  float64 // invocations
	}{
		{"a batch delivered twice after its report", func() []telemetry.Event {
			evs := invocationEvents("r1", 0)
			return append(evs, evs...)
		}, 1},
		{"runtimeDone delivered twice before the report", func() []telemetry.Event {
			evs := invocationEvents("r1", 0)
			return []telemetry.Event{evs[0], evs[1], evs[0], evs[1], evs[2]}
		}, 1},
		{"the report delivered again with the next invocation", func() []telemetry.Event {
			evs := invocationEvents("r1", 0)
			return append(evs, append([]telemetry.Event{evs[2]}, invocationEvents("r2", 100)...)...)
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := newMeteredMapper(t, testConfig())
			mm.consume(tt.batch()...)
			mm.Shutdown("spindown", at(5000))
			want := tt.want
			for _, name := range []string{"faas.invocations", "faas.invoke_duration", "slipstream.billed_duration", "slipstream.response_size", "slipstream.estimated_cost"} {
				got := mm.sum(t, name)
				if name == "slipstream.estimated_cost" {
					got = float64(int(got/priceARM.cost(12, 128) + 0.5))
				}
				if got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			if got := mm.sum(t, "faas.errors"); got != 0 {
				t.Errorf("faas.errors = %v, want 0 (no phantom invocation closed at SHUTDOWN)", got)
			}
			if got := len(serverSpans(mm.spans)); float64(got) != want {
				t.Errorf("%d invocation spans, want %v", got, want)
			}
		})
	}
}

func TestDuplicateInitAndLogsDroppedAreNotCountedTwice(t *testing.T) {
	mm := newMeteredMapper(t, testConfig())
	initEvs := []telemetry.Event{
		{Time: at(0), Type: telemetry.TypeInitStart, Record: &telemetry.InitStart{InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInit}},
		{Time: at(50), Type: telemetry.TypeInitRuntimeDone, Record: &telemetry.InitRuntimeDone{InitializationType: telemetry.InitOnDemand, Status: telemetry.StatusSuccess}},
		{Time: at(51), Type: telemetry.TypeInitReport, Record: &telemetry.InitReport{InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInit,
			Status: telemetry.StatusSuccess, Metrics: telemetry.DurationMetrics{DurationMs: 51}}},
		{Time: at(52), Type: telemetry.TypeLogsDropped, Record: &telemetry.LogsDropped{DroppedRecords: 3, DroppedBytes: 300, Reason: "slower"}},
	}
	mm.consume(initEvs...)
	mm.consume(initEvs...)
	evs := invocationEvents("r1", 100)
	evs[2].Record.(*telemetry.Report).Metrics.InitDurationMs = f64(51)
	mm.consume(evs...)
	if got := mm.sum(t, "faas.init_duration"); got != 1 {
		t.Errorf("faas.init_duration count = %v, want 1", got)
	}
	if got := mm.sum(t, "slipstream.logs_dropped.records"); got != 3 {
		t.Errorf("slipstream.logs_dropped.records = %v, want 3", got)
	}
	inits := 0
	for _, s := range mm.spans {
		if s.Name() == spanInit {
			inits++
		}
	}
	if inits != 1 {
		t.Errorf("%d init spans, want 1", inits)
	}
}

// suppressedInit is the init Lambda re-runs inside an invocation after a
// reset (a crash or a timeout): phase "invoke".
func suppressedInit(t0 int) []telemetry.Event {
	return []telemetry.Event{
		{Time: at(t0), Type: telemetry.TypeInitStart, Record: &telemetry.InitStart{InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInvoke}},
		{Time: at(t0 + 40), Type: telemetry.TypeInitRuntimeDone, Record: &telemetry.InitRuntimeDone{InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInvoke, Status: telemetry.StatusSuccess}},
		{Time: at(t0 + 41), Type: telemetry.TypeInitReport, Record: &telemetry.InitReport{InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInvoke,
			Status: telemetry.StatusSuccess, Metrics: telemetry.DurationMetrics{DurationMs: 41}}},
	}
}

// After a reset the next invocation runs a suppressed init (phase
// "invoke") that delays it: it is a cold start (faas.coldstart: the
// function's code runs for the first time in a new runtime process) and
// the init span belongs in its trace, although its report carries no
// initDurationMs (the emulator sends none; Lambda bills the init inside
// the invocation's duration).
func TestSuppressedInitMakesTheInvocationAColdStart(t *testing.T) {
	tests := []struct {
		name  string
		flush config.FlushMode
		evs   func() []telemetry.Event
	}{
		{"init before platform.start (the emulator's order)", config.FlushAdaptive, func() []telemetry.Event {
			return append(suppressedInit(0), invocationEvents("r1", 100)...)
		}},
		{"init after platform.start, inside the invocation", config.FlushAdaptive, func() []telemetry.Event {
			inv := invocationEvents("r1", 0)
			return append(append([]telemetry.Event{inv[0]}, suppressedInit(1)...), inv[1:]...)
		}},
		{"in end mode, where the span leaves at runtimeDone", config.FlushEnd, func() []telemetry.Event {
			return append(suppressedInit(0), invocationEvents("r1", 100)...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Flush = tt.flush
			mm := newMeteredMapper(t, cfg)
			mm.consume(tt.evs()...)
			mm.consume(invocationEvents("r2", 1000)...)
			srv := serverSpans(mm.spans)
			if len(srv) != 2 {
				t.Fatalf("%d invocation spans, want 2", len(srv))
			}
			if !boolAttr(attrOf(srv[0], "faas.coldstart")) {
				t.Error("the invocation delayed by the suppressed init: faas.coldstart = false, want true")
			}
			if boolAttr(attrOf(srv[1], "faas.coldstart")) {
				t.Error("the next invocation: faas.coldstart = true, want false")
			}
			if got := mm.sum(t, "faas.coldstarts"); got != 1 {
				t.Errorf("faas.coldstarts = %v, want 1", got)
			}
			var initSpan sdktrace.ReadOnlySpan
			for _, s := range mm.spans {
				if s.Name() == spanInit {
					initSpan = s
				}
			}
			if initSpan == nil {
				t.Fatal("no init span")
			}
			if initSpan.SpanContext().TraceID() != srv[0].SpanContext().TraceID() || initSpan.Parent().SpanID() != srv[0].Parent().SpanID() {
				t.Error("the init span is not beside the invocation it delayed (same trace, same parent)")
			}
		})
	}
}

// Odd input never panics the mapper: events kept raw, zero times, huge
// JSON fields. (Typed nil records cannot come: the decoder never makes one,
// which its fuzz target checks.)
func TestOddInputDoesNotPanic(t *testing.T) {
	huge := json.RawMessage(`"` + strings.Repeat("x", 1<<20) + `"`)
	bigObj := json.RawMessage(`{"a":[` + strings.Repeat(`1,`, 1<<16) + `1]}`)
	fields := map[string]json.RawMessage{"huge": huge, "obj": bigObj, "null": json.RawMessage(`null`), "empty": nil, "bad": json.RawMessage(`tru`)}
	for i := range 100 {
		fields["k"+strconv.Itoa(i)] = json.RawMessage(`1`)
	}
	evs := []telemetry.Event{
		{Time: at(0), Type: "platform.future", Raw: json.RawMessage(`{"x":1}`)},
		{Time: at(0), Type: telemetry.TypeStart},
		{Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: "z"}},
		{Type: telemetry.TypeRuntimeDone, Record: &telemetry.RuntimeDone{RequestID: "z", Spans: []telemetry.Span{{Name: "responseLatency"}}}},
		{Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: "z", Spans: []telemetry.Span{{Name: "x", DurationMs: 1e300}}}},
		{Time: at(1), Type: telemetry.TypeFunction, Record: &telemetry.Log{JSON: true, Fields: fields, Message: string(huge)}},
		{Time: at(1), Type: telemetry.TypeFunction, Record: &telemetry.Log{JSON: true}},
		{Time: at(1), Type: telemetry.TypeFunction, Record: &telemetry.Log{}},
		{Time: at(1), Type: telemetry.TypeExtensionLog, Record: &telemetry.Log{Text: "\t"}},
		{Time: at(2), Type: telemetry.TypeReport, Record: &telemetry.Report{}},
		{Time: at(2), Type: telemetry.TypeInitReport, Record: &telemetry.InitReport{}},
		{Time: at(2), Type: telemetry.TypeRestoreReport, Record: &telemetry.RestoreReport{}},
		{Time: at(2), Type: telemetry.TypeLogsDropped, Record: &telemetry.LogsDropped{}},
	}
	for _, platformLogs := range []bool{false, true} {
		cfg := testConfig()
		cfg.PlatformLogs = platformLogs
		lc := &logCollector{}
		m, err := NewMapper(MapperOptions{Config: cfg, Logs: lc, Spans: func(Phase, []sdktrace.ReadOnlySpan) {}})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("platform logs %v: Consume(%s %T) panicked: %v", platformLogs, ev.Type, ev.Record, p)
					}
				}()
				m.Consume(ev)
			}()
		}
		m.Shutdown("spindown", at(10))
		for _, r := range lc.recs {
			if r.Timestamp().IsZero() {
				t.Errorf("log record with a zero timestamp: %q", r.Body().AsString())
			}
		}
	}
}

// The last invocation's report may arrive after SHUTDOWN closed the
// invocation (after the bounded wait): it adds the report's figures but
// neither a second span nor a second outcome.
func TestReportAfterShutdownIsNotASecondInvocation(t *testing.T) {
	mm := newMeteredMapper(t, testConfig())
	evs := invocationEvents("r1", 0)
	mm.consume(evs[0], evs[1])
	mm.Shutdown("spindown", at(500))
	mm.consume(evs[2])
	if got := len(serverSpans(mm.spans)); got != 1 {
		t.Errorf("%d invocation spans, want 1", got)
	}
	if got := mm.sum(t, "faas.invocations"); got != 1 {
		t.Errorf("faas.invocations = %v, want 1", got)
	}
	if got := mm.sum(t, "faas.invoke_duration"); got != 1 {
		t.Errorf("faas.invoke_duration count = %v, want 1", got)
	}
	if got := mm.sum(t, "slipstream.billed_duration"); got != 1 {
		t.Errorf("slipstream.billed_duration count = %v, want 1 (the late report's figures)", got)
	}
	if mm.OpenInvocations() != 0 {
		t.Errorf("open = %d, want 0", mm.OpenInvocations())
	}
}

// Lambda retries a failed asynchronous invocation with the same request
// ID: new events (new times) are a new invocation, not a duplicate.
func TestRetriedAsyncInvocationWithTheSameRequestIDCounts(t *testing.T) {
	mm := newMeteredMapper(t, testConfig())
	mm.consume(invocationEvents("same-id", 0)...)
	mm.consume(invocationEvents("same-id", 60000)...)
	if got := mm.sum(t, "faas.invocations"); got != 2 {
		t.Errorf("faas.invocations = %v, want 2", got)
	}
	if got := len(serverSpans(mm.spans)); got != 2 {
		t.Errorf("%d invocation spans, want 2", got)
	}
}

func TestConsumeContextSetsTheResourceWithoutAnInitSpan(t *testing.T) {
	mm := newMeteredMapper(t, testConfig())
	mm.ConsumeContext(telemetry.Event{Time: at(0), Type: telemetry.TypeInitStart, Record: &telemetry.InitStart{
		InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInit, InstanceID: "2026/11/26/[$LATEST]abc"}})
	mm.consume(invocationEvents("r1", 100)...)
	mm.Shutdown("spindown", at(500))
	if v, ok := mm.Resource().Set().Value("faas.instance"); !ok || v.AsString() != "2026/11/26/[$LATEST]abc" {
		t.Errorf("faas.instance = %q (present %v)", v.AsString(), ok)
	}
	for _, s := range mm.spans {
		if s.Name() == spanInit {
			t.Error("ConsumeContext produced an init span")
		}
	}
	if got := len(serverSpans(mm.spans)); got != 1 {
		t.Errorf("%d invocation spans, want 1", got)
	}
}
