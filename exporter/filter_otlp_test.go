package exporter

import (
	"testing"
	"testing/synctest"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/slipstream-otel/slipstream/config"
)

// The function's own OTLP data goes through the same pre-queue step:
// nothing the built-in set redacts reaches the backend.
func TestFunctionDataIsRedactedBeforeTheQueue(t *testing.T) {
	b := &otlpBackend{}
	synctest.Test(t, func(t *testing.T) {
		h := fnHarness(t, b, config.FlushAsync, func(c *config.Config) { c.RedactDefaults = true })
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
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.traces) == 0 || len(b.logs) == 0 {
		t.Fatalf("backend got %d trace and %d log requests", len(b.traces), len(b.logs))
	}
	var wire []byte
	for _, r := range b.traces {
		wire = append(wire, protojson.Format(r)...)
	}
	for _, r := range b.logs {
		wire = append(wire, protojson.Format(r)...)
	}
	assertNoSecret(t, "what the backend received of the function's data", wire)
}
