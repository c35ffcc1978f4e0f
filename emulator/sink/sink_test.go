package sink_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// start returns a listening sink, closed at the end of the test.
func start(t *testing.T, opts sink.Options) *sink.Sink {
	t.Helper()
	s := sink.New(opts)
	if _, err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

var (
	traceID = trace.TraceID{0x5b, 0x8e, 0xfe, 0xc1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	spanID  = trace.SpanID{0xa1, 0, 0, 0, 0, 0, 0, 1}
	parent  = trace.SpanID{0xb2, 0, 0, 0, 0, 0, 0, 2}
	t0      = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	testRes = resource.NewSchemaless(attribute.String("service.name", "demo"), attribute.String("cloud.provider", "aws"))
)

func invocationStub() tracetest.SpanStub {
	return tracetest.SpanStub{
		Name: "demo",
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
		}),
		Parent:    trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: parent, Remote: true}),
		SpanKind:  trace.SpanKindServer,
		StartTime: t0,
		EndTime:   t0.Add(120 * time.Millisecond),
		Attributes: []attribute.KeyValue{
			attribute.String("faas.invocation_id", "req-1"),
			attribute.Bool("faas.coldstart", true),
			attribute.Float64("slipstream.billed_duration", 0.121),
		},
		Status:               sdktrace.Status{Code: codes.Error, Description: "timeout"},
		Resource:             testRes,
		InstrumentationScope: instrumentation.Scope{Name: "github.com/slipstream-otel/slipstream"},
	}
}

func TestTracesFromTheOfficialExporter(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []otlptracehttp.Option
	}{
		{"protobuf is decoded", nil},
		{"gzip protobuf is decoded", []otlptracehttp.Option{otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}},
		{"JSON is decoded", []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON)}},
		{"gzip JSON is decoded", []otlptracehttp.Option{
			otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON),
			otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, sink.Options{})
			ctx := context.Background()
			opts := append([]otlptracehttp.Option{otlptracehttp.WithEndpointURL(s.URL(sink.SignalTraces))}, tc.opts...)
			exp, err := otlptracehttp.New(ctx, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer exp.Shutdown(ctx)
			if err := exp.ExportSpans(ctx, tracetest.SpanStubs{invocationStub()}.Snapshots()); err != nil {
				t.Fatalf("export: %v", err)
			}

			spans := s.Spans()
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			got := spans[0]
			want := map[string]any{
				"name": "demo", "trace": traceID.String(), "span": spanID.String(), "parent": parent.String(),
				"kind": "Server", "status": "Error", "message": "timeout", "start": t0, "end": t0.Add(120 * time.Millisecond),
				"id": "req-1", "cold": true, "billed": 0.121, "service": "demo",
				"scope": "github.com/slipstream-otel/slipstream",
			}
			have := map[string]any{
				"name": got.Name, "trace": got.TraceID, "span": got.SpanID, "parent": got.ParentSpanID,
				"kind": got.Kind, "status": got.Status, "message": got.StatusMessage, "start": got.Start, "end": got.End,
				"id": got.Attributes["faas.invocation_id"], "cold": got.Attributes["faas.coldstart"],
				"billed": got.Attributes["slipstream.billed_duration"], "service": got.Resource["service.name"],
				"scope": got.Scope,
			}
			for k, w := range want {
				if h := have[k]; fmt.Sprint(h) != fmt.Sprint(w) {
					t.Errorf("%s = %v, want %v", k, h, w)
				}
			}
			if n := s.Traces()[0].SpanCount(); n != 1 {
				t.Errorf("pdata span count = %d, want 1", n)
			}
			if c := s.Requests()[sink.SignalTraces]; c.Received != 1 || c.Accepted != 1 {
				t.Errorf("requests = %+v, want 1 received and accepted", c)
			}
		})
	}
}

func TestJSONBodiesAreAnsweredInJSON(t *testing.T) {
	s := start(t, sink.Options{})
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("posted")
	sp.SetTraceID(pcommon.TraceID(traceID))
	sp.SetSpanID(pcommon.SpanID(spanID))
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}

	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip %v", gz), func(t *testing.T) {
			b, enc := body, ""
			if gz {
				b, enc = gzipped(t, body), "gzip"
			}
			resp := post(t, s.URL(sink.SignalTraces), "application/json", enc, b)
			if resp.status != http.StatusOK || resp.contentType != "application/json" {
				t.Fatalf("got %d %q, want 200 application/json", resp.status, resp.contentType)
			}
			if err := ptraceotlp.NewExportResponse().UnmarshalJSON(resp.body); err != nil {
				t.Errorf("response is not an ExportTraceServiceResponse: %v (%q)", err, resp.body)
			}
		})
	}
	spans := s.Spans()
	if len(spans) != 2 || spans[0].Name != "posted" || spans[1].TraceID != traceID.String() {
		t.Errorf("spans = %+v, want two copies of the posted span", spans)
	}
}

func TestMetricsFromTheOfficialExporter(t *testing.T) {
	s := start(t, sink.Options{})
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(s.URL(sink.SignalMetrics)),
		otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(ctx)

	timeout := attribute.NewSet(attribute.String("error.type", "timeout"))
	failure := attribute.NewSet(attribute.String("error.type", "failure"))
	// export sends one collection: cumulative counters carry running totals, deltas increments.
	export := func(at time.Time, invocations, timeouts, failures int64, durations ...float64) {
		t.Helper()
		hist := metricdata.HistogramDataPoint[float64]{StartTime: t0, Time: at, Count: uint64(len(durations))}
		for _, d := range durations {
			hist.Sum += d
		}
		rm := &metricdata.ResourceMetrics{Resource: testRes, ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope: instrumentation.Scope{Name: "test"},
			Metrics: []metricdata.Metrics{
				{Name: "faas.invocations", Unit: "{invocation}", Data: metricdata.Sum[int64]{
					Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
					DataPoints: []metricdata.DataPoint[int64]{{StartTime: t0, Time: at, Value: invocations}},
				}},
				{Name: "faas.errors", Unit: "{error}", Data: metricdata.Sum[int64]{
					Temporality: metricdata.DeltaTemporality, IsMonotonic: true,
					DataPoints: []metricdata.DataPoint[int64]{
						{Attributes: timeout, StartTime: t0, Time: at, Value: timeouts},
						{Attributes: failure, StartTime: t0, Time: at, Value: failures},
					},
				}},
				{Name: "faas.invoke_duration", Unit: "s", Data: metricdata.Histogram[float64]{
					Temporality: metricdata.CumulativeTemporality,
					DataPoints:  []metricdata.HistogramDataPoint[float64]{hist},
				}},
			},
		}}}
		if err := exp.Export(ctx, rm); err != nil {
			t.Fatalf("export: %v", err)
		}
	}
	export(t0.Add(time.Second), 2, 1, 0, 0.5, 0.25)
	export(t0.Add(2*time.Second), 5, 2, 1, 0.5, 0.25, 1, 1)

	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"a cumulative sum is its latest point", s.Sum("faas.invocations"), 5},
		{"delta points add up", s.Sum("faas.errors"), 4},
		{"attributes select the matching points", s.Sum("faas.errors", attribute.String("error.type", "timeout")), 3},
		{"a histogram sum is its latest point", s.Sum("faas.invoke_duration"), 2.75},
		{"a histogram count is its latest point", float64(s.Count("faas.invoke_duration")), 4},
		{"an unknown attribute matches nothing", s.Sum("faas.errors", attribute.String("error.type", "oom")), 0},
		{"SumAll adds every cumulative point in full", s.Snapshot().SumAll("faas.invocations"), 7},
		{"SumAll adds delta points as Sum does", s.Snapshot().SumAll("faas.errors", attribute.String("error.type", "timeout")), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	pts := s.Metrics()["faas.invoke_duration"]
	if len(pts) != 2 || pts[1].Type != "Histogram" || pts[1].Temporality != "Cumulative" || pts[1].Unit != "s" {
		t.Errorf("histogram points = %+v", pts)
	}
	if got := s.Snapshot().MetricNames(); strings.Join(got, ",") != "faas.errors,faas.invocations,faas.invoke_duration" {
		t.Errorf("metric names = %v", got)
	}
}

func TestLogsFromTheOfficialExporter(t *testing.T) {
	s := start(t, sink.Options{})
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(s.URL(sink.SignalLogs)))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(testRes), sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
	defer lp.Shutdown(ctx)

	var rec otellog.Record
	rec.SetTimestamp(t0)
	rec.SetBody(attribute.StringValue("boom"))
	rec.SetSeverity(otellog.SeverityError)
	rec.SetSeverityText("ERROR")
	rec.AddAttributes(attribute.String("faas.invocation_id", "req-1"))
	spanCtx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}))
	lp.Logger("function").Emit(spanCtx, rec)
	if err := lp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	logs := s.Logs()
	if len(logs) != 1 {
		t.Fatalf("got %d log records, want 1", len(logs))
	}
	got := logs[0]
	if got.Body != "boom" || got.Severity != "ERROR" || got.SeverityNumber != int(otellog.SeverityError) ||
		got.TraceID != traceID.String() || got.SpanID != spanID.String() || !got.Time.Equal(t0) ||
		got.Attributes["faas.invocation_id"] != "req-1" || got.Resource["service.name"] != "demo" || got.Scope != "function" {
		t.Errorf("log record = %+v", got)
	}
	if got := s.Snapshot().LogBodies(); len(got) != 1 || got["boom"] != 1 {
		t.Errorf("log bodies = %v, want boom once", got)
	}
}

func TestBadRequestsAreAnsweredLikeACollector(t *testing.T) {
	s := start(t, sink.Options{MaxBodyBytes: 1024})
	url := s.URL(sink.SignalTraces)
	for _, tc := range []struct {
		name        string
		method      string
		url         string
		contentType string
		encoding    string
		body        []byte
		want        int
	}{
		{"garbage protobuf is a bad request", "POST", url, "application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, 400},
		{"garbage JSON is a bad request", "POST", url, "application/json", "", []byte("{nope"), 400},
		{"a body that is not gzip is a bad request", "POST", url, "application/x-protobuf", "gzip", []byte("plain"), 400},
		{"an unknown content type is unsupported", "POST", url, "text/plain", "", []byte("hi"), 415},
		{"a missing content type is unsupported", "POST", url, "", "", []byte("hi"), 415},
		{"an unknown content encoding is unsupported", "POST", url, "application/json", "br", []byte("{}"), 415},
		{"a body above the limit is too large", "POST", url, "application/json", "", bytes.Repeat([]byte(" "), 2048), 413},
		{"a gzip body above the limit once inflated is too large", "POST", url, "application/json", "gzip",
			gzipped(t, bytes.Repeat([]byte(" "), 4096)), 413},
		{"GET is not allowed", "GET", url, "", "", nil, 405},
		{"an unknown path is not found", "POST", s.Endpoint() + "/v1/profiles", "application/json", "", []byte("{}"), 404},
		{"a content type with parameters is accepted", "POST", url, "application/json; charset=utf-8", "", []byte("{}"), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Content-Encoding", tc.encoding)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if c := s.Requests()[sink.SignalTraces]; c.Rejected != 8 || c.Accepted != 1 {
		t.Errorf("trace requests = %+v, want 8 rejected and 1 accepted", c)
	}
}

func TestWaitForEndsWithItsContext(t *testing.T) {
	s := start(t, sink.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.WaitFor(ctx, func(snap *sink.Snapshot) bool { return len(snap.Spans()) > 0 })
	if err == nil || !strings.Contains(err.Error(), "context canceled") || !strings.Contains(err.Error(), "0 spans") {
		t.Errorf("err = %v, want context canceled with a summary", err)
	}
}

func TestConcurrentExportsAreAllKept(t *testing.T) {
	s := start(t, sink.Options{})
	ctx := context.Background()
	const senders, each = 8, 5

	waited := make(chan error, 1)
	go func() {
		waited <- s.WaitFor(ctx, func(snap *sink.Snapshot) bool { return len(snap.Spans()) == senders*each })
	}()

	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(s.URL(sink.SignalTraces)))
			if err != nil {
				t.Error(err)
				return
			}
			defer exp.Shutdown(ctx)
			for j := range each {
				stub := invocationStub()
				stub.Name = fmt.Sprintf("s%d-%d", i, j)
				stub.SpanContext = stub.SpanContext.WithSpanID(trace.SpanID{byte(i), byte(j), 1})
				if err := exp.ExportSpans(ctx, tracetest.SpanStubs{stub}.Snapshots()); err != nil {
					t.Error(err)
				}
				_ = s.Snapshot().Invocations() // read while others write, for the race detector
			}
		})
	}
	wg.Wait()
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if got := len(s.Invocations()); got != senders*each {
		t.Errorf("invocations = %d, want %d", got, senders*each)
	}
}

func TestResetForgetsData(t *testing.T) {
	s := start(t, sink.Options{})
	post(t, s.URL(sink.SignalLogs), "application/json", "", []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}`))
	if len(s.Logs()) != 1 {
		t.Fatalf("logs = %d, want 1", len(s.Logs()))
	}
	s.Reset()
	if len(s.Logs()) != 0 || len(s.LogsData()) != 0 || s.Requests()[sink.SignalLogs].Received != 0 {
		t.Errorf("after Reset: %d logs, %+v", len(s.Logs()), s.Requests())
	}
}

func TestStartAndClose(t *testing.T) {
	t.Run("closing a sink that never started succeeds", func(t *testing.T) {
		if err := sink.New(sink.Options{}).Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	t.Run("starting twice fails", func(t *testing.T) {
		s := start(t, sink.Options{})
		if _, err := s.Start(""); err == nil {
			t.Error("second Start succeeded")
		}
	})
	t.Run("the endpoint is a loopback base URL", func(t *testing.T) {
		s := start(t, sink.Options{})
		if !strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:") || s.URL(sink.SignalMetrics) != s.Endpoint()+"/v1/metrics" {
			t.Errorf("endpoint %q, metrics URL %q", s.Endpoint(), s.URL(sink.SignalMetrics))
		}
	})
}

type response struct {
	status      int
	contentType string
	retryAfter  string
	body        []byte
}

func post(t *testing.T, url, contentType, encoding string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), b}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
