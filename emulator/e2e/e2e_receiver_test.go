//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/emulator/sink"
)

const (
	e2eXRayHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	e2eXRayTrace  = "5759e988bd862e3fe1be46a994272793"
	e2eXRayParent = "53995c3f42cd8ad8"
	// e2eFunctionScope is the example function's tracer.
	e2eFunctionScope = "github.com/slipstream-otel/slipstream/examples/function"
)

// e2eFunctionSpans returns the example function's own spans (its SDK's),
// by name.
func e2eFunctionSpans(snap *sink.Snapshot) map[string][]sink.SpanView {
	out := map[string][]sink.SpanView{}
	for _, sp := range snap.Spans() {
		if sp.Scope == e2eFunctionScope {
			out[sp.Name] = append(out[sp.Name], sp)
		}
	}
	return out
}

// e2eTraceHeader is an X-Ray header of a trace of its own for invocation i.
func e2eTraceHeader(i int) (header, traceID string) {
	traceID = fmt.Sprintf("5759e988%024x", i+1)
	return fmt.Sprintf("Root=1-%s-%s;Parent=%s;Sampled=1", traceID[:8], traceID[8:], e2eXRayParent), traceID
}

// TestE2EFunctionSpansNestUnderTheInvocation runs the example function
// with its OpenTelemetry SDK on: its spans go to Slipstream's receiver
// with ForceFlush at the end of the handler, and reach the backend in the
// invocation's trace, its handler span a child of the invocation span.
func TestE2EFunctionSpansNestUnderTheInvocation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, endpoint := e2eSink(t, "")
	r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint, env: []string{"OTEL_SDK_DISABLED=false"}})
	res := r.invoke(ctx, `{"action":"succeed"}`, e2eXRayHeader)
	if err := e2eResponseOK(res); err != nil {
		t.Fatal(err)
	}
	e2eCheckExit(t, r.shutdown(ctx))
	e2eWait(ctx, t, s, "the invocation span and the function's spans", func(snap *sink.Snapshot) bool {
		fn := e2eFunctionSpans(snap)
		return e2eHasSpans([]string{res.RequestID})(snap) && len(fn["handle"]) > 0 && len(fn["action succeed"]) > 0
	})
	snap := s.Snapshot()
	invs := e2eInvocationSpans(snap)[res.RequestID]
	fn := e2eFunctionSpans(snap)
	if len(invs) != 1 || len(fn["handle"]) != 1 || len(fn["action succeed"]) != 1 {
		t.Fatalf("invocation spans %d, handle spans %d, action spans %d: want one each", len(invs), len(fn["handle"]), len(fn["action succeed"]))
	}
	inv, handle, action := invs[0], fn["handle"][0], fn["action succeed"][0]
	t.Run("the function's spans are in the invocation's trace", func(t *testing.T) {
		for _, sp := range []sink.SpanView{inv, handle, action} {
			if sp.TraceID != e2eXRayTrace {
				t.Errorf("%s in trace %s, want %s", sp.Name, sp.TraceID, e2eXRayTrace)
			}
		}
	})
	t.Run("the handler span is a child of Slipstream's invocation span", func(t *testing.T) {
		if inv.ParentSpanID != e2eXRayParent || handle.ParentSpanID != inv.SpanID {
			t.Errorf("invocation under %s; handle under %s, want under the invocation span %s", inv.ParentSpanID, handle.ParentSpanID, inv.SpanID)
		}
		if action.ParentSpanID != handle.SpanID {
			t.Errorf("action under %s, want under handle %s", action.ParentSpanID, handle.SpanID)
		}
	})
	t.Run("the function's resource keeps its service name and gains the Lambda attributes it lacks", func(t *testing.T) {
		if handle.Resource["service.name"] != "slipstream-e2e" || handle.Resource["faas.name"] != "slipstream-e2e" || handle.Resource["cloud.provider"] != "aws" {
			t.Errorf("resource %v", handle.Resource)
		}
		if handle.Resource["telemetry.sdk.language"] != "go" {
			t.Errorf("the SDK's own attributes are gone: %v", handle.Resource)
		}
	})
}

// TestE2EFunctionSpansSurviveABackendOutage: while the backend answers
// 503 the function's spans wait in the queue (the function is answered at
// once); once it is back, every one of them arrives.
func TestE2EFunctionSpansSurviveABackendOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, endpoint := e2eSink(t, "")
	r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint, env: []string{"OTEL_SDK_DISABLED=false", "SLIPSTREAM_FLUSH=async"}})
	s.InjectFault(sink.Fault{Status: http.StatusServiceUnavailable})
	const n = 5
	traces := map[string]bool{}
	for i := range n {
		header, traceID := e2eTraceHeader(i)
		traces[traceID] = true
		res := r.invoke(ctx, `{"action":"succeed"}`, header)
		if err := e2eResponseOK(res); err != nil {
			t.Fatal(err)
		}
	}
	s.ClearFaults()
	// One more invocation lets the agent retry while the environment is awake.
	r.invoke(ctx, `{"action":"sleep","ms":1500}`, "")
	e2eCheckExit(t, r.shutdown(ctx))
	e2eWait(ctx, t, s, "every function span sent while the backend was down", func(snap *sink.Snapshot) bool {
		got := map[string]bool{}
		for _, sp := range e2eFunctionSpans(snap)["handle"] {
			got[sp.TraceID] = true
		}
		for id := range traces {
			if !got[id] {
				return false
			}
		}
		return true
	})
}

// TestE2EReceiverGuardsItself: the loop guard with the function's own
// endpoint (the receiver) as the only one set, a receiver port already
// taken, and bad requests that never harm the next invocation.
func TestE2EReceiverGuardsItself(t *testing.T) {
	t.Run("an export endpoint that is the receiver itself switches export off with one ERROR line", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		port := e2eFreePort(t)
		// No SLIPSTREAM_OTLP_* variable: Slipstream falls back to the
		// function's OTEL_EXPORTER_OTLP_ENDPOINT, which is the receiver.
		r := e2eStart(ctx, t, e2eConfig{receiverPort: port, env: []string{"SLIPSTREAM_OTLP_ENDPOINT=", "OTEL_SDK_DISABLED=false"}})
		res := r.invoke(ctx, `{"action":"succeed"}`, e2eXRayHeader)
		if err := e2eResponseOK(res); err != nil {
			t.Fatal(err)
		}
		e2eCheckExit(t, r.shutdown(ctx))
		log := r.stderr.String()
		if n := strings.Count(log, `"level":"ERROR"`); n != 1 || !strings.Contains(log, "SLIPSTREAM_OTLP_ENDPOINT: the export endpoint http://127.0.0.1:"+strconv.Itoa(port)) {
			t.Errorf("want one ERROR line naming SLIPSTREAM_OTLP_ENDPOINT, got %d:\n%s", n, log)
		}
		if !strings.Contains(log, "no export endpoint set") {
			t.Errorf("the start line does not say no export endpoint is set:\n%s", log)
		}
	})
	t.Run("a receiver port already taken is one WARN line and the agent goes on", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		s, endpoint := e2eSink(t, "")
		r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint, receiverPort: taken.Addr().(*net.TCPAddr).Port})
		res := r.invoke(ctx, `{"action":"succeed"}`, "")
		if err := e2eResponseOK(res); err != nil {
			t.Fatal(err)
		}
		e2eCheckExit(t, r.shutdown(ctx))
		e2eWait(ctx, t, s, "the invocation span", e2eHasSpans([]string{res.RequestID}))
		if n := strings.Count(r.stderr.String(), "port is taken"); n != 1 {
			t.Errorf("%d lines about the taken port, want 1:\n%s", n, r.stderr)
		}
	})
	t.Run("malformed, oversized and gzip-bomb requests are answered 4xx and the next invocation is unharmed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, endpoint := e2eSink(t, "")
		r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint, env: []string{"OTEL_SDK_DISABLED=false"}})
		var bomb bytes.Buffer
		zw := gzip.NewWriter(&bomb)
		zw.Write(make([]byte, 64<<20)) //nolint:errcheck // a bytes.Buffer does not fail
		zw.Close()
		url := fmt.Sprintf("http://127.0.0.1:%d/v1/traces", r.receiverPort)
		for _, c := range []struct {
			name, ct, enc string
			body          []byte
			want          int
		}{
			{"malformed protobuf", "application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, 400},
			{"malformed JSON", "application/json", "", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), 400},
			{"oversized", "application/x-protobuf", "", make([]byte, 5<<20), 413},
			{"gzip bomb", "application/x-protobuf", "gzip", bomb.Bytes(), 413},
		} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(c.body))
			req.Header.Set("Content-Type", c.ct)
			if c.enc != "" {
				req.Header.Set("Content-Encoding", c.enc)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
			}
		}
		res := r.invoke(ctx, `{"action":"succeed"}`, e2eXRayHeader)
		if err := e2eResponseOK(res); err != nil {
			t.Fatal(err)
		}
		e2eCheckExit(t, r.shutdown(ctx))
		e2eWait(ctx, t, s, "the next invocation's spans", func(snap *sink.Snapshot) bool {
			return e2eHasSpans([]string{res.RequestID})(snap) && len(e2eFunctionSpans(snap)["handle"]) == 1
		})
	})
}

// e2eFreePort returns a loopback TCP port that was free a moment ago (the
// receiver's port must be known to the function, so it is never 0).
func e2eFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("reserve a port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
