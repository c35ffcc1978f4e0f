package sink_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// FuzzHandler checks that any body is answered 200 or 400 (or 413), never a panic, for both
// encodings and every signal.
func FuzzHandler(f *testing.F) {
	proto, err := ptraceotlp.NewExportRequestFromTraces(tracesOf(spanSpec{name: "seed", requestID: "r", traceID: 1, spanID: 1})).MarshalProto()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(proto, false, uint8(0))
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}]}]}]}`), true, uint8(0))
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","sum":{"dataPoints":[{"asInt":"1"}]}}]}]}]}`), true, uint8(1))
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}`), true, uint8(2))
	f.Add([]byte{0x0a, 0x80}, false, uint8(2))
	signals := []sink.Signal{sink.SignalTraces, sink.SignalMetrics, sink.SignalLogs}
	s := sink.New(sink.Options{MaxBodyBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, body []byte, json bool, sig uint8) {
		ct := "application/x-protobuf"
		if json {
			ct = "application/json"
		}
		req := httptest.NewRequest(http.MethodPost, signals[int(sig)%len(signals)].Path(), bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if c := rec.Code; c != 200 && c != 400 && c != 413 {
			t.Errorf("status %d for %q", c, body)
		}
		s.Reset()                      // keep memory flat over long runs
		_ = s.Snapshot().Invocations() // the views must not panic on odd data either
	})
}
