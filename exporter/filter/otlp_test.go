package filter

import (
	"strings"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func TestOTLPRecords(t *testing.T) {
	f := newFilter(t, map[string]string{"SLIPSTREAM_LOGS_MIN_SEVERITY": "info", "SLIPSTREAM_LOG_FIELDS_DENY": "email"})
	t.Run("a log record below the minimum severity is dropped", func(t *testing.T) {
		if f.LogRecord(&logspb.LogRecord{SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_DEBUG}) {
			t.Error("kept")
		}
	})
	t.Run("a log record's body and attributes are redacted and denied fields removed", func(t *testing.T) {
		r := &logspb.LogRecord{
			SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
			Body:           &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "key " + accessKeyID}},
			Attributes: []*commonpb.KeyValue{str("password", "hunter2"), str("email", "a@b"), str("note", "Bearer "+bearer),
				{Key: "nested", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{str("api_key", "k1")}}}}}},
		}
		if !f.LogRecord(r) {
			t.Fatal("dropped")
		}
		out := protojson.Format(r)
		for _, s := range []string{accessKeyID, "hunter2", "a@b", bearer, "k1"} {
			if strings.Contains(out, s) {
				t.Errorf("record %s holds %q", out, s)
			}
		}
		if len(r.Attributes) != 3 {
			t.Errorf("attributes = %d, want 3", len(r.Attributes))
		}
	})
	t.Run("a span's exception event is redacted", func(t *testing.T) {
		s := &tracepb.Span{Events: []*tracepb.Span_Event{{Name: "exception", Attributes: []*commonpb.KeyValue{str("exception.message", "bad token "+jwt)}}}}
		if !f.Span(s) {
			t.Fatal("dropped")
		}
		if strings.Contains(protojson.Format(s), jwt) {
			t.Errorf("span holds the JWT")
		}
	})
}

func TestOTLPSampling(t *testing.T) {
	f := newFilter(t, map[string]string{"SLIPSTREAM_TRACE_SAMPLE_RATIO": "0.5"})
	kept, dropped := make([]byte, 16), make([]byte, 16)
	kept[8], dropped[8] = 0x10, 0xf0 // below and above half of 2^63 after >>1
	for _, tt := range []struct {
		name string
		id   []byte
		want bool
	}{{"a span of a kept trace is kept", kept, true}, {"a span of a dropped trace is dropped", dropped, false}} {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.Span(&tracepb.Span{TraceId: tt.id}); got != tt.want {
				t.Errorf("Span = %v", got)
			}
			if got := f.LogRecord(&logspb.LogRecord{TraceId: tt.id}); got != tt.want {
				t.Errorf("LogRecord = %v", got)
			}
		})
	}
}
