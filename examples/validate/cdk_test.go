package validate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCDKTemplate reads the CloudFormation template that `cdk synth`
// wrote for examples/cdk into $SLIPSTREAM_CDK_OUT (make examples sets it
// after the synth).
func TestCDKTemplate(t *testing.T) {
	dir := os.Getenv("SLIPSTREAM_CDK_OUT")
	if dir == "" {
		t.Skip("SLIPSTREAM_CDK_OUT not set: run make examples (after make tools) to synthesize the CDK app and check it")
	}
	b, err := os.ReadFile(filepath.Join(dir, "SlipstreamExample.template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	var layer, fn map[string]json.RawMessage
	for _, r := range tmpl.Resources {
		switch r.Type {
		case "AWS::Lambda::LayerVersion":
			layer = r.Properties
		case "AWS::Lambda::Function":
			fn = r.Properties
		}
	}
	if layer == nil || fn == nil {
		t.Fatalf("the template lacks a layer version or a function: %s", b)
	}
	strs := func(raw json.RawMessage) []string {
		var s []string
		_ = json.Unmarshal(raw, &s) // absent or not a list: nil, and the check below fails
		return s
	}
	t.Run("the layer and the function have the one architecture given", func(t *testing.T) {
		la, fa := strs(layer["CompatibleArchitectures"]), strs(fn["Architectures"])
		if len(la) != 1 || !slices.Contains(lambdaArchitectures, la[0]) || !slices.Equal(la, fa) {
			t.Errorf("layer %q, function %q", la, fa)
		}
		if layer["CompatibleRuntimes"] != nil {
			t.Error("the layer lists CompatibleRuntimes: the extension works with every runtime")
		}
	})
	t.Run("the function uses the layer", func(t *testing.T) {
		if len(fn["Layers"]) == 0 {
			t.Error("the function has no layers")
		}
	})
	t.Run("every environment variable is one the agent reads, and no headers value is in the template", func(t *testing.T) {
		known := documentedVariables(t)
		var env struct{ Variables map[string]string }
		if err := json.Unmarshal(fn["Environment"], &env); err != nil {
			t.Fatal(err)
		}
		for name, v := range env.Variables {
			if !known[name] {
				t.Errorf("%s is not in the README's configuration reference", name)
			}
			if secretVariables.MatchString(name) && v != "" {
				t.Errorf("%s has a value in the synthesized template; the check synthesizes without one", name)
			}
		}
	})
}
