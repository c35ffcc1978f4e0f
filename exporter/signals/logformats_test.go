package signals

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// logFormatFile is a testdata/logformats fixture: log records as a runtime
// writes them (Telemetry API function records), the public source of the
// format, and what each record must map to.
type logFormatFile struct {
	Source string `json:"source"`
	Format string `json:"format"` // AWS_LAMBDA_LOG_FORMAT the records come from
	Cases  []struct {
		Name    string            `json:"name"`
		Records []json.RawMessage `json:"records"` // one record, or the lines of one
		Want    struct {
			Body                string `json:"body"`
			SeverityNumber      int    `json:"severityNumber"`
			SeverityText        string `json:"severityText"`
			ExceptionType       string `json:"exceptionType"`
			ExceptionMessage    string `json:"exceptionMessage"`
			ExceptionStacktrace string `json:"exceptionStacktrace"`
			OutOfMemory         bool   `json:"outOfMemory"`
		} `json:"want"`
	} `json:"cases"`
}

// logFormatRequestID is the request ID every fixture's records belong to.
const logFormatRequestID = "8f5b1c2e-6a3d-4e8f-9b1a-2c3d4e5f6a71"

// TestLogFormats maps each runtime's log records, in Lambda's JSON and
// text formats and as functions write JSON themselves, inside an open
// invocation: each must give one record with the right body, severity
// and exception attributes, belong to the invocation (request ID and
// trace context), and mark it out of memory exactly when it says so.
func TestLogFormats(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "logformats", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var f logFormatFile
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if f.Source == "" || len(f.Cases) == 0 {
			t.Fatalf("%s: a fixture names its source and has cases", file)
		}
		for _, c := range f.Cases {
			t.Run(filepath.Base(file)+"/"+c.Name, func(t *testing.T) {
				lc := &logCollector{}
				m, err := NewMapper(MapperOptions{Config: testConfig(), Logs: lc, Now: func() time.Time { return fixedNow }, Rand: detRand()})
				if err != nil {
					t.Fatal(err)
				}
				m.Consume(telemetry.Event{Time: at(0), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: logFormatRequestID,
					Tracing: &telemetry.Tracing{Type: "X-Amzn-Trace-Id", Value: "Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=1"}}})
				for _, ev := range decodeBatch(t, functionBatch(t, c.Records)) {
					m.Consume(ev)
				}
				m.FlushLogs()
				if len(lc.recs) != 1 {
					t.Fatalf("%d records, want 1", len(lc.recs))
				}
				r := &lc.recs[0]
				w := &c.Want
				if got := r.Body().AsString(); got != w.Body {
					t.Errorf("body = %q\nwant   %q", got, w.Body)
				}
				if r.Severity() != log.Severity(w.SeverityNumber) || r.SeverityText() != w.SeverityText {
					t.Errorf("severity = %d %q, want %d %q", r.Severity(), r.SeverityText(), w.SeverityNumber, w.SeverityText)
				}
				attrs := recordAttrs(r)
				for k, want := range map[string]string{
					attrExceptionType: w.ExceptionType, attrExceptionMessage: w.ExceptionMessage,
					attrExceptionStacktrace: w.ExceptionStacktrace, attrInvocationID: logFormatRequestID,
				} {
					if got := attrs[k]; got != want {
						t.Errorf("%s = %q\nwant %q", k, got, want)
					}
				}
				inv := m.open[logFormatRequestID]
				if r.TraceID() != inv.sc.TraceID() || r.SpanID() != inv.sc.SpanID() {
					t.Errorf("trace context %s/%s, want the invocation's %s/%s", r.TraceID(), r.SpanID(), inv.sc.TraceID(), inv.sc.SpanID())
				}
				if inv.oom != w.OutOfMemory {
					t.Errorf("invocation out of memory = %v, want %v", inv.oom, w.OutOfMemory)
				}
			})
		}
	}
}

// functionBatch builds a Telemetry API body of function records.
func functionBatch(t *testing.T, records []json.RawMessage) []byte {
	t.Helper()
	type event struct {
		Time   string          `json:"time"`
		Type   string          `json:"type"`
		Record json.RawMessage `json:"record"`
	}
	evs := make([]event, len(records))
	for i, r := range records {
		evs[i] = event{Time: "2026-11-26T01:00:00.001Z", Type: "function", Record: r}
	}
	b, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recordAttrs returns a record's string attributes by key.
func recordAttrs(r *sdklog.Record) map[string]string {
	m := map[string]string{}
	r.WalkAttributes(func(kv attribute.KeyValue) bool {
		m[string(kv.Key)] = kv.Value.AsString()
		return true
	})
	return m
}

// BenchmarkMapLogFormats maps every record of the testdata/logformats
// fixtures (JSON and text, errors with stack traces included) inside one
// invocation; one op is one record.
func BenchmarkMapLogFormats(b *testing.B) {
	files, err := filepath.Glob(filepath.Join("testdata", "logformats", "*.json"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no fixtures: %v", err)
	}
	var recs []json.RawMessage
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		var f logFormatFile
		if err := json.Unmarshal(data, &f); err != nil {
			b.Fatal(err)
		}
		for _, c := range f.Cases {
			recs = append(recs, c.Records...)
		}
	}
	evs, _, err := telemetry.DecodeBatch(functionBatchB(recs))
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewMapper(MapperOptions{Config: testConfig(), Logs: discardLogs{}})
	if err != nil {
		b.Fatal(err)
	}
	m.Consume(telemetry.Event{Time: at(0), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: logFormatRequestID}})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Consume(evs[i%len(evs)])
		i++
	}
	m.FlushLogs()
}

func functionBatchB(records []json.RawMessage) []byte {
	var b []byte
	b = append(b, '[')
	for i, r := range records {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"time":"2026-11-26T01:00:00.001Z","type":"function","record":`...)
		b = append(b, r...)
		b = append(b, '}')
	}
	return append(b, ']')
}
