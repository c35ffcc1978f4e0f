package config

import (
	"strings"
	"testing"
)

func TestSecretReferencesInHeaders(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		off         string
		headersFrom string
		warning     bool
	}{
		{"a reference is kept for the resolver with the variable it came from",
			map[string]string{"SLIPSTREAM_OTLP_HEADERS": "x-api-key=${secretsmanager:otel/key#api_key}"}, "", "SLIPSTREAM_OTLP_HEADERS", false},
		{"a per-signal reference names the per-signal variable",
			map[string]string{"SLIPSTREAM_OTLP_TRACES_HEADERS": "x-api-key=${ssm:/otel/key}"}, "", "SLIPSTREAM_OTLP_TRACES_HEADERS", false},
		{"a malformed reference switches the signal off",
			map[string]string{"SLIPSTREAM_OTLP_TRACES_HEADERS": "x-api-key=${ssm:/otel/key"}, "SLIPSTREAM_OTLP_TRACES_HEADERS", "", false},
		{"an OTEL_* reference is not resolved and says so",
			map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-api-key=${ssm:/otel/key}"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(func(k string) string { return tt.env[k] })
			tr := c.OTLP.Traces
			if tr.Off != tt.off || tr.HeadersFrom != tt.headersFrom {
				t.Errorf("off %q from %q, want %q %q (problems %q)", tr.Off, tr.HeadersFrom, tt.off, tt.headersFrom, c.Problems)
			}
			warned := strings.Contains(strings.Join(c.Warnings, "\n"), "secret reference")
			if warned != tt.warning {
				t.Errorf("warnings = %q", c.Warnings)
			}
		})
	}
}
