package receiver

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func TestUnmarshalJSONReadsIDsAsHex(t *testing.T) {
	var tr coltracepb.ExportTraceServiceRequest
	fixture(t, "traces", &tr)
	sp := tr.ResourceSpans[0].ScopeSpans[0].Spans[0]
	for _, c := range []struct{ name, got, want string }{
		{"trace ID", hex.EncodeToString(sp.TraceId), "5b8efff798038103d269b633813fc60c"},
		{"span ID", hex.EncodeToString(sp.SpanId), "eee19b7ec3c1b174"},
		{"parent span ID", hex.EncodeToString(sp.ParentSpanId), "eee19b7ec3c1b173"},
		{"link trace ID", hex.EncodeToString(sp.Links[0].TraceId), "0102030405060708090a0b0c0d0e0f10"},
		{"link span ID", hex.EncodeToString(sp.Links[0].SpanId), "1112131415161718"},
	} {
		t.Run("the "+c.name+" is the hex value", func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %s, want %s", c.got, c.want)
			}
		})
	}
	t.Run("64-bit integers given as strings are exact", func(t *testing.T) {
		if sp.StartTimeUnixNano != 1544712660000000000 || sp.Events[0].TimeUnixNano != 1544712660500000000 {
			t.Errorf("times %d %d", sp.StartTimeUnixNano, sp.Events[0].TimeUnixNano)
		}
	})
	t.Run("protojson alone would read the hex IDs wrongly", func(t *testing.T) {
		var naive coltracepb.ExportTraceServiceRequest
		err := protojson.Unmarshal(fixture(t, "traces", nil), &naive)
		if err == nil && len(naive.ResourceSpans[0].ScopeSpans[0].Spans[0].TraceId) == 16 &&
			bytes.Equal(naive.ResourceSpans[0].ScopeSpans[0].Spans[0].TraceId, sp.TraceId) {
			t.Error("protojson decoded the hex trace ID correctly: the conversion is not needed")
		}
	})
	var lg collogspb.ExportLogsServiceRequest
	fixture(t, "logs", &lg)
	t.Run("log records keep their trace context", func(t *testing.T) {
		rec := lg.ResourceLogs[0].ScopeLogs[0].LogRecords[0]
		if hex.EncodeToString(rec.TraceId) != "5b8efff798038103d269b633813fc60c" || hex.EncodeToString(rec.SpanId) != "eee19b7ec3c1b174" {
			t.Errorf("trace %x span %x", rec.TraceId, rec.SpanId)
		}
	})
	var mt colmetricpb.ExportMetricsServiceRequest
	fixture(t, "metrics", &mt)
	t.Run("exemplars keep their trace context", func(t *testing.T) {
		ex := mt.ResourceMetrics[0].ScopeMetrics[0].Metrics[2].GetHistogram().DataPoints[0].Exemplars[0]
		if hex.EncodeToString(ex.TraceId) != "5b8efff798038103d269b633813fc60c" {
			t.Errorf("exemplar trace %x", ex.TraceId)
		}
	})
}

func TestJSONRoundTrip(t *testing.T) {
	for _, name := range []string{"traces", "logs", "metrics"} {
		t.Run(name+" survive MarshalJSON and UnmarshalJSON unchanged", func(t *testing.T) {
			var m, back proto.Message
			switch name {
			case "traces":
				m, back = &coltracepb.ExportTraceServiceRequest{}, &coltracepb.ExportTraceServiceRequest{}
			case "logs":
				m, back = &collogspb.ExportLogsServiceRequest{}, &collogspb.ExportLogsServiceRequest{}
			default:
				m, back = &colmetricpb.ExportMetricsServiceRequest{}, &colmetricpb.ExportMetricsServiceRequest{}
			}
			fixture(t, name, m)
			b, err := MarshalJSON(m)
			if err != nil {
				t.Fatal(err)
			}
			if name == "traces" && !strings.Contains(string(b), `"5b8efff798038103d269b633813fc60c"`) {
				t.Errorf("MarshalJSON does not write hex IDs: %s", b)
			}
			if err := UnmarshalJSON(b, back); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(m, back) {
				t.Error("round trip changed the message")
			}
		})
	}
}

func TestUnmarshalJSONRefuses(t *testing.T) {
	for _, c := range []struct{ name, body string }{
		{"a trace ID that is not hex", `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"XYZ"}]}]}]}`},
		{"a span ID of the wrong length", `{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"abcd"}]}]}]}`},
		{"a body that is not JSON", `not json`},
		{"two JSON values", `{} {}`},
		{"a field of the wrong type", `{"resourceSpans":"x"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := UnmarshalJSON([]byte(c.body), &coltracepb.ExportTraceServiceRequest{}); err == nil {
				t.Error("accepted")
			}
		})
	}
	t.Run("unknown fields are ignored, as the specification asks", func(t *testing.T) {
		if err := UnmarshalJSON([]byte(`{"resourceSpans":[],"futureField":1}`), &coltracepb.ExportTraceServiceRequest{}); err != nil {
			t.Error(err)
		}
	})
}
