package signals

import (
	"encoding/json"

	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// What the pre-queue step (package exporter/filter) needs to decide what
// leaves the function the way the mapper reads a record, so that both
// agree on a line's severity, its invocation and an invocation's trace.

// Sampler decides, once per invocation, whether its spans are exported
// (SLIPSTREAM_TRACE_SAMPLE_RATIO). traceID is the invocation's X-Ray Root
// when hasTrace, else zero (the decision then comes from requestID).
type Sampler interface {
	KeepInvocation(traceID trace.TraceID, hasTrace bool, requestID string) bool
}

// LogSeverity returns the severity the mapper gives a function or
// extension log line (log.SeverityUndefined when it cannot be told) and
// the request ID the line names, if any.
func LogSeverity(r *telemetry.Log) (log.Severity, string) {
	if !r.JSON {
		sev, _, reqID := parseTextSeverity(r.Text)
		return sev, reqID
	}
	level, reqID := r.Level, r.RequestID
	if level == "" {
		if raw, ok := r.Fields["log_level"]; ok && len(raw) > 0 && raw[0] == '"' {
			level = jsonString(raw)
		}
	}
	if reqID == "" {
		if raw, ok := r.Fields["AWSRequestId"]; ok && len(raw) > 0 && raw[0] == '"' {
			reqID = jsonString(raw)
		}
	}
	return levelSeverity(level), reqID
}

// ContinuesRecord reports whether a text line continues the record before
// it (a stack trace line, a Go panic's goroutine dump) rather than
// starting one.
func ContinuesRecord(line string) bool {
	return isContinuation(line, &pendingLog{goStack: true})
}

// XRayTraceID returns the trace ID of an X-Amzn-Trace-Id value's Root.
func XRayTraceID(header string) (trace.TraceID, bool) {
	h := parseXRay(header)
	return h.TraceID, h.HasTrace
}

// JSONString returns a JSON string's value, or the raw text for other JSON.
func JSONString(raw json.RawMessage) string { return jsonString(raw) }
