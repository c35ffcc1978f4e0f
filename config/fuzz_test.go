package config

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzLoad feeds LoadEnviron random environments: each input line is
// NAME=value, or N=value where N picks the N-th variable Load reads. Load
// must never panic and the Config must keep its invariants.
func FuzzLoad(f *testing.F) {
	names := readVariables()
	f.Add("")
	f.Add("SLIPSTREAM_TELEMETRY_MAX_ITEMS=5\nOTEL_EXPORTER_OTLP_PROTOCOL=http/json")
	f.Add("SLIPSTREAM_OTLP_HEADERS=a=%zz,b\nOTEL_RESOURCE_ATTRIBUTES=k=%E2%9C%93,=x")
	f.Add("SLIPSTREAM_FLUSH=periodic,1h\nSLIPSTREAM_BUFFER_MAX_BYTES=99999999999GiB\nAWS_LAMBDA_FUNCTION_MEMORY_SIZE=-3")
	f.Add("0=true\n7=grpc\n12=http://[::1]:4317\n40=off")
	f.Add("OTEL_EXPORTER_OTLP_PROTOCOL=grpc\nOTEL_EXPORTER_OTLP_ENDPOINT=[::1]:4317\nOTEL_EXPORTER_OTLP_INSECURE=true")
	f.Add("SLIPSTREAM_OTLP_TRACES_ENDPOINT=x:1\nOTEL_EXPORTER_OTLP_ENDPOINT=http://a\nOTEL_LOGS_EXPORTER=none")
	f.Add("SLIPSTREAM_FLUSH_TIMOUT=1s\nSLIPSTREAM_METRICS_EXPORTER=None\nSLIPSTREAM_SPILL_TTL=99999999999999999")
	f.Fuzz(func(t *testing.T, input string) {
		m := map[string]string{}
		for line := range strings.SplitSeq(input, "\n") {
			k, v, _ := strings.Cut(line, "=")
			if n, err := strconv.Atoi(k); err == nil && n >= 0 {
				k = names[n%len(names)]
			}
			m[k] = v
		}
		var environ []string
		for k, v := range m {
			environ = append(environ, k+"="+v)
		}
		c := LoadEnviron(environ)
		sigs := []Signal{c.OTLP.Traces, c.OTLP.Metrics, c.OTLP.Logs}
		anyOn := sigs[0].Enabled() || sigs[1].Enabled() || sigs[2].Enabled()
		if c.ExportEnabled != (!c.Disabled && anyOn) {
			t.Fatalf("ExportEnabled = %v with Disabled = %v and signals %+v", c.ExportEnabled, c.Disabled, sigs)
		}
		for _, line := range append(append(append([]string(nil), c.Problems...), c.Warnings...), c.Notices...) {
			if !strings.HasPrefix(line, "SLIPSTREAM_") && !strings.HasPrefix(line, "OTEL_") && !strings.HasPrefix(line, "AWS_") {
				t.Fatalf("line %q does not start with a variable name", line)
			}
		}
		if c.TelemetryMaxItems < minMaxItems || c.TelemetryMaxItems > maxMaxItems ||
			c.TelemetryMaxBytes < minMaxBytes || c.TelemetryMaxBytes > maxMaxBytes ||
			c.TelemetryTimeoutMs < minTimeoutMs || c.TelemetryTimeoutMs > maxTimeoutMs ||
			c.ListenerPort < 0 || c.ListenerPort > 65535 || c.ListenerPort == reservedPort ||
			c.BufferMaxBytes < minBufferMaxBytes || c.MemoryLimit < minMemoryLimit ||
			len(c.TelemetryTypes) == 0 || c.ResourceAttributes == nil ||
			c.FlushTimeout < 0 || c.MaxDataAge < time.Second || c.SpillTTL < time.Second {
			t.Fatalf("Config out of range: %+v", c)
		}
		for _, s := range sigs {
			if s.Endpoint == "" || s.Headers == nil || s.Timeout <= 0 || s.Protocol == "" {
				t.Fatalf("signal incomplete: %+v", s)
			}
			if !s.Enabled() {
				if !slices.Contains(names, s.Off) {
					t.Fatalf("signal off by %q, not a variable Load reads", s.Off)
				}
				if len(s.Headers) != 0 || s.ClientCertificate != "" || s.ClientKey != "" {
					t.Fatalf("signal off by %s keeps a destination: %+v", s.Off, s)
				}
				continue
			}
			// The exporters take the endpoint through WithEndpointURL.
			if u, err := url.Parse(s.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("endpoint %q of an exported signal is not an http(s) URL", s.Endpoint)
			}
		}
		if c.OTLP.Metrics.Protocol == ProtocolHTTPJSON || c.OTLP.Logs.Protocol == ProtocolHTTPJSON {
			t.Fatalf("http/json kept for metrics or logs")
		}
		var b strings.Builder
		slog.New(slog.NewJSONHandler(&b, nil)).Info("start", "config", c)
		if !json.Valid([]byte(b.String())) {
			t.Fatalf("LogValue gives invalid JSON: %s", b.String())
		}
	})
}
