package filter

import (
	"go.opentelemetry.io/otel/log"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
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
