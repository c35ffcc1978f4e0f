package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The hand-written scanner (jsonscan.go) earns its place only while it
// beats encoding/json at the same job. decodeWithEncodingJSON is that job
// done with encoding/json alone, kept to the events DecodeBatch returns
// for well-formed batches; TestEncodingJSONDecoderAgrees proves the two
// agree on the benchmark bodies, and BenchmarkDecodeBatchEncodingJSON
// measures it beside BenchmarkDecodeBatch:
//
//	go test -run '^$' -bench 'DecodeBatch' -benchmem ./telemetry

// decodeWithEncodingJSON decodes a batch of well-formed events with
// encoding/json: the array into raw elements, each element into its
// envelope, the record into its per-type struct, and a log line that is a
// JSON object into a map.
func decodeWithEncodingJSON(body []byte) ([]Event, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, err
	}
	events := make([]Event, len(raws))
	for i, raw := range raws {
		var env struct {
			Time   time.Time       `json:"time"`
			Type   Type            `json:"type"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		rec, err := recordWithEncodingJSON(env.Type, env.Record)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		events[i] = Event{Time: env.Time.UTC(), Type: env.Type, Record: rec, Size: len(raw)}
	}
	return events, nil
}

func recordWithEncodingJSON(t Type, rec json.RawMessage) (any, error) {
	var v any
	switch t {
	case TypeFunction, TypeExtensionLog:
		return logWithEncodingJSON(rec)
	case TypeInitStart:
		v = new(InitStart)
	case TypeInitRuntimeDone:
		v = new(InitRuntimeDone)
	case TypeInitReport:
		v = new(InitReport)
	case TypeStart:
		v = new(Start)
	case TypeRuntimeDone:
		v = new(RuntimeDone)
	case TypeReport:
		v = new(Report)
	case TypeRestoreStart:
		v = new(RestoreStart)
	case TypeRestoreRuntimeDone:
		v = new(RestoreRuntimeDone)
	case TypeRestoreReport:
		v = new(RestoreReport)
	case TypeExtension:
		v = new(Extension)
	case TypeTelemetrySubscription:
		v = new(TelemetrySubscription)
	case TypeLogsDropped:
		v = new(LogsDropped)
	default:
		return nil, fmt.Errorf("type %q not in the benchmark", t)
	}
	return v, json.Unmarshal(rec, v)
}

func logWithEncodingJSON(rec json.RawMessage) (*Log, error) {
	l := &Log{}
	obj := []byte(rec)
	if rec[0] == '"' {
		if err := json.Unmarshal(rec, &l.Text); err != nil {
			return nil, err
		}
		obj = []byte(strings.TrimSpace(l.Text))
		if len(obj) < 2 || obj[0] != '{' || !json.Valid(obj) {
			return l, nil
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(obj, &fields); err != nil {
		return nil, err
	}
	l.JSON = true
	for k, v := range fields {
		var s string
		if v[0] != '"' || json.Unmarshal(v, &s) != nil {
			continue
		}
		switch k {
		case "timestamp":
			if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
				l.Timestamp = ts.UTC()
				delete(fields, k)
			}
		case "level":
			l.Level = s
			delete(fields, k)
		case "requestId":
			l.RequestID = s
			delete(fields, k)
		case "message":
			l.Message = s
			delete(fields, k)
		}
	}
	if len(fields) > 0 {
		l.Fields = fields
	}
	return l, nil
}

// decodeBenchBodies are the bodies both decoders are measured on: the
// captured invoke batch, every single-event fixture in one batch, and 1000
// function log lines of which a quarter are JSON lines, as AWS's JSON log
// format sends them.
func decodeBenchBodies(t testing.TB) []struct {
	name string
	body []byte
} {
	var fixtures bytes.Buffer
	fixtures.WriteByte('[')
	for _, pattern := range []string{"platform.*.json", "function.*.json", "extension.*.json"} {
		files, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("no fixtures match %s: %v", pattern, err)
		}
		for _, f := range files {
			if fixtures.Len() > 1 {
				fixtures.WriteByte(',')
			}
			fixtures.Write(readFixture(t, filepath.Base(f)))
		}
	}
	fixtures.WriteByte(']')

	var lines strings.Builder
	lines.WriteByte('[')
	for i := range 1000 {
		if i > 0 {
			lines.WriteByte(',')
		}
		if i%4 == 3 {
			fmt.Fprintf(&lines, `{"time":"2026-11-26T00:45:33.%03dZ","type":"function","record":{"timestamp":"2026-11-26T00:45:33.%03dZ","level":"INFO","requestId":"e3c00079-0f56-4943-a190-0821f0e429bd","message":"processed item %d of the batch"}}`, i%1000, i%1000, i)
		} else {
			fmt.Fprintf(&lines, `{"time":"2026-11-26T00:45:33.%03dZ","type":"function","record":"2026-11-26T00:45:33.%03dZ\te3c00079-0f56-4943-a190-0821f0e429bd\tINFO\tprocessed item %d of the batch"}`, i%1000, i%1000, i)
		}
	}
	lines.WriteByte(']')

	return []struct {
		name string
		body []byte
	}{
		{"fixture batch", readFixture(t, "telemetry.post-body.invoke-batch.json")},
		{"every event fixture", fixtures.Bytes()},
		{"1000 log lines", []byte(lines.String())},
	}
}

func TestEncodingJSONDecoderAgrees(t *testing.T) {
	for _, c := range decodeBenchBodies(t) {
		t.Run("encoding/json decodes the "+c.name+" as DecodeBatch does", func(t *testing.T) {
			want, st, err := DecodeBatch(c.body)
			if err != nil || st.Bad != 0 || st.Unknown != 0 {
				t.Fatalf("DecodeBatch: %v, stats %+v", err, st)
			}
			got, err := decodeWithEncodingJSON(c.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d events, DecodeBatch has %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("event %d:\nencoding/json %+v\n  DecodeBatch %+v", i, got[i], want[i])
				}
			}
		})
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	benchmarkDecode(b, func(body []byte) error {
		_, _, err := DecodeBatch(body)
		return err
	})
}

// BenchmarkDecodeBatchEncodingJSON is BenchmarkDecodeBatch with
// decodeWithEncodingJSON: what the hand-written scanner is measured against.
func BenchmarkDecodeBatchEncodingJSON(b *testing.B) {
	benchmarkDecode(b, func(body []byte) error {
		_, err := decodeWithEncodingJSON(body)
		return err
	})
}

// benchmarkDecode runs decode on each of decodeBenchBodies.
func benchmarkDecode(b *testing.B, decode func(body []byte) error) {
	for _, c := range decodeBenchBodies(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if err := decode(c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
