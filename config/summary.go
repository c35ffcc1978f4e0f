package config

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// LogValue makes a Config one slog group that says, in one line, what the
// agent will do: whether it exports, from which variables (Source), for
// each signal its endpoint and protocol and header names, or the variable
// that switched it off, the flush mode, the buffer size and how many
// settings were not honoured. It holds no secret: endpoints lose their
// user info and query, and header values never appear.
func (c *Config) LogValue() slog.Value {
	export := "on"
	if !c.ExportEnabled {
		export = "off"
	}
	attrs := []slog.Attr{slog.String("export", export)}
	if c.Disabled {
		attrs = append(attrs, slog.String("off_by", "SLIPSTREAM_DISABLED"))
	}
	attrs = append(attrs,
		slog.String("source", c.OTLP.Source),
		c.OTLP.Traces.attr("traces"),
		c.OTLP.Metrics.attr("metrics"),
		c.OTLP.Logs.attr("logs"),
		slog.String("flush", c.flushString()),
		slog.Int64("buffer_max_bytes", c.BufferMaxBytes),
		slog.String("telemetry_types", strings.Join(c.TelemetryTypes, ",")),
		slog.String("service_name", c.ServiceName),
		slog.Int("invalid_settings", len(c.Problems)),
		slog.Int("warnings", len(c.Warnings)),
		slog.String("filter", c.filterString()),
	)
	return slog.GroupValue(attrs...)
}

// flushString is the SLIPSTREAM_FLUSH value in effect.
func (c *Config) flushString() string {
	if c.Flush == FlushPeriodic {
		return string(c.Flush) + "," + fmtDuration(c.FlushPeriod)
	}
	return string(cmp.Or(c.Flush, FlushAdaptive))
}

// attr is one signal's part of LogValue.
func (s Signal) attr(name string) slog.Attr {
	if !s.Enabled() {
		return slog.Group(name, slog.String("off_by", s.Off))
	}
	headers := make([]string, 0, len(s.Headers))
	for k := range s.Headers {
		headers = append(headers, k)
	}
	slices.Sort(headers)
	attrs := []any{
		slog.String("endpoint", s.RedactedEndpoint()),
		slog.String("protocol", s.Protocol),
		slog.String("headers", strings.Join(headers, ",")),
	}
	if s.Auth != "" {
		attrs = append(attrs, slog.String("auth", s.Auth+" "+s.SigV4Service+"/"+s.SigV4Region))
	}
	return slog.Group(name, attrs...)
}

// RedactedEndpoint is Endpoint safe to log: user info and query, which
// may hold credentials, are replaced by REDACTED.
func (s Signal) RedactedEndpoint() string {
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		return "(not shown: unparseable)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// filterString says in one value what the pre-queue filter does (never
// the patterns themselves).
func (c *Config) filterString() string {
	var parts []string
	if c.RedactDefaults {
		parts = append(parts, "redact=defaults")
	}
	if n := len(c.RedactPatterns); n > 0 {
		parts = append(parts, fmt.Sprintf("patterns=%d", n))
	}
	if c.LogsMinSeverity != "" {
		parts = append(parts, "min_severity="+c.LogsMinSeverity)
	}
	if len(c.LogFieldsAllow) > 0 {
		parts = append(parts, "fields_allow="+strings.Join(c.LogFieldsAllow, " "))
	}
	if len(c.LogFieldsDeny) > 0 {
		parts = append(parts, "fields_deny="+strings.Join(c.LogFieldsDeny, " "))
	}
	if c.TraceSampleRatio != nil {
		parts = append(parts, "sample_ratio="+strconv.FormatFloat(*c.TraceSampleRatio, 'g', -1, 64))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}
