package exporter

import (
	"bytes"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// The function's own data in the invocation's trace: re-parenting onto
// the invocation span, and the resource attributes the agent adds.

// functionContext is what the worker asks the mapper (signals.Mapper has
// it; a mapper without it leaves the function's data where it was).
type functionContext interface {
	FunctionParent(traceID trace.TraceID) (span trace.SpanContext, xrayParent trace.SpanID, ok bool)
	InvocationSpan(requestID string) (trace.SpanContext, bool)
}

// prepareFn enriches the payload's resources and places it in its
// invocation's trace, once. A payload whose invocation the mapper does not
// know yet is looked at again at its next attempt.
func (w *worker) prepareFn(pl *fnPayload) {
	if pl.prepared {
		return
	}
	fc, _ := w.m.(functionContext)
	resolved := true
	switch m := pl.msg.(type) {
	case *coltracepb.ExportTraceServiceRequest:
		for _, rs := range m.ResourceSpans {
			rs.Resource = w.enrich(rs.Resource)
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					if fc != nil && !nest(fc, sp.TraceId, &sp.ParentSpanId) {
						resolved = false
					}
				}
			}
		}
	case *collogspb.ExportLogsServiceRequest:
		var sc trace.SpanContext
		if fc != nil {
			sc, _ = fc.InvocationSpan(pl.reqID)
		}
		for _, rl := range m.ResourceLogs {
			rl.Resource = w.enrich(rl.Resource)
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					if len(r.TraceId) == 0 && len(r.SpanId) == 0 && sc.IsValid() {
						tid, sid := sc.TraceID(), sc.SpanID()
						r.TraceId, r.SpanId = tid[:], sid[:]
					}
				}
			}
		}
	case *colmetricpb.ExportMetricsServiceRequest:
		for _, rm := range m.ResourceMetrics {
			rm.Resource = w.enrich(rm.Resource)
		}
	}
	pl.prepared = resolved
}

// nest makes the invocation span the parent of a span whose parent is the
// Lambda invocation's X-Ray segment (the Parent of the invocation's trace
// header, which the function's SDK continues from). It reports false when
// the span's trace is not (yet) known to be an invocation's.
func nest(fc functionContext, traceID []byte, parent *[]byte) bool {
	if len(traceID) != 16 || len(*parent) != 8 {
		return true // no trace context, or a root span: nothing to nest
	}
	sc, xp, ok := fc.FunctionParent(trace.TraceID(traceID))
	if !ok {
		return false
	}
	if xp.IsValid() && bytes.Equal(*parent, xp[:]) {
		sid := sc.SpanID()
		*parent = sid[:]
	}
	return true
}

// enrich adds to res the cloud.*, faas.* and service.instance.id
// attributes of the mapper's resource that res lacks.
func (w *worker) enrich(res *resourcepb.Resource) *resourcepb.Resource {
	if !w.cfg.ReceiverEnrich {
		return res
	}
	add := w.fnEnrichment()
	if len(add) == 0 {
		return res
	}
	if res == nil {
		res = &resourcepb.Resource{}
	}
	have := make(map[string]bool, len(res.Attributes))
	for _, kv := range res.Attributes {
		have[kv.Key] = true
	}
	for _, kv := range add {
		if !have[kv.Key] {
			res.Attributes = append(res.Attributes, kv)
		}
	}
	return res
}

// fnEnrichment returns the attributes enrichment adds, from the mapper's
// current resource (kept while the resource is the same).
func (w *worker) fnEnrichment() []*commonpb.KeyValue {
	res := w.m.Resource()
	if res == w.fnRes {
		return w.fnAdd
	}
	w.fnRes, w.fnAdd = res, enrichmentOf(res)
	return w.fnAdd
}

func enrichmentOf(res *resource.Resource) []*commonpb.KeyValue {
	var out []*commonpb.KeyValue
	for _, kv := range res.Attributes() {
		k := string(kv.Key)
		if !strings.HasPrefix(k, "cloud.") && !strings.HasPrefix(k, "faas.") && k != "service.instance.id" {
			continue
		}
		var v commonpb.AnyValue
		switch kv.Value.Type() {
		case attribute.STRING:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: kv.Value.AsString()}
		case attribute.INT64:
			v.Value = &commonpb.AnyValue_IntValue{IntValue: kv.Value.AsInt64()}
		case attribute.BOOL:
			v.Value = &commonpb.AnyValue_BoolValue{BoolValue: kv.Value.AsBool()}
		case attribute.FLOAT64:
			v.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: kv.Value.AsFloat64()}
		default:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: kv.Value.String()}
		}
		out = append(out, &commonpb.KeyValue{Key: k, Value: &v})
	}
	return out
}
