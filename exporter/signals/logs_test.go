package signals

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

const (
	ridA  = "8f5b1c2e-6a3d-4e8f-9b1a-2c3d4e5f6a71"
	ridB  = "1f9da5fa-4968-4371-a7f5-0204f4884fc1"
	order = "3b241101-e2bb-4255-8caf-4136c566a962"
)

// newLogMapper returns a mapper whose log records go to lc.
func newLogMapper(t *testing.T, cfg *config.Config, lc *logCollector, spans *[]sdktrace.ReadOnlySpan) *Mapper {
	t.Helper()
	m, err := NewMapper(MapperOptions{Config: cfg, Logs: lc, Now: func() time.Time { return fixedNow }, Rand: detRand(),
		Spans: func(_ Phase, s []sdktrace.ReadOnlySpan) { *spans = append(*spans, s...) }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func textLine(ms int, typ telemetry.Type, s string) telemetry.Event {
	return telemetry.Event{Time: at(ms), Type: typ, Record: &telemetry.Log{Text: s}}
}

func startEvent(ms int, rid string) telemetry.Event {
	return telemetry.Event{Time: at(ms), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: rid}}
}

func reportEvent(ms int, rid string, st telemetry.Status) telemetry.Event {
	return telemetry.Event{Time: at(ms), Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: rid, Status: st}}
}

// TestRequestIDOfTextLines: a text line belongs to the invocation named
// in the runtime's request ID column, or by a UUID that names an open or
// recent invocation; any other UUID in the message (an order number)
// neither takes the line away from the running invocation nor drops its
// trace context.
func TestRequestIDOfTextLines(t *testing.T) {
	tests := []struct {
		name    string
		lmi     bool
		open    []string // invocations started, in order (the last one runs)
		done    []string // invocations finished before the line
		line    string
		wantID  string // faas.invocation_id ("" = none)
		wantCtx string // invocation whose trace context the record carries ("" = none)
	}{
		{"a business UUID after the level stays with the running invocation", false, []string{ridA}, nil,
			"ERROR order " + order + " failed", ridA, ridA},
		{"a business UUID in the first token stays with the running invocation", false, []string{ridA}, nil,
			order + " could not be charged", ridA, ridA},
		{"a business UUID in a Node.js message does not replace the column", false, []string{ridA}, nil,
			"2026-11-26T01:00:00.001Z\t" + ridA + "\tERROR\torder " + order + " failed", ridA, ridA},
		{"a business UUID under Managed Instances gives no invocation", true, []string{ridA}, nil,
			"ERROR order " + order + " failed", "", ""},
		{"a UUID naming an open invocation attributes the line to it under Managed Instances", true, []string{ridA, ridB}, nil,
			"handling " + ridA + " body={}", ridA, ridA},
		{"a UUID naming another open invocation attributes the line to it", false, []string{ridA, ridB}, nil,
			"late line for (" + ridA + ")", ridA, ridA},
		{"a UUID naming a recently finished invocation keeps its ID", false, []string{ridB}, []string{ridA},
			"cleanup of " + ridA, ridA, ""},
		{"the request ID column wins over a known UUID later in the line", false, []string{ridA, ridB}, nil,
			"2026-11-26T01:00:00.001Z\t" + ridB + "\tINFO\tafter " + ridA, ridB, ridB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ManagedInstances = tt.lmi
			lc := &logCollector{}
			var spans []sdktrace.ReadOnlySpan
			m := newLogMapper(t, cfg, lc, &spans)
			ms := 0
			for _, id := range tt.done {
				m.Consume(startEvent(ms, id))
				m.Consume(reportEvent(ms+1, id, telemetry.StatusSuccess))
				ms += 2
			}
			for _, id := range tt.open {
				m.Consume(startEvent(ms, id))
				ms++
			}
			m.Consume(textLine(ms, telemetry.TypeFunction, tt.line))
			m.FlushLogs()
			if len(lc.recs) != 1 {
				t.Fatalf("%d records", len(lc.recs))
			}
			r := &lc.recs[0]
			if got := recordAttrs(r)[attrInvocationID]; got != tt.wantID {
				t.Errorf("faas.invocation_id = %q, want %q", got, tt.wantID)
			}
			if tt.wantCtx == "" {
				if r.TraceID().IsValid() {
					t.Errorf("trace context %s, want none", r.TraceID())
				}
				return
			}
			sc := m.open[tt.wantCtx].sc
			if r.TraceID() != sc.TraceID() || r.SpanID() != sc.SpanID() {
				t.Errorf("trace context %s/%s, want %s's %s/%s", r.TraceID(), r.SpanID(), tt.wantCtx, sc.TraceID(), sc.SpanID())
			}
		})
	}
}

// TestOutOfMemoryLogMarksTheInvocation: a function's error record saying
// it ran out of memory marks the invocation (span attribute and counter
// once); a warning mentioning it, or an extension's line, does not.
func TestOutOfMemoryLogMarksTheInvocation(t *testing.T) {
	tests := []struct {
		name string
		typ  telemetry.Type
		line string
		want bool
	}{
		{"a Go fatal out of memory marks it", telemetry.TypeFunction, "fatal error: runtime: out of memory", true},
		{"a Java OutOfMemoryError logged at ERROR marks it", telemetry.TypeFunction,
			"2026-11-26 01:00:00 " + ridA + " ERROR Handler - failed\njava.lang.OutOfMemoryError: Java heap space\n\tat example.Handler.handleRequest(Handler.java:9)", true},
		{"a warning that mentions an OutOfMemoryError does not", telemetry.TypeFunction,
			"2026-11-26 01:00:00 " + ridA + " WARN Handler - cache evicted after java.lang.OutOfMemoryError", false},
		{"an extension's out of memory line does not", telemetry.TypeExtensionLog, "fatal error: runtime: out of memory", false},
		{"an ordinary error does not", telemetry.TypeFunction, "[ERROR] ValueError: bad input", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := &logCollector{}
			var spans []sdktrace.ReadOnlySpan
			m := newLogMapper(t, testConfig(), lc, &spans)
			m.Consume(startEvent(0, ridA))
			m.Consume(textLine(1, tt.typ, tt.line))
			m.Consume(textLine(2, tt.typ, tt.line)) // counted once
			m.Consume(reportEvent(3, ridA, telemetry.StatusError))
			if len(spans) == 0 {
				t.Fatal("no span")
			}
			v, ok := attrOf(spans[0], string(attrOutOfMemory))
			if got := ok && v.AsBool(); got != tt.want {
				t.Errorf("slipstream.out_of_memory = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOutOfMemory(t *testing.T) {
	tests := []struct {
		name, body string
		typ        string // exception type found in the record
		want       bool
	}{
		{"Python MemoryError as the exception type", "[ERROR] MemoryError", "MemoryError", true},
		{"Python MemoryError as a traceback's last line", "Traceback (most recent call last):\n  File \"x.py\", line 1\nMemoryError", "", true},
		{"Node.js heap out of memory", "FATAL ERROR: Ineffective mark-compacts near heap limit Allocation failed - JavaScript heap out of memory", "", true},
		{"Node.js reached heap limit", "FATAL ERROR: Reached heap limit Allocation failed", "", true},
		{"Go out of memory", "fatal error: runtime: out of memory\n\nruntime stack:", "", true},
		{"Java OutOfMemoryError type", "", "java.lang.OutOfMemoryError", true},
		{".NET OutOfMemoryException", "System.OutOfMemoryException: Exception of type 'System.OutOfMemoryException' was thrown.", "", true},
		{"runtime killed", "RequestId: x Error: Runtime exited with error: signal: killed", "", true},
		{"signal: killed on its own line", "signal: killed", "", true},
		{"a memory figure is not", "memory used: 120 MB", "", false},
		{"a heap snapshot is not", "heap snapshot written", "", false},
		{"a name that starts with MemoryError is not", "MemoryErrorHandler registered", "", false},
		{"a killed job is not", "job 7 killed by the user", "", false},
		{"a FATAL ERROR without heap is not", "FATAL ERROR: database down", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := exception{typ: tt.typ}
			if got := outOfMemory(tt.body, &e); got != tt.want {
				t.Errorf("outOfMemory(%q, %q) = %v, want %v", tt.body, tt.typ, got, tt.want)
			}
		})
	}
}

func TestExceptionAttributesAreBounded(t *testing.T) {
	lc := &logCollector{}
	var spans []sdktrace.ReadOnlySpan
	m := newLogMapper(t, testConfig(), lc, &spans)
	frames := make([]string, 2000)
	for i := range frames {
		frames[i] = `"    at f (file:///var/task/index.mjs:1:1)"`
	}
	long := strings.Repeat("é", 3000) // 6000 bytes
	m.Consume(telemetry.Event{Time: at(0), Type: telemetry.TypeFunction, Record: &telemetry.Log{JSON: true, Level: "ERROR",
		Fields: map[string]json.RawMessage{"message": json.RawMessage(`{"errorType":"Error","errorMessage":"` + long + `","stackTrace":[` + strings.Join(frames, ",") + `]}`)}}})
	if len(lc.recs) != 1 {
		t.Fatalf("%d records", len(lc.recs))
	}
	a := recordAttrs(&lc.recs[0])
	if n := len(a[attrExceptionMessage]); n == 0 || n > maxExceptionMessage {
		t.Errorf("exception.message is %d bytes, want 1..%d", n, maxExceptionMessage)
	}
	if n := len(a[attrExceptionStacktrace]); n < 32*1024 || n > maxRecordBytes {
		t.Errorf("exception.stacktrace is %d bytes, want up to %d and not cut short", n, maxRecordBytes)
	}
	if !strings.HasPrefix(a[attrExceptionStacktrace], "    at f") {
		t.Errorf("stack starts %q", a[attrExceptionStacktrace][:20])
	}
}

func TestTimeoutLineIsAnError(t *testing.T) {
	for _, rec := range []*telemetry.Log{
		{Text: "2026-11-26T01:00:03.009Z " + ridA + " Task timed out after 3.00 seconds"},
		{Text: "Task timed out after 3.00 seconds"},
		{JSON: true, RequestID: ridA, Message: "Task timed out after 3.00 seconds"},
	} {
		lc := &logCollector{}
		var spans []sdktrace.ReadOnlySpan
		m := newLogMapper(t, testConfig(), lc, &spans)
		m.Consume(startEvent(0, ridA))
		m.Consume(telemetry.Event{Time: at(3009), Type: telemetry.TypeFunction, Record: rec})
		m.FlushLogs()
		if len(lc.recs) != 1 || lc.recs[0].Severity() != log.SeverityError {
			t.Errorf("%+v: want one record of severity ERROR, got %d records", rec, len(lc.recs))
		}
	}
}

func FuzzTextException(f *testing.F) {
	for _, s := range []string{
		"[ERROR] ValueError: x\nTraceback (most recent call last):\n\u00a0\u00a0File \"a\", line 1",
		"woops: java.lang.RuntimeException\njava.lang.RuntimeException: woops\n\tat a.B.c(B.java:1)",
		"2024-01-01T00:00:00.000Z\tid\tERROR\tInvoke Error \t{\"errorType\":\"Error\",\"errorMessage\":\"boom\",\"stack\":[\"Error: boom\"]}",
		"panic: x\n\ngoroutine 1 [running]:", "{\n  \"errorType\": \"X\"\n}", "a\n{", "\n", "x\n at", "{",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := textException(s)
		if len(e.typ) > len(s) || len(e.stack) > 2*len(s)+64 {
			t.Fatalf("exception larger than its input: %+v", e)
		}
		outOfMemory(s, &e)
	})
}

// FuzzConsumeLog maps arbitrary function records, as text lines and as
// JSON objects, inside an invocation: nothing panics and each record is
// emitted.
func FuzzConsumeLog(f *testing.F) {
	for _, s := range []string{
		`{"timestamp":"2026-11-26T01:00:00","log_level":"ERROR","errorType":"ValueError","errorMessage":"x","stackTrace":["  File \"a\", line 1\n"]}`,
		`{"level":"ERROR","message":{"errorType":"Error","errorMessage":"x","stackTrace":["Error: x","    at f (a.js:1:1)"]}}`,
		`{"level":"ERROR","message":"m","errorType":"E","stackTrace":[{"class":"a.B","method":"c","file":"B.java","line":1}],"AWSRequestId":"` + ridA + `"}`,
		"2026-11-26T01:00:00.001Z\t" + ridA + "\tERROR\tInvoke Error \t{\"errorType\":\"Error\"}",
		"[ERROR] MemoryError\nTraceback (most recent call last):", `{"message":[1,2]}`, `{"stackTrace":"x"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lc := &logCollector{}
		var spans []sdktrace.ReadOnlySpan
		m := newLogMapper(t, testConfig(), lc, &spans)
		m.Consume(startEvent(0, ridA))
		rec, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		bodies := [][]byte{[]byte(`[{"time":"2026-11-26T01:00:00.001Z","type":"function","record":` + string(rec) + `}]`)}
		if json.Valid([]byte(s)) && strings.HasPrefix(strings.TrimSpace(s), "{") {
			bodies = append(bodies, []byte(`[{"time":"2026-11-26T01:00:00.001Z","type":"function","record":`+s+`}]`))
		}
		n := 0
		for _, b := range bodies {
			evs, _, err := telemetry.DecodeBatch(b)
			if err != nil {
				continue
			}
			for _, ev := range evs {
				if _, ok := ev.Record.(*telemetry.Log); ok {
					n++
				}
				m.Consume(ev)
			}
		}
		m.FlushLogs()
		if n > 0 && len(lc.recs) == 0 {
			t.Fatalf("%d records consumed, none emitted", n)
		}
	})
}
