package exporter

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/slipstream-otel/slipstream/config"
)

// grpcCollector answers the first trace export Unavailable with RetryInfo,
// then accepts everything.
type grpcCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	// mu guards the counters.
	mu                 sync.Mutex
	traceCalls, spans  int
	logRecords, points int
}

func (g *grpcCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.traceCalls++
	if g.traceCalls == 1 {
		st, err := status.New(codes.Unavailable, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(200 * time.Millisecond)})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			g.spans += len(ss.GetSpans())
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

type grpcLogs struct {
	collogspb.UnimplementedLogsServiceServer
	g *grpcCollector
}

func (l *grpcLogs) Export(_ context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	l.g.mu.Lock()
	defer l.g.mu.Unlock()
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			l.g.logRecords += len(sl.GetLogRecords())
		}
	}
	return &collogspb.ExportLogsServiceResponse{}, nil
}

type grpcMetrics struct {
	colmetricspb.UnimplementedMetricsServiceServer
	g *grpcCollector
}

func (m *grpcMetrics) Export(_ context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	m.g.mu.Lock()
	defer m.g.mu.Unlock()
	m.g.points++
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

func TestGRPCExportHonoursRetryInfo(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcCollector{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, g)
	collogspb.RegisterLogsServiceServer(srv, &grpcLogs{g: g})
	colmetricspb.RegisterMetricsServiceServer(srv, &grpcMetrics{g: g})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() { <-served }()
	defer srv.Stop()

	cfg := testConfig(t, "", config.FlushAsync)
	for _, s := range []*config.Signal{&cfg.OTLP.Traces, &cfg.OTLP.Logs, &cfg.OTLP.Metrics} {
		// An http:// endpoint means plaintext even without _INSECURE.
		s.Protocol, s.Endpoint, s.Insecure = "grpc", "http://"+lis.Addr().String(), false
	}
	h := newHarness(t, cfg, knobs{})
	h.run(t)
	ctx := context.Background()
	h.p.Enqueue(context.Background(), invocation("g1", 2, time.Now()))
	h.p.Invoke(ctx, invokeEvent("g1", time.Now().Add(time.Minute)))
	if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.spans != 1 || g.logRecords != 2 || g.points == 0 {
		t.Errorf("collector got %d spans, %d log records, %d metric requests; want 1, 2, >0", g.spans, g.logRecords, g.points)
	}
	if st := h.p.tally(); st.Traces.Retried != 1 || st.Traces.Sent != 1 {
		t.Errorf("traces stats = %+v, want one retry after Unavailable", st.Traces)
	}
}
