package config

import (
	"reflect"
	"testing"
)

func TestLoadEnvironWarnsAboutUnknownNames(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []string // every line, with its level
	}{
		{"a misspelt name names the closest known one",
			[]string{"SLIPSTREAM_FLUSH_TIMOUT=1s"},
			[]string{"WARN SLIPSTREAM_FLUSH_TIMOUT is not a Slipstream setting and is ignored: did you mean SLIPSTREAM_FLUSH_TIMEOUT?"}},
		{"a name missing its OTLP part is pointed to the exporter variable",
			[]string{"SLIPSTREAM_ENDPOINT=https://collector.example.com"},
			[]string{"WARN SLIPSTREAM_ENDPOINT is not a Slipstream setting and is ignored: did you mean SLIPSTREAM_OTLP_ENDPOINT?"}},
		{"known names, OTEL names and the function's own names say nothing",
			[]string{"SLIPSTREAM_FLUSH=end", "OTEL_FOO=1", "MY_APP_SETTING=x", "PATH=/usr/bin"}, nil},
		{"development variables read outside Load say nothing",
			[]string{"SLIPSTREAM_DEV_CPUPROFILE=/tmp/cpu.pprof"}, nil},
		{"values are read as Load reads them, the first entry of a name winning",
			[]string{"SLIPSTREAM_TELEMETRY_MAX_ITEMS=5", "SLIPSTREAM_TELEMETRY_MAX_ITEMS=2000", "EMPTY"},
			[]string{`ERROR SLIPSTREAM_TELEMETRY_MAX_ITEMS="5": accepted 1000..10000; default 1000 used`}},
		{"several unknown names give one line each, sorted",
			[]string{"SLIPSTREAM_TRACE_EXPORTER=none", "SLIPSTREAM_BUFER_MAX_BYTES=8MiB"},
			[]string{
				"WARN SLIPSTREAM_BUFER_MAX_BYTES is not a Slipstream setting and is ignored: did you mean SLIPSTREAM_BUFFER_MAX_BYTES?",
				"WARN SLIPSTREAM_TRACE_EXPORTER is not a Slipstream setting and is ignored: did you mean SLIPSTREAM_TRACES_EXPORTER?",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := LoadEnviron(tt.environ)
			if got := lines(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
			if !c.ExportEnabled {
				t.Errorf("ExportEnabled = false: a name is never a reason to stop export")
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"FLUSH", "FLUSH", 0},
		{"TIMOUT", "TIMEOUT", 1},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		t.Run(tt.a+" to "+tt.b, func(t *testing.T) {
			if got := editDistance(tt.a, tt.b); got != tt.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
