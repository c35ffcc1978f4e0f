package sink_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// goldenDir holds the exporter's expected OTLP output (owned by the exporter's signals package).
const goldenDir = "../../exporter/signals/testdata/golden"

// TestTheExportersGoldenOutputFillsTheTable posts every golden request the exporter's tests
// expect to the sink, and checks the table's attribute keys (keys.go) find what the exporter
// emits: every invocation span of kind SERVER is a row, with its report figures when present.
func TestTheExportersGoldenOutputFillsTheTable(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if len(files) == 0 {
		t.Skipf("no golden files in %s yet", goldenDir)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var golden map[string][]json.RawMessage
			if err := json.Unmarshal(raw, &golden); err != nil {
				t.Skipf("not a {traces,metrics,logs} golden file: %v", err)
			}
			s := start(t, sink.Options{})
			for sig, reqs := range golden {
				for _, body := range reqs {
					if resp := post(t, s.URL(sink.Signal(sig)), "application/json", "", body); resp.status != 200 {
						t.Fatalf("%s: %d %s", sig, resp.status, resp.body)
					}
				}
			}
			var buf bytes.Buffer
			if err := s.Table(&buf); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", buf.String())

			snap := s.Snapshot()
			server := make(map[string]bool) // trace/span IDs of SERVER spans with an invocation ID
			for _, sp := range snap.Spans() {
				if _, ok := sp.Attributes["faas.invocation_id"]; ok && sp.Kind == "Server" {
					server[sp.TraceID+"/"+sp.SpanID] = true
				}
			}
			invs := snap.Invocations()
			if len(invs) != len(server) {
				t.Errorf("%d rows for %d invocation spans", len(invs), len(server))
			}
			for _, inv := range invs {
				has := func(prefix string) bool {
					for k := range inv.Span.Attributes {
						if strings.HasPrefix(k, prefix) {
							return true
						}
					}
					return false
				}
				if has("slipstream.billed_duration") && inv.BilledDuration == 0 {
					t.Errorf("%s: billed duration attribute not found by keys.go: %v", inv.RequestID, inv.Span.Attributes)
				}
				if has("slipstream.max_memory_used") && inv.MaxMemoryMB == 0 {
					t.Errorf("%s: memory attribute not found by keys.go: %v", inv.RequestID, inv.Span.Attributes)
				}
				var logs int
				for _, lr := range snap.Logs() {
					if lr.Attributes["faas.invocation_id"] == inv.RequestID {
						logs++
					}
				}
				if inv.Logs < logs {
					t.Errorf("%s: %d logs counted, %d carry its invocation ID", inv.RequestID, inv.Logs, logs)
				}
			}
		})
	}
}
