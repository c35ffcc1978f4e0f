package validate

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// variableName matches a name in the configuration tables' first column:
// a variable, or a family written once with [SIGNAL_] or <SIGNAL> in it.
var variableName = regexp.MustCompile("`([A-Z][A-Z0-9_]*(?:\\[SIGNAL_\\]|<SIGNAL>)?[A-Z0-9_]*)`")

// expand returns the variables a family stands for, as config/readme_test.go does.
func expand(name string) []string {
	for pattern, values := range map[string][]string{
		"[SIGNAL_]": {"", "TRACES_", "METRICS_", "LOGS_"},
		"<SIGNAL>":  {"TRACES", "METRICS", "LOGS"},
	} {
		if strings.Contains(name, pattern) {
			var out []string
			for _, v := range values {
				out = append(out, strings.Replace(name, pattern, v, 1))
			}
			return out
		}
	}
	return []string{name}
}

// documentedVariables returns the variables in the first column of the
// tables in the README's "## Configuration" section: the names the agent
// reads (config/readme_test.go holds that list to what config.Load reads).
func documentedVariables(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	names := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 3 {
			continue
		}
		for _, m := range variableName.FindAllStringSubmatch(cells[1], -1) {
			for _, n := range expand(m[1]) {
				names[n] = true
			}
		}
	}
	if len(names) < 30 {
		t.Fatalf("only %d variables found in the README's configuration tables: format changed?", len(names))
	}
	return names
}

// secretVariables are the variables whose values are credentials: an
// example must take them from a parameter or the environment, never hold a
// value.
var secretVariables = regexp.MustCompile(`^(SLIPSTREAM_OTLP|OTEL_EXPORTER_OTLP)(_TRACES|_METRICS|_LOGS)?_HEADERS$`)

// lambdaArchitectures are the names Lambda accepts in Architectures.
var lambdaArchitectures = []string{"x86_64", "arm64"}
