package receiver

import (
	"context"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP/gRPC clients may send gzip
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

func (r *Receiver) newGRPCServer() *grpc.Server {
	s := grpc.NewServer(
		// The limit applies after decompression: a gzip bomb is refused
		// with ResourceExhausted.
		grpc.MaxRecvMsgSize(int(r.cfg.MaxBodyBytes)),
		grpc.MaxConcurrentStreams(uint32(r.cfg.MaxConcurrent)),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.ConnectionTimeout(readHeaderTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: idleTimeout}),
		grpc.UnaryInterceptor(r.grpcLimit),
	)
	collogspb.RegisterLogsServiceServer(s, grpcLogs{r: r})
	colmetricpb.RegisterMetricsServiceServer(s, grpcMetrics{r: r})
	coltracepb.RegisterTraceServiceServer(s, grpcTraces{r: r})
	return s
}

// grpcLimit bounds the calls in progress and the time one may take.
func (r *Receiver) grpcLimit(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReadTimeout)
	defer cancel()
	if !acquire(ctx, r.grpcSem) {
		return nil, status.Error(codes.DeadlineExceeded, "receiver busy")
	}
	defer func() { <-r.grpcSem }()
	return handler(ctx, req)
}

type grpcTraces struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (g grpcTraces) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	return g.r.traces(ctx, req), nil
}

type grpcMetrics struct {
	colmetricpb.UnimplementedMetricsServiceServer
	r *Receiver
}

func (g grpcMetrics) Export(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	return g.r.metrics(ctx, req), nil
}

type grpcLogs struct {
	collogspb.UnimplementedLogsServiceServer
	r *Receiver
}

func (g grpcLogs) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	return g.r.logs(ctx, req), nil
}
