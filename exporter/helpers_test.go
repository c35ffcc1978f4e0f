package exporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
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

// collector is a fake OTLP/HTTP backend that decodes what it receives with
// the collector's pdata and counts invocation spans by invocation ID
// (other spans carrying one as "<name>/<ID>", those without under "") and
// log records by body. respond decides each answer.
type collector struct {
	// mu guards every field below.
	mu       sync.Mutex
	spans    map[string]int // by faas.invocation_id
	statuses map[string]string
	logs     map[string]int // by body
	metrics  int            // data points received
	requests []string       // paths, in order, including refused ones
	times    []time.Time
	respond  func(path string, n int) (int, http.Header)
	leaked   bool               // a request carried the X-Env header set only in OTEL_* variables
	names    map[string]bool    // metric names received
	sums     map[string]float64 // Σ of the data points of each Sum metric received
}

func newCollector() *collector {
	return &collector{spans: map[string]int{}, statuses: map[string]string{}, logs: map[string]int{}}
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if body, err = io.ReadAll(zr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Header.Get("X-Env") != "" {
		c.leaked = true
	}
	c.requests = append(c.requests, r.URL.Path)
	c.times = append(c.times, time.Now())
	status, hdr := http.StatusOK, http.Header(nil)
	if c.respond != nil {
		status, hdr = c.respond(r.URL.Path, len(c.requests))
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	if status/100 != 2 {
		w.WriteHeader(status)
		return
	}
	switch r.URL.Path {
	case "/v1/traces":
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rss := req.Traces().ResourceSpans()
		for i := range rss.Len() {
			sss := rss.At(i).ScopeSpans()
			for j := range sss.Len() {
				ss := sss.At(j).Spans()
				for k := range ss.Len() {
					id, _ := ss.At(k).Attributes().Get("faas.invocation_id")
					st, _ := ss.At(k).Attributes().Get("status")
					key := id.Str()
					if key != "" && ss.At(k).Kind() != ptrace.SpanKindServer && ss.At(k).Kind() != ptrace.SpanKindUnspecified {
						// The signals mapper's postRuntime span carries the
						// invocation ID beside the invocation (SERVER) span.
						key = ss.At(k).Name() + "/" + key
					}
					c.spans[key]++
					c.statuses[key] = st.Str()
				}
			}
		}
	case "/v1/logs":
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rls := req.Logs().ResourceLogs()
		for i := range rls.Len() {
			sls := rls.At(i).ScopeLogs()
			for j := range sls.Len() {
				lr := sls.At(j).LogRecords()
				for k := range lr.Len() {
					c.logs[lr.At(k).Body().Str()]++
				}
			}
		}
	case "/v1/metrics":
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.metrics += req.Metrics().DataPointCount()
		rms := req.Metrics().ResourceMetrics()
		for i := range rms.Len() {
			sms := rms.At(i).ScopeMetrics()
			for j := range sms.Len() {
				ms := sms.At(j).Metrics()
				for k := range ms.Len() {
					if c.names == nil {
						c.names = map[string]bool{}
					}
					c.names[ms.At(k).Name()] = true
					if m := ms.At(k); m.Type() == pmetric.MetricTypeSum {
						if c.sums == nil {
							c.sums = map[string]float64{}
						}
						for d := range m.Sum().DataPoints().Len() {
							dp := m.Sum().DataPoints().At(d)
							c.sums[m.Name()] += dp.DoubleValue() + float64(dp.IntValue())
						}
					}
				}
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(status)
}

// sum returns Σ of the data points received for the Sum metric name.
func (c *collector) sum(name string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sums[name]
}

func (c *collector) snapshot() (spans map[string]int, logs map[string]int, requests int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	spans, logs = map[string]int{}, map[string]int{}
	for k, v := range c.spans {
		spans[k] = v
	}
	for k, v := range c.logs {
		logs[k] = v
	}
	return spans, logs, len(c.requests)
}

func (c *collector) requestCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.requests)
}

// memRT is an in-memory RoundTripper over a handler (for synctest bubbles,
// where real sockets do not count as blocked). refuse, when set, fails the
// request before anything is sent, like a refused connection.
type memRT struct {
	h http.Handler
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
			return nil, err
		}
	}
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, req)
	return rec.Result(), nil
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

// stallRequests makes every request through rt wait until the returned
// channel is closed (or the request is canceled).
func stallRequests(rt *memRT) chan struct{} {
	stall := make(chan struct{})
	rt.setRefuse(func(req *http.Request) error {
		select {
		case <-stall:
			return nil
		case <-req.Context().Done():
			return req.Context().Err()
		}
	})
	return stall
}
