package validate

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// terraformConfig is the examples/terraform configuration parsed.
type terraformConfig struct {
	resources map[string]*hclsyntax.Block // "type.name" -> block
	variables map[string]*hclsyntax.Block
}

func parseTerraform(t *testing.T) terraformConfig {
	t.Helper()
	files, err := filepath.Glob("../terraform/*.tf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no .tf files in examples/terraform (%v)", err)
	}
	p := hclparse.NewParser()
	cfg := terraformConfig{resources: map[string]*hclsyntax.Block{}, variables: map[string]*hclsyntax.Block{}}
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", f, diags.Error())
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			switch {
			case b.Type == "resource" && len(b.Labels) == 2:
				cfg.resources[b.Labels[0]+"."+b.Labels[1]] = b
			case b.Type == "variable" && len(b.Labels) == 1:
				cfg.variables[b.Labels[0]] = b
			}
		}
	}
	return cfg
}

// child returns the first nested block of that type.
func child(b *hclsyntax.Block, typ string) *hclsyntax.Block {
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			return c
		}
	}
	return nil
}

// constant evaluates an expression that needs no variables, and reports
// whether it could.
func constant(e hclsyntax.Expression) (cty.Value, bool) {
	v, diags := e.Value(nil)
	return v, !diags.HasErrors() && v.IsWhollyKnown()
}

func TestTerraform(t *testing.T) {
	cfg := parseTerraform(t)
	t.Run("the configuration declares the layer, the function and its role", func(t *testing.T) {
		for _, r := range []string{"aws_lambda_layer_version.slipstream", "aws_lambda_function.example", "aws_iam_role.function"} {
			if cfg.resources[r] == nil {
				t.Errorf("no resource %s", r)
			}
		}
	})
	t.Run("the architecture is one variable that accepts exactly Lambda's names", func(t *testing.T) {
		v := cfg.variables["architecture"]
		if v == nil {
			t.Fatal(`no variable "architecture"`)
		}
		if def, ok := constant(v.Body.Attributes["default"].Expr); !ok || !slices.Contains(lambdaArchitectures, def.AsString()) {
			t.Errorf("default %#v is not one of %q", def, lambdaArchitectures)
		}
		val := child(v, "validation")
		if val == nil {
			t.Fatal("the architecture variable has no validation block")
		}
		// The condition, evaluated for each candidate, accepts Lambda's names and nothing else.
		cond := val.Body.Attributes["condition"].Expr
		for _, candidate := range []string{"x86_64", "arm64", "amd64", "aarch64", "ARM64", ""} {
			ctx := &hcl.EvalContext{
				Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{"architecture": cty.StringVal(candidate)})},
				Functions: map[string]function{"contains": containsFunc},
			}
			got, diags := cond.Value(ctx)
			if diags.HasErrors() {
				t.Fatalf("evaluate the condition: %s", diags.Error())
			}
			if want := slices.Contains(lambdaArchitectures, candidate); got.True() != want {
				t.Errorf("architecture %q accepted = %v, want %v", candidate, got.True(), want)
			}
		}
	})
	t.Run("the layer and the function take their architecture from that variable", func(t *testing.T) {
		for r, attr := range map[string]string{"aws_lambda_layer_version.slipstream": "compatible_architectures", "aws_lambda_function.example": "architectures"} {
			b := cfg.resources[r]
			if b == nil {
				continue
			}
			a := b.Body.Attributes[attr]
			if a == nil {
				t.Errorf("%s has no %s", r, attr)
				continue
			}
			if refs := a.Expr.Variables(); len(refs) != 1 || refs[0].RootName() != "var" || traversalName(refs[0]) != "architecture" {
				t.Errorf("%s.%s does not refer to var.architecture alone", r, attr)
			}
		}
	})
	t.Run("the function uses the layer", func(t *testing.T) {
		fn := cfg.resources["aws_lambda_function.example"]
		if fn == nil || fn.Body.Attributes["layers"] == nil {
			t.Fatal("the function has no layers")
		}
		found := false
		for _, ref := range fn.Body.Attributes["layers"].Expr.Variables() {
			found = found || (ref.RootName() == "aws_lambda_layer_version" && traversalName(ref) == "slipstream")
		}
		if !found {
			t.Error("the function's layers do not refer to aws_lambda_layer_version.slipstream")
		}
	})
	t.Run("every environment variable is one the agent reads, and no secret has a value in the file", func(t *testing.T) {
		known := documentedVariables(t)
		fn := cfg.resources["aws_lambda_function.example"]
		env := child(fn, "environment")
		if env == nil || env.Body.Attributes["variables"] == nil {
			t.Fatal("the function has no environment variables")
		}
		obj, ok := env.Body.Attributes["variables"].Expr.(*hclsyntax.ObjectConsExpr)
		if !ok {
			t.Fatal("environment.variables is not an object written out")
		}
		for _, item := range obj.Items {
			k, ok := constant(item.KeyExpr)
			if !ok || k.Type() != cty.String {
				t.Errorf("a variable name is not a constant string")
				continue
			}
			name := k.AsString()
			if !known[name] {
				t.Errorf("%s is not in the README's configuration reference", name)
			}
			if secretVariables.MatchString(name) {
				if _, literal := constant(item.ValueExpr); literal {
					t.Errorf("%s holds a value written in the file: take it from a sensitive variable", name)
				}
				for _, ref := range item.ValueExpr.Variables() {
					if ref.RootName() == "var" {
						assertSensitive(t, cfg, traversalName(ref))
					}
				}
			}
		}
	})
	t.Run("no sensitive variable has a default other than empty", func(t *testing.T) {
		for name, v := range cfg.variables {
			s, ok := v.Body.Attributes["sensitive"]
			if !ok {
				continue
			}
			if sv, ok := constant(s.Expr); !ok || !sv.True() {
				continue
			}
			if d, ok := v.Body.Attributes["default"]; ok {
				if dv, ok := constant(d.Expr); !ok || dv.AsString() != "" {
					t.Errorf("sensitive variable %s has a default value", name)
				}
			}
		}
	})
}

// assertSensitive fails t unless the variable is declared sensitive.
func assertSensitive(t *testing.T, cfg terraformConfig, name string) {
	t.Helper()
	v := cfg.variables[name]
	if v == nil {
		t.Errorf("variable %s is not declared", name)
		return
	}
	s, ok := v.Body.Attributes["sensitive"]
	if !ok {
		t.Errorf("variable %s carries a secret but is not sensitive = true", name)
		return
	}
	if sv, ok := constant(s.Expr); !ok || !sv.True() {
		t.Errorf("variable %s carries a secret but is not sensitive = true", name)
	}
}

// traversalName returns the attribute after the root (var.<name>, type.<name>).
func traversalName(tr hcl.Traversal) string {
	if len(tr) < 2 {
		return ""
	}
	if a, ok := tr[1].(hcl.TraverseAttr); ok {
		return a.Name
	}
	return ""
}
