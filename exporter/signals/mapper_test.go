package signals

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// newTestMapper returns a mapper recording spans into *spans.
func newTestMapper(t testing.TB, cfg *config.Config, spans *[]sdktrace.ReadOnlySpan) *Mapper {
	t.Helper()
	m, err := NewMapper(MapperOptions{
		Config: cfg, AccountID: "123456789012",
		Spans: func(_ Phase, s []sdktrace.ReadOnlySpan) { *spans = append(*spans, s...) },
		Now:   func() time.Time { return fixedNow }, Rand: detRand(), Arch: "arm64",
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func at(ms int) time.Time {
	return time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
}

func attrOf(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestNewMapperNeedsConfig(t *testing.T) {
	if _, err := NewMapper(MapperOptions{}); err == nil {
		t.Fatal("NewMapper without Config: want an error")
	}
}

func TestInvocationLifecycleAPI(t *testing.T) {
	var spans []sdktrace.ReadOnlySpan
	m := newTestMapper(t, testConfig(), &spans)
	const id = "req-1"
	m.Invoke(Invocation{RequestID: id, InvokedARN: "arn:aws:lambda:us-east-1:123456789012:function:f:live",
		TraceHeader: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"})
	if m.OpenInvocations() != 1 || m.RuntimeDone(id) {
		t.Fatalf("after INVOKE: open %d, runtimeDone %v", m.OpenInvocations(), m.RuntimeDone(id))
	}
	m.Consume(telemetry.Event{Time: at(0), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: id, Version: "4"}})
	m.Consume(telemetry.Event{Time: at(10), Type: telemetry.TypeRuntimeDone, Record: &telemetry.RuntimeDone{RequestID: id, Status: telemetry.StatusSuccess}})
	if !m.RuntimeDone(id) || m.OpenInvocations() != 1 {
		t.Fatalf("after runtimeDone: open %d, runtimeDone %v", m.OpenInvocations(), m.RuntimeDone(id))
	}
	m.Consume(telemetry.Event{Time: at(12), Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: id, Status: telemetry.StatusSuccess}})
	if !m.RuntimeDone(id) || m.OpenInvocations() != 0 {
		t.Fatalf("after report: open %d, runtimeDone %v", m.OpenInvocations(), m.RuntimeDone(id))
	}
	if len(spans) != 2 || spans[1].Name() != spanPostRuntime {
		t.Fatalf("got %d spans, want the invocation span and postRuntime", len(spans))
	}
	s := spans[0]
	if got := s.SpanContext().TraceID().String(); got != "5759e988bd862e3fe1be46a994272793" {
		t.Errorf("trace ID from the INVOKE header = %s", got)
	}
	if got := s.Parent().SpanID().String(); got != "53995c3f42cd8ad8" {
		t.Errorf("parent = %s", got)
	}
	if v, _ := attrOf(s, "cloud.resource_id"); v.AsString() != "arn:aws:lambda:us-east-1:123456789012:function:f:4" {
		t.Errorf("cloud.resource_id = %q", v.AsString())
	}
	if !s.StartTime().Equal(at(0)) || !s.EndTime().Equal(at(10)) {
		t.Errorf("span %v..%v, want start..runtimeDone", s.StartTime(), s.EndTime())
	}
	if pr := spans[1]; pr.Parent().SpanID() != s.Parent().SpanID() || pr.SpanContext().TraceID() != s.SpanContext().TraceID() {
		t.Errorf("postRuntime: parent %v, want the invocation span's parent %v, in its trace", pr.Parent().SpanID(), s.Parent().SpanID())
	}
	if m.RuntimeDone("never-seen") {
		t.Error("RuntimeDone of an unknown request ID")
	}
}

func TestShutdownClosesOpenInvocations(t *testing.T) {
	tests := []struct {
		name       string
		reason     string
		runtimeEnd bool
		wantCode   codes.Code
		wantEnd    time.Time
		wantOOM    bool
	}{
		{"an invocation still running gets status Error and error.type = reason", "spindown", false, codes.Error, at(5000), false},
		{"a failure shutdown while running counts as out of memory", "FAILURE", false, codes.Error, at(5000), true},
		{"an invocation whose runtime finished closes at runtimeDone with its status", "failure", true, codes.Unset, at(10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spans []sdktrace.ReadOnlySpan
			m := newTestMapper(t, testConfig(), &spans)
			m.Consume(telemetry.Event{Time: at(0), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: "r"}})
			if tt.runtimeEnd {
				m.Consume(telemetry.Event{Time: at(10), Type: telemetry.TypeRuntimeDone, Record: &telemetry.RuntimeDone{RequestID: "r", Status: telemetry.StatusSuccess}})
			}
			m.Invoke(Invocation{RequestID: "never-started"})
			m.Shutdown(tt.reason, at(5000))
			if m.OpenInvocations() != 0 || len(spans) != 2 {
				t.Fatalf("open %d, spans %d; want 0 and 2", m.OpenInvocations(), len(spans))
			}
			s := spans[0]
			if s.Status().Code != tt.wantCode || !s.EndTime().Equal(tt.wantEnd) {
				t.Errorf("status %v end %v, want %v %v", s.Status().Code, s.EndTime(), tt.wantCode, tt.wantEnd)
			}
			if tt.wantCode == codes.Error {
				if v, _ := attrOf(s, "error.type"); v.AsString() != tt.reason {
					t.Errorf("error.type = %q, want %q", v.AsString(), tt.reason)
				}
			}
			if _, oom := attrOf(s, "slipstream.out_of_memory"); oom != tt.wantOOM {
				t.Errorf("out_of_memory = %v, want %v", oom, tt.wantOOM)
			}
			// The INVOKE-only invocation starts when the INVOKE was seen.
			if !spans[1].StartTime().Equal(fixedNow) {
				t.Errorf("INVOKE-only span starts %v", spans[1].StartTime())
			}
		})
	}
}

func TestOpenInvocationsAreBounded(t *testing.T) {
	var spans []sdktrace.ReadOnlySpan
	m := newTestMapper(t, testConfig(), &spans)
	for i := 0; i < maxOpenInvocations+10; i++ {
		m.Invoke(Invocation{RequestID: string(rune('a'+i%26)) + time.Duration(i).String()})
	}
	if got := m.OpenInvocations(); got != maxOpenInvocations {
		t.Errorf("open = %d, want %d", got, maxOpenInvocations)
	}
}

func TestResource(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*config.Config)
		key  string
		want string
	}{
		{"service.name defaults to the function name", nil, "service.name", "my-function"},
		{"OTEL_RESOURCE_ATTRIBUTES service.name beats the function name",
			func(c *config.Config) { c.ResourceAttributes["service.name"] = "from-attrs" }, "service.name", "from-attrs"},
		{"OTEL_SERVICE_NAME beats OTEL_RESOURCE_ATTRIBUTES",
			func(c *config.Config) { c.ResourceAttributes["service.name"] = "from-attrs"; c.ServiceName = "svc" }, "service.name", "svc"},
		{"OTEL_RESOURCE_ATTRIBUTES overrides detected attributes",
			func(c *config.Config) { c.ResourceAttributes["cloud.region"] = "eu-west-1" }, "cloud.region", "eu-west-1"},
		{"host.arch is the semantic-convention value", nil, "host.arch", "arm64"},
		{"the log group defaults to /aws/lambda/<function>", nil, "aws.log.group.names", `["/aws/lambda/my-function"]`},
		{"SLIPSTREAM_LOG_GROUP sets the log group", func(c *config.Config) { c.LogGroup = "/custom" }, "aws.log.group.names", `["/custom"]`},
		{"faas.max_memory is in bytes", nil, "faas.max_memory", "134217728"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			var spans []sdktrace.ReadOnlySpan
			m := newTestMapper(t, cfg, &spans)
			v, ok := m.Resource().Set().Value(attribute.Key(tt.key))
			if !ok || v.String() != tt.want {
				t.Errorf("%s = %q (present %v), want %q", tt.key, v.String(), ok, tt.want)
			}
		})
	}
}

func TestResourceGainsInstanceAfterInitStart(t *testing.T) {
	var spans []sdktrace.ReadOnlySpan
	m := newTestMapper(t, testConfig(), &spans)
	for _, k := range []attribute.Key{"faas.instance", "service.instance.id", "aws.log.stream.names"} {
		if v, ok := m.Resource().Set().Value(k); ok {
			t.Errorf("%s = %q before initStart, want none", k, v.String())
		}
	}
	m.Consume(telemetry.Event{Time: at(0), Type: telemetry.TypeInitStart, Record: &telemetry.InitStart{
		InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInit, InstanceID: "2026/11/26/[$LATEST]abc"}})
	if v, _ := m.Resource().Set().Value("faas.instance"); v.AsString() != "2026/11/26/[$LATEST]abc" {
		t.Errorf("faas.instance = %q", v.AsString())
	}
	if v, _ := m.Resource().Set().Value("service.instance.id"); v.AsString() != "3b950cfd-d1b3-5b87-bba1-2f159e7f15a0" {
		t.Errorf("service.instance.id = %q, want the UUID v5 of the log stream name", v.AsString())
	}
	// SnapStart: a restored copy is a new environment with its own stream.
	m.Consume(telemetry.Event{Time: at(10), Type: telemetry.TypeRestoreStart, Record: &telemetry.RestoreStart{
		InstanceID: "2024/01/01/[1]0123456789abcdef0123456789abcdef"}})
	if v, _ := m.Resource().Set().Value("service.instance.id"); v.AsString() != "72b7f3ee-4caa-53cd-9384-180f6037e9bb" {
		t.Errorf("service.instance.id after restoreStart = %q, want the new stream's", v.AsString())
	}
}

// The expected values are Python's uuid.uuid5 with the semantic
// conventions' namespace 4d63009a-8d0f-11ee-aad7-4c796ed8e320.
func TestServiceInstanceID(t *testing.T) {
	tests := []struct {
		name, stream, want string
	}{
		{"a $LATEST log stream name gives its UUID v5", "2026/11/26/[$LATEST]abc", "3b950cfd-d1b3-5b87-bba1-2f159e7f15a0"},
		{"a published version's log stream name gives its UUID v5", "2024/01/01/[1]0123456789abcdef0123456789abcdef", "72b7f3ee-4caa-53cd-9384-180f6037e9bb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serviceInstanceID(tt.stream); got != tt.want {
				t.Errorf("serviceInstanceID(%q) = %s, want %s", tt.stream, got, tt.want)
			}
		})
	}
}

func TestResourceKeepsTheUsersServiceInstanceID(t *testing.T) {
	cfg := testConfig()
	cfg.ResourceAttributes["service.instance.id"] = "mine"
	var spans []sdktrace.ReadOnlySpan
	m := newTestMapper(t, cfg, &spans)
	m.Consume(telemetry.Event{Time: at(0), Type: telemetry.TypeInitStart, Record: &telemetry.InitStart{
		InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInit, InstanceID: "2026/11/26/[$LATEST]abc"}})
	if v, _ := m.Resource().Set().Value("service.instance.id"); v.AsString() != "mine" {
		t.Errorf("service.instance.id = %q, want OTEL_RESOURCE_ATTRIBUTES' value", v.AsString())
	}
}

func TestHostArch(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "x86", "arm": "arm32", "ppc64le": "ppc64"} {
		if got := hostArch(goarch); got != want {
			t.Errorf("hostArch(%q) = %q, want %q", goarch, got, want)
		}
	}
}

func TestPrice(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-15 }
	p, ok := lookupPrice("us-east-1", "amd64", 0, 0)
	if !ok || !near(p.cost(1000, 1024), 0.0000166667+0.0000002) {
		t.Errorf("1 GB-s on x86 in us-east-1 = %v (%v)", p.cost(1000, 1024), ok)
	}
	if p, ok = lookupPrice("eu-west-1", "arm64", 0, 0); !ok || !near(p.GBSecond, 0.0000133334) {
		t.Errorf("arm64 price = %v (%v)", p, ok)
	}
	if _, ok = lookupPrice("af-south-1", "amd64", 0, 0); ok {
		t.Error("a region without a table price must have none")
	}
	if p, ok = lookupPrice("af-south-1", "amd64", 0.00002, 0.0000003); !ok || p.GBSecond != 0.00002 || p.Request != 0.0000003 {
		t.Errorf("overrides = %v (%v)", p, ok)
	}
}

func TestEstimatedCostIsOmittedWherePricingDiffers(t *testing.T) {
	billed, mem := int64(100), int64(128)
	rep := &telemetry.Report{Status: telemetry.StatusSuccess, Metrics: telemetry.ReportMetrics{BilledDurationMs: &billed, MemorySizeMB: &mem}}
	tests := []struct {
		name  string
		setup func(*Mapper)
		want  bool
	}{
		{"on-demand in a priced region has a cost", func(*Mapper) {}, true},
		{"provisioned concurrency has none", func(m *Mapper) { m.initType = telemetry.InitProvisionedConcurrency }, false},
		{"Managed Instances have none", func(m *Mapper) { m.lmi = true }, false},
		{"SnapStart Python has none", func(m *Mapper) { m.restored, m.runtimeName = true, "python:3.12.v10" }, false},
		{"SnapStart .NET has none", func(m *Mapper) { m.restored, m.runtimeName = true, "dotnet:8.v20" }, false},
		{"SnapStart Java has a cost", func(m *Mapper) { m.restored, m.runtimeName = true, "java:21.v12" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spans []sdktrace.ReadOnlySpan
			m := newTestMapper(t, testConfig(), &spans)
			tt.setup(m)
			if _, ok := m.estimatedCost(rep); ok != tt.want {
				t.Errorf("cost present = %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestDropReasonClass(t *testing.T) {
	for reason, want := range map[string]string{
		"Consumer seems to have fallen behind as it has not acknowledged receipt of logs.":               dropSlowConsumer,
		"Some logs were dropped because the downstream consumer is slower than the logs production rate": dropSlowConsumer,
		"could not send events: Post \"http://127.0.0.1:4243\": connection refused":                      dropSendFailed,
		"buffer full":   dropBufferFull,
		"something new": dropOther,
	} {
		if got := dropReasonClass(reason); got != want {
			t.Errorf("dropReasonClass(%q) = %q, want %q", reason, got, want)
		}
	}
}

// discardLogs is a log processor that drops everything.
type discardLogs struct{}

func (discardLogs) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (discardLogs) OnEmit(context.Context, *sdklog.Record) error           { return nil }
func (discardLogs) Shutdown(context.Context) error                         { return nil }
func (discardLogs) ForceFlush(context.Context) error                       { return nil }

// BenchmarkMapInvocation maps one warm invocation: start, 5 log lines,
// runtimeDone and report, with an SDK MeterProvider and a LoggerProvider.
// Each iteration is a different invocation (request ID): the mapper
// ignores events delivered twice.
func BenchmarkMapInvocation(b *testing.B) {
	tr := &telemetry.Tracing{SpanID: "24cd7d670fa455f0", Type: "X-Amzn-Trace-Id",
		Value: "Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=1"}
	billed, mem, used, produced := int64(115), int64(128), int64(71), int64(42)
	spansList := []telemetry.Span{{Name: "responseLatency", Start: at(1), DurationMs: 95}, {Name: "responseDuration", Start: at(96), DurationMs: 0.5}}
	invocation := func(rid string) []telemetry.Event {
		return []telemetry.Event{
			{Time: at(0), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: rid, Version: "$LATEST", Tracing: tr}},
			{Time: at(1), Type: telemetry.TypeFunction, Record: &telemetry.Log{Text: "2026-11-26T01:00:00.001Z\t" + rid + "\tINFO\tstep one"}},
			{Time: at(2), Type: telemetry.TypeFunction, Record: &telemetry.Log{Text: "2026-11-26T01:00:00.002Z\t" + rid + "\tINFO\tstep two"}},
			{Time: at(3), Type: telemetry.TypeFunction, Record: &telemetry.Log{JSON: true, Level: "INFO", RequestID: rid, Message: "json line"}},
			{Time: at(4), Type: telemetry.TypeFunction, Record: &telemetry.Log{Text: "[WARNING] plain python line"}},
			{Time: at(5), Type: telemetry.TypeExtensionLog, Record: &telemetry.Log{Text: "extension line"}},
			{Time: at(100), Type: telemetry.TypeRuntimeDone, Record: &telemetry.RuntimeDone{RequestID: rid, Status: telemetry.StatusSuccess,
				Metrics: &telemetry.RuntimeDoneMetrics{DurationMs: 99.5, ProducedBytes: &produced}, Spans: spansList, Tracing: tr}},
			{Time: at(115), Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: rid, Status: telemetry.StatusSuccess, Tracing: tr,
				Metrics: telemetry.ReportMetrics{DurationMs: 114, BilledDurationMs: &billed, MemorySizeMB: &mem, MaxMemoryUsedMB: &used}}},
		}
	}
	// More distinct invocations than the mapper remembers (doneRing).
	invs := make([][]telemetry.Event, 4*doneRing)
	for i := range invs {
		invs[i] = invocation(fmt.Sprintf("8476a536-e9f4-11e8-9739-%012d", i))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	var nspans int
	m, err := NewMapper(MapperOptions{Config: testConfig(), Spans: func(_ Phase, s []sdktrace.ReadOnlySpan) { nspans += len(s) }, Logs: discardLogs{}, Meter: mp})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, ev := range invs[i%len(invs)] {
			m.Consume(ev)
		}
		i++
	}
	if nspans < 3*i {
		b.Fatalf("%d spans for %d invocations: events were skipped", nspans, i)
	}
}

func TestLateInvokeOfAReportedInvocationIsIgnored(t *testing.T) {
	var spans []sdktrace.ReadOnlySpan
	cfg := testConfig()
	cfg.ManagedInstances = true
	m := newTestMapper(t, cfg, &spans)
	m.Consume(telemetry.Event{Time: at(0), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: "r"}})
	m.Consume(telemetry.Event{Time: at(9), Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: "r", Status: telemetry.StatusSuccess}})
	if !m.RuntimeDone("r") {
		t.Error("RuntimeDone after a report without runtimeDone (Managed Instances): want true")
	}
	m.Invoke(Invocation{RequestID: "r"})
	if m.OpenInvocations() != 0 {
		t.Errorf("open = %d after a late INVOKE, want 0", m.OpenInvocations())
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, context.Canceled }

func TestFailingRandFallsBackToCryptoRand(t *testing.T) {
	var spans []sdktrace.ReadOnlySpan
	m, err := NewMapper(MapperOptions{Config: testConfig(), Rand: failingReader{},
		Spans: func(_ Phase, s []sdktrace.ReadOnlySpan) { spans = append(spans, s...) }})
	if err != nil {
		t.Fatal(err)
	}
	m.Consume(telemetry.Event{Time: at(0), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: "r"}})
	m.Consume(telemetry.Event{Time: at(9), Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: "r", Status: telemetry.StatusSuccess}})
	if len(spans) != 1 || !spans[0].SpanContext().IsValid() {
		t.Fatalf("spans = %d, valid IDs %v", len(spans), len(spans) == 1 && spans[0].SpanContext().IsValid())
	}
}

func TestMultiLineRecordsAreBounded(t *testing.T) {
	lc := &logCollector{}
	m, err := NewMapper(MapperOptions{Config: testConfig(), Logs: lc, Now: func() time.Time { return fixedNow }, Rand: detRand()})
	if err != nil {
		t.Fatal(err)
	}
	line := func(s string) telemetry.Event {
		return telemetry.Event{Time: at(0), Type: telemetry.TypeFunction, Record: &telemetry.Log{Text: s}}
	}
	m.Consume(line("Exception: boom"))
	for i := 0; i < 2*maxRecordLines; i++ {
		m.Consume(line("\tat frame"))
	}
	m.Consume(line("next record"))
	m.FlushLogs()
	if len(lc.recs) != 4 {
		t.Fatalf("got %d records, want 4 (two full, one remainder, one next)", len(lc.recs))
	}
	for _, r := range lc.recs[:3] {
		if n := strings.Count(r.Body().AsString(), "\n") + 1; n > maxRecordLines {
			t.Errorf("record of %d lines, limit %d", n, maxRecordLines)
		}
	}
	if got := lc.recs[3].Body().AsString(); got != "next record" {
		t.Errorf("last record = %q", got)
	}
}
