package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// fakeLambda is a minimal Extensions + Telemetry API: it hands out the
// scripted events in order and records what the agent called.
type fakeLambda struct {
	t         *testing.T
	events    []map[string]any // served by /event/next in order
	telemetry func(w http.ResponseWriter, r *http.Request)

	// mu guards the fields below.
	mu           sync.Mutex
	nextCalls    int
	initErrors   []string
	exitErrors   []string
	subscription map[string]any
	registered   string
	// subscribed is closed when a subscription arrives.
	subscribed chan struct{}
	// release gates the SHUTDOWN event: /event/next blocks on it before
	// serving the last scripted event.
	release chan struct{}
}

func newFakeLambda(t *testing.T, events ...map[string]any) (*fakeLambda, string) {
	f := &fakeLambda{t: t, events: events, subscribed: make(chan struct{}), release: make(chan struct{})}
	close(f.release)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func (f *fakeLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/2020-01-01/extension/register":
		f.mu.Lock()
		f.registered = r.Header.Get("Lambda-Extension-Name")
		f.mu.Unlock()
		w.Header().Set("Lambda-Extension-Identifier", "ext-id-1")
		_, _ = io.WriteString(w, `{"functionName":"fn","functionVersion":"$LATEST","handler":"h","accountId":"123456789012"}`)
	case "/2020-01-01/extension/event/next":
		f.mu.Lock()
		i := f.nextCalls
		f.nextCalls++
		f.mu.Unlock()
		if i >= len(f.events) {
			<-r.Context().Done()
			return
		}
		if i == len(f.events)-1 {
			<-f.release
		}
		ev := f.events[i]
		if _, set := ev["deadlineMs"]; !set && ev["eventType"] == "SHUTDOWN" {
			ev["deadlineMs"] = time.Now().Add(2 * time.Second).UnixMilli()
		}
		_ = json.NewEncoder(w).Encode(ev)
	case "/2020-01-01/extension/init/error", "/2020-01-01/extension/exit/error":
		f.mu.Lock()
		if strings.HasSuffix(r.URL.Path, "init/error") {
			f.initErrors = append(f.initErrors, r.Header.Get("Lambda-Extension-Function-Error-Type"))
		} else {
			f.exitErrors = append(f.exitErrors, r.Header.Get("Lambda-Extension-Function-Error-Type"))
		}
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	case "/2022-07-01/telemetry":
		var sub map[string]any
		if err := json.NewDecoder(r.Body).Decode(&sub); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		first := f.subscription == nil
		f.subscription = sub
		f.mu.Unlock()
		if f.telemetry != nil {
			f.telemetry(w, r)
		} else {
			_, _ = io.WriteString(w, `"OK"`)
		}
		if first {
			close(f.subscribed)
		}
	default:
		http.NotFound(w, r)
	}
}

func invokeEvent(id string) map[string]any {
	return map[string]any{
		"eventType": "INVOKE", "requestId": id,
		"deadlineMs":         time.Now().Add(3 * time.Second).UnixMilli(),
		"invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fn",
		"tracing":            map[string]any{"type": "X-Amzn-Trace-Id", "value": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"},
	}
}

func shutdownEvent(reason string) map[string]any {
	return map[string]any{"eventType": "SHUTDOWN", "shutdownReason": reason}
}

// logLines decodes the agent's JSON log lines.
func logLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// startLines returns the "slipstream started" lines.
func startLines(lines []map[string]any) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["msg"] == "slipstream started" && l["level"] == "INFO" {
			out = append(out, l)
		}
	}
	return out
}

func TestPrintVersion(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  string
		print bool
	}{
		{"--version prints the version", []string{"--version"}, "slipstream " + version + "\n", true},
		{"-version prints it too", []string{"-version"}, "slipstream " + version + "\n", true},
		{"no argument runs the agent, as Lambda starts it", nil, "", false},
		{"other arguments run the agent", []string{"--version", "x"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if got := printVersion(tt.args, &b); got != tt.print || b.String() != tt.want {
				t.Errorf("printVersion(%q) = %v, wrote %q; want %v, %q", tt.args, got, b.String(), tt.print, tt.want)
			}
		})
	}
}

func countLevel(lines []map[string]any, level string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["level"] == level {
			out = append(out, l)
		}
	}
	return out
}

// listenerURL is the address of the agent's telemetry listener, which was
// given port 0: the port the subscription names, on 127.0.0.1 (outside
// Lambda, sandbox.localdomain does not resolve and the listener binds
// every interface). Call it once subscribed is closed.
func (f *fakeLambda) listenerURL(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	dest, _ := f.subscription["destination"].(map[string]any)
	uri, _ := dest["URI"].(string)
	u, err := url.Parse(uri)
	if err != nil || u.Port() == "" || u.Port() == "0" {
		t.Fatalf("the subscription's destination %q names no bound port", uri)
	}
	return "http://127.0.0.1:" + u.Port() + "/"
}

// postBatch posts a Telemetry API batch to url and returns the status.
func postBatch(t *testing.T, url, batch string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(batch))
	if err != nil {
		t.Fatalf("post a batch to the listener: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// envFrom is an environment as os.Environ gives it.
// The local OTLP receiver is off unless a test sets its ports: with it
// on, the default export endpoint would be the receiver itself.
func envFrom(m map[string]string) []string {
	var environ []string
	for _, k := range []string{"SLIPSTREAM_RECEIVER_HTTP_PORT", "SLIPSTREAM_RECEIVER_GRPC_PORT"} {
		if _, ok := m[k]; !ok {
			environ = append(environ, k+"=off")
		}
	}
	for k, v := range m {
		environ = append(environ, k+"="+v)
	}
	return environ
}

func TestRun(t *testing.T) {
	t.Run("an unusable endpoint logs one ERROR line naming it, export is off and the lifecycle goes on", func(t *testing.T) {
		f, api := newFakeLambda(t, invokeEvent("r1"), invokeEvent("r2"), shutdownEvent("spindown"))
		var stderr bytes.Buffer
		code := run(context.Background(), envFrom(map[string]string{
			"AWS_LAMBDA_RUNTIME_API":   api,
			"SLIPSTREAM_OTLP_ENDPOINT": "collector.example.com",
		}), &stderr, "slipstream")
		if code != 0 {
			t.Fatalf("exit code %d, want 0; log:\n%s", code, stderr.String())
		}
		lines := logLines(t, stderr.Bytes())
		errs := countLevel(lines, "ERROR")
		if len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "SLIPSTREAM_OTLP_ENDPOINT") {
			t.Fatalf("want one ERROR line naming the variable, got %v", errs)
		}
		start := startLines(lines)
		if len(start) != 1 || start[0]["subscription"] != "none: export off" ||
			start[0]["config"].(map[string]any)["export"] != "off" {
			t.Errorf("want one start line saying export is off, got %v", start)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.nextCalls != 3 {
			t.Errorf("next calls = %d, want 3", f.nextCalls)
		}
		if f.subscription != nil {
			t.Errorf("subscribed although export is off: %v", f.subscription)
		}
		if len(f.initErrors) != 0 || len(f.exitErrors) != 0 {
			t.Errorf("init errors %v, exit errors %v, want none", f.initErrors, f.exitErrors)
		}
		if f.registered != "slipstream" {
			t.Errorf("registered as %q", f.registered)
		}
	})

	t.Run("an unknown SLIPSTREAM name logs one WARN line naming the closest known one", func(t *testing.T) {
		_, api := newFakeLambda(t, shutdownEvent("spindown"))
		var stderr bytes.Buffer
		code := run(context.Background(), envFrom(map[string]string{
			"AWS_LAMBDA_RUNTIME_API": api,
			"SLIPSTREAM_DISABLED":    "true",
			"SLIPSTREAM_LOG_LEVLE":   "debug",
		}), &stderr, "slipstream")
		if code != 0 {
			t.Fatalf("exit code %d, want 0; log:\n%s", code, stderr.String())
		}
		warns := countLevel(logLines(t, stderr.Bytes()), "WARN")
		if len(warns) != 1 || !strings.Contains(fmt.Sprint(warns[0]), "did you mean SLIPSTREAM_LOG_LEVEL?") {
			t.Errorf("want one WARN line naming SLIPSTREAM_LOG_LEVEL, got %v", warns)
		}
	})

	t.Run("with SLIPSTREAM_STRICT_CONFIG an invalid setting fails init", func(t *testing.T) {
		f, api := newFakeLambda(t, shutdownEvent("spindown"))
		var stderr bytes.Buffer
		code := run(context.Background(), envFrom(map[string]string{
			"AWS_LAMBDA_RUNTIME_API":         api,
			"SLIPSTREAM_TELEMETRY_MAX_ITEMS": "5",
			"SLIPSTREAM_STRICT_CONFIG":       "true",
		}), &stderr, "slipstream")
		if code == 0 {
			t.Fatal("exit code 0, want failure")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.initErrors) != 1 || f.initErrors[0] != "Extension.ConfigInvalid" {
			t.Errorf("init errors = %v", f.initErrors)
		}
		if f.nextCalls != 0 {
			t.Errorf("next called %d times after init error", f.nextCalls)
		}
	})

	t.Run("Telemetry.NotSupported logs one warning and the lifecycle goes on", func(t *testing.T) {
		f, api := newFakeLambda(t, invokeEvent("r1"), shutdownEvent("SandboxTerminated"))
		f.telemetry = func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"errorMessage":"Telemetry API is not supported","errorType":"Telemetry.NotSupported"}`)
		}
		var stderr bytes.Buffer
		code := run(context.Background(), envFrom(map[string]string{
			"AWS_LAMBDA_RUNTIME_API":   api,
			"SLIPSTREAM_LISTENER_PORT": "0",
			"SLIPSTREAM_OTLP_ENDPOINT": "http://127.0.0.1:1",
		}), &stderr, "slipstream")
		if code != 0 {
			t.Fatalf("exit code %d; log:\n%s", code, stderr.String())
		}
		lines := logLines(t, stderr.Bytes())
		if w := countLevel(lines, "WARN"); len(w) != 1 {
			t.Errorf("want one WARN line, got %v", w)
		}
		if e := countLevel(lines, "ERROR"); len(e) != 0 {
			t.Errorf("want no ERROR line, got %v", e)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.nextCalls != 2 {
			t.Errorf("next calls = %d, want 2", f.nextCalls)
		}
	})
}

// collector is a fake OTLP/HTTP backend counting what it decodes.
type collector struct {
	mu      sync.Mutex        // guards spans and metrics
	spans   map[string]string // faas.invocation_id -> trace ID
	metrics map[string]bool
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err == nil && r.Header.Get("Content-Encoding") == "gzip" {
		body, err = gunzip(body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.URL.Path {
	case "/v1/traces":
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.Traces().ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					if id, ok := s.Attributes().Get("faas.invocation_id"); ok {
						c.spans[id.Str()] = s.TraceID().String()
					}
				}
			}
		}
	case "/v1/metrics":
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rm := range req.Metrics().ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					c.metrics[m.Name()] = true
				}
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func TestRunExportsWhatTheTelemetryAPIDelivers(t *testing.T) {
	col := &collector{spans: map[string]string{}, metrics: map[string]bool{}}
	backend := httptest.NewServer(col)
	defer backend.Close()

	// The final flush has until the SHUTDOWN deadline; the agent exits as
	// soon as it is done, so a generous deadline costs nothing when the
	// machine is fast and keeps the test green when it is busy.
	sd := shutdownEvent("spindown")
	sd["deadlineMs"] = time.Now().Add(time.Minute).UnixMilli()
	f, api := newFakeLambda(t, invokeEvent("r1"), sd)
	f.release = make(chan struct{}) // hold SHUTDOWN until the batch is delivered
	done := make(chan int)
	var stderr bytes.Buffer
	go func() {
		done <- run(context.Background(), envFrom(map[string]string{
			"AWS_LAMBDA_RUNTIME_API":   api,
			"AWS_LAMBDA_FUNCTION_NAME": "fn",
			"SLIPSTREAM_LISTENER_PORT": "0",
			"SLIPSTREAM_OTLP_ENDPOINT": backend.URL,
			"SLIPSTREAM_FLUSH":         "async",
			// A typo in a tuning setting: one ERROR line, export goes on.
			"SLIPSTREAM_FLUSH_TIMEOUT": "half a second",
		}), &stderr, "slipstream")
	}()
	<-f.subscribed

	batch := `[
 {"time":"2026-11-26T00:00:00.000Z","type":"platform.start","record":{"requestId":"r1","version":"$LATEST","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}}},
 {"time":"2026-11-26T00:00:00.010Z","type":"function","record":"hello"},
 {"time":"2026-11-26T00:00:00.020Z","type":"platform.runtimeDone","record":{"requestId":"r1","status":"success","metrics":{"durationMs":20}}},
 {"time":"2026-11-26T00:00:00.030Z","type":"platform.report","record":{"requestId":"r1","status":"success","metrics":{"durationMs":30,"billedDurationMs":30,"memorySizeMB":128,"maxMemoryUsedMB":20}}}
]`
	if code := postBatch(t, f.listenerURL(t), batch); code != http.StatusOK {
		t.Fatalf("listener answered %d", code)
	}
	close(f.release)
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, stderr.String())
	}
	checkNoAgentGoroutines(t)
	lines := logLines(t, stderr.Bytes())
	if errs := countLevel(lines, "ERROR"); len(errs) != 1 || !strings.HasPrefix(fmt.Sprint(errs[0]["detail"]), `SLIPSTREAM_FLUSH_TIMEOUT="half a second": accepted`) {
		t.Errorf("want one ERROR line naming SLIPSTREAM_FLUSH_TIMEOUT and its value, got %v", errs)
	}
	start := startLines(lines)
	if len(start) != 1 || start[0]["subscription"] != "subscribed" || start[0]["version"] != version {
		t.Fatalf("want one start line with the version and the subscription, got %v", start)
	}
	traces, _ := start[0]["config"].(map[string]any)["traces"].(map[string]any)
	if traces["endpoint"] != backend.URL+"/v1/traces" || traces["protocol"] != "http/protobuf" {
		t.Errorf("start line traces = %v, want the endpoint and protocol", traces)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if got := col.spans["r1"]; got != "5759e988bd862e3fe1be46a994272793" {
		t.Errorf("invocation span trace ID = %q, want the X-Ray root; spans %v", got, col.spans)
	}
	for _, name := range []string{"faas.invocations", "faas.invoke_duration"} {
		if !col.metrics[name] {
			t.Errorf("metric %s not received; got %v", name, col.metrics)
		}
	}
}
