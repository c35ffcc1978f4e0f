//go:build e2e

package backends

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// collectorConfig is the logs collector's configuration: the OTLP receiver
// (gRPC and HTTP) on 127.0.0.1 and the file exporter writing OTLP JSON.
const collectorConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[1]d
      http:
        endpoint: 127.0.0.1:%[2]d
exporters:
  file:
    path: %[3]s
    format: json
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file]
  telemetry:
    metrics:
      level: none
`

// logsCollector is a running OpenTelemetry Collector that stores logs in a file.
type logsCollector struct {
	proc               *backend
	otlpGRPC, otlpHTTP string
	file               string
}

func startCollector(ctx context.Context, t *testing.T) *logsCollector {
	t.Helper()
	bin := tool(t, "otelcol-logs")
	grpcPort, httpPort := freePort(t), freePort(t)
	file := filepath.Join(t.TempDir(), "logs.jsonl")
	cfg := writeFile(t, "otelcol.yaml", fmt.Sprintf(collectorConfig, grpcPort, httpPort, file))
	return &logsCollector{
		proc:     startBackend(ctx, t, "otelcol-logs", "Everything is ready", bin, "--config", cfg),
		otlpGRPC: fmt.Sprintf("http://127.0.0.1:%d", grpcPort),
		otlpHTTP: fmt.Sprintf("http://127.0.0.1:%d/v1/logs", httpPort),
		file:     file,
	}
}

// stored stops the collector (which flushes its file) and returns the
// records it stored.
func (c *logsCollector) stored(t *testing.T) []plog.LogRecord {
	t.Helper()
	if err := c.proc.stop(); err != nil {
		t.Fatalf("stop the collector: %v", err)
	}
	f, err := os.Open(c.file)
	if err != nil {
		t.Fatalf("the collector's file: %v", err)
	}
	defer f.Close()
	var out []plog.LogRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(sc.Bytes())
		if err != nil {
			t.Fatalf("decode a line of the collector's file: %v", err)
		}
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, lr)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// telemetryType is the record's Telemetry API stream (function,
// extension, platform.*).
func telemetryType(lr plog.LogRecord) string {
	if v, ok := lr.Attributes().Get("slipstream.telemetry.type"); ok {
		return v.AsString()
	}
	return ""
}

// wantRecord is a log record as the function wrote it.
type wantRecord struct {
	body     string // exact, or the prefix when prefix is set
	prefix   bool
	severity plog.SeverityNumber
	sevText  string
	attrs    map[string]string
	// exception holds the prefixes of the exception.* attributes, checked
	// when present.
	exception map[string]string
}

// TestCollectorLogs sends the function's logs to an OpenTelemetry
// Collector over each OTLP protocol and checks what it stored: bodies,
// severities, the trace and span IDs of the invocations.
func TestCollectorLogs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run("log records sent over "+protocol+" keep their bodies, severities and trace context", func(t *testing.T) {
			c := startCollector(ctx, t)
			s := testSink(t)
			endpoint := c.otlpHTTP
			if protocol == "grpc" {
				endpoint = c.otlpGRPC
			}
			env := startEnv(ctx, t, envConfig{env: []string{
				"SLIPSTREAM_OTLP_LOGS_PROTOCOL=" + protocol,
				"SLIPSTREAM_OTLP_LOGS_ENDPOINT=" + endpoint,
				"SLIPSTREAM_OTLP_TRACES_ENDPOINT=" + s.URL(sink.SignalTraces),
				"SLIPSTREAM_OTLP_METRICS_ENDPOINT=" + s.URL(sink.SignalMetrics),
			}})
			text, jsonx, crash := newXRay(), newXRay(), newXRay()
			textRes := env.invoke(ctx, `{"action":"log","lines":4}`, text.header(), emulator.StatusSuccess)
			jsonRes := env.invoke(ctx, `{"action":"json-log","lines":4}`, jsonx.header(), emulator.StatusSuccess)
			crashRes := env.invoke(ctx, `{"action":"panic","message":"requested panic"}`, crash.header(), emulator.StatusError)
			// The crash reset the environment: its agent got SHUTDOWN then
			// and exported; no agent runs now.
			env.shutdown(ctx, false)
			if errs := env.warnings(); len(errs) > 0 {
				t.Errorf("the agent logged %d warnings or errors, first: %s", len(errs), errs[0])
			}
			records := c.stored(t)

			spanIDs := map[string]string{}
			for _, sp := range s.Snapshot().Spans() {
				if id, ok := sp.Attributes["faas.invocation_id"].(string); ok && sp.Kind == "Server" {
					spanIDs[id] = sp.SpanID
				}
			}
			byInvocation := map[string][]plog.LogRecord{}
			for _, lr := range records {
				if telemetryType(lr) == "function" {
					id := attr(lr.Attributes(), "faas.invocation_id")
					byInvocation[id] = append(byInvocation[id], lr)
				}
			}

			textLine := func(prefix string, i int) string {
				return fmt.Sprintf("%sexample log line %d of 4 for request %s", prefix, i, textRes.RequestID)
			}
			// requestId is not repeated as an attribute: it is the
			// record's faas.invocation_id.
			jsonLine := func(i int) map[string]string { return map[string]string{"line": fmt.Sprint(i)} }
			for _, inv := range []struct {
				what string
				x    xray
				res  emulator.InvokeResult
				want []wantRecord
			}{
				{"text lines", text, textRes, []wantRecord{
					{body: textLine("[INFO] ", 1), severity: plog.SeverityNumberInfo, sevText: "INFO"},
					{body: textLine("", 2)},
					{body: textLine("[ERROR] ", 3), severity: plog.SeverityNumberError, sevText: "ERROR"},
					{body: textLine("[WARN] ", 4), severity: plog.SeverityNumberWarn, sevText: "WARN"},
				}},
				{"JSON lines", jsonx, jsonRes, []wantRecord{
					{body: "example JSON log line 1 of 4", severity: plog.SeverityNumberInfo, sevText: "INFO", attrs: jsonLine(1)},
					{body: "example JSON log line 2 of 4", severity: plog.SeverityNumberWarn, sevText: "WARN", attrs: jsonLine(2)},
					{body: "example JSON log line 3 of 4", severity: plog.SeverityNumberError, sevText: "ERROR", attrs: jsonLine(3)},
					{body: "example JSON log line 4 of 4", severity: plog.SeverityNumberDebug, sevText: "DEBUG", attrs: jsonLine(4)},
				}},
				{"a Go panic", crash, crashRes, []wantRecord{
					{body: "panic: requested panic", prefix: true, severity: plog.SeverityNumberFatal, sevText: "PANIC", exception: map[string]string{
						"exception.message":    "requested panic",
						"exception.stacktrace": "panic: requested panic\n\ngoroutine ",
					}},
				}},
			} {
				got := byInvocation[inv.res.RequestID]
				if len(got) != len(inv.want) {
					var bodies []string
					for _, lr := range got {
						bodies = append(bodies, lr.Body().AsString())
					}
					t.Errorf("%s: %d records, want %d: %q", inv.what, len(got), len(inv.want), bodies)
					continue
				}
				for i, w := range inv.want {
					lr := got[i]
					body := lr.Body().AsString()
					if w.prefix && !strings.HasPrefix(body, w.body) || !w.prefix && body != w.body {
						t.Errorf("%s, record %d: body %q, want %q", inv.what, i+1, body, w.body)
					}
					if lr.SeverityNumber() != w.severity || lr.SeverityText() != w.sevText {
						t.Errorf("%s, record %d: severity %v %q, want %v %q", inv.what, i+1, lr.SeverityNumber(), lr.SeverityText(), w.severity, w.sevText)
					}
					if got := lr.TraceID().String(); got != inv.x.traceID {
						t.Errorf("%s, record %d: trace ID %s, want the X-Ray root %s", inv.what, i+1, got, inv.x.traceID)
					}
					if got, want := lr.SpanID().String(), spanIDs[inv.res.RequestID]; got != want || want == "" {
						t.Errorf("%s, record %d: span ID %s, want the invocation span's %q", inv.what, i+1, got, want)
					}
					for k, v := range w.attrs {
						if got := attr(lr.Attributes(), k); got != v {
							t.Errorf("%s, record %d: attribute %s = %q, want %q", inv.what, i+1, k, got, v)
						}
					}
					// Exception attributes, where the agent sets them, hold
					// what the function wrote.
					for k, want := range w.exception {
						v, ok := lr.Attributes().Get(k)
						switch {
						case !ok:
							t.Logf("%s, record %d: no %s", inv.what, i+1, k)
						case !strings.HasPrefix(v.AsString(), want):
							t.Errorf("%s, record %d: %s = %.200q, want it to start with %q", inv.what, i+1, k, v.AsString(), want)
						}
					}
				}
				if inv.what == "a Go panic" && !strings.Contains(got[0].Body().AsString(), "goroutine ") {
					t.Errorf("the panic's record holds no stack trace: %q", got[0].Body().AsString())
				}
			}
		})
	}
}
