package signals

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json")

// fixedNow is the mapper's clock in tests (observed timestamps).
var fixedNow = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

// scenario is one golden test: a testdata file of steps and the
// configuration it runs under.
type scenario struct {
	name string
	file string
	cfg  func(*config.Config)
}

func scenarios() []scenario {
	lmi := func(fn string, mem int) func(*config.Config) {
		return func(c *config.Config) {
			c.ManagedInstances, c.InitType, c.FunctionName, c.MemorySizeMB = true, "lambda-managed-instances", fn, mem
		}
	}
	return []scenario{
		{name: "cold-start", file: "cold-start.json"},
		{name: "warm", file: "warm.json"},
		{name: "error", file: "error.json"},
		{name: "timeout", file: "timeout.json"},
		{name: "oom-errortype", file: "oom-errortype.json"},
		{name: "oom-memory", file: "oom-memory.json"},
		{name: "oom-shutdown", file: "oom-shutdown.json"},
		{name: "snapstart", file: "snapstart.json", cfg: func(c *config.Config) {
			c.FunctionName, c.FunctionVersion, c.MemorySizeMB, c.InitType = "my-snapstart-fn", "3", 512, "snap-start"
		}},
		{name: "init-not-delaying", file: "init-not-delaying.json", cfg: func(c *config.Config) { c.InitType = "provisioned-concurrency" }},
		{name: "sampled", file: "sampled.json"},
		{name: "sampled-respected", file: "sampled.json", cfg: func(c *config.Config) { c.TracesRespectSampled = true }},
		{name: "logs", file: "logs.json"},
		{name: "split-panic", file: "split-panic.json"},
		{name: "rie-lmi", file: "rie-lmi.json", cfg: lmi("probe-fn", 3008)},
		{name: "lmi-overlap", file: "lmi-overlap.json", cfg: lmi("lmi-fn", 2048)},
		{name: "platform-logs", file: "platform-logs.json", cfg: func(c *config.Config) { c.PlatformLogs = true; c.FaaSTrigger = "http" }},
		{name: "end-mode", file: "end-mode.json", cfg: func(c *config.Config) { c.Flush = config.FlushEnd }},
		{name: "proactive-init", file: "proactive-init.json"},
		{name: "init-error", file: "init-error.json"},
		{name: "shutdown-timeout", file: "shutdown-timeout.json"},
		{name: "oom-retracted", file: "oom-retracted.json"},
	}
}

func testConfig() *config.Config {
	return &config.Config{
		ExportEnabled:      true,
		Region:             "us-east-1",
		FunctionName:       "my-function",
		FunctionVersion:    "$LATEST",
		MemorySizeMB:       128,
		InitType:           "on-demand",
		ResourceAttributes: map[string]string{"deployment.environment.name": "test"},
		Flush:              config.FlushAdaptive,
	}
}

type step struct {
	Batch     json.RawMessage `json:"batch"`
	BatchFile string          `json:"batchFile"`
	Invoke    *struct {
		RequestID   string `json:"requestId"`
		InvokedARN  string `json:"invokedArn"`
		TraceHeader string `json:"traceHeader"`
		DeadlineMs  int64  `json:"deadlineMs"`
	} `json:"invoke"`
	Shutdown *struct {
		Reason string    `json:"reason"`
		Time   time.Time `json:"time"`
	} `json:"shutdown"`
}

func loadSteps(t testing.TB, file string) []step {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	if err := json.Unmarshal(b, &steps); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for i := range steps {
		if steps[i].BatchFile != "" {
			if steps[i].Batch, err = os.ReadFile(filepath.Join("testdata", steps[i].BatchFile)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return steps
}

// decodeBatch decodes one POST body with the telemetry package's decoder.
func decodeBatch(t testing.TB, body []byte) []telemetry.Event {
	t.Helper()
	evs, st, err := telemetry.DecodeBatch(body)
	if err != nil || st.Bad > 0 || st.Unknown > 0 {
		t.Fatalf("decode batch: %v %+v", err, st)
	}
	return evs
}

// detRand is a deterministic ID source.
func detRand() io.Reader { return rand.NewChaCha8([32]byte{'s', 'l', 'i', 'p'}) }

// logCollector is an sdklog.Processor keeping copies of the records.
type logCollector struct{ recs []sdklog.Record }

func (c *logCollector) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (c *logCollector) OnEmit(_ context.Context, r *sdklog.Record) error {
	c.recs = append(c.recs, r.Clone())
	return nil
}
func (c *logCollector) Shutdown(context.Context) error   { return nil }
func (c *logCollector) ForceFlush(context.Context) error { return nil }

// mapped is what a scenario produced, before export.
type mapped struct {
	spanBatches [][]sdktrace.ReadOnlySpan
	logs        []sdklog.Record
	cumulative  metricdata.ResourceMetrics
	deltas      []metricdata.ResourceMetrics
	events      []telemetry.Event // every event consumed, in order
	shutdowns   int               // invocations open at shutdown
}

// runScenario feeds a scenario through a Mapper inside a synctest bubble,
// so the metric SDK's own timestamps are deterministic too.
func runScenario(t *testing.T, sc scenario) mapped {
	var out mapped
	steps := loadSteps(t, sc.file)
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		if sc.cfg != nil {
			sc.cfg(cfg)
		}
		cum := sdkmetric.NewManualReader()
		del := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(func(sdkmetric.InstrumentKind) metricdata.Temporality {
			return metricdata.DeltaTemporality
		}))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(cum), sdkmetric.WithReader(del))
		lc := &logCollector{}
		opts := MapperOptions{
			Config: cfg, AccountID: "123456789012",
			Spans: func(_ Phase, s []sdktrace.ReadOnlySpan) { out.spanBatches = append(out.spanBatches, s) },
			Logs:  lc, Meter: mp,
			Now:  func() time.Time { return fixedNow },
			Rand: detRand(), Version: "1.2.3-test", Arch: "amd64",
		}
		m, err := NewMapper(opts)
		if err != nil {
			t.Fatal(err)
		}
		collectDelta := func() {
			var rm metricdata.ResourceMetrics
			if err := del.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			out.deltas = append(out.deltas, rm)
		}
		for _, s := range steps {
			switch {
			case s.Invoke != nil:
				m.Invoke(Invocation{RequestID: s.Invoke.RequestID, InvokedARN: s.Invoke.InvokedARN,
					TraceHeader: s.Invoke.TraceHeader, Deadline: time.UnixMilli(s.Invoke.DeadlineMs).UTC()})
			case s.Shutdown != nil:
				out.shutdowns += m.OpenInvocations()
				m.Shutdown(s.Shutdown.Reason, s.Shutdown.Time)
			default:
				for _, ev := range decodeBatch(t, s.Batch) {
					out.events = append(out.events, ev)
					m.Consume(ev)
				}
			}
			collectDelta()
		}
		m.FlushLogs()
		if err := cum.Collect(context.Background(), &out.cumulative); err != nil {
			t.Fatal(err)
		}
		// The metric resource is the mapper's (the pipeline does the same
		// before export: the MeterProvider's resource is fixed at start).
		out.cumulative.Resource = m.Resource()
		out.logs = lc.recs
	})
	return out
}

// exported is what the fake collector received, decoded with pdata.
type exported struct {
	traces  []ptrace.Traces
	metrics []pmetric.Metrics
	logs    []plog.Logs
}

// capture is a fake OTLP/HTTP collector recording each request body.
type capture struct {
	mu     sync.Mutex // guards bodies
	bodies map[string][][]byte
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.bodies[r.URL.Path] = append(c.bodies[r.URL.Path], b)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// export sends the mapped data through the official OTLP/HTTP exporters
// (retry disabled) to an httptest collector and decodes every request.
func export(t *testing.T, mo mapped) exported {
	t.Helper()
	cp := &capture{bodies: map[string][][]byte{}}
	srv := httptest.NewServer(cp)
	defer srv.Close()
	ctx := context.Background()

	te, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}), otlptracehttp.WithCompression(otlptracehttp.NoCompression))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range mo.spanBatches {
		if err := te.ExportSpans(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	me, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.URL+"/v1/metrics"),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}), otlpmetrichttp.WithCompression(otlpmetrichttp.NoCompression))
	if err != nil {
		t.Fatal(err)
	}
	if err := me.Export(ctx, &mo.cumulative); err != nil {
		t.Fatal(err)
	}
	le, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(srv.URL+"/v1/logs"),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}), otlploghttp.WithCompression(otlploghttp.NoCompression))
	if err != nil {
		t.Fatal(err)
	}
	if len(mo.logs) > 0 {
		if err := le.Export(ctx, mo.logs); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []interface{ Shutdown(context.Context) error }{te, me, le} {
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var ex exported
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, b := range cp.bodies["/v1/traces"] {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			t.Fatalf("decode traces: %v", err)
		}
		ex.traces = append(ex.traces, req.Traces())
	}
	for _, b := range cp.bodies["/v1/metrics"] {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			t.Fatalf("decode metrics: %v", err)
		}
		md := req.Metrics()
		sortDataPoints(md)
		ex.metrics = append(ex.metrics, md)
	}
	for _, b := range cp.bodies["/v1/logs"] {
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			t.Fatalf("decode logs: %v", err)
		}
		ld := req.Logs()
		// The exporter groups records by resource through a map.
		ld.ResourceLogs().Sort(func(a, b plog.ResourceLogs) bool {
			return resourceKey(a.Resource()) < resourceKey(b.Resource())
		})
		ex.logs = append(ex.logs, ld)
	}
	return ex
}

func resourceKey(r pcommon.Resource) string {
	b, _ := json.Marshal(r.Attributes().AsRaw())
	return string(b)
}

// sortDataPoints orders data points by their attributes: the SDK keeps
// them in a map, so their order is the one field that is not deterministic.
func sortDataPoints(md pmetric.Metrics) {
	key := func(m pcommon.Map) string { b, _ := json.Marshal(m.AsRaw()); return string(b) }
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					m.Sum().DataPoints().Sort(func(a, b pmetric.NumberDataPoint) bool { return key(a.Attributes()) < key(b.Attributes()) })
				case pmetric.MetricTypeHistogram:
					m.Histogram().DataPoints().Sort(func(a, b pmetric.HistogramDataPoint) bool { return key(a.Attributes()) < key(b.Attributes()) })
				}
			}
		}
	}
}

// goldenJSON renders the decoded requests as one indented JSON document.
func goldenJSON(t *testing.T, ex exported) []byte {
	t.Helper()
	var doc struct {
		Traces  []json.RawMessage `json:"traces"`
		Metrics []json.RawMessage `json:"metrics"`
		Logs    []json.RawMessage `json:"logs"`
	}
	for _, td := range ex.traces {
		b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		doc.Traces = append(doc.Traces, b)
	}
	for _, md := range ex.metrics {
		b, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
		if err != nil {
			t.Fatal(err)
		}
		doc.Metrics = append(doc.Metrics, b)
	}
	for _, ld := range ex.logs {
		b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
		if err != nil {
			t.Fatal(err)
		}
		doc.Logs = append(doc.Logs, b)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			got := goldenJSON(t, export(t, runScenario(t, sc)))
			path := filepath.Join("testdata", "golden", sc.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := 0; i < len(gl) && i < len(wl); i++ {
					if gl[i] != wl[i] {
						t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run with -update after checking)", path, i+1, gl[i], wl[i])
					}
				}
				t.Fatalf("%s differs in length: got %d lines, want %d", path, len(gl), len(wl))
			}
		})
	}
}
