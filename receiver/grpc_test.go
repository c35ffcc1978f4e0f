package receiver

import (
	"context"
	"strings"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func dial(t *testing.T, r *Receiver) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestGRPCAccepts(t *testing.T) {
	var tr coltracepb.ExportTraceServiceRequest
	fixture(t, "traces", &tr)
	var lg collogspb.ExportLogsServiceRequest
	fixture(t, "logs", &lg)
	var mt colmetricpb.ExportMetricsServiceRequest
	fixture(t, "metrics", &mt)
	sink := &fakeSink{}
	r := start(t, sink, Config{})
	cc := dial(t, r)
	ctx := context.Background()
	t.Run("traces sent with gzip are handed over as sent", func(t *testing.T) {
		resp, err := coltracepb.NewTraceServiceClient(cc).Export(ctx, &tr, grpc.UseCompressor(gzip.Name))
		if err != nil || resp.PartialSuccess != nil || len(sink.traces) != 1 || !proto.Equal(sink.traces[0], &tr) {
			t.Errorf("err %v, resp %v", err, resp)
		}
	})
	t.Run("logs are handed over as sent", func(t *testing.T) {
		_, err := collogspb.NewLogsServiceClient(cc).Export(ctx, &lg)
		if err != nil || len(sink.logs) != 1 || !proto.Equal(sink.logs[0], &lg) {
			t.Error(err)
		}
	})
	t.Run("metrics are handed over as sent", func(t *testing.T) {
		_, err := colmetricpb.NewMetricsServiceClient(cc).Export(ctx, &mt)
		if err != nil || len(sink.metrics) != 1 || !proto.Equal(sink.metrics[0], &mt) {
			t.Error(err)
		}
	})
	sink.mu.Lock()
	sink.full = true
	sink.mu.Unlock()
	t.Run("a full buffer is OK with every span rejected", func(t *testing.T) {
		resp, err := coltracepb.NewTraceServiceClient(cc).Export(ctx, &tr)
		ps := resp.GetPartialSuccess()
		if err != nil || ps.GetRejectedSpans() != 1 || !strings.Contains(ps.GetErrorMessage(), "buffer is full") {
			t.Errorf("err %v, partial success %v", err, ps)
		}
	})
}

func TestGRPCRefusesAnOversizedMessage(t *testing.T) {
	sink := &fakeSink{}
	r := start(t, sink, Config{MaxBodyBytes: 64 << 10})
	cc := dial(t, r)
	big := &coltracepb.ExportTraceServiceRequest{}
	fixture(t, "traces", big)
	big.ResourceSpans[0].Resource.Attributes = append(big.ResourceSpans[0].Resource.Attributes,
		&commonpb.KeyValue{Key: "big", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: strings.Repeat("x", 1<<20)}}})
	for _, c := range []struct {
		name string
		opts []grpc.CallOption
	}{
		{"uncompressed", nil},
		{"gzipped (a bomb: small on the wire)", []grpc.CallOption{grpc.UseCompressor(gzip.Name)}},
	} {
		t.Run(c.name+" is ResourceExhausted", func(t *testing.T) {
			_, err := coltracepb.NewTraceServiceClient(cc).Export(context.Background(), big, c.opts...)
			if status.Code(err) != codes.ResourceExhausted {
				t.Errorf("err %v", err)
			}
		})
	}
	if tr, _, _ := sink.received(); tr != 0 {
		t.Error("the sink got the oversized request")
	}
	// The next request is served.
	small := &coltracepb.ExportTraceServiceRequest{}
	fixture(t, "traces", small)
	if _, err := coltracepb.NewTraceServiceClient(cc).Export(context.Background(), small); err != nil {
		t.Error(err)
	}
}
