package config

import (
	"reflect"
	"testing"
)

func TestLoadExporterSelection(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		off  [3]string // traces, metrics, logs: the variable that switched each off
		line string    // the one line expected, with its level; "" for none
	}{
		{"every signal is exported by default", nil, [3]string{}, ""},
		{"none switches one signal off for a backend that does not take it",
			map[string]string{"SLIPSTREAM_METRICS_EXPORTER": "none"},
			[3]string{"", "SLIPSTREAM_METRICS_EXPORTER", ""}, ""},
		{"the value is case-insensitive",
			map[string]string{"SLIPSTREAM_LOGS_EXPORTER": " None "},
			[3]string{"", "", "SLIPSTREAM_LOGS_EXPORTER"}, ""},
		{"otlp keeps the signal on",
			map[string]string{"SLIPSTREAM_TRACES_EXPORTER": "otlp"}, [3]string{}, ""},
		{"another SLIPSTREAM value falls back to otlp with a warning",
			map[string]string{"SLIPSTREAM_TRACES_EXPORTER": "nothing"}, [3]string{},
			`WARN SLIPSTREAM_TRACES_EXPORTER="nothing": accepted otlp|none; otlp used`},
		{"a SLIPSTREAM list is not accepted",
			map[string]string{"SLIPSTREAM_TRACES_EXPORTER": "otlp,none"}, [3]string{},
			`WARN SLIPSTREAM_TRACES_EXPORTER="otlp,none": accepted otlp|none; otlp used`},
		{"the specification's variable applies when no SLIPSTREAM one is set",
			map[string]string{"OTEL_LOGS_EXPORTER": "none"},
			[3]string{"", "", "OTEL_LOGS_EXPORTER"}, ""},
		{"an OTEL list that holds otlp keeps the signal on",
			map[string]string{"OTEL_TRACES_EXPORTER": "otlp,console"}, [3]string{}, ""},
		{"an OTEL exporter Slipstream does not have falls back to otlp with a warning",
			map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"}, [3]string{},
			`WARN OTEL_METRICS_EXPORTER="prometheus": accepted otlp|none; otlp used`},
		{"the SLIPSTREAM variable wins over the OTEL one",
			map[string]string{"OTEL_TRACES_EXPORTER": "none", "SLIPSTREAM_TRACES_EXPORTER": "otlp"}, [3]string{}, ""},
		{"any SLIPSTREAM_OTLP variable makes the OTEL exporter variables ignored",
			map[string]string{"OTEL_TRACES_EXPORTER": "none", "SLIPSTREAM_OTLP_ENDPOINT": "https://collector.example.com"}, [3]string{}, ""},
		{"every signal set to none switches export off",
			map[string]string{"SLIPSTREAM_TRACES_EXPORTER": "none", "SLIPSTREAM_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"},
			[3]string{"SLIPSTREAM_TRACES_EXPORTER", "SLIPSTREAM_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"}, ""},
		{"the first variable that switched a signal off is named",
			map[string]string{"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "nope", "SLIPSTREAM_TRACES_EXPORTER": "none"},
			[3]string{"SLIPSTREAM_OTLP_TRACES_ENDPOINT", "", ""},
			`ERROR SLIPSTREAM_OTLP_TRACES_ENDPOINT="nope": accepted an http:// or https:// URL with a host (grpc also takes host:port); traces export off`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(tt.env))
			var want []string
			if tt.line != "" {
				want = []string{tt.line}
			}
			if got := lines(c); !reflect.DeepEqual(got, want) {
				t.Fatalf("lines = %q, want %q", got, want)
			}
			if got := offBy(&c.OTLP); got != tt.off {
				t.Errorf("off by %q, want %q", got, tt.off)
			}
			if on := tt.off[0] == "" || tt.off[1] == "" || tt.off[2] == ""; c.ExportEnabled != on {
				t.Errorf("ExportEnabled = %v, want %v", c.ExportEnabled, on)
			}
		})
	}
}

func TestLoadSaysWhenOTELEndpointsAreIgnored(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		line string // the one line expected, with its level; "" for none
	}{
		{"a SLIPSTREAM_OTLP variable beside an OTEL endpoint warns when a signal keeps the default endpoint",
			map[string]string{"SLIPSTREAM_OTLP_HEADERS": "api-key=abc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"},
			"WARN OTEL_EXPORTER_OTLP_ENDPOINT ignored: SLIPSTREAM_OTLP_HEADERS set, and then every OTEL_EXPORTER_OTLP_* variable is ignored; traces, metrics and logs use the default endpoint (set SLIPSTREAM_OTLP_ENDPOINT)"},
		{"per-signal endpoints on both sides are all named",
			map[string]string{"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "https://t.example.com/v1/traces", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://x/v1/logs", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"},
			"WARN OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT ignored: SLIPSTREAM_OTLP_TRACES_ENDPOINT set, and then every OTEL_EXPORTER_OTLP_* variable is ignored; metrics and logs use the default endpoint (set SLIPSTREAM_OTLP_ENDPOINT)"},
		{"a SLIPSTREAM base endpoint makes it a notice",
			map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "https://collector.example.com", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://localhost:4318/v1/traces"},
			"INFO OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ignored: SLIPSTREAM_OTLP_ENDPOINT set, and then every OTEL_EXPORTER_OTLP_* variable is ignored"},
		{"no OTEL endpoint, nothing to say",
			map[string]string{"SLIPSTREAM_OTLP_HEADERS": "api-key=abc", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ""},
		{"no SLIPSTREAM_OTLP variable, the OTEL endpoint applies",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318", "SLIPSTREAM_FLUSH": "end"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(tt.env))
			var want []string
			if tt.line != "" {
				want = []string{tt.line}
			}
			if got := lines(c); !reflect.DeepEqual(got, want) {
				t.Fatalf("lines = %q, want %q", got, want)
			}
			if !c.ExportEnabled {
				t.Errorf("ExportEnabled = false")
			}
		})
	}
}

func TestLoadOffSignalKeepsNoDestination(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"switched off by the exporter selection",
			map[string]string{"SLIPSTREAM_TRACES_EXPORTER": "none", "SLIPSTREAM_OTLP_ENDPOINT": "https://backend.example.com", "SLIPSTREAM_OTLP_HEADERS": "x-tenant=a"}},
		{"switched off by a malformed header pair",
			map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "https://backend.example.com", "SLIPSTREAM_OTLP_TRACES_HEADERS": "x-tenant=a,broken"}},
		{"switched off by a client certificate without its key",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://backend.example.com", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": "/c.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(tt.env))
			tr := c.OTLP.Traces
			if tr.Enabled() {
				t.Fatalf("traces are on: %+v", tr)
			}
			if tr.Endpoint != "http://localhost:4318/v1/traces" || len(tr.Headers) != 0 || tr.ClientCertificate != "" {
				t.Errorf("traces keep a destination: %+v", tr)
			}
			if m := c.OTLP.Metrics; !m.Enabled() || m.Endpoint != "https://backend.example.com/v1/metrics" {
				t.Errorf("metrics changed: %+v", m)
			}
		})
	}
}
