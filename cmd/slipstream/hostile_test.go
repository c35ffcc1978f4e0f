package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The whole agent, fed hostile Telemetry API bodies before an
// invocation's batch, still exports that invocation and exits cleanly,
// with no ERROR line.
func TestRunExportsTheNextInvocationAfterHostileInput(t *testing.T) {
	col := &collector{spans: map[string]string{}, metrics: map[string]bool{}}
	backend := httptest.NewServer(col)
	defer backend.Close()
	sd := shutdownEvent("spindown")
	sd["deadlineMs"] = time.Now().Add(time.Minute).UnixMilli()
	f, api := newFakeLambda(t, invokeEvent("r1"), sd)
	f.release = make(chan struct{})
	done := make(chan int)
	var stderr bytes.Buffer
	go func() {
		done <- run(context.Background(), envFrom(map[string]string{
			"AWS_LAMBDA_RUNTIME_API":   api,
			"AWS_LAMBDA_FUNCTION_NAME": "fn",
			"SLIPSTREAM_LISTENER_PORT": "0",
			"SLIPSTREAM_OTLP_ENDPOINT": backend.URL,
			"SLIPSTREAM_FLUSH":         "async",
			"SLIPSTREAM_SPILL_DIR":     t.TempDir(),
		}), &stderr, "slipstream")
	}()
	<-f.subscribed
	url := f.listenerURL(t)

	ev := func(record string) string {
		return `{"time":"2026-11-26T00:00:00Z","type":"function","record":` + record + `}`
	}
	hostile := []struct {
		body   []byte
		header http.Header
	}{
		{body: []byte(`[` + ev(`"cut he`))},
		{body: []byte(strings.Repeat("[", 50000) + strings.Repeat("]", 50000))},
		{body: []byte(`[` + ev(`{"a":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`}`) + `]`)},
		{body: []byte(`[{"time":1,"type":{},"record":[]},{"time":"2026-11-26T00:00:00Z","type":"platform.report","record":{"requestId":5,"metrics":[]}},` +
			`{"time":"2026-11-26T00:00:00Z","type":"platform.start","record":"x"},7,null]`)},
		{body: []byte("[" + ev("\"\xff\xfe bad \xc3\"") + "," + ev("{\"k\xff\":\"\xed\xa0\x80\"}") + "]")},
		{body: []byte(`[` + ev(`"`+strings.Repeat("y", 1<<20)+`"`) + `]`)},
		{body: []byte("\x1f\x8b\x08\x00not gzip"), header: http.Header{"Content-Encoding": {"gzip"}}},
		{body: []byte(`{"not":"an array"}`)},
	}
	for i, h := range hostile {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(h.body))
		for k, v := range h.header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("hostile body %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("hostile body %d answered %d", i, resp.StatusCode)
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				body := `[` + ev(fmt.Sprintf(`"flood %d-%d"`, w, i)) + `]`
				if i%4 == 0 {
					body = `[{"time":`
				}
				resp, err := http.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()

	batch := `[
 {"time":"2026-11-26T00:00:00.000Z","type":"platform.start","record":{"requestId":"r1","version":"$LATEST","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}}},
 {"time":"2026-11-26T00:00:00.010Z","type":"function","record":"hello"},
 {"time":"2026-11-26T00:00:00.020Z","type":"platform.runtimeDone","record":{"requestId":"r1","status":"success","metrics":{"durationMs":20}}},
 {"time":"2026-11-26T00:00:00.030Z","type":"platform.report","record":{"requestId":"r1","status":"success","metrics":{"durationMs":30,"billedDurationMs":30,"memorySizeMB":128,"maxMemoryUsedMB":20}}}
]`
	if code := postBatch(t, url, batch); code != http.StatusOK {
		t.Fatalf("listener answered %d to the invocation's batch", code)
	}
	close(f.release)
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, stderr.String())
	}
	checkNoAgentGoroutines(t)
	lines := logLines(t, stderr.Bytes())
	if errs := countLevel(lines, "ERROR"); len(errs) != 0 {
		t.Errorf("ERROR lines after hostile input: %v", errs)
	}
	// A record the backend cannot take (invalid UTF-8 fails the protobuf
	// encoding) would hold back every log record queued after it: they
	// would be retried until SHUTDOWN and spilled.
	for _, l := range lines {
		if l["msg"] == "spilled unsent telemetry" || l["msg"] == "export summary" {
			t.Errorf("export did not go through: %v", l)
		}
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if got := col.spans["r1"]; got != "5759e988bd862e3fe1be46a994272793" {
		t.Errorf("the invocation after the hostile input was not exported: spans %v", col.spans)
	}
	if !col.metrics["faas.invocations"] {
		t.Errorf("faas.invocations not received; got %v", col.metrics)
	}
}
