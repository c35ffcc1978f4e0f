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

// Items returns the number of items of an OTLP request: spans, data points
// or log records (0 for another message).
func Items(msg any) int64 {
	var n int64
	switch m := msg.(type) {
	case *coltracepb.ExportTraceServiceRequest:
		for _, rs := range m.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				n += int64(len(ss.GetSpans()))
			}
		}
	case *collogspb.ExportLogsServiceRequest:
		for _, rl := range m.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				n += int64(len(sl.GetLogRecords()))
			}
		}
	case *colmetricpb.ExportMetricsServiceRequest:
		for _, rm := range m.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, mt := range sm.GetMetrics() {
					n += int64(len(mt.GetGauge().GetDataPoints()) + len(mt.GetSum().GetDataPoints()) +
						len(mt.GetHistogram().GetDataPoints()) + len(mt.GetExponentialHistogram().GetDataPoints()) +
						len(mt.GetSummary().GetDataPoints()))
				}
			}
		}
	}
	return n
}
