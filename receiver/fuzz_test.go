package receiver

import (
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// The decoders of the three signals, fuzzed as the HTTP handler calls
// them: protobuf (ct false) or OTLP/JSON (ct true). A body must either be
// refused or decode to a message that survives a protobuf round trip.

func fuzzDecode[M proto.Message](f *testing.F, name string, newMsg func() M) {
	m := newMsg()
	js := fixture(f, name, m)
	pb, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pb, false)
	f.Add(js, true)
	f.Add([]byte(`{}`), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		ct := ctProtobuf
		if isJSON {
			ct = ctJSON
		}
		got := newMsg()
		if err := decode(ct, body, got); err != nil {
			return
		}
		b, err := proto.Marshal(got)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		back := newMsg()
		if err := proto.Unmarshal(b, back); err != nil || !proto.Equal(got, back) {
			t.Fatalf("round trip: %v", err)
		}
		if isJSON {
			// What decodes from JSON encodes back to JSON that decodes the same.
			j, err := MarshalJSON(got)
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			again := newMsg()
			if err := UnmarshalJSON(j, again); err != nil || !proto.Equal(got, again) {
				t.Fatalf("JSON round trip: %v", err)
			}
		}
	})
}

func FuzzDecodeTraces(f *testing.F) {
	fuzzDecode(f, "traces", func() *coltracepb.ExportTraceServiceRequest { return &coltracepb.ExportTraceServiceRequest{} })
}

func FuzzDecodeLogs(f *testing.F) {
	fuzzDecode(f, "logs", func() *collogspb.ExportLogsServiceRequest { return &collogspb.ExportLogsServiceRequest{} })
}

func FuzzDecodeMetrics(f *testing.F) {
	fuzzDecode(f, "metrics", func() *colmetricpb.ExportMetricsServiceRequest { return &colmetricpb.ExportMetricsServiceRequest{} })
}
