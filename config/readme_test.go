package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readVariables returns, sorted, every variable Load reads, recorded
// through getenv on an empty environment (where no fallback is skipped).
func readVariables() []string {
	seen := map[string]bool{}
	Load(func(k string) string {
		seen[k] = true
		return ""
	})
	var names []string
	for k := range seen {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// variableName matches a variable in a README table's first column: a
// name, or a family written once with [SIGNAL_] (nothing, TRACES_, METRICS_
// or LOGS_) or <SIGNAL> (TRACES, METRICS or LOGS) in it.
var variableName = regexp.MustCompile("`([A-Z][A-Z0-9_]*(?:\\[SIGNAL_\\]|<SIGNAL>)?[A-Z0-9_]*)`")

// expand returns the variables a first-column name stands for.
func expand(name string) []string {
	switch {
	case strings.Contains(name, "[SIGNAL_]"):
		var out []string
		for _, s := range []string{"", "TRACES_", "METRICS_", "LOGS_"} {
			out = append(out, strings.Replace(name, "[SIGNAL_]", s, 1))
		}
		return out
	case strings.Contains(name, "<SIGNAL>"):
		var out []string
		for _, s := range []string{"TRACES", "METRICS", "LOGS"} {
			out = append(out, strings.Replace(name, "<SIGNAL>", s, 1))
		}
		return out
	}
	return []string{name}
}

// literalDefault matches a Default cell that is one literal value (not a
// template such as /aws/lambda/<function name>).
var literalDefault = regexp.MustCompile("^ *`([^`<]+)` *$")

// readmeSection returns README.md's "## Configuration" section.
func readmeSection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// documentedVariables returns the variables named in the first column of
// the tables in README.md's "## Configuration" section.
func documentedVariables(t *testing.T) []string {
	t.Helper()
	section := readmeSection(t)
	seen := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Errorf("README table row has fewer than 3 columns: %q", line)
			continue
		}
		for _, m := range variableName.FindAllStringSubmatch(cells[1], -1) {
			for _, name := range expand(m[1]) {
				if seen[name] {
					t.Errorf("README documents %s twice", name)
				}
				seen[name] = true
			}
		}
	}
	var names []string
	for k := range seen {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func TestREADMEListsEveryVariable(t *testing.T) {
	read, documented := readVariables(), documentedVariables(t)
	for _, name := range read {
		if !slices.Contains(documented, name) {
			t.Errorf("Load reads %s but README.md's configuration tables do not list it", name)
		}
	}
	for _, name := range documented {
		if !slices.Contains(read, name) {
			t.Errorf("README.md lists %s but Load does not read it", name)
		}
	}
}

// TestREADMEDefaultsAreLoadDefaults sets each variable whose README
// default is one literal value to that value and expects the same Config
// as an empty environment: the documented default is the real one.
func TestREADMEDefaultsAreLoadDefaults(t *testing.T) {
	want := Load(env(nil))
	checked := 0
	for line := range strings.SplitSeq(readmeSection(t), "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 4 {
			continue
		}
		m := literalDefault.FindStringSubmatch(cells[2])
		if m == nil {
			continue
		}
		for _, v := range variableName.FindAllStringSubmatch(cells[1], -1) {
			for _, name := range expand(v[1]) {
				value := m[1]
				got := Load(env(map[string]string{name: value}))
				got.OTLP.Source = want.OTLP.Source // a SLIPSTREAM_OTLP_* variable switches the source, by design
				if !reflect.DeepEqual(got, want) {
					t.Errorf("README says %s defaults to %q, but setting it to that changes the Config:\n got %+v\nwant %+v", name, value, got, want)
				}
				checked++
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d documented defaults checked: README table format changed?", checked)
	}
}

// TestFieldCommentsNameEveryVariable keeps config.go's field comments in
// step with what Load reads: exporter variables by their suffix, the
// others by their full name.
func TestFieldCommentsNameEveryVariable(t *testing.T) {
	b, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatalf("read config.go: %v", err)
	}
	src := string(b)
	for _, name := range readVariables() {
		want := name
		for _, source := range []string{SourceSlipstream, SourceOTEL} {
			if rest, ok := strings.CutPrefix(name, source+"_"); ok && !strings.HasSuffix(rest, temporalitySuffix) {
				for _, sig := range signalNames {
					rest = strings.TrimPrefix(rest, sig+"_")
				}
				want = "_" + rest
			}
		}
		if !strings.Contains(src, want) {
			t.Errorf("Load reads %s but no comment in config.go names %s", name, want)
		}
	}
}

func TestLoadReadsOnlyThroughGetenv(t *testing.T) {
	t.Setenv("SLIPSTREAM_TELEMETRY_MAX_ITEMS", "5")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	c := Load(env(nil))
	if len(c.Problems) != 0 || c.OTLP.Protocol != ProtocolHTTPProtobuf {
		t.Errorf("Load read the process environment: Problems = %q, Protocol = %q", c.Problems, c.OTLP.Protocol)
	}
}
