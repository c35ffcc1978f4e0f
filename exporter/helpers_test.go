package exporter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/extension"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// fakeMapper is a small stand-in for signals.Mapper: one span per
// invocation at its report (or at Shutdown), one log record per log event,
// a counter per report.
type fakeMapper struct {
	o       signals.MapperOptions
	res     *resource.Resource
	logger  otellog.Logger
	count   metric.Int64Counter
	open    map[string]bool
	rd      map[string]bool
	current string
}

func newFakeMapper(o signals.MapperOptions) (Mapper, error) {
	res := resource.NewSchemaless(attribute.String("service.name", "fn"))
	var lopts []sdklog.LoggerProviderOption
	if o.Logs != nil {
		lopts = append(lopts, sdklog.WithProcessor(o.Logs))
	}
	lp := sdklog.NewLoggerProvider(append(lopts, sdklog.WithResource(res))...)
	mp := o.Meter
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	c, err := mp.Meter("fake").Int64Counter("faas.invocations")
	if err != nil {
		return nil, err
	}
	return &fakeMapper{o: o, res: res, logger: lp.Logger("fake"), count: c,
		open: map[string]bool{}, rd: map[string]bool{}}, nil
}

func (m *fakeMapper) Consume(ev telemetry.Event) {
	switch r := ev.Record.(type) {
	case *telemetry.Start:
		m.open[r.RequestID] = true
		m.current = r.RequestID
	case *telemetry.RuntimeDone:
		m.rd[r.RequestID] = true
	case *telemetry.Report:
		m.rd[r.RequestID] = true
		if m.open[r.RequestID] {
			delete(m.open, r.RequestID)
			m.span(r.RequestID, "ok", ev.Time)
			m.count.Add(context.Background(), 1)
		}
	case *telemetry.Log:
		var rec otellog.Record
		rec.SetTimestamp(ev.Time)
		rec.SetBody(attribute.StringValue(r.Text))
		rec.AddAttributes(attribute.String("faas.invocation_id", m.current))
		m.logger.Emit(context.Background(), rec)
	}
}

func (m *fakeMapper) span(id, status string, at time.Time) {
	h := sha256.Sum256([]byte(id))
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID(h[:16]), SpanID: trace.SpanID(h[16:24])})
	s := tracetest.SpanStub{
		Name: "invoke", SpanContext: sc, StartTime: at.Add(-time.Millisecond), EndTime: at,
		Attributes: []attribute.KeyValue{attribute.String("faas.invocation_id", id), attribute.String("status", status)},
		Resource:   m.res,
	}.Snapshot()
	if m.o.Spans != nil {
		m.o.Spans(signals.InvocationPhase(id), []sdktrace.ReadOnlySpan{s})
	}
}

func (m *fakeMapper) Invoke(signals.Invocation)      {}
func (m *fakeMapper) ConsumeContext(telemetry.Event) {}
func (m *fakeMapper) FlushLogs()                     {}
func (m *fakeMapper) Shutdown(reason string, at time.Time) {
	for id := range m.open {
		m.span(id, reason, at)
	}
	clear(m.open)
}
func (m *fakeMapper) OpenInvocations() int              { return len(m.open) }
func (m *fakeMapper) RuntimeDone(requestID string) bool { return m.rd[requestID] }
func (m *fakeMapper) Resource() *resource.Resource      { return m.res }

// Events.

func start(id string, at time.Time) telemetry.Event {
	return telemetry.Event{Time: at, Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: id}, Size: 200}
}

func runtimeDone(id string, at time.Time) telemetry.Event {
	return telemetry.Event{Time: at, Type: telemetry.TypeRuntimeDone,
		Record: &telemetry.RuntimeDone{RequestID: id, Status: telemetry.StatusSuccess}, Size: 300}
}

func report(id string, at time.Time) telemetry.Event {
	return telemetry.Event{Time: at, Type: telemetry.TypeReport,
		Record: &telemetry.Report{RequestID: id, Status: telemetry.StatusSuccess}, Size: 400}
}

func logLine(text string, at time.Time) telemetry.Event {
	return telemetry.Event{Time: at, Type: telemetry.TypeFunction, Record: &telemetry.Log{Text: text}, Size: 100 + len(text)}
}

// invocation returns the events of one complete invocation with n log lines
// named "<id> line <i>".
func invocation(id string, n int, at time.Time) []telemetry.Event {
	evs := []telemetry.Event{start(id, at)}
	for i := range n {
		evs = append(evs, logLine(id+" line "+string(rune('a'+i)), at))
	}
	return append(evs, runtimeDone(id, at), report(id, at))
}

func invokeEvent(id string, deadline time.Time) extension.Event {
	return extension.Event{Type: extension.Invoke, RequestID: id, DeadlineMs: deadline.UnixMilli(),
		Tracing: &extension.Tracing{Type: "X-Amzn-Trace-Id", Value: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"}}
}

// The fake OTLP backend of these tests is the emulator's sink: served by
// httptest on a socket, or in memory through memRT inside synctest bubbles.

// received counts what col stored: spans as spanCounts does, log records
// by body.
func received(col *sink.Sink) (spans, logs map[string]int) {
	snap := col.Snapshot()
	return spanCounts(snap), snap.LogBodies()
}

// spanCounts counts the spans of snap by spanKey.
func spanCounts(snap *sink.Snapshot) map[string]int {
	n := map[string]int{}
	for _, sp := range snap.Spans() {
		n[spanKey(sp)]++
	}
	return n
}

// spanKey is an invocation span's invocation ID; another span carrying one
// (the signals mapper's postRuntime span, beside the SERVER invocation
// span) is "<name>/<ID>"; a span without one (the init span) is "".
func spanKey(sp sink.SpanView) string {
	id, _ := sp.Attributes["faas.invocation_id"].(string)
	if id != "" && sp.Kind != "Server" && sp.Kind != "Unspecified" {
		return sp.Name + "/" + id
	}
	return id
}

// statusOf returns the status attribute (set by the fake mapper) of the
// last span that col received under key (see spanKey).
func statusOf(col *sink.Sink, key string) string {
	var st string
	for _, sp := range col.Spans() {
		if spanKey(sp) == key {
			st, _ = sp.Attributes["status"].(string)
		}
	}
	return st
}

// requestsFor returns how many requests col received for sig, whatever it
// answered.
func requestsFor(col *sink.Sink, sig sink.Signal) int { return col.Requests()[sig].Received }

// requestCount returns how many requests col received, whatever it answered.
func requestCount(col *sink.Sink) int { return len(col.Snapshot().Arrivals()) }

// metricPoints returns how many metric data points col stored.
func metricPoints(col *sink.Sink) int { return len(col.Snapshot().Points()) }

// memRT is the transport of the tests in synctest bubbles: it hands each
// request to the sink in memory (real sockets do not count as blocked in a
// bubble) and counts it. refuse, when set, fails the request before
// anything is sent, like a refused connection.
type memRT struct {
	backend *sink.Sink
	// mu guards refuse and calls.
	mu     sync.Mutex
	refuse func(*http.Request) error
	calls  int
}

func (m *memRT) RoundTrip(req *http.Request) (*http.Response, error) {
	m.mu.Lock()
	m.calls++
	refuse := m.refuse
	m.mu.Unlock()
	if refuse != nil {
		if err := refuse(req); err != nil {
			if req.Body != nil {
				req.Body.Close() // a RoundTripper closes the body, even on errors
			}
			return nil, err
		}
	}
	return m.backend.Transport().RoundTrip(req)
}

func (m *memRT) setRefuse(f func(*http.Request) error) {
	m.mu.Lock()
	m.refuse = f
	m.mu.Unlock()
}

func (m *memRT) callCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

// refusedRT returns a transport that refuses every request.
func refusedRT() *memRT {
	return &memRT{backend: sink.New(sink.Options{}), refuse: func(*http.Request) error { return errRefused }}
}

var errRefused = errors.New("dial tcp 127.0.0.1:4318: connect: connection refused")

// testConfig is a Config built by hand (Load is not used in these tests).
func testConfig(t testing.TB, endpoint string, mode config.FlushMode) *config.Config {
	sig := func(path string) config.Signal {
		return config.Signal{Protocol: "http/protobuf", Endpoint: endpoint + path, Compression: "gzip",
			Timeout: 2 * time.Second, Headers: map[string]string{"authorization": "Bearer s3cr3t"}}
	}
	return &config.Config{
		ExportEnabled: true, FunctionName: "fn", FunctionVersion: "$LATEST", Region: "us-east-1",
		Flush: mode, FlushTimeout: 500 * time.Millisecond, MaxDataAge: time.Minute,
		BufferMaxBytes: 4 << 20, SpillMaxBytes: 1 << 20, SpillDir: t.TempDir() + "/spill", SpillTTL: 15 * time.Minute,
		Temporality: "cumulative", TelemetryMaxBytes: 262144, TelemetryTypes: []string{"platform", "function", "extension"},
		OTLP: config.OTLP{Source: "SLIPSTREAM_OTLP", Protocol: "http/protobuf",
			Traces: sig("/v1/traces"), Metrics: sig("/v1/metrics"), Logs: sig("/v1/logs")},
	}
}

// syncBuffer collects log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) count(sub string) int {
	return strings.Count(s.String(), sub)
}

// harness runs a pipeline's worker and stops it at cleanup.
type harness struct {
	p      *Pipeline
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB, cfg *config.Config, k knobs) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, Options{}, k)
}

// realMapper builds the exporter/signals mapper (the harness's default is
// the fake one).
func realMapper(o signals.MapperOptions) (Mapper, error) { return signals.NewMapper(o) }

func newHarnessWith(t testing.TB, cfg *config.Config, opts Options, k knobs) *harness {
	t.Helper()
	if k.NewMapper == nil {
		k.NewMapper = newFakeMapper
	}
	buf := &syncBuffer{}
	p, err := newPipeline(cfg, slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), opts, k)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{p: p, logs: buf}
}

// run starts the worker; stop ends it (without Close).
func (h *harness) run(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.p.Run(ctx) }()
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
	h.cancel = nil
}

// close runs Close (spills what is left) and waits for the worker.
func (h *harness) close(t testing.TB) {
	t.Helper()
	if err := h.p.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
	h.stop()
}

// shutdownEvent is the plan of a SHUTDOWN with deadline received now.
func shutdownEvent(deadline time.Time, reason string) extension.ShutdownPlan {
	return extension.PlanShutdown(extension.Event{Type: extension.Shutdown, DeadlineMs: deadline.UnixMilli(), ShutdownReason: reason}, time.Now())
}
