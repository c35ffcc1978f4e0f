package config

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzLoad feeds Load random environments: each input line is NAME=value,
// or N=value where N picks the N-th variable Load reads. Load must never
// panic and the Config must keep its invariants.
func FuzzLoad(f *testing.F) {
	names := readVariables()
	f.Add("")
	f.Add("SLIPSTREAM_TELEMETRY_MAX_ITEMS=5\nOTEL_EXPORTER_OTLP_PROTOCOL=http/json")
	f.Add("SLIPSTREAM_OTLP_HEADERS=a=%zz,b\nOTEL_RESOURCE_ATTRIBUTES=k=%E2%9C%93,=x")
	f.Add("SLIPSTREAM_FLUSH=periodic,1h\nSLIPSTREAM_BUFFER_MAX_BYTES=99999999999GiB\nAWS_LAMBDA_FUNCTION_MEMORY_SIZE=-3")
	f.Add("0=true\n7=grpc\n12=http://[::1]:4317\n40=off")
	f.Fuzz(func(t *testing.T, input string) {
		m := map[string]string{}
		for line := range strings.SplitSeq(input, "\n") {
			k, v, _ := strings.Cut(line, "=")
			if n, err := strconv.Atoi(k); err == nil && n >= 0 {
				k = names[n%len(names)]
			}
			m[k] = v
		}
		c := Load(env(m))
		if c.ExportEnabled == (c.Disabled || len(c.Problems) > 0) {
			t.Fatalf("ExportEnabled = %v with Disabled = %v and Problems = %q", c.ExportEnabled, c.Disabled, c.Problems)
		}
		for _, line := range append(append([]string(nil), c.Problems...), c.Warnings...) {
			if !strings.HasPrefix(line, "SLIPSTREAM_") && !strings.HasPrefix(line, "OTEL_") && !strings.HasPrefix(line, "AWS_") {
				t.Fatalf("line %q does not start with a variable name", line)
			}
		}
		if c.TelemetryMaxItems < minMaxItems || c.TelemetryMaxItems > maxMaxItems ||
			c.TelemetryMaxBytes < minMaxBytes || c.TelemetryMaxBytes > maxMaxBytes ||
			c.TelemetryTimeoutMs < minTimeoutMs || c.TelemetryTimeoutMs > maxTimeoutMs ||
			c.ListenerPort < 0 || c.ListenerPort > 65535 || c.ListenerPort == reservedPort ||
			c.BufferMaxBytes < minBufferMaxBytes || c.MemoryLimit < minMemoryLimit ||
			len(c.TelemetryTypes) == 0 || c.ResourceAttributes == nil {
			t.Fatalf("Config out of range: %+v", c)
		}
		for _, s := range []Signal{c.OTLP.Traces, c.OTLP.Metrics, c.OTLP.Logs} {
			if s.Endpoint == "" || s.Headers == nil || s.Timeout <= 0 || s.Protocol == "" {
				t.Fatalf("signal incomplete: %+v", s)
			}
		}
		if c.OTLP.Metrics.Protocol == ProtocolHTTPJSON || c.OTLP.Logs.Protocol == ProtocolHTTPJSON {
			t.Fatalf("http/json kept for metrics or logs")
		}
	})
}
