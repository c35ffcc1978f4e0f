package config

import "testing"

func TestSigV4Settings(t *testing.T) {
	tests := []struct {
		name            string
		env             map[string]string
		service, region string // of traces; "" = no sigv4
		off             string // variable that switched traces off
	}{
		{"service and region come from an X-Ray endpoint", map[string]string{
			"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "https://xray.eu-west-1.amazonaws.com/v1/traces", "SLIPSTREAM_OTLP_AUTH": "sigv4"},
			"xray", "eu-west-1", ""},
		{"a per-signal value wins over the base one", map[string]string{
			"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "https://xray.eu-west-1.amazonaws.com/v1/traces", "SLIPSTREAM_OTLP_AUTH": "sigv4", "SLIPSTREAM_OTLP_TRACES_AUTH": "none"},
			"", "", ""},
		{"overrides name the scope of another host", map[string]string{
			"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "https://otlp.example.com/v1/traces", "SLIPSTREAM_OTLP_TRACES_AUTH": "sigv4",
			"SLIPSTREAM_OTLP_TRACES_SIGV4_SERVICE": "xray", "AWS_REGION": "us-east-2"},
			"xray", "us-east-2", ""},
		{"a FIPS endpoint signs for the service without the suffix", map[string]string{
			"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "https://xray-fips.us-gov-west-1.amazonaws.com/v1/traces", "SLIPSTREAM_OTLP_TRACES_AUTH": "sigv4"},
			"xray", "us-gov-west-1", ""},
		{"sigv4 with grpc switches the signal off", map[string]string{
			"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "https://xray.eu-west-1.amazonaws.com", "SLIPSTREAM_OTLP_TRACES_PROTOCOL": "grpc", "SLIPSTREAM_OTLP_TRACES_AUTH": "sigv4"},
			"", "", "SLIPSTREAM_OTLP_TRACES_AUTH"},
		{"a scope that cannot be told switches the signal off", map[string]string{
			"SLIPSTREAM_OTLP_TRACES_ENDPOINT": "https://otlp.example.com/v1/traces", "SLIPSTREAM_OTLP_AUTH": "sigv4", "AWS_REGION": "us-east-2"},
			"", "", "SLIPSTREAM_OTLP_AUTH"},
		{"an unknown value switches the signal off", map[string]string{"SLIPSTREAM_OTLP_TRACES_AUTH": "iam"}, "", "", "SLIPSTREAM_OTLP_TRACES_AUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(func(k string) string { return tt.env[k] })
			tr := c.OTLP.Traces
			if tr.Off != tt.off {
				t.Fatalf("traces off by %q, want %q (problems %q)", tr.Off, tt.off, c.Problems)
			}
			if tt.off != "" && len(c.Problems) == 0 {
				t.Error("no Problem line")
			}
			wantAuth := ""
			if tt.service != "" {
				wantAuth = AuthSigV4
			}
			if tr.Auth != wantAuth || tr.SigV4Service != tt.service || tr.SigV4Region != tt.region {
				t.Errorf("auth %q service %q region %q, want %q %q %q", tr.Auth, tr.SigV4Service, tr.SigV4Region, wantAuth, tt.service, tt.region)
			}
		})
	}
}
