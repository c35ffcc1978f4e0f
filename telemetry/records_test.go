package telemetry

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// recordDecoders are the hand decoders beside the type json.Unmarshal
// fills in their place.
var recordDecoders = []struct {
	typ    Type
	decode func([]byte) (any, bool)
	target func() any
}{
	{TypeStart, func(b []byte) (any, bool) { return decodeStart(b) }, func() any { return new(Start) }},
	{TypeRuntimeDone, func(b []byte) (any, bool) { return decodeRuntimeDone(b) }, func() any { return new(RuntimeDone) }},
	{TypeReport, func(b []byte) (any, bool) { return decodeReport(b) }, func() any { return new(Report) }},
}

// checkRecordDecoders fails t when a hand decoder accepts rec and its
// result differs from json.Unmarshal's, or json.Unmarshal fails.
func checkRecordDecoders(t *testing.T, rec []byte) (accepted int) {
	t.Helper()
	for _, d := range recordDecoders {
		got, ok := d.decode(rec)
		if !ok {
			continue
		}
		accepted++
		want := d.target()
		if err := json.Unmarshal(rec, want); err != nil {
			t.Fatalf("%s: the hand decoder accepted %q, json.Unmarshal: %v", d.typ, rec, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s of %q:\nhand decoder   %+v\njson.Unmarshal %+v", d.typ, rec, got, want)
		}
	}
	return accepted
}

// fixtureRecords returns the record of every platform fixture.
func fixtureRecords(t testing.TB) map[string][]byte {
	files, _ := filepath.Glob("testdata/platform.*.json")
	lmi, _ := filepath.Glob("testdata/rie-lmi/*.json")
	recs := map[string][]byte{}
	for _, name := range append(files, lmi...) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var evs []struct {
			Type   string          `json:"type"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(b, &evs); err != nil {
			var ev struct {
				Type   string          `json:"type"`
				Record json.RawMessage `json:"record"`
			}
			if json.Unmarshal(b, &ev) != nil {
				continue
			}
			evs = append(evs, ev)
		}
		for i, ev := range evs {
			if strings.HasPrefix(ev.Type, "platform.") && len(ev.Record) > 0 {
				recs[filepath.Base(name)+"#"+ev.Type+"/"+string(rune('0'+i%10))] = ev.Record
			}
		}
	}
	return recs
}

func TestRecordDecodersMatchEncodingJSON(t *testing.T) {
	for name, rec := range fixtureRecords(t) {
		t.Run("the hand decoders agree with json.Unmarshal on "+name, func(t *testing.T) {
			checkRecordDecoders(t, rec)
		})
	}
	tests := []struct {
		name   string
		rec    string
		decode func([]byte) (any, bool)
		fast   bool
	}{
		{"a plain runtimeDone takes the fast path", `{"requestId":"r","status":"success","metrics":{"durationMs":1.5,"producedBytes":8},"spans":[{"name":"responseLatency","start":"2022-10-21T14:05:03.165Z","durationMs":2598.0}],"tracing":{"spanId":"s","type":"X-Amzn-Trace-Id","value":"Root=1"}}`, recordDecoders[1].decode, true},
		{"an empty spans list stays an empty list", `{"requestId":"r","status":"success","spans":[]}`, recordDecoders[1].decode, true},
		{"unknown keys are skipped", `{"requestId":"r","extra":{"a":[1,2]},"status":"success"}`, recordDecoders[2].decode, true},
		{"escapes in values are resolved", `{"requestId":"r\u00e9\n","version":"$LATEST"}`, recordDecoders[0].decode, true},
		{"a key in another case goes to encoding/json", `{"RequestId":"r"}`, recordDecoders[0].decode, false},
		{"an escaped key goes to encoding/json", `{"request\u0049d":"r"}`, recordDecoders[0].decode, false},
		{"a repeated key goes to encoding/json", `{"requestId":"a","requestId":"b"}`, recordDecoders[0].decode, false},
		{"a null goes to encoding/json", `{"requestId":"r","tracing":null}`, recordDecoders[0].decode, false},
		{"a fractional integer goes to encoding/json", `{"requestId":"r","metrics":{"durationMs":1,"billedDurationMs":1.5}}`, recordDecoders[2].decode, false},
		{"a number where a string belongs goes to encoding/json", `{"requestId":7}`, recordDecoders[2].decode, false},
		{"a span that is not an object goes to encoding/json", `{"requestId":"r","spans":[1]}`, recordDecoders[1].decode, false},
		{"a malformed span start goes to encoding/json", `{"requestId":"r","spans":[{"name":"x","start":"yesterday"}]}`, recordDecoders[1].decode, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.decode([]byte(tt.rec)); ok != tt.fast {
				t.Errorf("hand decoder ok = %v, want %v", ok, tt.fast)
			}
			checkRecordDecoders(t, []byte(tt.rec))
		})
	}
}

func FuzzRecordDecoders(f *testing.F) {
	for _, rec := range fixtureRecords(f) {
		f.Add(rec)
	}
	f.Add([]byte(`{"requestId":"r","spans":[{"name":"a","start":"2022-10-21T14:05:03.165+02:00","durationMs":1e3}],"metrics":{"durationMs":-0.5,"producedBytes":-1}}`))
	f.Add([]byte(`{"REQUESTID":"r","ſtatus":"x","metrics":{"maxMemoryUsedMB":9223372036854775808}}`))
	f.Fuzz(func(t *testing.T, rec []byte) {
		if !validJSON(rec) {
			return // the decoders run on validated records only
		}
		rec = rec[skipWS(rec, 0):]
		checkRecordDecoders(t, rec)
	})
}
