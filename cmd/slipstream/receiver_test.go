package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// functionSpan is what a function's SDK exports: one span in the INVOKE's
// trace, named by faas.invocation_id for the test collector.
func functionSpan(t *testing.T) []byte {
	t.Helper()
	tid, _ := hex.DecodeString("5759e988bd862e3fe1be46a994272793")
	parent, _ := hex.DecodeString("53995c3f42cd8ad8")
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: tid, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, ParentSpanId: parent, Name: "handler",
			Attributes: []*commonpb.KeyValue{{Key: "faas.invocation_id", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "function-span"}}}},
		}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func postOTLP(t *testing.T, port int, enc string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v1/traces", port), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post to the receiver: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRunReceivesTheFunctionsOwnData(t *testing.T) {
	col := &collector{spans: map[string]string{}, metrics: map[string]bool{}}
	backend := httptest.NewServer(col)
	defer backend.Close()
	f, api := newFakeLambda(t, invokeEvent("r1"), shutdownEvent("spindown"))
	f.release = make(chan struct{})
	port := freePort(t)
	done := make(chan int)
	var stderr bytes.Buffer
	go func() {
		done <- run(context.Background(), envFrom(map[string]string{
			"AWS_LAMBDA_RUNTIME_API":        api,
			"SLIPSTREAM_LISTENER_PORT":      "0",
			"SLIPSTREAM_OTLP_ENDPOINT":      backend.URL,
			"SLIPSTREAM_RECEIVER_HTTP_PORT": fmt.Sprint(port),
			"SLIPSTREAM_FLUSH":              "async",
		}), &stderr, "slipstream")
	}()
	<-f.subscribed
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 8<<20)) //nolint:errcheck // a bytes.Buffer does not fail
	zw.Close()
	for _, c := range []struct {
		name, enc string
		body      []byte
		want      int
	}{
		{"a malformed body is 400", "", []byte{0xff, 0xff}, http.StatusBadRequest},
		{"a gzip bomb is 413", "gzip", bomb.Bytes(), http.StatusRequestEntityTooLarge},
		{"the function's spans are accepted", "", functionSpan(t), http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := postOTLP(t, port, c.enc, c.body); got != c.want {
				t.Errorf("status %d, want %d", got, c.want)
			}
		})
	}
	close(f.release)
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, stderr.String())
	}
	checkNoAgentGoroutines(t)
	col.mu.Lock()
	defer col.mu.Unlock()
	if got := col.spans["function-span"]; got != "5759e988bd862e3fe1be46a994272793" {
		t.Errorf("the function's span did not reach the backend: %v\n%s", col.spans, stderr.String())
	}
	if _, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		t.Error("the receiver still accepts after shutdown")
	}
}

func TestRunRefusesItsOwnReceiverAsTheExportEndpoint(t *testing.T) {
	f, api := newFakeLambda(t, invokeEvent("r1"), shutdownEvent("spindown"))
	var stderr bytes.Buffer
	code := run(context.Background(), envFrom(map[string]string{
		"AWS_LAMBDA_RUNTIME_API": api,
		// Nothing else set: the export endpoint defaults to
		// http://localhost:4318, the receiver's default port.
		"SLIPSTREAM_RECEIVER_HTTP_PORT": "4318",
	}), &stderr, "slipstream")
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	lines := logLines(t, stderr.Bytes())
	errs := countLevel(lines, "ERROR")
	if len(errs) != 1 || !strings.HasPrefix(fmt.Sprint(errs[0]["detail"]), "SLIPSTREAM_OTLP_ENDPOINT: ") {
		t.Errorf("want one ERROR line naming SLIPSTREAM_OTLP_ENDPOINT, got %v", errs)
	}
	start := startLines(lines)
	if len(start) != 1 {
		t.Fatalf("start lines %v", start)
	}
	traces, _ := start[0]["config"].(map[string]any)["traces"].(map[string]any)
	if off := fmt.Sprint(traces["off_by"]); !strings.Contains(off, "no export endpoint set") {
		t.Errorf("start line traces = %v", traces)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nextCalls != 2 {
		t.Errorf("next calls %d: the lifecycle must go on", f.nextCalls)
	}
}

func TestRunGoesOnWhenTheReceiverPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	col := &collector{spans: map[string]string{}, metrics: map[string]bool{}}
	backend := httptest.NewServer(col)
	defer backend.Close()
	_, api := newFakeLambda(t, invokeEvent("r1"), shutdownEvent("spindown"))
	var stderr bytes.Buffer
	code := run(context.Background(), envFrom(map[string]string{
		"AWS_LAMBDA_RUNTIME_API":        api,
		"SLIPSTREAM_LISTENER_PORT":      "0",
		"SLIPSTREAM_OTLP_ENDPOINT":      backend.URL,
		"SLIPSTREAM_RECEIVER_HTTP_PORT": fmt.Sprint(taken.Addr().(*net.TCPAddr).Port),
	}), &stderr, "slipstream")
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	lines := logLines(t, stderr.Bytes())
	warns := countLevel(lines, "WARN")
	n := 0
	for _, w := range warns {
		if strings.Contains(fmt.Sprint(w["msg"]), "port is taken") {
			n++
		}
	}
	if n != 1 || len(countLevel(lines, "ERROR")) != 0 {
		t.Errorf("want one WARN line about the taken port and no ERROR, got %v", lines)
	}
	if start := startLines(lines); len(start) != 1 || start[0]["subscription"] != "subscribed" {
		t.Errorf("the agent did not go on: %v", start)
	}
}

// freePort returns a loopback TCP port that was free a moment ago (the
// receiver's port must be known to the function, so it is never 0).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
