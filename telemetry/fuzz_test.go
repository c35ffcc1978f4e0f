package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func FuzzDecodeBatch(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	lmi, _ := filepath.Glob("testdata/rie-lmi/*.json")
	for _, name := range append(files, lmi...) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(append([]byte("["), b...), ']')) // single events as a batch
	}
	f.Add([]byte(`[{"time":"2022-08-02T12:01:23:521Z","type":"function","record":"{\"level\":\"INFO\",\"x\":1}"}]`))
	f.Add([]byte("[{\"time\":\"2022-10-21T14:05:03.165Z\",\"type\":\"extension\",\"record\":\"\xff\\\"\"}]"))

	f.Fuzz(func(t *testing.T, body []byte) {
		events, st, err := DecodeBatch(body)
		// The listener's cheap classification, made before answering, must
		// agree: a batch is always bracketed, a refusal always a non-array.
		switch kind := classify(body); {
		case err == nil && kind != bodyArray,
			errors.Is(err, ErrNotArray) && kind != bodyNotArray,
			errors.Is(err, ErrInvalidJSON) && kind == bodyNotArray && len(bytes.TrimSpace(body)) > 0:
			t.Fatalf("classified %d, DecodeBatch: %v", kind, err)
		}
		if err != nil {
			if events != nil || st != (BatchStats{}) {
				t.Fatalf("error %v with %d events, stats %+v", err, len(events), st)
			}
			return
		}
		if st.Events != len(events) || st.Bad < 0 || st.Unknown < 0 || st.Bad+st.Unknown > st.Events {
			t.Fatalf("stats %+v for %d events", st, len(events))
		}
		sum, nilRecords := 0, 0
		for i, ev := range events {
			if ev.Size <= 0 {
				t.Fatalf("event %d: size %d", i, ev.Size)
			}
			sum += ev.Size
			if ev.Record == nil {
				nilRecords++
				if ev.Raw == nil {
					t.Fatalf("event %d: neither record nor raw", i)
				}
				continue
			}
			if ev.Raw != nil {
				t.Fatalf("event %d: raw set on a decoded event", i)
			}
			if reflect.ValueOf(ev.Record).IsNil() { // every record type is a pointer
				t.Fatalf("event %d: a nil %T record", i, ev.Record)
			}
			if _, known := knownType([]byte(ev.Type)); !known {
				t.Fatalf("event %d: record %T for unknown type %q", i, ev.Record, ev.Type)
			}
			if l, ok := ev.Record.(*Log); ok && !l.JSON && l.Fields != nil {
				t.Fatalf("event %d: fields on a text line", i)
			}
		}
		if nilRecords != st.Bad+st.Unknown {
			t.Fatalf("%d nil records, stats %+v", nilRecords, st)
		}
		if sum > len(body) {
			t.Fatalf("sizes add to %d > body %d", sum, len(body))
		}
		// The zero-copy splitter must agree with encoding/json.
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			t.Fatalf("DecodeBatch accepted what encoding/json rejects: %v", err)
		}
		checkSplit(t, body)
		// String records must decode exactly as encoding/json decodes them.
		for i, raw := range raws {
			var env struct {
				Type   string          `json:"type"`
				Record json.RawMessage `json:"record"`
			}
			l, ok := events[i].Record.(*Log)
			if !ok || json.Unmarshal(raw, &env) != nil || len(env.Record) == 0 || env.Record[0] != '"' {
				continue
			}
			var s string
			if json.Unmarshal(env.Record, &s) == nil && s != l.Text {
				t.Fatalf("event %d: text %q, encoding/json says %q", i, l.Text, s)
			}
		}
	})
}
