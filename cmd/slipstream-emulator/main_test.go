package main

import (
	"io"
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(tc.args, io.Discard)
			if (err != nil) != tc.wantErr || (tc.check != nil && !tc.check(o)) {
				t.Errorf("got %+v, %v", o, err)
			}
		})
	}
}
