package config

import (
	"strings"
	"testing"
)

func TestFilterSettings(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		logsOff      string // variable that switched logs off; "" = on
		tracesOff    string
		check        func(t *testing.T, c *Config)
		problemsWant int
	}{
		{name: "valid settings are kept", env: map[string]string{
			"SLIPSTREAM_LOGS_MIN_SEVERITY":  "WARNING",
			"SLIPSTREAM_REDACT_PATTERNS":    `["order-[0-9]+","(?i)ssn=(?P<value>\\d+)"]`,
			"SLIPSTREAM_LOG_FIELDS_ALLOW":   "user_*, order",
			"SLIPSTREAM_LOG_FIELDS_DENY":    "email",
			"SLIPSTREAM_TRACE_SAMPLE_RATIO": "0.25",
			"SLIPSTREAM_REDACT_DEFAULTS":    "false",
		}, check: func(t *testing.T, c *Config) {
			if c.LogsMinSeverity != "warn" || len(c.RedactPatterns) != 2 || c.RedactDefaults ||
				strings.Join(c.LogFieldsAllow, ",") != "user_*,order" || c.LogFieldsDeny[0] != "email" ||
				c.TraceSampleRatio == nil || *c.TraceSampleRatio != 0.25 {
				t.Errorf("config = %+v", c)
			}
		}},
		{name: "one pattern that is not a JSON array is one regular expression", env: map[string]string{"SLIPSTREAM_REDACT_PATTERNS": `[0-9]{16}`},
			check: func(t *testing.T, c *Config) {
				if len(c.RedactPatterns) != 1 || c.RedactPatterns[0] != `[0-9]{16}` {
					t.Errorf("RedactPatterns = %q", c.RedactPatterns)
				}
			}},
		{name: "an invalid severity switches logs off", env: map[string]string{"SLIPSTREAM_LOGS_MIN_SEVERITY": "loud"}, logsOff: "SLIPSTREAM_LOGS_MIN_SEVERITY", problemsWant: 1},
		{name: "a pattern that does not compile switches logs off", env: map[string]string{"SLIPSTREAM_REDACT_PATTERNS": `(unclosed`}, logsOff: "SLIPSTREAM_REDACT_PATTERNS", problemsWant: 1},
		{name: "an invalid defaults switch switches logs off", env: map[string]string{"SLIPSTREAM_REDACT_DEFAULTS": "maybe"}, logsOff: "SLIPSTREAM_REDACT_DEFAULTS", problemsWant: 1},
		{name: "a bad field pattern switches logs off", env: map[string]string{"SLIPSTREAM_LOG_FIELDS_DENY": "a,[b"}, logsOff: "SLIPSTREAM_LOG_FIELDS_DENY", problemsWant: 1},
		{name: "a ratio above 1 switches traces and logs off", env: map[string]string{"SLIPSTREAM_TRACE_SAMPLE_RATIO": "1.5"}, logsOff: "SLIPSTREAM_TRACE_SAMPLE_RATIO", tracesOff: "SLIPSTREAM_TRACE_SAMPLE_RATIO", problemsWant: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(func(k string) string { return tt.env[k] })
			if len(c.Problems) != tt.problemsWant {
				t.Errorf("Problems = %q, want %d", c.Problems, tt.problemsWant)
			}
			if c.OTLP.Logs.Off != tt.logsOff || c.OTLP.Traces.Off != tt.tracesOff {
				t.Errorf("logs off by %q, traces off by %q; want %q, %q", c.OTLP.Logs.Off, c.OTLP.Traces.Off, tt.logsOff, tt.tracesOff)
			}
			if !c.OTLP.Metrics.Enabled() || !c.ExportEnabled {
				t.Error("metrics switched off by a filter setting")
			}
			for _, p := range c.Problems {
				if !strings.Contains(p, "export off") {
					t.Errorf("problem %q does not say export is off", p)
				}
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestProxySettings(t *testing.T) {
	tests := []struct {
		name, value, want string
		off               bool
	}{
		{"a proxy URL is kept", "http://proxy.internal:3128", "http://proxy.internal:3128", false},
		{"none disables proxying", "NONE", ProxyNone, false},
		{"a value that is not a URL switches every signal off", "proxy:3128", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Load(func(k string) string {
				return map[string]string{"SLIPSTREAM_HTTPS_PROXY": tt.value, "SLIPSTREAM_NO_PROXY": ".internal"}[k]
			})
			if c.OTLP.HTTPSProxy != tt.want || c.OTLP.NoProxy != ".internal" {
				t.Errorf("HTTPSProxy = %q, NoProxy = %q", c.OTLP.HTTPSProxy, c.OTLP.NoProxy)
			}
			if c.ExportEnabled == tt.off || (len(c.Problems) == 1) != tt.off {
				t.Errorf("ExportEnabled = %v, Problems = %q", c.ExportEnabled, c.Problems)
			}
		})
	}
}

func TestStartLineSaysWhatTheFilterDoes(t *testing.T) {
	c := Load(func(k string) string {
		return map[string]string{"SLIPSTREAM_LOGS_MIN_SEVERITY": "warn", "SLIPSTREAM_REDACT_PATTERNS": `secret-[0-9]+`,
			"SLIPSTREAM_TRACE_SAMPLE_RATIO": "0.25", "SLIPSTREAM_OTLP_TRACES_ENDPOINT": "https://xray.eu-west-1.amazonaws.com/v1/traces",
			"SLIPSTREAM_OTLP_TRACES_AUTH": "sigv4"}[k]
	})
	got := c.LogValue().String()
	for _, want := range []string{"filter=redact=defaults,patterns=1,min_severity=warn,sample_ratio=0.25", "auth=sigv4 xray/eu-west-1"} {
		if !strings.Contains(got, want) {
			t.Errorf("start line %s lacks %q", got, want)
		}
	}
	if strings.Contains(got, "secret-[0-9]") {
		t.Errorf("start line shows a pattern: %s", got)
	}
}
