package filter

import (
	"go.opentelemetry.io/otel/log"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// The same decisions for OTLP data the function sends itself (the
// receiver applies them before it queues anything).

// LogRecord filters one OTLP log record in place: false drops it (below
// the minimum severity, or of a trace the sampler drops); otherwise its
// body and attributes are redacted and the field lists applied to its
// attributes.
func (f *Filter) LogRecord(r *logspb.LogRecord) bool {
	if f == nil || f.disabled || r == nil {
		return true
	}
	if sev := log.Severity(r.GetSeverityNumber()); f.minSev != log.SeverityUndefined && sev != log.SeverityUndefined && sev < f.minSev {
		f.stats.BelowSeverity.Add(1)
		return false
	}
	if id := r.GetTraceId(); len(id) == 16 && !f.KeepTrace([16]byte(id)) {
		f.stats.Unsampled.Add(1)
		return false
	}
	changed := f.anyValue(r.Body)
	var kept []*commonpb.KeyValue
	r.Attributes, kept = r.Attributes[:0], r.Attributes
	for _, kv := range kept {
		if !f.fieldKept(kv.GetKey()) {
			changed = true
			continue
		}
		if f.keyValue(kv) {
			changed = true
		}
		r.Attributes = append(r.Attributes, kv)
	}
	if changed {
		f.stats.Redacted.Add(1)
	}
	return true
}

// Span filters one OTLP span in place: false drops it (of a trace the
// sampler drops); otherwise the string values of its attributes and of
// its events' attributes (exception.message, exception.stacktrace) are
// redacted.
func (f *Filter) Span(s *tracepb.Span) bool {
	if f == nil || f.disabled || s == nil {
		return true
	}
	if id := s.GetTraceId(); len(id) == 16 && !f.KeepTrace([16]byte(id)) {
		f.stats.Unsampled.Add(1)
		return false
	}
	changed := false
	for _, kv := range s.Attributes {
		changed = f.keyValue(kv) || changed
	}
	for _, ev := range s.Events {
		for _, kv := range ev.Attributes {
			changed = f.keyValue(kv) || changed
		}
	}
	if changed {
		f.stats.Redacted.Add(1)
	}
	return true
}

// keyValue redacts one attribute: the whole value when its key says it is
// a secret, else the strings in it.
func (f *Filter) keyValue(kv *commonpb.KeyValue) bool {
	if f.red == nil || kv == nil || kv.Value == nil {
		return false
	}
	if sensitiveKey(kv.Key) {
		if sv, ok := kv.Value.Value.(*commonpb.AnyValue_StringValue); ok && sv.StringValue == Redacted {
			return false
		}
		kv.Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: Redacted}}
		return true
	}
	return f.anyValue(kv.Value)
}

// anyValue redacts the strings of an OTLP value in place.
func (f *Filter) anyValue(v *commonpb.AnyValue) bool {
	if f.red == nil || v == nil {
		return false
	}
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		out, ok := f.red.text(x.StringValue)
		x.StringValue = out
		return ok
	case *commonpb.AnyValue_ArrayValue:
		changed := false
		for _, e := range x.ArrayValue.GetValues() {
			changed = f.anyValue(e) || changed
		}
		return changed
	case *commonpb.AnyValue_KvlistValue:
		changed := false
		for _, kv := range x.KvlistValue.GetValues() {
			changed = f.keyValue(kv) || changed
		}
		return changed
	}
	return false
}

// Request filters an OTLP export request the function sent (traces or
// logs; metrics pass unchanged, as they are never sampled) in place: the
// spans and log records Span and LogRecord drop are removed. A log record
// without a trace ID takes the sampling decision of requestID, the
// invocation it arrived during ("" when unknown: kept). It returns how
// many items were removed.
func (f *Filter) Request(msg proto.Message, requestID string) (removed int64) {
	if f == nil || f.disabled {
		return 0
	}
	switch m := msg.(type) {
	case *coltracepb.ExportTraceServiceRequest:
		for _, rs := range m.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				kept := ss.Spans[:0]
				for _, s := range ss.Spans {
					if f.Span(s) {
						kept = append(kept, s)
					} else {
						removed++
					}
				}
				clear(ss.Spans[len(kept):])
				ss.Spans = kept
			}
		}
	case *collogspb.ExportLogsServiceRequest:
		for _, rl := range m.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				kept := sl.LogRecords[:0]
				for _, r := range sl.LogRecords {
					ok := f.LogRecord(r)
					if ok && len(r.GetTraceId()) != 16 && !f.sample.all && requestID != "" && !f.keepRequest(requestID) {
						f.stats.Unsampled.Add(1)
						ok = false
					}
					if ok {
						kept = append(kept, r)
					} else {
						removed++
					}
				}
				clear(sl.LogRecords[len(kept):])
				sl.LogRecords = kept
			}
		}
	}
	return removed
}
