package receiver

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestNodeSDKExportsToTheReceiver runs the Node.js example handler
// (examples/otel-node) with the OpenTelemetry JS SDK that `make tools`
// installs into ./.tools: its spans reach the receiver in the X-Ray trace
// it was given. Skipped when node or the packages are missing.
func TestNodeSDKExportsToTheReceiver(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	modules, _ := filepath.Abs(filepath.Join("..", ".tools", "node_modules"))
	if _, err := os.Stat(filepath.Join(modules, "@opentelemetry", "exporter-trace-otlp-proto")); err != nil {
		t.Skip("OpenTelemetry JS packages not installed: run make tools")
	}
	sink := &fakeSink{}
	r := start(t, sink, Config{})
	cmd := exec.Command(node, "run.js")
	cmd.Dir = filepath.Join("..", "examples", "otel-node")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+r.HTTPAddr(),
		"_X_AMZN_TRACE_ID=Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node run.js: %v\n%s", err, out)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	names := map[string]string{}
	for _, req := range sink.traces {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					if hex.EncodeToString(sp.TraceId) != "5759e988bd862e3fe1be46a994272793" {
						t.Errorf("span %s in trace %x", sp.Name, sp.TraceId)
					}
					names[sp.Name] = hex.EncodeToString(sp.ParentSpanId)
				}
			}
		}
	}
	if names["handle"] != "53995c3f42cd8ad8" || names["work"] == "" {
		t.Errorf("spans received (name: parent) %v; want handle under the X-Ray Parent and work under handle", names)
	}
}
