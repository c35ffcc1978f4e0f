package exporter

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// The function's own OTLP data goes through the same pre-queue step:
// nothing the built-in set redacts reaches the backend.
func TestFunctionDataIsRedactedBeforeTheQueue(t *testing.T) {
	col := sink.New(sink.Options{})
	rec := &recordingRT{next: col.Transport()}
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		cfg.ReceiverEnrich, cfg.RedactDefaults = true, true
		h := newHarnessWith(t, cfg, Options{LocalInputs: true},
			knobs{HTTPClient: &http.Client{Transport: rec}, NewMapper: realMapper, BatchDelay: time.Millisecond})
		h.run(t)
		startedInvocation(h)
		synctest.Wait()
		traces := fnTraces(2)
		sp := traces.ResourceSpans[0].ScopeSpans[0].Spans[1]
		sp.Attributes = append(sp.Attributes, str("db.password", "hunter2"), str("http.url", "https://u:s3cr3tpw@api.example.com/"))
		sp.Events = append(sp.Events, &tracepb.Span_Event{Name: "exception", Attributes: []*commonpb.KeyValue{
			str("exception.message", "token "+secretValues[5]+" rejected")}})
		logs := fnLogs()
		logs.ResourceLogs[0].ScopeLogs[0].LogRecords[0].Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{
			StringValue: "using AKIAIOSFODNN7EXAMPLE with Bearer mF_9.B5f-4.1JqM"}}
		if rej, reason := h.p.AcceptOTLP(traces); rej != 0 {
			t.Fatalf("rejected %d: %s", rej, reason)
		}
		if rej, _ := h.p.AcceptOTLP(logs); rej != 0 {
			t.Fatal("logs rejected")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		h.close(t)
	})
	snap := col.Snapshot()
	if len(snap.Traces()) == 0 || len(snap.LogsData()) == 0 {
		t.Fatalf("backend got %d trace and %d log requests", len(snap.Traces()), len(snap.LogsData()))
	}
	assertNoSecret(t, "what the backend received of the function's data", rec.all())
}
