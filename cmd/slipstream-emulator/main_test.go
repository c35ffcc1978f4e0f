package main

import (
	"io"
	"os"
	"slices"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr bool
		check   func(options) bool
	}{
		{"a function is required", []string{"-extension", "x"}, true, nil},
		{"extensions repeat and flags map onto the config", []string{"-function", "f", "-extension", "a", "-extension", "b", "-memory", "256", "-timeout", "5s", "-no-freeze", "-no-telemetry"}, false,
			func(o options) bool {
				return len(o.cfg.Extensions) == 2 && o.cfg.MemoryMB == 256 && o.cfg.Timeout == 5*time.Second && !o.cfg.Freeze && !o.cfg.TelemetrySupported && o.cfg.InvokeAddr == "127.0.0.1:9000"
			}},
		{"defaults freeze and serve the Telemetry API", []string{"-function", "f"}, false,
			func(o options) bool { return o.cfg.Freeze && o.cfg.TelemetrySupported && o.invocations == 0 }},
		{"an unknown flag is an error", []string{"-function", "f", "-bogus"}, true, nil},
		{"-env repeats and passes variables to the environment in order", []string{"-function", "f", "-env", "SLIPSTREAM_OTLP_ENDPOINT=http://127.0.0.1:4318", "-env", "OTEL_SERVICE_NAME=a=b"}, false,
			func(o options) bool {
				return slices.Equal(o.cfg.Env, []string{"SLIPSTREAM_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_SERVICE_NAME=a=b"})
			}},
		{"an -env without = is an error", []string{"-function", "f", "-env", "SLIPSTREAM_FLUSH"}, true, nil},
		{"an -env with an empty name is an error", []string{"-function", "f", "-env", "=x"}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(tc.args, io.Discard)
			if (err != nil) != tc.wantErr || (tc.check != nil && !tc.check(o)) {
				t.Errorf("got %+v, %v", o, err)
			}
		})
	}
}

func TestWithSpillDir(t *testing.T) {
	t.Run("a run without SLIPSTREAM_SPILL_DIR gets a new directory of its own", func(t *testing.T) {
		t.Setenv("TMPDIR", t.TempDir())
		given := []string{"SLIPSTREAM_FLUSH=end"}
		env, dir, err := withSpillDir(given)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("spill directory %q: %v", dir, err)
		}
		if want := []string{"SLIPSTREAM_FLUSH=end", "SLIPSTREAM_SPILL_DIR=" + dir}; !slices.Equal(env, want) {
			t.Errorf("env = %q, want %q", env, want)
		}
		if len(given) != 1 {
			t.Errorf("the caller's slice was changed: %q", given)
		}
		_, second, err := withSpillDir(given)
		if err != nil || second == dir {
			t.Errorf("a second run got %q (err %v), the first %q: runs must not share one", second, err, dir)
		}
	})
	t.Run("a run whose variables name a spill directory keeps it", func(t *testing.T) {
		given := []string{"SLIPSTREAM_SPILL_DIR=/tmp/mine"}
		env, dir, err := withSpillDir(given)
		if err != nil || dir != "" || !slices.Equal(env, given) {
			t.Errorf("got %q, %q, %v; want the variables unchanged", env, dir, err)
		}
	})
}
