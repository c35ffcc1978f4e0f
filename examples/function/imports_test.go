package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTheAgentDoesNotImportTheExamples keeps aws-lambda-go and examples/ out of the agent binary.
func TestTheAgentDoesNotImportTheExamples(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found:", err)
	}
	const agent = "github.com/slipstream-otel/slipstream/cmd/slipstream"
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", agent).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "no Go files") {
			t.Skipf("%s has no Go files yet", agent)
		}
		t.Fatalf("go list %s: %v\n%s", agent, err, out)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		if strings.HasPrefix(dep, "github.com/aws/aws-lambda-go") ||
			strings.HasPrefix(dep, "github.com/slipstream-otel/slipstream/examples") {
			t.Errorf("the agent imports %s", dep)
		}
	}
}
