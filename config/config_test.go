package config

import (
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// env is a getenv backed by a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c := Load(env(map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          "127.0.0.1:9001",
		"AWS_REGION":                      "eu-west-1",
		"AWS_LAMBDA_FUNCTION_NAME":        "orders",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
	}))
	if len(c.Problems) != 0 || len(c.Warnings) != 0 {
		t.Fatalf("Problems = %q, Warnings = %q, want none", c.Problems, c.Warnings)
	}
	headers := map[string]string{}
	want := &Config{
		ExportEnabled:      true,
		LogLevel:           "info",
		RuntimeAPI:         "127.0.0.1:9001",
		Region:             "eu-west-1",
		FunctionName:       "orders",
		FunctionVersion:    "$LATEST",
		MemorySizeMB:       128,
		InitType:           "on-demand",
		TelemetryTypes:     []string{"platform", "function", "extension"},
		TelemetryMaxItems:  1000,
		TelemetryMaxBytes:  1048576,
		TelemetryTimeoutMs: 25,
		ListenerPort:       4243,
		ReceiverHTTPPort:   4318,
		ReceiverGRPCPort:   4317,
		ReceiverEnrich:     true,
		ServiceName:        "orders",
		ResourceAttributes: map[string]string{},
		LogGroup:           "/aws/lambda/orders",
		OTLP: OTLP{
			Source:   SourceOTEL,
			Protocol: ProtocolHTTPProtobuf,
			Traces:   Signal{Protocol: ProtocolHTTPProtobuf, Endpoint: "http://localhost:4318/v1/traces", Headers: headers, Compression: "gzip", Timeout: 10 * time.Second},
			Metrics:  Signal{Protocol: ProtocolHTTPProtobuf, Endpoint: "http://localhost:4318/v1/metrics", Headers: headers, Compression: "gzip", Timeout: 10 * time.Second},
			Logs:     Signal{Protocol: ProtocolHTTPProtobuf, Endpoint: "http://localhost:4318/v1/logs", Headers: headers, Compression: "gzip", Timeout: 10 * time.Second},
		},
		FaaSTrigger:            "other",
		ProactiveInitThreshold: 10 * time.Second,
		Temporality:            "cumulative",
		RedactDefaults:         true,
		Flush:                  FlushAdaptive,
		FlushTimeout:           500 * time.Millisecond,
		MaxDataAge:             60 * time.Second,
		BufferMaxBytes:         4 << 20,
		SpillMaxBytes:          16 << 20,
		SpoolMaxBytes:          64 << 20,
		SpillDir:               "/tmp/slipstream",
		SpillTTL:               15 * time.Minute,
		MaxProcs:               1,
		GCPercent:              400,
		MemoryLimit:            20 << 20,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load() =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoadEmptyEnvironmentExports(t *testing.T) {
	c := Load(env(nil))
	if !c.ExportEnabled || len(c.Problems) != 0 {
		t.Errorf("ExportEnabled = %v, Problems = %q: no destination at all must not be a problem", c.ExportEnabled, c.Problems)
	}
	if c.ServiceName != "unknown_service" || c.LogGroup != "" || c.BufferMaxBytes != 4<<20 {
		t.Errorf("ServiceName = %q, LogGroup = %q, BufferMaxBytes = %d", c.ServiceName, c.LogGroup, c.BufferMaxBytes)
	}
}

// TestLoadSettings covers each Slipstream variable, valid and invalid.
func TestLoadSettings(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		line  string // the one line expected, with its level; "" when the settings are valid
		check func(*Config) bool
	}{
		{"disabled turns export off without a problem", map[string]string{"SLIPSTREAM_DISABLED": "true"}, "",
			func(c *Config) bool { return c.Disabled && !c.ExportEnabled }},
		{"disabled accepts 1 and any case", map[string]string{"SLIPSTREAM_DISABLED": "TRUE", "SLIPSTREAM_PLATFORM_LOGS": "1"}, "",
			func(c *Config) bool { return c.Disabled && c.PlatformLogs }},
		{"an invalid disabled switch counts as true and turns export off", map[string]string{"SLIPSTREAM_DISABLED": "yes"}, `ERROR SLIPSTREAM_DISABLED="yes": accepted true|false; counted as true: export off`,
			func(c *Config) bool { return c.Disabled && !c.ExportEnabled }},
		{"OTEL_SDK_DISABLED does not disable Slipstream", map[string]string{"OTEL_SDK_DISABLED": "true"}, "",
			func(c *Config) bool { return c.ExportEnabled }},
		{"log level is case-insensitive", map[string]string{"SLIPSTREAM_LOG_LEVEL": "DEBUG"}, "",
			func(c *Config) bool { return c.LogLevel == "debug" }},
		{"log level rejects trace", map[string]string{"SLIPSTREAM_LOG_LEVEL": "trace"}, `ERROR SLIPSTREAM_LOG_LEVEL="trace": accepted debug|info|warn|error; default info used`,
			func(c *Config) bool { return c.LogLevel == "info" }},
		{"strict config is read", map[string]string{"SLIPSTREAM_STRICT_CONFIG": "true"}, "",
			func(c *Config) bool { return c.StrictConfig }},
		{"strict config rejects on", map[string]string{"SLIPSTREAM_STRICT_CONFIG": "on"}, `ERROR SLIPSTREAM_STRICT_CONFIG="on": accepted true|false; default false used`,
			func(c *Config) bool { return !c.StrictConfig }},
		{"telemetry types are deduplicated in canonical order", map[string]string{"SLIPSTREAM_TELEMETRY_TYPES": " Function, platform,function "}, "",
			func(c *Config) bool { return reflect.DeepEqual(c.TelemetryTypes, []string{"platform", "function"}) }},
		{"telemetry types keep the known items of a list with an unknown one", map[string]string{"SLIPSTREAM_TELEMETRY_TYPES": "platform,metrics"}, `ERROR SLIPSTREAM_TELEMETRY_TYPES="platform,metrics": accepted a comma list of platform,function,extension; platform used`,
			func(c *Config) bool { return reflect.DeepEqual(c.TelemetryTypes, []string{"platform"}) }},
		{"telemetry types with a typo never add the function's logs back", map[string]string{"SLIPSTREAM_TELEMETRY_TYPES": "platfrom,extension"}, `ERROR SLIPSTREAM_TELEMETRY_TYPES="platfrom,extension": accepted a comma list of platform,function,extension; extension used`,
			func(c *Config) bool { return reflect.DeepEqual(c.TelemetryTypes, []string{"extension"}) }},
		{"telemetry types with nothing known fall back to platform only", map[string]string{"SLIPSTREAM_TELEMETRY_TYPES": ","}, `ERROR SLIPSTREAM_TELEMETRY_TYPES=",": accepted a comma list of platform,function,extension; platform used`,
			func(c *Config) bool { return reflect.DeepEqual(c.TelemetryTypes, []string{"platform"}) }},
		{"max items accepts its upper bound", map[string]string{"SLIPSTREAM_TELEMETRY_MAX_ITEMS": "10000"}, "",
			func(c *Config) bool { return c.TelemetryMaxItems == 10000 }},
		{"max items rejects 5", map[string]string{"SLIPSTREAM_TELEMETRY_MAX_ITEMS": "5"}, `ERROR SLIPSTREAM_TELEMETRY_MAX_ITEMS="5": accepted 1000..10000; default 1000 used`,
			func(c *Config) bool { return c.TelemetryMaxItems == 1000 }},
		{"max bytes accepts 1 MiB", map[string]string{"SLIPSTREAM_TELEMETRY_MAX_BYTES": "1048576"}, "",
			func(c *Config) bool { return c.TelemetryMaxBytes == 1048576 }},
		{"max bytes rejects more than 1 MiB", map[string]string{"SLIPSTREAM_TELEMETRY_MAX_BYTES": "1048577"}, `ERROR SLIPSTREAM_TELEMETRY_MAX_BYTES="1048577": accepted 262144..1048576; default 1048576 used`, nil},
		{"timeout accepts 30000", map[string]string{"SLIPSTREAM_TELEMETRY_TIMEOUT_MS": "30000"}, "",
			func(c *Config) bool { return c.TelemetryTimeoutMs == 30000 }},
		{"telemetry timeout accepts a Go duration", map[string]string{"SLIPSTREAM_TELEMETRY_TIMEOUT_MS": "1.5s"}, "",
			func(c *Config) bool { return c.TelemetryTimeoutMs == 1500 }},
		{"telemetry timeout rejects 10ms", map[string]string{"SLIPSTREAM_TELEMETRY_TIMEOUT_MS": "10"}, `ERROR SLIPSTREAM_TELEMETRY_TIMEOUT_MS="10": accepted a duration from 25ms to 30s (a Go duration such as 500ms or 2s, or integer milliseconds); default 25ms used`,
			func(c *Config) bool { return c.TelemetryTimeoutMs == 25 }},
		{"listener port accepts 8080", map[string]string{"SLIPSTREAM_LISTENER_PORT": "8080"}, "",
			func(c *Config) bool { return c.ListenerPort == 8080 }},
		{"listener port rejects the runtime API port", map[string]string{"SLIPSTREAM_LISTENER_PORT": "9001"}, `ERROR SLIPSTREAM_LISTENER_PORT="9001": accepted 0..65535 except 9001 (0: a free port); default 4243 used`,
			func(c *Config) bool { return c.ListenerPort == 4243 }},
		{"listener port accepts 0, a free port chosen at start", map[string]string{"SLIPSTREAM_LISTENER_PORT": "0"}, "",
			func(c *Config) bool { return c.ListenerPort == 0 }},
		{"listener port rejects a negative port", map[string]string{"SLIPSTREAM_LISTENER_PORT": "-1"}, `ERROR SLIPSTREAM_LISTENER_PORT="-1": accepted 0..65535 except 9001 (0: a free port); default 4243 used`,
			func(c *Config) bool { return c.ListenerPort == 4243 }},
		{"listener port rejects 65536", map[string]string{"SLIPSTREAM_LISTENER_PORT": "65536"}, `ERROR SLIPSTREAM_LISTENER_PORT="65536": accepted 0..65535 except 9001 (0: a free port); default 4243 used`,
			func(c *Config) bool { return c.ListenerPort == 4243 }},
		{"log group is read", map[string]string{"SLIPSTREAM_LOG_GROUP": "/custom/group"}, "",
			func(c *Config) bool { return c.LogGroup == "/custom/group" }},
		{"log group rejects a space", map[string]string{"SLIPSTREAM_LOG_GROUP": "my group"}, `ERROR SLIPSTREAM_LOG_GROUP="my group": accepted a CloudWatch log group name: 1..512 of A-Z a-z 0-9 _ - / . #; default /aws/lambda/<function name> used`,
			func(c *Config) bool { return c.LogGroup == "" }},
		{"respect sampled is read", map[string]string{"SLIPSTREAM_TRACES_RESPECT_SAMPLED": "true"}, "",
			func(c *Config) bool { return c.TracesRespectSampled }},
		{"respect sampled rejects junk", map[string]string{"SLIPSTREAM_TRACES_RESPECT_SAMPLED": "sometimes"}, `ERROR SLIPSTREAM_TRACES_RESPECT_SAMPLED="sometimes": accepted true|false; default false used`, nil},
		{"faas trigger accepts http", map[string]string{"SLIPSTREAM_FAAS_TRIGGER": "http"}, "",
			func(c *Config) bool { return c.FaaSTrigger == "http" }},
		{"faas trigger rejects sqs", map[string]string{"SLIPSTREAM_FAAS_TRIGGER": "sqs"}, `ERROR SLIPSTREAM_FAAS_TRIGGER="sqs": accepted datasource|http|pubsub|timer|other; default other used`, nil},
		{"platform logs rejects junk", map[string]string{"SLIPSTREAM_PLATFORM_LOGS": "maybe"}, `ERROR SLIPSTREAM_PLATFORM_LOGS="maybe": accepted true|false; default false used`, nil},
		{"prices are decimals", map[string]string{"SLIPSTREAM_PRICE_GB_SECOND": "0.0000133334", "SLIPSTREAM_PRICE_REQUEST": "0.0000002"}, "",
			func(c *Config) bool { return c.PriceGBSecond == 0.0000133334 && c.PriceRequest == 0.0000002 }},
		{"price rejects a negative number", map[string]string{"SLIPSTREAM_PRICE_GB_SECOND": "-1"}, `ERROR SLIPSTREAM_PRICE_GB_SECOND="-1": accepted a decimal number of USD >= 0; the built-in price table used`, nil},
		{"price rejects NaN", map[string]string{"SLIPSTREAM_PRICE_REQUEST": "NaN"}, `ERROR SLIPSTREAM_PRICE_REQUEST="NaN": accepted a decimal number of USD >= 0; the built-in price table used`, nil},
		{"flush accepts async", map[string]string{"SLIPSTREAM_FLUSH": "async"}, "",
			func(c *Config) bool { return c.Flush == FlushAsync && c.FlushPeriod == 0 }},
		{"flush accepts end", map[string]string{"SLIPSTREAM_FLUSH": "END"}, "",
			func(c *Config) bool { return c.Flush == FlushEnd }},
		{"flush accepts periodic with a duration", map[string]string{"SLIPSTREAM_FLUSH": "periodic, 10s"}, "",
			func(c *Config) bool { return c.Flush == FlushPeriodic && c.FlushPeriod == 10*time.Second }},
		{"flush rejects periodic without a duration", map[string]string{"SLIPSTREAM_FLUSH": "periodic"}, `ERROR SLIPSTREAM_FLUSH="periodic": accepted adaptive|async|end|periodic,<duration from 100ms to 24h: a Go duration or integer milliseconds>; default adaptive used`,
			func(c *Config) bool { return c.Flush == FlushAdaptive }},
		{"flush rejects a tiny period", map[string]string{"SLIPSTREAM_FLUSH": "periodic,1ns"}, `ERROR SLIPSTREAM_FLUSH="periodic,1ns": accepted adaptive|async|end|periodic,<duration from 100ms to 24h: a Go duration or integer milliseconds>; default adaptive used`, nil},
		{"flush rejects an argument to async", map[string]string{"SLIPSTREAM_FLUSH": "async,1s"}, `ERROR SLIPSTREAM_FLUSH="async,1s": accepted adaptive|async|end|periodic,<duration from 100ms to 24h: a Go duration or integer milliseconds>; default adaptive used`, nil},
		{"flush timeout accepts 0s", map[string]string{"SLIPSTREAM_FLUSH_TIMEOUT": "0s"}, "",
			func(c *Config) bool { return c.FlushTimeout == 0 }},
		{"flush timeout reads a bare integer as milliseconds", map[string]string{"SLIPSTREAM_FLUSH_TIMEOUT": "750"}, "",
			func(c *Config) bool { return c.FlushTimeout == 750*time.Millisecond }},
		{"flush timeout rejects a number with a unit Go does not know", map[string]string{"SLIPSTREAM_FLUSH_TIMEOUT": "2sec"}, `ERROR SLIPSTREAM_FLUSH_TIMEOUT="2sec": accepted a duration from 0s to 15m (a Go duration such as 500ms or 2s, or integer milliseconds); default 500ms used`,
			func(c *Config) bool { return c.FlushTimeout == 500*time.Millisecond }},
		{"flush periodic reads a bare integer as milliseconds", map[string]string{"SLIPSTREAM_FLUSH": "periodic,2500"}, "",
			func(c *Config) bool { return c.Flush == FlushPeriodic && c.FlushPeriod == 2500*time.Millisecond }},
		{"flush with a typo falls back to adaptive", map[string]string{"SLIPSTREAM_FLUSH": "adaptve"}, `ERROR SLIPSTREAM_FLUSH="adaptve": accepted adaptive|async|end|periodic,<duration from 100ms to 24h: a Go duration or integer milliseconds>; default adaptive used`,
			func(c *Config) bool { return c.Flush == FlushAdaptive }},
		{"max data age reads a bare integer as milliseconds", map[string]string{"SLIPSTREAM_MAX_DATA_AGE": "90000"}, "",
			func(c *Config) bool { return c.MaxDataAge == 90*time.Second }},
		{"spill TTL reads a bare integer as milliseconds", map[string]string{"SLIPSTREAM_SPILL_TTL": "60000"}, "",
			func(c *Config) bool { return c.SpillTTL == time.Minute }},
		{"a bare integer too large for a duration is rejected", map[string]string{"SLIPSTREAM_SPILL_TTL": "99999999999999999"}, `ERROR SLIPSTREAM_SPILL_TTL="99999999999999999": accepted a duration from 1s to 24h (a Go duration such as 500ms or 2s, or integer milliseconds); default 15m used`,
			func(c *Config) bool { return c.SpillTTL == 15*time.Minute }},
		{"proactive init threshold accepts 30s", map[string]string{"SLIPSTREAM_PROACTIVE_INIT_THRESHOLD": "30s"}, "",
			func(c *Config) bool { return c.ProactiveInitThreshold == 30*time.Second }},
		{"proactive init threshold rejects 0 and falls back to 10s", map[string]string{"SLIPSTREAM_PROACTIVE_INIT_THRESHOLD": "0"}, `ERROR SLIPSTREAM_PROACTIVE_INIT_THRESHOLD="0": accepted a duration from 1s to 1h (a Go duration such as 500ms or 2s, or integer milliseconds); default 10s used`,
			func(c *Config) bool { return c.ProactiveInitThreshold == 10*time.Second }},
		{"max data age accepts 5m", map[string]string{"SLIPSTREAM_MAX_DATA_AGE": "5m"}, "",
			func(c *Config) bool { return c.MaxDataAge == 5*time.Minute }},
		{"max data age rejects a negative duration", map[string]string{"SLIPSTREAM_MAX_DATA_AGE": "-1s"}, `ERROR SLIPSTREAM_MAX_DATA_AGE="-1s": accepted a duration from 1s to 24h (a Go duration such as 500ms or 2s, or integer milliseconds); default 1m used`, nil},
		{"buffer scales with memory", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}, "",
			func(c *Config) bool { return c.BufferMaxBytes == 8<<20 && c.MemoryLimit == 28<<20 }},
		{"buffer default has a floor", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "16"}, "",
			func(c *Config) bool { return c.BufferMaxBytes == 1<<20 }},
		{"buffer default has a ceiling", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}, "",
			func(c *Config) bool { return c.BufferMaxBytes == 16<<20 }},
		{"buffer accepts a MiB suffix", map[string]string{"SLIPSTREAM_BUFFER_MAX_BYTES": "2MiB"}, "",
			func(c *Config) bool { return c.BufferMaxBytes == 2<<20 && c.MemoryLimit == 16<<20 }},
		{"buffer rejects MB", map[string]string{"SLIPSTREAM_BUFFER_MAX_BYTES": "2MB"}, `ERROR SLIPSTREAM_BUFFER_MAX_BYTES="2MB": accepted bytes from 1MiB to 1GiB (suffix B, KiB, MiB or GiB allowed); default 4MiB used`, nil},
		{"buffer rejects an overflowing size", map[string]string{"SLIPSTREAM_BUFFER_MAX_BYTES": "9223372036854775807GiB"}, `ERROR SLIPSTREAM_BUFFER_MAX_BYTES="9223372036854775807GiB": accepted bytes from 1MiB to 1GiB (suffix B, KiB, MiB or GiB allowed); default 4MiB used`, nil},
		{"spill accepts 0 to disable", map[string]string{"SLIPSTREAM_SPILL_MAX_BYTES": "0"}, "",
			func(c *Config) bool { return c.SpillMaxBytes == 0 }},
		{"spool accepts 0 to disable", map[string]string{"SLIPSTREAM_SPOOL_MAX_BYTES": "0"}, "",
			func(c *Config) bool { return c.SpoolMaxBytes == 0 }},
		{"spill rejects a negative size", map[string]string{"SLIPSTREAM_SPILL_MAX_BYTES": "-1"}, `ERROR SLIPSTREAM_SPILL_MAX_BYTES="-1": accepted bytes from 0 to 10GiB (suffix B, KiB, MiB or GiB allowed); default 16MiB used`, nil},
		{"spill dir is cleaned", map[string]string{"SLIPSTREAM_SPILL_DIR": "/tmp/x/"}, "",
			func(c *Config) bool { return c.SpillDir == "/tmp/x" }},
		{"spill dir rejects a relative path", map[string]string{"SLIPSTREAM_SPILL_DIR": "tmp"}, `ERROR SLIPSTREAM_SPILL_DIR="tmp": accepted an absolute path; default /tmp/slipstream used`, nil},
		{"spill TTL accepts 1h", map[string]string{"SLIPSTREAM_SPILL_TTL": "1h"}, "",
			func(c *Config) bool { return c.SpillTTL == time.Hour }},
		{"spill TTL rejects 2 days", map[string]string{"SLIPSTREAM_SPILL_TTL": "48h"}, `ERROR SLIPSTREAM_SPILL_TTL="48h": accepted a duration from 1s to 24h (a Go duration such as 500ms or 2s, or integer milliseconds); default 15m used`, nil},
		{"gogc accepts 50", map[string]string{"SLIPSTREAM_GOGC": "50"}, "",
			func(c *Config) bool { return c.GCPercent == 50 }},
		{"gogc accepts off", map[string]string{"SLIPSTREAM_GOGC": "off"}, "",
			func(c *Config) bool { return c.GCPercent == -1 }},
		{"gogc rejects 0", map[string]string{"SLIPSTREAM_GOGC": "0"}, `ERROR SLIPSTREAM_GOGC="0": accepted 1..10000 or off; default 400 used`, nil},
		{"gomemlimit accepts GiB", map[string]string{"SLIPSTREAM_GOMEMLIMIT": "1GiB"}, "",
			func(c *Config) bool { return c.MemoryLimit == 1<<30 }},
		{"gomemlimit rejects a tiny limit", map[string]string{"SLIPSTREAM_GOMEMLIMIT": "1KiB"}, `ERROR SLIPSTREAM_GOMEMLIMIT="1KiB": accepted bytes from 8MiB to 64GiB (suffix B, KiB, MiB or GiB allowed); default 20MiB used`, nil},
		{"the function's GOGC and GOMEMLIMIT are not read", map[string]string{"GOGC": "off", "GOMEMLIMIT": "1MiB"}, "",
			func(c *Config) bool { return c.GCPercent == 400 && c.MemoryLimit == 20<<20 }},
		{"gomaxprocs accepts 2", map[string]string{"SLIPSTREAM_GOMAXPROCS": "2"}, "",
			func(c *Config) bool { return c.MaxProcs == 2 }},
		{"gomaxprocs rejects 0", map[string]string{"SLIPSTREAM_GOMAXPROCS": "0"}, `ERROR SLIPSTREAM_GOMAXPROCS="0": accepted 1..256; default 1 used`, nil},
		{"the function's GOMAXPROCS is not read", map[string]string{"GOMAXPROCS": "8"}, "",
			func(c *Config) bool { return c.MaxProcs == 1 }},
		{"service name falls back to the resource attribute", map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.name=billing", "AWS_LAMBDA_FUNCTION_NAME": "fn"}, "",
			func(c *Config) bool { return c.ServiceName == "billing" }},
		{"service name variable wins over the resource attribute", map[string]string{"OTEL_SERVICE_NAME": "svc", "OTEL_RESOURCE_ATTRIBUTES": "service.name=billing"}, "",
			func(c *Config) bool { return c.ServiceName == "svc" }},
		{"region falls back to the default region", map[string]string{"AWS_DEFAULT_REGION": "us-west-2"}, "",
			func(c *Config) bool { return c.Region == "us-west-2" }},
		{"AWS_REGION wins over the default region", map[string]string{"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "us-west-2"}, "",
			func(c *Config) bool { return c.Region == "eu-central-1" }},
		{"managed instances are recognised", map[string]string{"AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}, "",
			func(c *Config) bool { return c.ManagedInstances && c.InitType == "lambda-managed-instances" }},
		{"snap start is not managed instances", map[string]string{"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}, "",
			func(c *Config) bool { return !c.ManagedInstances }},
		{"a bad memory size is a warning, not a problem", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, `WARN AWS_LAMBDA_FUNCTION_MEMORY_SIZE="lots": not a memory size in MiB; treated as unknown`,
			func(c *Config) bool { return c.MemorySizeMB == 0 && c.BufferMaxBytes == 4<<20 }},
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
			if !c.ExportEnabled && !c.Disabled {
				t.Errorf("ExportEnabled = false: a tuning setting never switches export off")
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("unexpected Config: %+v", c)
			}
		})
	}
}

// lines returns what Load has to say about c, in the order main logs it,
// each line prefixed with its level.
func lines(c *Config) []string {
	var out []string
	for _, l := range c.Problems {
		out = append(out, "ERROR "+l)
	}
	for _, l := range c.Warnings {
		out = append(out, "WARN "+l)
	}
	for _, l := range c.Notices {
		out = append(out, "INFO "+l)
	}
	return out
}

func TestLoadKeepsExportingBesideTuningProblems(t *testing.T) {
	c := Load(env(map[string]string{
		"SLIPSTREAM_TELEMETRY_MAX_ITEMS": "5",
		"SLIPSTREAM_LOG_LEVEL":           "loud",
		"SLIPSTREAM_LISTENER_PORT":       "8080",
		"SLIPSTREAM_FLUSH":               "end",
		"OTEL_EXPORTER_OTLP_ENDPOINT":    "https://collector:4318",
	}))
	if len(c.Problems) != 2 || !c.ExportEnabled {
		t.Fatalf("Problems = %q, ExportEnabled = %v: want two lines and export on", c.Problems, c.ExportEnabled)
	}
	if c.ListenerPort != 8080 || c.Flush != FlushEnd || c.OTLP.Traces.Endpoint != "https://collector:4318/v1/traces" {
		t.Errorf("valid settings lost: %+v", c)
	}
}

func TestLoadResourceAttributes(t *testing.T) {
	tests := []struct {
		name     string
		value    string
		want     map[string]string
		warnings int
	}{
		{"plain pairs are read", "deployment.environment=prod,team=core", map[string]string{"deployment.environment": "prod", "team": "core"}, 0},
		{"values are percent-decoded", "note=a%2Cb%3Dc%20d,plus=a+b", map[string]string{"note": "a,b=c d", "plus": "a+b"}, 0},
		{"spaces around keys and values are trimmed", " k = v ", map[string]string{"k": "v"}, 0},
		{"empty items are ignored", "a=1,,b=2,", map[string]string{"a": "1", "b": "2"}, 0},
		{"a pair without = is skipped with a warning", "a=1,broken,b=2", map[string]string{"a": "1", "b": "2"}, 1},
		{"a pair with an empty key is skipped with a warning", "=x,b=2", map[string]string{"b": "2"}, 1},
		{"a bad escape is skipped with a warning", "a=%zz,b=%4", map[string]string{}, 2},
		{"an escape that is not UTF-8 is skipped with a warning", "a=%ff", map[string]string{}, 1},
		{"an empty value is kept", "a=", map[string]string{"a": ""}, 0},
		{"a value may contain =", "a=b=c", map[string]string{"a": "b=c"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(env(map[string]string{"OTEL_RESOURCE_ATTRIBUTES": tt.value}))
			if !reflect.DeepEqual(c.ResourceAttributes, tt.want) {
				t.Errorf("ResourceAttributes = %q, want %q", c.ResourceAttributes, tt.want)
			}
			if len(c.Warnings) != tt.warnings {
				t.Errorf("Warnings = %q, want %d", c.Warnings, tt.warnings)
			}
			if len(c.Problems) != 0 || !c.ExportEnabled {
				t.Errorf("Problems = %q: resource attributes never switch export off", c.Problems)
			}
		})
	}
}

func TestApplyRuntime(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	prevProcs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		debug.SetGCPercent(prevGC)
		debug.SetMemoryLimit(prevLimit)
		runtime.GOMAXPROCS(prevProcs)
	})
	tests := []struct {
		name      string
		cfg       Config
		gc        int
		memLimit  int64
		procs     int
		beforeGC  int
		beforeMem int64
	}{
		{"a loaded config replaces the function's GOGC=off", *Load(env(map[string]string{"GOGC": "off"})), 400, 20 << 20, 1, -1, 1 << 62},
		{"explicit values are applied", Config{MaxProcs: 3, GCPercent: 50, MemoryLimit: 64 << 20}, 50, 64 << 20, 3, 200, 1 << 30},
		{"a hand-built zero config gets safe values", Config{}, 400, 20 << 20, 1, -1, 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(tt.beforeGC)
			debug.SetMemoryLimit(tt.beforeMem)
			runtime.GOMAXPROCS(4)
			tt.cfg.ApplyRuntime()
			if got := runtime.GOMAXPROCS(0); got != tt.procs {
				t.Errorf("GOMAXPROCS = %d, want %d", got, tt.procs)
			}
			if got := debug.SetGCPercent(100); got != tt.gc {
				t.Errorf("GC percent = %d, want %d", got, tt.gc)
			}
			if got := debug.SetMemoryLimit(-1); got != tt.memLimit {
				t.Errorf("memory limit = %d, want %d", got, tt.memLimit)
			}
		})
	}
}

func TestProblemLinesNameTheVariable(t *testing.T) {
	c := Load(env(map[string]string{
		"SLIPSTREAM_TELEMETRY_MAX_ITEMS": "5",
		"SLIPSTREAM_OTLP_PROTOCOL":       "carrier-pigeon",
		"SLIPSTREAM_OTLP_HEADERS":        "Authorization=Bearer%20s3cret,broken",
	}))
	for _, p := range c.Problems {
		if !strings.HasPrefix(p, "SLIPSTREAM_") || !strings.Contains(p, "accepted") {
			t.Errorf("problem %q does not name its variable and the accepted values", p)
		}
		if strings.Contains(p, "s3cret") {
			t.Errorf("problem %q shows a header value", p)
		}
	}
	if len(c.Problems) != 3 {
		t.Errorf("Problems = %q, want 3 lines", c.Problems)
	}
}
