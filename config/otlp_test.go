package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadExporter(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		problems int
		warnings int
		check    func(*OTLP) bool
	}{
		{"the default endpoint applies when nothing is set", nil, 0, 0,
			func(o *OTLP) bool {
				return o.Source == SourceOTEL && o.Metrics.Endpoint == "http://localhost:4318/v1/metrics"
			}},
		{"grpc defaults to port 4317 without a path", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, 0, 0,
			func(o *OTLP) bool {
				return o.Protocol == "grpc" && o.Logs.Protocol == "grpc" && o.Logs.Endpoint == "http://localhost:4317"
			}},
		{"a base http endpoint gets the signal path", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com:4318"}, 0, 0,
			func(o *OTLP) bool {
				return o.Traces.Endpoint == "https://otlp.example.com:4318/v1/traces" &&
					o.Metrics.Endpoint == "https://otlp.example.com:4318/v1/metrics" &&
					o.Logs.Endpoint == "https://otlp.example.com:4318/v1/logs"
			}},
		{"a base endpoint path keeps its prefix without doubling the slash", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw.example.com/otlp/"}, 0, 0,
			func(o *OTLP) bool { return o.Traces.Endpoint == "https://gw.example.com/otlp/v1/traces" }},
		{"a base grpc endpoint is used as is", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317"}, 0, 0,
			func(o *OTLP) bool { return o.Traces.Endpoint == "https://collector:4317" }},
		{"a per-signal endpoint is used as is", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "https://base:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces:4318/custom"}, 0, 0,
			func(o *OTLP) bool {
				return o.Traces.Endpoint == "https://traces:4318/custom" && o.Metrics.Endpoint == "https://base:4318/v1/metrics"
			}},
		{"per-signal values win over base ones", map[string]string{
			"OTEL_EXPORTER_OTLP_PROTOCOL":            "http/protobuf",
			"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL":       "grpc",
			"OTEL_EXPORTER_OTLP_COMPRESSION":         "none",
			"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "gzip",
			"OTEL_EXPORTER_OTLP_TIMEOUT":             "2000",
			"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":      "500",
			"OTEL_EXPORTER_OTLP_HEADERS":             "a=1,b=2",
			"OTEL_EXPORTER_OTLP_LOGS_HEADERS":        "c=3",
			"OTEL_EXPORTER_OTLP_INSECURE":            "true",
			"OTEL_EXPORTER_OTLP_METRICS_INSECURE":    "false",
			"OTEL_EXPORTER_OTLP_CERTIFICATE":         "/ca.pem",
			"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE":  "/traces-ca.pem"}, 0, 0,
			func(o *OTLP) bool {
				return o.Logs.Protocol == "grpc" && o.Traces.Protocol == "http/protobuf" &&
					o.Logs.Endpoint == "http://localhost:4317" &&
					o.Metrics.Compression == "gzip" && o.Traces.Compression == "none" &&
					o.Traces.Timeout == 500*time.Millisecond && o.Logs.Timeout == 2*time.Second &&
					reflect.DeepEqual(o.Logs.Headers, map[string]string{"c": "3"}) &&
					reflect.DeepEqual(o.Traces.Headers, map[string]string{"a": "1", "b": "2"}) &&
					o.Traces.Insecure && !o.Metrics.Insecure &&
					o.Traces.Certificate == "/traces-ca.pem" && o.Metrics.Certificate == "/ca.pem"
			}},
		{"header values are percent-decoded", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20dXNlcjpwYXNz, x-team = core"}, 0, 0,
			func(o *OTLP) bool {
				return reflect.DeepEqual(o.Metrics.Headers, map[string]string{"Authorization": "Basic dXNlcjpwYXNz", "x-team": "core"})
			}},
		{"client certificate and key are read together", map[string]string{
			"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/c.pem", "OTEL_EXPORTER_OTLP_CLIENT_KEY": "/k.pem"}, 0, 0,
			func(o *OTLP) bool { return o.Logs.ClientCertificate == "/c.pem" && o.Logs.ClientKey == "/k.pem" }},
		{"a client certificate without a key warns and is dropped", map[string]string{
			"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/c.pem"}, 0, 1,
			func(o *OTLP) bool { return o.Traces.ClientCertificate == "" }},
		{"a client key without a certificate from SLIPSTREAM is a problem", map[string]string{
			"SLIPSTREAM_OTLP_TRACES_CLIENT_KEY": "/k.pem"}, 1, 0, nil},
		{"http/json is honoured for traces", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, 0, 0,
			func(o *OTLP) bool { return o.Traces.Protocol == "http/json" }},
		{"http/json for metrics from OTEL warns and falls back", map[string]string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json"}, 0, 1,
			func(o *OTLP) bool { return o.Metrics.Protocol == "http/protobuf" }},
		{"a base http/json warns once for metrics and logs and stays for traces", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, 0, 1,
			func(o *OTLP) bool {
				return o.Traces.Protocol == "http/json" && o.Metrics.Protocol == "http/protobuf" && o.Logs.Protocol == "http/protobuf"
			}},
		{"http/json for logs from SLIPSTREAM is a problem", map[string]string{"SLIPSTREAM_OTLP_LOGS_PROTOCOL": "http/json"}, 1, 0, nil},
		{"an invalid OTEL protocol warns and falls back", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http"}, 0, 1,
			func(o *OTLP) bool { return o.Protocol == "http/protobuf" && o.Traces.Protocol == "http/protobuf" }},
		{"an invalid OTEL endpoint warns and falls back", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, 0, 1,
			func(o *OTLP) bool { return o.Traces.Endpoint == "http://localhost:4318/v1/traces" }},
		{"an invalid per-signal OTEL endpoint falls back to the base one", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "ftp://x"}, 0, 1,
			func(o *OTLP) bool { return o.Logs.Endpoint == "http://base:4318/v1/logs" }},
		{"an invalid OTEL compression warns", map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, 0, 1,
			func(o *OTLP) bool { return o.Traces.Compression == "gzip" }},
		{"an invalid OTEL timeout warns", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, 0, 1,
			func(o *OTLP) bool { return o.Traces.Timeout == 10*time.Second }},
		{"an OTEL timeout beyond a minute warns", map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "120000"}, 0, 1, nil},
		{"an invalid OTEL insecure flag warns", map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "yes"}, 0, 1,
			func(o *OTLP) bool { return !o.Traces.Insecure }},
		{"a malformed OTEL header pair is skipped with a warning", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1,nonsense,b c=2"}, 0, 2,
			func(o *OTLP) bool { return reflect.DeepEqual(o.Traces.Headers, map[string]string{"a": "1"}) }},
		{"a header value with a newline is malformed", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=x%0D%0Ay"}, 0, 1,
			func(o *OTLP) bool { return len(o.Traces.Headers) == 0 }},
		{"temporality is read case-insensitively", map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Delta"}, 0, 0, nil},
		{"an invalid OTEL temporality warns", map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "gauge"}, 0, 1, nil},
		{"an invalid SLIPSTREAM temporality is a problem", map[string]string{"SLIPSTREAM_OTLP_METRICS_TEMPORALITY_PREFERENCE": "gauge"}, 1, 0, nil},
		{"an invalid SLIPSTREAM endpoint is a problem", map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "not a url"}, 1, 0, nil},
		{"an invalid SLIPSTREAM timeout is a problem", map[string]string{"SLIPSTREAM_OTLP_TIMEOUT": "0"}, 1, 0, nil},
		{"an invalid SLIPSTREAM compression is a problem", map[string]string{"SLIPSTREAM_OTLP_METRICS_COMPRESSION": "br"}, 1, 0, nil},
		{"an invalid SLIPSTREAM insecure flag is a problem", map[string]string{"SLIPSTREAM_OTLP_INSECURE": "maybe"}, 1, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(tt.env))
			if len(c.Problems) != tt.problems || len(c.Warnings) != tt.warnings {
				t.Fatalf("Problems = %q, Warnings = %q; want %d and %d lines", c.Problems, c.Warnings, tt.problems, tt.warnings)
			}
			if c.ExportEnabled != (tt.problems == 0) {
				t.Errorf("ExportEnabled = %v with %d problems", c.ExportEnabled, tt.problems)
			}
			if tt.check != nil && !tt.check(&c.OTLP) {
				t.Errorf("unexpected OTLP settings: %+v", c.OTLP)
			}
		})
	}
}

func TestLoadExporterSourcesNeverMix(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		source string
		check  func(*Config) bool
	}{
		{"any SLIPSTREAM_OTLP variable selects the SLIPSTREAM source and ignores every OTEL one",
			map[string]string{
				"SLIPSTREAM_OTLP_TRACES_ENDPOINT":                   "https://mine:4318/v1/traces",
				"OTEL_EXPORTER_OTLP_ENDPOINT":                       "http://localhost:4318",
				"OTEL_EXPORTER_OTLP_PROTOCOL":                       "grpc",
				"OTEL_EXPORTER_OTLP_HEADERS":                        "x-function=1",
				"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
			}, SourceSlipstream,
			func(c *Config) bool {
				return c.OTLP.Traces.Endpoint == "https://mine:4318/v1/traces" &&
					c.OTLP.Metrics.Endpoint == "http://localhost:4318/v1/metrics" &&
					c.OTLP.Protocol == "http/protobuf" && len(c.OTLP.Logs.Headers) == 0 &&
					c.Temporality == "cumulative"
			}},
		{"the SLIPSTREAM temporality preference alone selects the SLIPSTREAM source",
			map[string]string{
				"SLIPSTREAM_OTLP_METRICS_TEMPORALITY_PREFERENCE":    "lowmemory",
				"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
				"OTEL_EXPORTER_OTLP_PROTOCOL":                       "grpc",
			}, SourceSlipstream,
			func(c *Config) bool { return c.Temporality == "lowmemory" && c.OTLP.Protocol == "http/protobuf" }},
		{"without SLIPSTREAM_OTLP variables the OTEL ones apply",
			map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL":                       "grpc",
				"OTEL_EXPORTER_OTLP_HEADERS":                        "x-function=1",
				"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
				"SLIPSTREAM_LOG_LEVEL":                              "debug",
			}, SourceOTEL,
			func(c *Config) bool {
				return c.OTLP.Protocol == "grpc" && c.OTLP.Logs.Headers["x-function"] == "1" && c.Temporality == "delta"
			}},
		{"an invalid OTEL value is not reported when the SLIPSTREAM source is active",
			map[string]string{
				"SLIPSTREAM_OTLP_ENDPOINT":    "https://mine:4318",
				"OTEL_EXPORTER_OTLP_PROTOCOL": "nonsense",
			}, SourceSlipstream,
			func(c *Config) bool { return len(c.Warnings) == 0 && len(c.Problems) == 0 }},
		{"an empty SLIPSTREAM_OTLP variable counts as unset",
			map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "  ", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, SourceOTEL,
			func(c *Config) bool { return c.OTLP.Protocol == "grpc" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(tt.env))
			if c.OTLP.Source != tt.source {
				t.Errorf("Source = %q, want %q", c.OTLP.Source, tt.source)
			}
			if !tt.check(c) {
				t.Errorf("unexpected Config: %+v", c)
			}
		})
	}
}

func TestLoadStrictness(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		export        bool
		wantProblem   bool
		wantWarning   bool
		wantStrict    bool
		messagePrefix string
	}{
		{"an unhonourable OTEL value warns and keeps export on",
			map[string]string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/json"}, true, false, true, false,
			`OTEL_EXPORTER_OTLP_LOGS_PROTOCOL="http/json": http/json is supported for traces only`},
		{"the same value from SLIPSTREAM turns export off",
			map[string]string{"SLIPSTREAM_OTLP_LOGS_PROTOCOL": "http/json"}, false, true, false, false,
			`SLIPSTREAM_OTLP_LOGS_PROTOCOL="http/json": http/json is supported for traces only`},
		{"strict config is carried beside the problem for main to fail init",
			map[string]string{"SLIPSTREAM_STRICT_CONFIG": "true", "SLIPSTREAM_TELEMETRY_MAX_ITEMS": "5"}, false, true, false, true,
			`SLIPSTREAM_TELEMETRY_MAX_ITEMS="5": accepted 1000..10000`},
		{"strict config does not turn OTEL warnings into problems",
			map[string]string{"SLIPSTREAM_STRICT_CONFIG": "true", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, true, false, true, true,
			`OTEL_EXPORTER_OTLP_COMPRESSION="zstd": accepted gzip|none; ignored`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(tt.env))
			if c.ExportEnabled != tt.export || (len(c.Problems) > 0) != tt.wantProblem ||
				(len(c.Warnings) > 0) != tt.wantWarning || c.StrictConfig != tt.wantStrict {
				t.Fatalf("ExportEnabled = %v, StrictConfig = %v, Problems = %q, Warnings = %q",
					c.ExportEnabled, c.StrictConfig, c.Problems, c.Warnings)
			}
			lines := append(append([]string(nil), c.Problems...), c.Warnings...)
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.messagePrefix) {
				t.Errorf("lines = %q, want one starting with %q", lines, tt.messagePrefix)
			}
		})
	}
}

func TestLoadExporterHidesCredentials(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"an invalid endpoint with user info is not quoted", map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "ftp://user:s3cret@host"}},
		{"a malformed header pair is not quoted", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cret,x y=s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(tt.env))
			lines := append(append([]string(nil), c.Problems...), c.Warnings...)
			if len(lines) != 1 {
				t.Fatalf("lines = %q, want one", lines)
			}
			if strings.Contains(lines[0], "s3cret") {
				t.Errorf("line %q shows a secret", lines[0])
			}
		})
	}
}
