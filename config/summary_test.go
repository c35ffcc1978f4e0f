package config

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

// startLine logs c as main does and returns the "config" object of the line.
func startLine(t *testing.T, c *Config) (map[string]any, string) {
	t.Helper()
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("slipstream started", "config", c)
	var line struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("decode %s: %v", b.String(), err)
	}
	return line.Config, b.String()
}

func TestConfigLogValue(t *testing.T) {
	on := func(endpoint, protocol, headers string) map[string]any {
		return map[string]any{"endpoint": endpoint, "protocol": protocol, "headers": headers}
	}
	tests := []struct {
		name   string
		env    map[string]string
		want   map[string]any // the keys of "config" checked
		secret string         // must not appear anywhere in the line
	}{
		{"the defaults say where each signal goes",
			nil,
			map[string]any{
				"export":           "on",
				"source":           "OTEL_EXPORTER_OTLP",
				"traces":           on("http://localhost:4318/v1/traces", "http/protobuf", ""),
				"metrics":          on("http://localhost:4318/v1/metrics", "http/protobuf", ""),
				"logs":             on("http://localhost:4318/v1/logs", "http/protobuf", ""),
				"flush":            "adaptive",
				"buffer_max_bytes": float64(4 << 20),
				"invalid_settings": float64(0),
				"warnings":         float64(0),
			}, ""},
		{"header names are shown and their values never",
			map[string]string{"SLIPSTREAM_OTLP_HEADERS": "x-api-key=s3cret,Authorization=Bearer%20s3cret", "SLIPSTREAM_OTLP_PROTOCOL": "grpc", "SLIPSTREAM_OTLP_ENDPOINT": "collector:4317"},
			map[string]any{
				"source":  "SLIPSTREAM_OTLP",
				"traces":  on("https://collector:4317", "grpc", "Authorization,x-api-key"),
				"metrics": on("https://collector:4317", "grpc", "Authorization,x-api-key"),
			}, "s3cret"},
		{"user info and query of an endpoint are redacted",
			map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://user:s3cret@otlp.example.com/v1/traces?token=s3cret"},
			map[string]any{
				"traces": on("https://REDACTED@otlp.example.com/v1/traces?REDACTED", "http/protobuf", ""),
			}, "s3cret"},
		{"a signal switched off names the variable that did it",
			map[string]string{"SLIPSTREAM_METRICS_EXPORTER": "none", "SLIPSTREAM_OTLP_LOGS_ENDPOINT": "https://user:s3cret@"},
			map[string]any{
				"export":           "on",
				"metrics":          map[string]any{"off_by": "SLIPSTREAM_METRICS_EXPORTER"},
				"logs":             map[string]any{"off_by": "SLIPSTREAM_OTLP_LOGS_ENDPOINT"},
				"invalid_settings": float64(1),
			}, "s3cret"},
		{"the kill switch is named",
			map[string]string{"SLIPSTREAM_DISABLED": "true"},
			map[string]any{"export": "off", "off_by": "SLIPSTREAM_DISABLED"}, ""},
		{"a periodic flush shows its period, and the buffer its size",
			map[string]string{"SLIPSTREAM_FLUSH": "periodic,90000", "SLIPSTREAM_BUFFER_MAX_BYTES": "8MiB"},
			map[string]any{"flush": "periodic,1m30s", "buffer_max_bytes": float64(8 << 20)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, raw := startLine(t, Load(env(tt.env)))
			for k, want := range tt.want {
				if !reflect.DeepEqual(got[k], want) {
					t.Errorf("config.%s = %#v, want %#v", k, got[k], want)
				}
			}
			if tt.secret != "" && strings.Contains(raw, tt.secret) {
				t.Errorf("the line shows a secret: %s", raw)
			}
		})
	}
}

func TestRedactedEndpoint(t *testing.T) {
	tests := []struct {
		name, endpoint, want string
	}{
		{"a plain URL is shown whole", "https://otlp.example.com:4318/v1/logs", "https://otlp.example.com:4318/v1/logs"},
		{"a user name alone is redacted", "https://apikey@otlp.example.com", "https://REDACTED@otlp.example.com"},
		{"a fragment is dropped", "https://otlp.example.com/#s3cret", "https://otlp.example.com/"},
		{"an unparseable value is not shown", "http://[::1", "(not shown: unparseable)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Signal{Endpoint: tt.endpoint}).RedactedEndpoint(); got != tt.want {
				t.Errorf("RedactedEndpoint() = %q, want %q", got, tt.want)
			}
		})
	}
}
