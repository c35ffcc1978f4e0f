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
		{"http/json is honoured for traces", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, 0, 0,
			func(o *OTLP) bool { return o.Traces.Protocol == "http/json" }},
		{"temporality is read case-insensitively", map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Delta"}, 0, 0, nil},
		{"a grpc endpoint without a scheme uses TLS, as the specification says", map[string]string{
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, 0, 0,
			func(o *OTLP) bool {
				return o.Traces.Endpoint == "https://collector:4317" && o.Logs.Endpoint == "https://collector:4317"
			}},
		{"a grpc endpoint without a scheme is plaintext with insecure set", map[string]string{
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "10.0.0.7:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, 0, 0,
			func(o *OTLP) bool { return o.Metrics.Endpoint == "http://10.0.0.7:4317" }},
		{"a per-signal grpc endpoint without a scheme takes its own insecure flag", map[string]string{
			"SLIPSTREAM_OTLP_TRACES_PROTOCOL": "grpc", "SLIPSTREAM_OTLP_TRACES_ENDPOINT": "[::1]:4317", "SLIPSTREAM_OTLP_TRACES_INSECURE": "1"}, 0, 0,
			func(o *OTLP) bool {
				return o.Traces.Endpoint == "http://[::1]:4317" && o.Logs.Endpoint == "http://localhost:4318/v1/logs"
			}},
		{"a grpc endpoint with a scheme ignores insecure", map[string]string{
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, 0, 0,
			func(o *OTLP) bool { return o.Traces.Endpoint == "https://collector:4317" }},
		{"a SLIPSTREAM timeout takes a Go duration", map[string]string{"SLIPSTREAM_OTLP_TIMEOUT": "2.5s"}, 0, 0,
			func(o *OTLP) bool { return o.Logs.Timeout == 2500*time.Millisecond }},
		{"a SLIPSTREAM timeout takes integer milliseconds", map[string]string{"SLIPSTREAM_OTLP_METRICS_TIMEOUT": "1500"}, 0, 0,
			func(o *OTLP) bool {
				return o.Metrics.Timeout == 1500*time.Millisecond && o.Traces.Timeout == 10*time.Second
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(tt.env))
			if len(c.Problems) != tt.problems || len(c.Warnings) != tt.warnings {
				t.Fatalf("Problems = %q, Warnings = %q; want %d and %d lines", c.Problems, c.Warnings, tt.problems, tt.warnings)
			}
			if !c.ExportEnabled || !c.OTLP.Traces.Enabled() || !c.OTLP.Metrics.Enabled() || !c.OTLP.Logs.Enabled() {
				t.Errorf("a signal is off: %+v", c.OTLP)
			}
			if tt.check != nil && !tt.check(&c.OTLP) {
				t.Errorf("unexpected OTLP settings: %+v", c.OTLP)
			}
		})
	}
}

// offBy returns, per signal, the variable that switched it off ("" when on).
func offBy(o *OTLP) [3]string {
	return [3]string{o.Traces.Off, o.Metrics.Off, o.Logs.Off}
}

// TestLoadExporterUnusableValues: a tuning value falls back, a destination
// value (endpoint, headers, protocol, client certificate) switches off the
// signals it applies to; one line per variable, at ERROR for
// SLIPSTREAM_OTLP_*, at WARN for OTEL_EXPORTER_OTLP_*.
func TestLoadExporterUnusableValues(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		line  string    // the one line expected, with its level
		off   [3]string // traces, metrics, logs: the variable that switched each off
		check func(*OTLP) bool
	}{
		{"a bad SLIPSTREAM traces endpoint switches traces off, not logs",
			map[string]string{"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "collector:4318"},
			`ERROR SLIPSTREAM_OTLP_TRACES_ENDPOINT="collector:4318": accepted an http:// or https:// URL with a host (grpc also takes host:port); traces export off`,
			[3]string{"SLIPSTREAM_OTLP_TRACES_ENDPOINT", "", ""}, nil},
		{"a bad SLIPSTREAM base endpoint switches every signal off",
			map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "not a url"},
			`ERROR SLIPSTREAM_OTLP_ENDPOINT="not a url": accepted an http:// or https:// URL with a host (grpc also takes host:port); traces, metrics and logs export off`,
			[3]string{"SLIPSTREAM_OTLP_ENDPOINT", "SLIPSTREAM_OTLP_ENDPOINT", "SLIPSTREAM_OTLP_ENDPOINT"}, nil},
		{"a bad base endpoint spares the signals that set their own",
			map[string]string{"SLIPSTREAM_OTLP_ENDPOINT": "ftp://x", "SLIPSTREAM_OTLP_LOGS_ENDPOINT": "https://logs.example.com/v1/logs"},
			`ERROR SLIPSTREAM_OTLP_ENDPOINT="ftp://x": accepted an http:// or https:// URL with a host (grpc also takes host:port); traces and metrics export off`,
			[3]string{"SLIPSTREAM_OTLP_ENDPOINT", "SLIPSTREAM_OTLP_ENDPOINT", ""},
			func(o *OTLP) bool { return o.Logs.Endpoint == "https://logs.example.com/v1/logs" }},
		{"a host:port endpoint is unusable for http but fine for a grpc signal",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			`WARN OTEL_EXPORTER_OTLP_ENDPOINT="collector:4317": accepted an http:// or https:// URL with a host (grpc also takes host:port); metrics and logs export off`,
			[3]string{"", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"},
			func(o *OTLP) bool { return o.Traces.Endpoint == "https://collector:4317" }},
		{"a grpc endpoint without a port is unusable",
			map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "collector"},
			`WARN OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="collector": accepted an http:// or https:// URL with a host (grpc also takes host:port); logs export off`,
			[3]string{"", "", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"}, nil},
		{"a bad per-signal OTEL endpoint switches its signal off rather than use the base one",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "ftp://x"},
			`WARN OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="ftp://x": accepted an http:// or https:// URL with a host (grpc also takes host:port); logs export off`,
			[3]string{"", "", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"},
			func(o *OTLP) bool { return o.Traces.Endpoint == "http://base:4318/v1/traces" }},
		{"an endpoint with user info is not quoted",
			map[string]string{"SLIPSTREAM_OTLP_METRICS_ENDPOINT": "ftp://user:s3cret@host"},
			`ERROR SLIPSTREAM_OTLP_METRICS_ENDPOINT=(value not shown: it may hold credentials): accepted an http:// or https:// URL with a host (grpc also takes host:port); metrics export off`,
			[3]string{"", "SLIPSTREAM_OTLP_METRICS_ENDPOINT", ""}, nil},
		{"an unknown SLIPSTREAM protocol switches its signals off",
			map[string]string{"SLIPSTREAM_OTLP_PROTOCOL": "grcp"},
			`ERROR SLIPSTREAM_OTLP_PROTOCOL="grcp": accepted http/protobuf|grpc|http/json (traces only); traces, metrics and logs export off`,
			[3]string{"SLIPSTREAM_OTLP_PROTOCOL", "SLIPSTREAM_OTLP_PROTOCOL", "SLIPSTREAM_OTLP_PROTOCOL"},
			func(o *OTLP) bool { return o.Protocol == "http/protobuf" }},
		{"an unknown OTEL protocol switches its signal off",
			map[string]string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http"},
			`WARN OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="http": accepted http/protobuf|grpc|http/json (traces only); metrics export off`,
			[3]string{"", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", ""}, nil},
		{"a bad base protocol overridden by every signal is reported as not used",
			map[string]string{"SLIPSTREAM_OTLP_PROTOCOL": "x", "SLIPSTREAM_OTLP_TRACES_PROTOCOL": "grpc", "SLIPSTREAM_OTLP_METRICS_PROTOCOL": "grpc", "SLIPSTREAM_OTLP_LOGS_PROTOCOL": "grpc"},
			`ERROR SLIPSTREAM_OTLP_PROTOCOL="x": accepted http/protobuf|grpc|http/json (traces only); not used: the per-signal variables apply`,
			[3]string{}, nil},
		{"http/json for metrics from OTEL falls back to protobuf",
			map[string]string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json"},
			`WARN OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="http/json": http/json is supported for traces only; metrics and logs accept http/protobuf|grpc; metrics use http/protobuf`,
			[3]string{}, func(o *OTLP) bool { return o.Metrics.Protocol == "http/protobuf" }},
		{"a base http/json falls back once for metrics and logs and stays for traces",
			map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			`WARN OTEL_EXPORTER_OTLP_PROTOCOL="http/json": http/json is supported for traces only; metrics and logs accept http/protobuf|grpc; metrics and logs use http/protobuf`,
			[3]string{}, func(o *OTLP) bool {
				return o.Traces.Protocol == "http/json" && o.Metrics.Protocol == "http/protobuf" && o.Logs.Protocol == "http/protobuf"
			}},
		{"http/json for logs from SLIPSTREAM falls back with an error",
			map[string]string{"SLIPSTREAM_OTLP_LOGS_PROTOCOL": "http/json"},
			`ERROR SLIPSTREAM_OTLP_LOGS_PROTOCOL="http/json": http/json is supported for traces only; metrics and logs accept http/protobuf|grpc; logs use http/protobuf`,
			[3]string{}, func(o *OTLP) bool { return o.Logs.Protocol == "http/protobuf" }},
		{"a malformed header pair switches the signals off and shows no value",
			map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1,nonsense,b c=s3cret"},
			`WARN OTEL_EXPORTER_OTLP_HEADERS: pairs 2, 3 are malformed (values not shown): accepted key=value,... with percent-encoded values; traces, metrics and logs export off`,
			[3]string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"}, nil},
		{"a header value with a newline is malformed",
			map[string]string{"SLIPSTREAM_OTLP_TRACES_HEADERS": "a=x%0D%0Ay"},
			`ERROR SLIPSTREAM_OTLP_TRACES_HEADERS: pair 1 is malformed (values not shown): accepted key=value,... with percent-encoded values; traces export off`,
			[3]string{"SLIPSTREAM_OTLP_TRACES_HEADERS", "", ""}, nil},
		{"malformed base headers spare a signal with its own headers",
			map[string]string{"SLIPSTREAM_OTLP_HEADERS": "x", "SLIPSTREAM_OTLP_LOGS_HEADERS": "api-key=abc"},
			`ERROR SLIPSTREAM_OTLP_HEADERS: pair 1 is malformed (values not shown): accepted key=value,... with percent-encoded values; traces and metrics export off`,
			[3]string{"SLIPSTREAM_OTLP_HEADERS", "SLIPSTREAM_OTLP_HEADERS", ""},
			func(o *OTLP) bool { return o.Logs.Headers["api-key"] == "abc" }},
		{"a client certificate without a key switches its signals off",
			map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/c.pem"},
			`WARN OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: a client certificate is accepted only together with a client key (OTEL_EXPORTER_OTLP_CLIENT_KEY is not set); traces, metrics and logs export off`,
			[3]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"},
			func(o *OTLP) bool { return o.Traces.ClientCertificate == "" }},
		{"a client key without a certificate from SLIPSTREAM switches its signal off",
			map[string]string{"SLIPSTREAM_OTLP_TRACES_CLIENT_KEY": "/k.pem"},
			`ERROR SLIPSTREAM_OTLP_TRACES_CLIENT_KEY: a client certificate is accepted only together with a client key (SLIPSTREAM_OTLP_TRACES_CLIENT_CERTIFICATE is not set); traces export off`,
			[3]string{"SLIPSTREAM_OTLP_TRACES_CLIENT_KEY", "", ""}, nil},
		{"an invalid SLIPSTREAM insecure flag falls back to TLS",
			map[string]string{"SLIPSTREAM_OTLP_INSECURE": "maybe"},
			`ERROR SLIPSTREAM_OTLP_INSECURE="maybe": accepted true|false; default false used (TLS on)`,
			[3]string{}, func(o *OTLP) bool { return !o.Traces.Insecure }},
		{"an invalid per-signal OTEL insecure flag falls back to the base value",
			map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_EXPORTER_OTLP_LOGS_INSECURE": "yes"},
			`WARN OTEL_EXPORTER_OTLP_LOGS_INSECURE="yes": accepted true|false; the base value or the default false used (TLS on)`,
			[3]string{}, func(o *OTLP) bool { return o.Logs.Insecure }},
		{"an invalid OTEL compression falls back",
			map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
			`WARN OTEL_EXPORTER_OTLP_COMPRESSION="zstd": accepted gzip|none; default gzip used`,
			[3]string{}, func(o *OTLP) bool { return o.Traces.Compression == "gzip" }},
		{"an invalid SLIPSTREAM compression falls back with an error",
			map[string]string{"SLIPSTREAM_OTLP_METRICS_COMPRESSION": "br"},
			`ERROR SLIPSTREAM_OTLP_METRICS_COMPRESSION="br": accepted gzip|none; the base value or the default gzip used`,
			[3]string{}, func(o *OTLP) bool { return o.Metrics.Compression == "gzip" }},
		{"an OTEL timeout with a unit falls back: the specification says integer milliseconds",
			map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"},
			`WARN OTEL_EXPORTER_OTLP_TIMEOUT="10s": accepted integer milliseconds 1..60000; default 10000 used`,
			[3]string{}, func(o *OTLP) bool { return o.Traces.Timeout == 10*time.Second }},
		{"an OTEL timeout beyond a minute falls back",
			map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "120000"},
			`WARN OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="120000": accepted integer milliseconds 1..60000; the base value or the default 10000 used`,
			[3]string{}, nil},
		{"a zero SLIPSTREAM timeout falls back with an error",
			map[string]string{"SLIPSTREAM_OTLP_TIMEOUT": "0"},
			`ERROR SLIPSTREAM_OTLP_TIMEOUT="0": accepted a duration from 1ms to 1m (a Go duration such as 500ms or 2s, or integer milliseconds); default 10000 used`,
			[3]string{}, func(o *OTLP) bool { return o.Logs.Timeout == 10*time.Second }},
		{"an invalid OTEL temporality falls back",
			map[string]string{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "gauge"},
			`WARN OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="gauge": accepted cumulative|delta|lowmemory; default cumulative used`,
			[3]string{}, nil},
		{"an invalid SLIPSTREAM temporality falls back with an error",
			map[string]string{"SLIPSTREAM_OTLP_METRICS_TEMPORALITY_PREFERENCE": "gauge"},
			`ERROR SLIPSTREAM_OTLP_METRICS_TEMPORALITY_PREFERENCE="gauge": accepted cumulative|delta|lowmemory; default cumulative used`,
			[3]string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(tt.env))
			if got := lines(c); !reflect.DeepEqual(got, []string{tt.line}) {
				t.Fatalf("lines = %q, want [%q]", got, tt.line)
			}
			if got := offBy(&c.OTLP); got != tt.off {
				t.Errorf("off by %q, want %q", got, tt.off)
			}
			if on := tt.off[0] == "" || tt.off[1] == "" || tt.off[2] == ""; c.ExportEnabled != on {
				t.Errorf("ExportEnabled = %v, want %v", c.ExportEnabled, on)
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
		{"the same value from SLIPSTREAM is an error and export goes on",
			map[string]string{"SLIPSTREAM_OTLP_LOGS_PROTOCOL": "http/json"}, true, true, false, false,
			`SLIPSTREAM_OTLP_LOGS_PROTOCOL="http/json": http/json is supported for traces only`},
		{"strict config is carried beside the problem for main to fail init",
			map[string]string{"SLIPSTREAM_STRICT_CONFIG": "true", "SLIPSTREAM_TELEMETRY_MAX_ITEMS": "5"}, true, true, false, true,
			`SLIPSTREAM_TELEMETRY_MAX_ITEMS="5": accepted 1000..10000`},
		{"strict config does not turn OTEL warnings into problems",
			map[string]string{"SLIPSTREAM_STRICT_CONFIG": "true", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, true, false, true, true,
			`OTEL_EXPORTER_OTLP_COMPRESSION="zstd": accepted gzip|none; default gzip used`},
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
