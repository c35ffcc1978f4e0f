package exporter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/exporter/filter"
	"github.com/slipstream-otel/slipstream/extension"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// With SLIPSTREAM_TRACE_SAMPLE_RATIO, an invocation's spans and its log
// lines reach the backend together or not at all, as the trace ID
// decides; every invocation is counted in the metrics.
func TestSamplingKeepsSpansAndLogsTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		cfg.ServiceName = "fn"
		ratio := 0.5
		cfg.TraceSampleRatio = &ratio
		decide, err := filter.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		col := sink.New(sink.Options{})
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: &memRT{backend: col}}, NewMapper: realMapper})
		h.run(t)
		ctx := context.Background()
		const n = 40
		keep := map[string]bool{}
		for i := range n {
			sum := sha256.Sum256(fmt.Appendf(nil, "trace %d", i))
			root := hex.EncodeToString(sum[:16])
			id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
			header := "Root=1-" + root[:8] + "-" + root[8:] + ";Parent=53995c3f42cd8ad8;Sampled=1"
			tid, _ := trace.TraceIDFromHex(root)
			keep[id] = decide.KeepTrace(tid)
			at := time.Now()
			h.p.Invoke(ctx, extension.Event{Type: extension.Invoke, RequestID: id, DeadlineMs: at.Add(time.Minute).UnixMilli(),
				Tracing: &extension.Tracing{Type: "X-Amzn-Trace-Id", Value: header}})
			tr := &telemetry.Tracing{Type: "X-Amzn-Trace-Id", Value: header}
			h.p.Enqueue(ctx, []telemetry.Event{
				{Time: at, Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: id, Tracing: tr}, Size: 200},
				logLine(id+" line a", at),
				logLine("    continued "+id, at),
				{Time: at, Type: telemetry.TypeRuntimeDone, Record: &telemetry.RuntimeDone{RequestID: id, Status: telemetry.StatusSuccess, Tracing: tr}, Size: 300},
				{Time: at, Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: id, Status: telemetry.StatusSuccess, Tracing: tr}, Size: 400},
			})
		}
		if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		h.close(t)
		spans, logs := received(col)
		kept := 0
		for id, k := range keep {
			if k {
				kept++
			}
			gotSpans, gotLogs := spans[id] > 0, logs[id+" line a\n    continued "+id] == 1
			if gotSpans != k || gotLogs != k {
				t.Errorf("invocation %s: keep %v, spans %d, log %v", id, k, spans[id], gotLogs)
			}
		}
		if kept == 0 || kept == n {
			t.Fatalf("%d of %d kept: the test needs both outcomes", kept, n)
		}
		if got := col.Sum("faas.invocations"); got != n {
			t.Errorf("faas.invocations = %v, want %d: metrics are never sampled", got, n)
		}
	})
}
