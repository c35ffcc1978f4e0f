package validate

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// lookup returns the mapping value under key, nil when absent.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func scalars(n *yaml.Node) []string {
	var out []string
	if n == nil {
		return nil
	}
	for _, c := range n.Content {
		out = append(out, c.Value)
	}
	return out
}

func TestSAMTemplate(t *testing.T) {
	b, err := os.ReadFile("../template/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse template: %v", err)
	}
	root := doc.Content[0]
	resources := lookup(root, "Resources")
	t.Run("the architecture is one parameter that accepts exactly Lambda's names", func(t *testing.T) {
		p := lookup(root, "Parameters", "Architecture")
		if got := scalars(lookup(p, "AllowedValues")); !slices.Equal(got, lambdaArchitectures) {
			t.Errorf("AllowedValues = %q, want %q", got, lambdaArchitectures)
		}
		a := lookup(root, "Globals", "Function", "Architectures")
		if a == nil || len(a.Content) != 1 || a.Content[0].Tag != "!Ref" || a.Content[0].Value != "Architecture" {
			t.Errorf("Globals.Function.Architectures is not [!Ref Architecture]")
		}
	})
	t.Run("each layer is the zip of its architecture, for every runtime, with a retention policy", func(t *testing.T) {
		layers := 0
		for i := 0; i+1 < len(resources.Content); i += 2 {
			r := resources.Content[i+1]
			if lookup(r, "Type").Value != "AWS::Serverless::LayerVersion" {
				continue
			}
			layers++
			name := resources.Content[i].Value
			archs := scalars(lookup(r, "Properties", "CompatibleArchitectures"))
			if len(archs) != 1 || !slices.Contains(lambdaArchitectures, archs[0]) {
				t.Errorf("%s: CompatibleArchitectures %q", name, archs)
				continue
			}
			if uri := lookup(r, "Properties", "ContentUri"); uri == nil || !strings.HasSuffix(uri.Value, "/slipstream-"+archs[0]+".zip") {
				t.Errorf("%s: ContentUri is not the %s zip that make layer writes", name, archs[0])
			}
			if lookup(r, "Properties", "CompatibleRuntimes") != nil {
				t.Errorf("%s lists CompatibleRuntimes: the extension works with every runtime (layer/README.md)", name)
			}
			if rp := lookup(r, "Properties", "RetentionPolicy"); rp == nil || (rp.Value != "Delete" && rp.Value != "Retain") {
				t.Errorf("%s: no RetentionPolicy (Delete or Retain) chosen", name)
			}
			if lookup(r, "Condition") == nil {
				t.Errorf("%s has no Condition: both layers would be created", name)
			}
		}
		if layers != 2 {
			t.Errorf("%d layers, want one per architecture", layers)
		}
	})
	t.Run("every environment variable is one the agent reads, and the headers come from a NoEcho parameter", func(t *testing.T) {
		known := documentedVariables(t)
		vars := lookup(resources, "ExampleFunction", "Properties", "Environment", "Variables")
		if vars == nil {
			t.Fatal("the function has no environment variables")
		}
		for i := 0; i+1 < len(vars.Content); i += 2 {
			name, v := vars.Content[i].Value, vars.Content[i+1]
			if !known[name] {
				t.Errorf("%s is not in the README's configuration reference", name)
			}
			if secretVariables.MatchString(name) {
				if v.Tag != "!Ref" {
					t.Errorf("%s holds a value written in the template", name)
					continue
				}
				if ne := lookup(root, "Parameters", v.Value, "NoEcho"); ne == nil || ne.Value != "true" {
					t.Errorf("%s comes from parameter %s, which is not NoEcho", name, v.Value)
				}
			}
		}
	})
}
