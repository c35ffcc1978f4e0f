package receiver

import (
	"context"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// The protocol-independent part of a request: hand it to the sink, turn
// its answer into the OTLP response (partial_success for what it did not
// take). Shared by OTLP/HTTP and OTLP/gRPC.

func (r *Receiver) note(res Result) string {
	r.st.requests.Add(1)
	if res.Rejected == 0 {
		return ""
	}
	r.st.rejected.Add(1)
	if res.Message == "" {
		return fullMessage
	}
	return res.Message
}

func (r *Receiver) traces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTraceServiceResponse {
	res := r.sink.ExportTraces(ctx, req)
	out := &coltracepb.ExportTraceServiceResponse{}
	if msg := r.note(res); msg != "" {
		out.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: res.Rejected, ErrorMessage: msg}
	}
	return out
}

func (r *Receiver) metrics(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) *colmetricpb.ExportMetricsServiceResponse {
	res := r.sink.ExportMetrics(ctx, req)
	out := &colmetricpb.ExportMetricsServiceResponse{}
	if msg := r.note(res); msg != "" {
		out.PartialSuccess = &colmetricpb.ExportMetricsPartialSuccess{RejectedDataPoints: res.Rejected, ErrorMessage: msg}
	}
	return out
}

func (r *Receiver) logs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) *collogspb.ExportLogsServiceResponse {
	res := r.sink.ExportLogs(ctx, req)
	out := &collogspb.ExportLogsServiceResponse{}
	if msg := r.note(res); msg != "" {
		out.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: res.Rejected, ErrorMessage: msg}
	}
	return out
}
