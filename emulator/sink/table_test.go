package sink_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/slipstream-otel/slipstream/emulator/sink"
)

type spanSpec struct {
	name, requestID string
	traceID, spanID byte
	start           time.Duration // after t0
	duration        time.Duration
	status          ptrace.StatusCode
	internal        bool // kind Internal instead of Server
	attrs           map[string]any
}

func tracesOf(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for _, sp := range specs {
		s := spans.AppendEmpty()
		s.SetName(sp.name)
		s.SetKind(ptrace.SpanKindServer)
		if sp.internal {
			s.SetKind(ptrace.SpanKindInternal)
		}
		s.SetTraceID(pcommon.TraceID{15: sp.traceID})
		s.SetSpanID(pcommon.SpanID{7: sp.spanID})
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(sp.start)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(sp.start + sp.duration)))
		s.Status().SetCode(sp.status)
		if sp.requestID != "" {
			s.Attributes().PutStr("faas.invocation_id", sp.requestID)
		}
		if err := s.Attributes().FromRaw(merge(s.Attributes().AsRaw(), sp.attrs)); err != nil {
			panic(err)
		}
	}
	return td
}

func merge(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// logsOf returns one log record per entry: an invocation ID, or "span:<traceID>:<spanID>" bytes.
func logsOf(records ...func(plog.LogRecord)) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, f := range records {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr("line")
		f(lr)
	}
	return ld
}

func withInvocation(id string) func(plog.LogRecord) {
	return func(lr plog.LogRecord) { lr.Attributes().PutStr("faas.invocation_id", id) }
}

func withSpan(traceID, spanID byte) func(plog.LogRecord) {
	return func(lr plog.LogRecord) {
		lr.SetTraceID(pcommon.TraceID{15: traceID})
		lr.SetSpanID(pcommon.SpanID{7: spanID})
	}
}

func TestInvocationTable(t *testing.T) {
	s := start(t, sink.Options{})
	traces := s.URL(sink.SignalTraces)

	cold := spanSpec{name: "fn", requestID: "req-cold", traceID: 1, spanID: 1, duration: 120500 * time.Microsecond,
		status: ptrace.StatusCodeOk, attrs: map[string]any{
			"faas.coldstart": true, "slipstream.billed_duration": 0.121, "slipstream.max_memory_used": 64 << 20,
		}}
	warm := spanSpec{name: "fn", requestID: "req-warm", traceID: 2, spanID: 2, start: time.Second, duration: 9 * time.Millisecond,
		attrs: map[string]any{
			"faas.coldstart": false, "slipstream.billed_duration": 0.01, "slipstream.max_memory_used": 70 << 20,
		}}
	oom := spanSpec{name: "fn", requestID: "req-oom", traceID: 3, spanID: 3, start: 2 * time.Second, duration: 3 * time.Second,
		status: ptrace.StatusCodeError, attrs: map[string]any{
			"error.type": "Runtime.OutOfMemory", "slipstream.out_of_memory": true, "slipstream.max_memory_used": 128 << 20,
		}}
	child := spanSpec{name: "Runtime", requestID: "req-cold", internal: true, traceID: 1, spanID: 9, duration: time.Millisecond}

	// Out of order, with a duplicate of the warm span, and a child span carrying the invocation ID.
	postProto(t, traces, ptraceotlp.NewExportRequestFromTraces(tracesOf(oom, warm)).MarshalProto)
	postProto(t, traces, ptraceotlp.NewExportRequestFromTraces(tracesOf(cold, child, warm)).MarshalProto)
	postProto(t, s.URL(sink.SignalLogs), plogotlp.NewExportRequestFromLogs(logsOf(
		withInvocation("req-cold"), withInvocation("req-cold"), withSpan(1, 1), withInvocation("req-oom"),
		withSpan(7, 7), // belongs to nothing
	)).MarshalProto)
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	m.AppendEmpty().SetName("faas.invocations")
	m.At(0).SetEmptySum().DataPoints().AppendEmpty().SetIntValue(2)
	m.AppendEmpty().SetName("faas.coldstarts")
	m.At(1).SetEmptySum().DataPoints().AppendEmpty().SetIntValue(1)
	postProto(t, s.URL(sink.SignalMetrics), pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto)

	t.Run("invocations are decoded from the span attributes", func(t *testing.T) {
		invs := s.Invocations()
		if len(invs) != 3 {
			t.Fatalf("got %d invocations, want 3: %+v", len(invs), invs)
		}
		type row struct {
			id       string
			cold     bool
			duration time.Duration
			billed   time.Duration
			memory   float64
			status   string
			oom      bool
			logs     int
			copies   int
		}
		want := []row{
			{"req-cold", true, 120500 * time.Microsecond, 121 * time.Millisecond, 64, "Ok", false, 3, 1},
			{"req-warm", false, 9 * time.Millisecond, 10 * time.Millisecond, 70, "Unset", false, 0, 2},
			{"req-oom", false, 3 * time.Second, 0, 128, "Error", true, 1, 1},
		}
		for i, w := range want {
			inv := invs[i]
			got := row{inv.RequestID, inv.ColdStart, inv.Duration, inv.BilledDuration, inv.MaxMemoryMB, inv.Status,
				inv.OutOfMemory, inv.Logs, inv.Copies}
			if got != w {
				t.Errorf("row %d = %+v, want %+v", i, got, w)
			}
		}
	})

	t.Run("the table prints one row per invocation and a footer", func(t *testing.T) {
		var buf bytes.Buffer
		if err := s.Table(&buf); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 6 { // header, 3 rows, blank, footer
			t.Fatalf("table has %d lines, want 6:\n%s", len(lines), out)
		}
		header := strings.Join(strings.Fields(lines[0]), " ")
		if header != "REQUEST ID COLD START DURATION ms BILLED ms MEMORY MB STATUS TRACE ID LOGS" {
			t.Errorf("header = %q", header)
		}
		// Columns: request ID, cold, duration, billed, memory, status (may hold spaces), trace ID, logs.
		want := [][]string{
			{"req-cold", "yes", "120.5", "121", "64", "Ok", "00000000000000000000000000000001", "3"},
			{"req-warm", "no", "9.0", "10", "70", "Unset", "00000000000000000000000000000002", "0"},
			{"req-oom", "no", "3000.0", "-", "128", "Error (Runtime.OutOfMemory, OOM)", "00000000000000000000000000000003", "1"},
		}
		for i, w := range want {
			f := strings.Fields(lines[1+i])
			if len(f) < 8 {
				t.Errorf("row %d = %q", i, lines[1+i])
				continue
			}
			got := append(f[:5:5], strings.Join(f[5:len(f)-2], " "), f[len(f)-2], f[len(f)-1])
			if strings.Join(got, "|") != strings.Join(w, "|") {
				t.Errorf("row %d = %q, want %q", i, got, w)
			}
		}
		footer := lines[len(lines)-1]
		for _, part := range []string{"3 invocations", "5 spans", "2 metric names: faas.coldstarts, faas.invocations", "5 log records"} {
			if !strings.Contains(footer, part) {
				t.Errorf("footer %q lacks %q", footer, part)
			}
		}
	})

	t.Run("an empty sink prints the header and a zero footer", func(t *testing.T) {
		var buf bytes.Buffer
		if err := sink.New(sink.Options{}).Table(&buf); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(buf.String(), "REQUEST ID") || !strings.Contains(buf.String(), "0 invocations, 0 spans") {
			t.Errorf("table = %q", buf.String())
		}
	})
}

func postProto(t *testing.T, url string, marshal func() ([]byte, error)) {
	t.Helper()
	b, err := marshal()
	if err != nil {
		t.Fatal(err)
	}
	if resp := post(t, url, "application/x-protobuf", "", b); resp.status != 200 {
		t.Fatalf("post %s: %d %q", url, resp.status, resp.body)
	}
}
