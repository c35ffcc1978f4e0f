package exporter

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/extension"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// The function's own data in these tests: the trace of the INVOKE below,
// a root span whose parent is the X-Ray Parent (the Lambda invocation's
// segment, which the function's SDK continues from) and its child.
const (
	fnTraceHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	fnTraceHex    = "5759e988bd862e3fe1be46a994272793"
	fnXRayParent  = "53995c3f42cd8ad8"
	fnInvSpan     = "24cd7d670fa455f0" // platform.start's tracing.spanId
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// fnTraces is a request of n spans as an SDK sends it: the first span's
// parent is the X-Ray Parent, the others are its children.
func fnTraces(n int) *coltracepb.ExportTraceServiceRequest {
	var spans []*tracepb.Span
	for i := range n {
		sp := &tracepb.Span{
			TraceId: mustHex(fnTraceHex), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, byte(i + 1)},
			ParentSpanId: []byte{1, 2, 3, 4, 5, 6, 7, 1}, Name: "handler step", Kind: tracepb.Span_SPAN_KIND_INTERNAL,
			StartTimeUnixNano: 1_000, EndTimeUnixNano: 2_000,
			Attributes: []*commonpb.KeyValue{str("step", "work")},
			Events:     []*tracepb.Span_Event{{Name: "ev", TimeUnixNano: 1_500}},
			Links:      []*tracepb.Span_Link{{TraceId: mustHex("0102030405060708090a0b0c0d0e0f10"), SpanId: mustHex("1112131415161718")}},
			Status:     &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"},
		}
		if i == 0 {
			sp.ParentSpanId = mustHex(fnXRayParent)
			sp.Kind = tracepb.Span_SPAN_KIND_SERVER
		}
		spans = append(spans, sp)
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "checkout"), str("cloud.region", "eu-north-1")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "checkout/handler", Version: "1.2.3"}, Spans: spans}},
	}}}
}

func fnLogs() *collogspb.ExportLogsServiceRequest {
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "checkout")}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
			{TimeUnixNano: 1, Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "no context"}}},
			{TimeUnixNano: 2, TraceId: mustHex("0102030405060708090a0b0c0d0e0f10"), SpanId: mustHex("1112131415161718"),
				Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "own context"}}},
		}}},
	}}}
}

func fnMetrics() *colmetricpb.ExportMetricsServiceRequest {
	return &colmetricpb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{Name: "orders", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, IsMonotonic: true,
			DataPoints: []*metricspb.NumberDataPoint{{Value: &metricspb.NumberDataPoint_AsInt{AsInt: 3}}, {Value: &metricspb.NumberDataPoint_AsInt{AsInt: 4}}}}}}}}},
	}}}
}

// fnRequests returns the trace requests col received, re-encoded from the
// sink's pdata into the OTLP protobuf types the function sent, so that they
// compare with proto.Equal.
func fnRequests(t testing.TB, col *sink.Sink) []*coltracepb.ExportTraceServiceRequest {
	t.Helper()
	var out []*coltracepb.ExportTraceServiceRequest
	for _, td := range col.Traces() {
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		m := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(b, m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// fnSpans returns the spans col received whose scope is the function's.
func fnSpans(t testing.TB, col *sink.Sink) []*tracepb.Span {
	t.Helper()
	var out []*tracepb.Span
	for _, req := range fnRequests(t, col) {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				if ss.GetScope().GetName() == "checkout/handler" {
					out = append(out, ss.Spans...)
				}
			}
		}
	}
	return out
}

// fnResource returns the resource of the function's spans.
func fnResource(t testing.TB, col *sink.Sink) *resourcepb.Resource {
	t.Helper()
	for _, req := range fnRequests(t, col) {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				if ss.GetScope().GetName() == "checkout/handler" {
					return rs.Resource
				}
			}
		}
	}
	return nil
}

// backendDown makes col answer every request 503 (down) or accept them.
func backendDown(col *sink.Sink, down bool) {
	col.ClearFaults()
	if down {
		col.InjectFault(sink.Fault{Status: http.StatusServiceUnavailable})
	}
}

func attrValue(attrs []*commonpb.KeyValue, key string) (string, bool) {
	for _, kv := range attrs {
		if kv.Key == key {
			return kv.Value.GetStringValue(), true
		}
	}
	return "", false
}

func fnHarness(t *testing.T, b *sink.Sink, mode config.FlushMode, edit func(*config.Config)) *harness {
	t.Helper()
	cfg := testConfig(t, "http://collector.invalid", mode)
	cfg.ReceiverEnrich = true
	if edit != nil {
		edit(cfg)
	}
	return newHarnessWith(t, cfg, Options{LocalInputs: true},
		knobs{HTTPClient: &http.Client{Transport: &memRT{backend: b}}, NewMapper: realMapper, BatchDelay: time.Millisecond})
}

// startedInvocation hands over the INVOKE and platform.start of r1.
func startedInvocation(h *harness) {
	ev := invokeEvent("r1", time.Now().Add(time.Minute))
	ev.Tracing = &extension.Tracing{Type: "X-Amzn-Trace-Id", Value: fnTraceHeader}
	h.p.Invoke(context.Background(), ev)
	h.p.Enqueue(context.Background(), []telemetry.Event{{Time: time.Now(), Type: telemetry.TypeStart, Size: 200,
		Record: &telemetry.Start{RequestID: "r1", Tracing: &telemetry.Tracing{SpanID: fnInvSpan, Type: "X-Amzn-Trace-Id", Value: fnTraceHeader}}}})
}

func TestFunctionDataArrivesIntactNestedAndEnriched(t *testing.T) {
	b := sink.New(sink.Options{})
	want := fnTraces(3)
	var st tally
	synctest.Test(t, func(t *testing.T) {
		h := fnHarness(t, b, config.FlushAsync, nil)
		h.run(t)
		startedInvocation(h)
		synctest.Wait()
		if rej, reason := h.p.AcceptOTLP(fnTraces(3)); rej != 0 {
			t.Fatalf("rejected %d: %s", rej, reason)
		}
		if rej, _ := h.p.AcceptOTLP(fnLogs()); rej != 0 {
			t.Fatal("logs rejected")
		}
		if rej, _ := h.p.AcceptOTLP(fnMetrics()); rej != 0 {
			t.Fatal("metrics rejected")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		st = h.p.tally()
		h.close(t)
	})
	spans := fnSpans(t, b)
	if len(spans) != 3 {
		t.Fatalf("backend got %d function spans, want 3", len(spans))
	}
	t.Run("the span whose parent is the X-Ray segment becomes a child of the invocation span", func(t *testing.T) {
		if got := hex.EncodeToString(spans[0].ParentSpanId); got != fnInvSpan {
			t.Errorf("parent %s, want the invocation span %s", got, fnInvSpan)
		}
	})
	t.Run("everything else the function sent is intact", func(t *testing.T) {
		got := proto.Clone(spans[0]).(*tracepb.Span)
		got.ParentSpanId = mustHex(fnXRayParent)
		if !proto.Equal(got, want.ResourceSpans[0].ScopeSpans[0].Spans[0]) {
			t.Errorf("span changed:\n got %v\nwant %v", got, want.ResourceSpans[0].ScopeSpans[0].Spans[0])
		}
		for i := 1; i < 3; i++ {
			if !proto.Equal(spans[i], want.ResourceSpans[0].ScopeSpans[0].Spans[i]) {
				t.Errorf("span %d changed", i)
			}
		}
	})
	t.Run("enrichment adds only what the function's resource lacks", func(t *testing.T) {
		res := fnResource(t, b)
		if v, _ := attrValue(res.Attributes, "cloud.region"); v != "eu-north-1" {
			t.Errorf("cloud.region = %q: the function's value was replaced", v)
		}
		if v, _ := attrValue(res.Attributes, "service.name"); v != "checkout" {
			t.Errorf("service.name = %q", v)
		}
		if v, ok := attrValue(res.Attributes, "faas.name"); !ok || v != "fn" {
			t.Errorf("faas.name = %q, %v", v, ok)
		}
		if v, _ := attrValue(res.Attributes, "cloud.provider"); v != "aws" {
			t.Errorf("cloud.provider = %q", v)
		}
	})
	t.Run("a log record without trace context is placed in the invocation's trace", func(t *testing.T) {
		recs := b.Logs()
		if len(recs) != 2 {
			t.Fatalf("%d function log records", len(recs))
		}
		for _, r := range recs {
			switch r.Body {
			case "no context":
				if r.TraceID != fnTraceHex || r.SpanID != fnInvSpan {
					t.Errorf("trace %s span %s", r.TraceID, r.SpanID)
				}
			case "own context":
				if r.TraceID != "0102030405060708090a0b0c0d0e0f10" {
					t.Errorf("the record's own trace context was replaced: %s", r.TraceID)
				}
			}
		}
	})
	t.Run("self-metrics count the function's data apart", func(t *testing.T) {
		if st.FunctionTraces.Sent != 3 || st.FunctionLogs.Sent != 2 || st.FunctionMetrics.Sent != 2 {
			t.Errorf("function tallies %+v %+v %+v", st.FunctionTraces, st.FunctionLogs, st.FunctionMetrics)
		}
	})
}

func TestFunctionDataRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func(*config.Config)
		reason string
		drop   dropReason
	}{
		{"a full buffer refuses the whole request", func(c *config.Config) { c.BufferMaxBytes = 300 }, "buffer is full", dropQueueFull},
		{"a signal Slipstream does not export refuses the whole request", func(c *config.Config) { c.OTLP.Traces.Off = "SLIPSTREAM_TRACES_EXPORTER" }, "does not export traces (SLIPSTREAM_TRACES_EXPORTER)", dropNotExported},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := fnHarness(t, sink.New(sink.Options{}), config.FlushAsync, c.edit)
			rej, reason := h.p.AcceptOTLP(fnTraces(3))
			if rej != 3 || !strings.Contains(reason, c.reason) {
				t.Errorf("rejected %d: %q", rej, reason)
			}
			if got := h.p.tally().FunctionTraces.DroppedBy[c.drop]; got != 3 {
				t.Errorf("dropped %s = %d", c.drop, got)
			}
			h.close(t)
		})
	}
}

func TestFunctionDataSurvivesABackendOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := sink.New(sink.Options{})
		backendDown(b, true)
		h := fnHarness(t, b, config.FlushAsync, nil)
		h.run(t)
		startedInvocation(h)
		for range 5 {
			if rej, _ := h.p.AcceptOTLP(fnTraces(3)); rej != 0 {
				t.Fatal("rejected")
			}
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := len(fnSpans(t, b)); n != 0 {
			t.Fatalf("%d spans through a backend that is down", n)
		}
		backendDown(b, false)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		st := h.p.tally().FunctionTraces
		if n := len(fnSpans(t, b)); n != 15 || st.Sent != 15 || st.Dropped != 0 || st.Retried == 0 {
			t.Errorf("backend got %d spans; tally %+v", n, st)
		}
		h.close(t)
	})
}

func TestFunctionDataIsSpilledAndReplayed(t *testing.T) {
	dir := t.TempDir()
	edit := func(c *config.Config) { c.SpillDir = filepath.Join(dir, "spill") }
	synctest.Test(t, func(t *testing.T) {
		b := sink.New(sink.Options{})
		backendDown(b, true)
		h := fnHarness(t, b, config.FlushAsync, edit)
		h.run(t)
		startedInvocation(h)
		if rej, _ := h.p.AcceptOTLP(fnTraces(3)); rej != 0 {
			t.Fatal("rejected")
		}
		synctest.Wait()
		if err := h.p.Shutdown(context.Background(), shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
			t.Fatal(err)
		}
		h.close(t)
		if st := h.p.tally().FunctionTraces; st.Spilled != 3 {
			t.Fatalf("tally %+v, want 3 spilled", st)
		}
	})
	ents, _ := os.ReadDir(filepath.Join(dir, "spill"))
	if len(ents) != 1 {
		t.Fatalf("%d spill files", len(ents))
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "spill", ents[0].Name()))
	if !strings.Contains(string(raw), `"v":2`) || !strings.Contains(string(raw), `"otlp":[`) {
		t.Errorf("spill file has no version-2 OTLP field: %.200s", raw)
	}
	synctest.Test(t, func(t *testing.T) {
		b := sink.New(sink.Options{})
		h := fnHarness(t, b, config.FlushAsync, edit)
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("r2", time.Now().Add(time.Minute)))
		time.Sleep(time.Second)
		synctest.Wait()
		spans := fnSpans(t, b)
		if len(spans) != 3 {
			t.Fatalf("replay sent %d spans, want 3", len(spans))
		}
		if got := hex.EncodeToString(spans[0].ParentSpanId); got != fnInvSpan {
			t.Errorf("spilled span lost its nesting: parent %s", got)
		}
		h.close(t)
	})
	if ents, _ := os.ReadDir(filepath.Join(dir, "spill")); len(ents) != 0 {
		t.Errorf("%d spill files left after the replay was delivered", len(ents))
	}
}

func TestShutdownFlushWaitsForDrainWithLocalInputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := sink.New(sink.Options{})
		h := fnHarness(t, b, config.FlushAsync, nil)
		h.run(t)
		startedInvocation(h)
		h.p.Enqueue(context.Background(), []telemetry.Event{runtimeDone("r1", time.Now()), report("r1", time.Now())})
		plan := shutdownEvent(time.Now().Add(2*time.Second), "spindown")
		done := make(chan error, 1)
		go func() { done <- h.p.Shutdown(context.Background(), plan) }()
		// The function's SIGTERM handler sends before Drain.
		time.Sleep(time.Until(plan.Drain) / 2)
		if rej, _ := h.p.AcceptOTLP(fnTraces(3)); rej != 0 {
			t.Fatal("rejected during Drain")
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := len(fnSpans(t, b)); n != 3 {
			t.Errorf("the final flush sent %d of the spans sent during Drain", n)
		}
		h.close(t)
	})
}

// BenchmarkFunctionTraces measures the function lane for one request of
// 3 spans as an SDK sends it at the end of a handler, sent on its own:
// accept, queue, prepare (enrich, nest), encode, gzip and send to an
// in-memory backend. Reported: time and allocations per request (all
// goroutines), the process's CPU time per request (cpu-ns/op: ns/op is
// wall time, which includes the worker's wake-up), and bytes on the wire
// (gzipped body) per span.
func BenchmarkFunctionTraces(b *testing.B) {
	var wire int64
	got := make(wireRT, 1)
	cfg := testConfig(b, "http://collector.invalid", config.FlushAsync)
	cfg.ReceiverEnrich = true
	p, err := newPipeline(cfg, nil, Options{}, knobs{HTTPClient: &http.Client{Transport: got}, NewMapper: realMapper, BatchDelay: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	ev := invokeEvent("r1", time.Now().Add(time.Hour))
	ev.Tracing = &extension.Tracing{Type: "X-Amzn-Trace-Id", Value: fnTraceHeader}
	p.Invoke(ctx, ev)
	reqs := make([]*coltracepb.ExportTraceServiceRequest, b.N)
	for i := range reqs {
		reqs[i] = fnTraces(3)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		if rej, reason := p.AcceptOTLP(reqs[i]); rej != 0 {
			b.Fatal(reason)
		}
		wire += <-got // one request at a time: the lane has one in flight
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	cancel()
	<-done
	b.ReportMetric(float64(wire)/float64(3*b.N), "wire-B/span")
}

// wireRT answers every request 200 and hands over the size of its body on
// the wire.
type wireRT chan int64

func (w wireRT) RoundTrip(req *http.Request) (*http.Response, error) {
	n, err := io.Copy(io.Discard, req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	w <- n
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Over gRPC the function's data goes through the collector's stubs on a
// connection built like the exporters': the Unavailable with RetryInfo of
// the first call is retried, and every span arrives.
func TestFunctionDataOverGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcCollector{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, g)
	collogspb.RegisterLogsServiceServer(srv, &grpcLogs{g: g})
	colmetricpb.RegisterMetricsServiceServer(srv, &grpcMetrics{g: g})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() { <-served }()
	defer srv.Stop()
	cfg := testConfig(t, "", config.FlushAsync)
	for _, s := range []*config.Signal{&cfg.OTLP.Traces, &cfg.OTLP.Logs, &cfg.OTLP.Metrics} {
		s.Protocol, s.Endpoint = "grpc", "http://"+lis.Addr().String()
	}
	h := newHarnessWith(t, cfg, Options{}, knobs{NewMapper: realMapper})
	h.run(t)
	ctx := context.Background()
	h.p.Invoke(ctx, invokeEvent("g1", time.Now().Add(time.Minute)))
	if rej, reason := h.p.AcceptOTLP(fnTraces(3)); rej != 0 {
		t.Fatal(reason)
	}
	if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
		t.Fatal(err)
	}
	h.close(t)
	g.mu.Lock()
	defer g.mu.Unlock()
	// 4 spans: the function's 3 and the invocation span SHUTDOWN closed.
	if st := h.p.tally().FunctionTraces; g.spans != 4 || st.Sent != 3 || st.Retried != 3 {
		t.Errorf("collector got %d spans; function traces %+v, want the function's 3 sent after one retry", g.spans, st)
	}
}

// A spill file's function data of a signal switched off since is dropped
// and counted (signal_off) at replay, not sent (nor retried for ever).
func TestSpilledFunctionDataOfASignalSwitchedOffIsDropped(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		b := sink.New(sink.Options{})
		backendDown(b, true)
		h := fnHarness(t, b, config.FlushAsync, func(c *config.Config) { c.SpillDir = filepath.Join(dir, "spill") })
		h.run(t)
		startedInvocation(h)
		if rej, _ := h.p.AcceptOTLP(fnTraces(3)); rej != 0 {
			t.Fatal("rejected")
		}
		synctest.Wait()
		if err := h.p.Shutdown(context.Background(), shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
			t.Fatal(err)
		}
		h.close(t)
	})
	synctest.Test(t, func(t *testing.T) {
		b := sink.New(sink.Options{})
		h := fnHarness(t, b, config.FlushAsync, func(c *config.Config) {
			c.SpillDir = filepath.Join(dir, "spill")
			c.OTLP.Traces.Off = "SLIPSTREAM_TRACES_EXPORTER"
		})
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("r2", time.Now().Add(time.Minute)))
		time.Sleep(time.Second)
		synctest.Wait()
		if st := h.p.tally().FunctionTraces; st.DroppedBy[dropSignalOff] != 3 || len(fnSpans(t, b)) != 0 {
			t.Errorf("function traces %+v; backend got %d spans", st, len(fnSpans(t, b)))
		}
		h.close(t)
	})
}
