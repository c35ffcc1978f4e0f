package telemetry

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeOne decodes a single-event fixture by wrapping it in an array.
func decodeOne(t *testing.T, name string) Event {
	t.Helper()
	body := append(append([]byte("["), readFixture(t, name)...), ']')
	events, st, err := DecodeBatch(body)
	if err != nil {
		t.Fatalf("DecodeBatch(%s): %v", name, err)
	}
	if len(events) != 1 || st.Events != 1 || st.Bad != 0 || st.Unknown != 0 {
		t.Fatalf("DecodeBatch(%s): %d events, stats %+v", name, len(events), st)
	}
	if events[0].Record == nil {
		t.Fatalf("DecodeBatch(%s): nil record, raw %s", name, events[0].Raw)
	}
	return events[0]
}

func ms(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func recordOf[T any](t *testing.T, ev Event) *T {
	t.Helper()
	r, ok := ev.Record.(*T)
	if !ok {
		t.Fatalf("record is %T, want *%T", ev.Record, *new(T))
	}
	return r
}

func TestDecodeFixtures(t *testing.T) {
	tests := []struct {
		file  string
		typ   Type
		time  string
		check func(t *testing.T, ev Event)
	}{
		{"platform.initStart.json", TypeInitStart, "2022-10-19T13:52:15.636Z", func(t *testing.T, ev Event) {
			r := recordOf[InitStart](t, ev)
			if r.InitializationType != InitOnDemand || r.Phase != PhaseInit || r.FunctionName != "my-function" ||
				r.InstanceMaxMemory != 134217728 || r.RuntimeVersion != "nodejs:18.v5" || !strings.HasPrefix(r.InstanceID, "2022/10/19/") {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.initRuntimeDone.json", TypeInitRuntimeDone, "2022-10-19T13:52:16.136Z", func(t *testing.T, ev Event) {
			if r := recordOf[InitRuntimeDone](t, ev); r.Status != StatusSuccess {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.initRuntimeDone.error.json", TypeInitRuntimeDone, "2022-10-19T13:52:16.136Z", func(t *testing.T, ev Event) {
			if r := recordOf[InitRuntimeDone](t, ev); r.Status != StatusError || r.ErrorType != "Runtime.ImportModuleError" {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.initReport.json", TypeInitReport, "2022-10-19T13:52:16.136Z", func(t *testing.T, ev Event) {
			if r := recordOf[InitReport](t, ev); r.Metrics.DurationMs != 500 || r.Status != StatusSuccess {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.start.json", TypeStart, "2022-10-21T14:05:03.165Z", func(t *testing.T, ev Event) {
			r := recordOf[Start](t, ev)
			if r.RequestID != "459921b5-681c-4a96-beb0-81e0aa586026" || r.Version != "$LATEST" ||
				r.Tracing == nil || r.Tracing.SpanID != "24cd7d670fa455f0" || !strings.HasPrefix(r.Tracing.Value, "Root=1-6352a70e") {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.runtimeDone.json", TypeRuntimeDone, "2022-10-21T14:05:05.764Z", func(t *testing.T, ev Event) {
			r := recordOf[RuntimeDone](t, ev)
			if r.Status != StatusSuccess || r.Metrics == nil || r.Metrics.DurationMs != 2599 ||
				r.Metrics.ProducedBytes == nil || *r.Metrics.ProducedBytes != 8 || len(r.Spans) != 2 ||
				r.Spans[0].Name != "responseLatency" || !r.Spans[0].Start.Equal(ms("2022-10-21T14:05:03.165Z")) {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.runtimeDone.timeout.json", TypeRuntimeDone, "2022-10-21T14:05:06.165Z", func(t *testing.T, ev Event) {
			if r := recordOf[RuntimeDone](t, ev); r.Status != StatusTimeout || r.ErrorType != "Sandbox.Timedout" {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.report.json", TypeReport, "2022-10-21T14:05:05.766Z", func(t *testing.T, ev Event) {
			r := recordOf[Report](t, ev)
			m := r.Metrics
			if r.Status != StatusSuccess || m.DurationMs != 2599.4 || *m.BilledDurationMs != 2600 ||
				*m.MemorySizeMB != 128 || *m.MaxMemoryUsedMB != 94 || *m.InitDurationMs != 549.04 || m.RestoreDurationMs != nil {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.report.oom.json", TypeReport, "2022-10-21T14:06:50Z", func(t *testing.T, ev Event) {
			if r := recordOf[Report](t, ev); r.ErrorType != "Runtime.OutOfMemory" || *r.Metrics.MaxMemoryUsedMB != 128 {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.report.snapstart.json", TypeReport, "2022-11-28T18:00:01Z", func(t *testing.T, ev Event) {
			if r := recordOf[Report](t, ev); r.Metrics.RestoreDurationMs == nil || *r.Metrics.RestoreDurationMs != 250.7 {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.restoreStart.json", TypeRestoreStart, "2022-11-28T18:00:00.100Z", func(t *testing.T, ev Event) {
			if r := recordOf[RestoreStart](t, ev); r.RuntimeVersion != "java:21.v12" || r.InstanceMaxMemory != 536870912 {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.restoreRuntimeDone.json", TypeRestoreRuntimeDone, "2022-11-28T18:00:00.350Z", func(t *testing.T, ev Event) {
			if r := recordOf[RestoreRuntimeDone](t, ev); r.Status != StatusSuccess {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.restoreReport.json", TypeRestoreReport, "2022-11-28T18:00:00.351Z", func(t *testing.T, ev Event) {
			if r := recordOf[RestoreReport](t, ev); r.Metrics.DurationMs != 250.7 {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.extension.json", TypeExtension, "2022-10-19T13:52:16.136Z", func(t *testing.T, ev Event) {
			if r := recordOf[Extension](t, ev); r.Name != "my-extension" || r.State != "Ready" || len(r.Events) != 2 {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.telemetrySubscription.json", TypeTelemetrySubscription, "2022-10-19T13:52:15.667Z", func(t *testing.T, ev Event) {
			if r := recordOf[TelemetrySubscription](t, ev); r.State != "Subscribed" || len(r.Types) != 2 {
				t.Errorf("got %+v", r)
			}
		}},
		{"platform.logsDropped.json", TypeLogsDropped, "2022-10-12T00:02:35Z", func(t *testing.T, ev Event) {
			if r := recordOf[LogsDropped](t, ev); r.DroppedBytes != 12345 || r.DroppedRecords != 123 || !strings.HasPrefix(r.Reason, "Consumer") {
				t.Errorf("got %+v", r)
			}
		}},
		{"function.text.json", TypeFunction, "2022-10-12T00:03:50Z", func(t *testing.T, ev Event) {
			if r := recordOf[Log](t, ev); r.Text != "[INFO] Hello world, I am a function!" || r.JSON {
				t.Errorf("got %+v", r)
			}
		}},
		{"extension.text.json", TypeExtensionLog, "2022-10-12T00:03:50Z", func(t *testing.T, ev Event) {
			if r := recordOf[Log](t, ev); r.Text != "[INFO] Hello world, I am an extension!" || r.JSON {
				t.Errorf("got %+v", r)
			}
		}},
		{"function.json-format.json", TypeFunction, "2022-10-12T00:03:50Z", func(t *testing.T, ev Event) {
			r := recordOf[Log](t, ev)
			if !r.JSON || r.Text != "" || r.Level != "INFO" || r.RequestID != "79b4f56e-95b1-4643-9700-2807f4e68189" ||
				r.Message != "Hello world, I am a function!" || !r.Timestamp.Equal(ms("2022-10-12T00:03:50Z")) || r.Fields != nil {
				t.Errorf("got %+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file+" decodes to "+string(tt.typ), func(t *testing.T) {
			ev := decodeOne(t, tt.file)
			if ev.Type != tt.typ {
				t.Errorf("type %q, want %q", ev.Type, tt.typ)
			}
			if !ev.Time.Equal(ms(tt.time)) {
				t.Errorf("time %v, want %s", ev.Time, tt.time)
			}
			if ev.Raw != nil {
				t.Errorf("raw set on a decoded event: %s", ev.Raw)
			}
			if ev.Size == 0 {
				t.Error("size 0")
			}
			tt.check(t, ev)
		})
	}
}

func TestDecodeInvokeBatch(t *testing.T) {
	body := readFixture(t, "telemetry.post-body.invoke-batch.json")
	events, st, err := DecodeBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	if st != (BatchStats{Events: 3}) {
		t.Fatalf("stats %+v", st)
	}
	want := []Type{TypeStart, TypeFunction, TypeRuntimeDone}
	total := 0
	for i, ev := range events {
		if ev.Type != want[i] || ev.Record == nil {
			t.Errorf("event %d: %q %T", i, ev.Type, ev.Record)
		}
		total += ev.Size
	}
	if total >= len(body) || total < len(body)/2 {
		t.Errorf("sizes add up to %d for a %d-byte body", total, len(body))
	}
	if l := recordOf[Log](t, events[1]); l.Text != "handling request" {
		t.Errorf("log %+v", l)
	}
}

func TestDecodeLMICaptures(t *testing.T) {
	tests := []struct {
		file  string
		types []Type
		check func(t *testing.T, events []Event)
	}{
		{"01-init-batch.json", []Type{TypeInitStart, TypeTelemetrySubscription, TypeFunction, TypeExtensionLog}, func(t *testing.T, ev []Event) {
			r := recordOf[InitStart](t, ev[0])
			if r.InitializationType != InitLambdaManagedInstances || r.InstanceMaxMemory != 3154116608 || r.InstanceID != "$LATEST" {
				t.Errorf("initStart %+v", r)
			}
			if l := recordOf[Log](t, ev[3]); l.Text != "hello from extension stdout" {
				t.Errorf("extension log %+v", l)
			}
		}},
		{"02-init-done-batch.json", []Type{TypeInitRuntimeDone, TypeExtension, TypeInitReport}, func(t *testing.T, ev []Event) {
			if r := recordOf[InitReport](t, ev[2]); r.Status != StatusSuccess || r.Metrics.DurationMs != 64.649 {
				t.Errorf("initReport %+v", r)
			}
			if r := recordOf[Extension](t, ev[1]); len(r.Events) != 1 || r.Events[0] != "SHUTDOWN" {
				t.Errorf("extension %+v", r)
			}
		}},
		{"03-invoke1-start.json", []Type{TypeStart}, func(t *testing.T, ev []Event) {
			r := recordOf[Start](t, ev[0])
			if r.FunctionARN != "arn:aws:lambda:us-east-1:123456789012:function:probe-fn" || r.Tracing == nil || r.Tracing.SpanID != "" {
				t.Errorf("start %+v", r)
			}
		}},
		{"04-invoke1-logs-and-report.json", []Type{TypeFunction, TypeFunction, TypeReport}, func(t *testing.T, ev []Event) {
			if l := recordOf[Log](t, ev[0]); l.JSON || l.Text != `handling e3c00079-0f56-4943-a190-0821f0e429bd body={"a":1}` {
				t.Errorf("text log %+v", l)
			}
			l := recordOf[Log](t, ev[1])
			if !l.JSON || l.Level != "INFO" || l.Message != "json line from function" || l.Text != `{"level":"INFO","message":"json line from function"}` {
				t.Errorf("JSON-in-string log %+v", l)
			}
			r := recordOf[Report](t, ev[2])
			if r.Metrics.DurationMs != 52.162 || r.Metrics.BilledDurationMs != nil || len(r.Spans) != 2 || r.Tracing == nil {
				t.Errorf("report %+v", r)
			}
		}},
		{"05-invoke2-start.json", []Type{TypeStart}, func(t *testing.T, ev []Event) {
			if r := recordOf[Start](t, ev[0]); r.Tracing != nil {
				t.Errorf("start without trace header has tracing %+v", r.Tracing)
			}
		}},
		{"06-invoke2-logs-and-report.json", []Type{TypeFunction, TypeFunction, TypeReport}, func(t *testing.T, ev []Event) {
			if r := recordOf[Report](t, ev[2]); r.RequestID != "1f9da5fa-4968-4371-a7f5-0204f4884fc1" || r.Tracing != nil {
				t.Errorf("report %+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run("capture "+tt.file+" decodes completely", func(t *testing.T) {
			events, st, err := DecodeBatch(readFixture(t, filepath.Join("rie-lmi", tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if st.Bad != 0 || st.Unknown != 0 || len(events) != len(tt.types) {
				t.Fatalf("stats %+v, %d events", st, len(events))
			}
			for i, ev := range events {
				if ev.Type != tt.types[i] || ev.Record == nil {
					t.Errorf("event %d: %q %T raw %s", i, ev.Type, ev.Record, ev.Raw)
				}
			}
			tt.check(t, events)
		})
	}
}

func TestDecodeBatchOddEvents(t *testing.T) {
	const start = `{"time":"2022-10-21T14:05:03.165Z","type":"platform.start","record":{"requestId":"r1"}}`
	tests := []struct {
		name    string
		body    string
		wantErr error
		stats   BatchStats
		check   func(t *testing.T, ev []Event)
	}{
		{"an empty array is an empty batch", `[]`, nil, BatchStats{}, nil},
		{"whitespace around the array is fine", " \n[ " + start + " ]\n", nil, BatchStats{Events: 1}, nil},
		{"an object body is not an array", start, ErrNotArray, BatchStats{}, nil},
		{"a number body is not an array", `42`, ErrNotArray, BatchStats{}, nil},
		{"a truncated body is invalid JSON", `[` + start[:40], ErrInvalidJSON, BatchStats{}, nil},
		{"an empty body is invalid JSON", ``, ErrInvalidJSON, BatchStats{}, nil},
		{"one malformed event is counted and the others used",
			`[` + start + `,{"time":"2022-10-21T14:05:04.000Z","type":"platform.report","record":{"requestId":"r1","metrics":{"durationMs":"slow"}}},` + start + `]`,
			nil, BatchStats{Events: 3, Bad: 1}, func(t *testing.T, ev []Event) {
				if ev[0].Record == nil || ev[2].Record == nil {
					t.Error("good events were not decoded")
				}
				if ev[1].Record != nil || ev[1].Type != TypeReport || !strings.Contains(string(ev[1].Raw), `"slow"`) {
					t.Errorf("bad event: %+v", ev[1])
				}
			}},
		{"an element that is not an object is bad and kept whole", `[1,"x",` + start + `]`, nil, BatchStats{Events: 3, Bad: 2}, func(t *testing.T, ev []Event) {
			if string(ev[0].Raw) != "1" || string(ev[1].Raw) != `"x"` {
				t.Errorf("raw %q %q", ev[0].Raw, ev[1].Raw)
			}
		}},
		{"an event without time is bad", `[{"type":"function","record":"x"}]`, nil, BatchStats{Events: 1, Bad: 1}, nil},
		{"an event with an unparsable time is bad", `[{"time":"yesterday","type":"function","record":"x"}]`, nil, BatchStats{Events: 1, Bad: 1}, nil},
		{"an event without record is bad and kept whole", `[{"time":"2022-10-21T14:05:03.165Z","type":"platform.start"}]`, nil, BatchStats{Events: 1, Bad: 1}, func(t *testing.T, ev []Event) {
			if !strings.HasPrefix(string(ev[0].Raw), `{"time"`) {
				t.Errorf("raw %s", ev[0].Raw)
			}
		}},
		{"a platform record that is a string is bad", `[{"time":"2022-10-21T14:05:03.165Z","type":"platform.report","record":"oops"}]`, nil, BatchStats{Events: 1, Bad: 1}, nil},
		{"an unknown type is kept raw and counted",
			`[{"time":"2022-10-21T14:05:03.165Z","type":"platform.future","record":{"x":[1,2]}}]`, nil, BatchStats{Events: 1, Unknown: 1}, func(t *testing.T, ev []Event) {
				if ev[0].Type != "platform.future" || ev[0].Record != nil || string(ev[0].Raw) != `{"x":[1,2]}` {
					t.Errorf("got %+v", ev[0])
				}
			}},
		{"the malformed time of old AWS examples is accepted",
			`[{"time":"2022-08-02T12:01:23:521Z","type":"function","record":"x"}]`, nil, BatchStats{Events: 1}, func(t *testing.T, ev []Event) {
				if !ev[0].Time.Equal(ms("2022-08-02T12:01:23.521Z")) {
					t.Errorf("time %v", ev[0].Time)
				}
			}},
		{"a time with an offset is converted to UTC",
			`[{"time":"2022-08-02T14:01:23.5+02:00","type":"function","record":"x"}]`, nil, BatchStats{Events: 1}, func(t *testing.T, ev []Event) {
				if !ev[0].Time.Equal(ms("2022-08-02T12:01:23.5Z")) || ev[0].Time.Location() != time.UTC {
					t.Errorf("time %v", ev[0].Time)
				}
			}},
		{"escaped keys and type names are understood",
			`[{"ti\u006de":"2022-10-21T14:05:03.165Z","type":"platform\u002estart","record":{"requestId":"r1"}}]`, nil, BatchStats{Events: 1}, func(t *testing.T, ev []Event) {
				if ev[0].Type != TypeStart {
					t.Errorf("type %q", ev[0].Type)
				}
			}},
		{"invalid UTF-8 in a log line is replaced, not fatal",
			"[{\"time\":\"2022-10-21T14:05:03.165Z\",\"type\":\"function\",\"record\":\"bad \xff\xfe bytes\"}]", nil, BatchStats{Events: 1}, func(t *testing.T, ev []Event) {
				if l := ev[0].Record.(*Log); l.Text != "bad \uFFFD\uFFFD bytes" {
					t.Errorf("text %q", l.Text)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, st, err := DecodeBatch([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if events != nil {
					t.Errorf("events returned with an error")
				}
				return
			}
			if st != tt.stats || len(events) != st.Events {
				t.Errorf("stats %+v (%d events), want %+v", st, len(events), tt.stats)
			}
			for i, ev := range events {
				if ev.Record == nil && ev.Raw == nil {
					t.Errorf("event %d has neither record nor raw", i)
				}
			}
			if tt.check != nil {
				tt.check(t, events)
			}
		})
	}
}

func TestDecodeLogRecords(t *testing.T) {
	tests := []struct {
		name   string
		record string
		want   Log
		fields map[string]string
	}{
		{"a text line is kept as text", `"START RequestId: abc"`, Log{Text: "START RequestId: abc"}, nil},
		{"a JSON log line delivered as a string is parsed like an object",
			`"{\"timestamp\":\"2022-10-12T00:03:50.123Z\",\"level\":\"ERROR\",\"requestId\":\"r9\",\"message\":\"boom\",\"user\":{\"id\":7}}\n"`,
			Log{Text: "{\"timestamp\":\"2022-10-12T00:03:50.123Z\",\"level\":\"ERROR\",\"requestId\":\"r9\",\"message\":\"boom\",\"user\":{\"id\":7}}\n",
				JSON: true, Timestamp: ms("2022-10-12T00:03:50.123Z"), Level: "ERROR", RequestID: "r9", Message: "boom"},
			map[string]string{"user": `{"id":7}`}},
		{"a string that only looks like JSON stays text", `"{not json}"`, Log{Text: "{not json}"}, nil},
		{"a JSON object record keeps extra keys in Fields",
			`{"level":"WARN","message":"m","n":1.5,"tags":["a"]}`,
			Log{JSON: true, Level: "WARN", Message: "m"}, map[string]string{"n": "1.5", "tags": `["a"]`}},
		{"well-known keys of the wrong type go to Fields",
			`{"level":3,"message":{"k":"v"},"timestamp":"soon"}`,
			Log{JSON: true}, map[string]string{"level": "3", "message": `{"k":"v"}`, "timestamp": `"soon"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `[{"time":"2022-10-21T14:05:03.165Z","type":"function","record":` + tt.record + `}]`
			events, st, err := DecodeBatch([]byte(body))
			if err != nil || st.Bad != 0 {
				t.Fatalf("err %v stats %+v", err, st)
			}
			got := recordOf[Log](t, events[0])
			fields := got.Fields
			got.Fields = nil
			want := tt.want
			if !got.Timestamp.Equal(want.Timestamp) {
				t.Errorf("timestamp %v, want %v", got.Timestamp, want.Timestamp)
			}
			got.Timestamp, want.Timestamp = time.Time{}, time.Time{}
			if got.Text != want.Text || got.JSON != want.JSON || got.Level != want.Level || got.RequestID != want.RequestID || got.Message != want.Message {
				t.Errorf("got %+v\nwant %+v", *got, want)
			}
			if len(fields) != len(tt.fields) {
				t.Errorf("fields %v, want %v", fields, tt.fields)
			}
			for k, v := range tt.fields {
				if string(fields[k]) != v {
					t.Errorf("field %s = %s, want %s", k, fields[k], v)
				}
			}
		})
	}
}

func TestDecodeBatchDoesNotRetainBody(t *testing.T) {
	body := []byte(`[{"time":"2022-10-21T14:05:03.165Z","type":"function","record":{"level":"INFO","extra":"keep"}},` +
		`{"time":"2022-10-21T14:05:03.165Z","type":"platform.new","record":{"a":1}}]`)
	events, _, err := DecodeBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'X'
	}
	if got := string(events[0].Record.(*Log).Fields["extra"]); got != `"keep"` {
		t.Errorf("field changed with the body: %s", got)
	}
	if string(events[1].Raw) != `{"a":1}` || events[1].Type != "platform.new" {
		t.Errorf("raw changed with the body: %s %s", events[1].Type, events[1].Raw)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = must fail
	}{
		{"2022-10-21T14:05:03.165Z", "2022-10-21T14:05:03.165Z"},
		{"2022-10-21T14:05:03Z", "2022-10-21T14:05:03Z"},
		{"2022-10-21T14:05:03.123456789Z", "2022-10-21T14:05:03.123456789Z"},
		{"2022-08-02T12:01:23:521Z", "2022-08-02T12:01:23.521Z"},
		{"2022-10-21 14:05:03.1-01:30", "2022-10-21T15:35:03.1Z"},
		{"2022-02-30T00:00:00Z", ""},
		{"2022-10-21T24:00:00Z", ""},
		{"2022-10-21T14:05:03.Z", ""},
		{"2022-10-21T14:05:03.165", ""},
		{"2022-10-21T14:05:03.165Zjunk", ""},
		{"not a time at all, no", ""},
	}
	for _, tt := range tests {
		name := "parses " + tt.in
		if tt.want == "" {
			name = "rejects " + tt.in
		}
		t.Run(name, func(t *testing.T) {
			got, ok := parseTime([]byte(tt.in))
			if tt.want == "" {
				if ok {
					t.Errorf("accepted as %v", got)
				}
				return
			}
			if !ok || !got.Equal(ms(tt.want)) {
				t.Errorf("got %v %v, want %s", got, ok, tt.want)
			}
		})
	}
}

// TestSplitterAgreesWithEncodingJSON checks the zero-copy splitter against
// encoding/json on every fixture batch.
func TestSplitterAgreesWithEncodingJSON(t *testing.T) {
	files, _ := filepath.Glob("testdata/rie-lmi/0[1-6]*.json")
	files = append(files, "testdata/telemetry.post-body.invoke-batch.json")
	for _, f := range files {
		t.Run(f+" splits like encoding/json", func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkSplit(t, body)
		})
	}
}

func checkSplit(t testing.TB, body []byte) {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return
	}
	events, _, err := DecodeBatch(body)
	if err != nil {
		t.Fatalf("encoding/json reads an array, DecodeBatch says %v", err)
	}
	if len(events) != len(raws) {
		t.Fatalf("%d events, encoding/json sees %d", len(events), len(raws))
	}
	for i := range raws {
		if events[i].Size != len(raws[i]) {
			t.Fatalf("event %d: size %d, encoding/json element is %d bytes", i, events[i].Size, len(raws[i]))
		}
	}
}
