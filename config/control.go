package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// What leaves the function: the settings of the pre-queue step (package
// exporter/filter). A wrong guess here could export what the user asked
// to keep in, so an unusable value never falls back to the default: it
// switches off the signals it applies to (logs; traces too for the sample
// ratio), with one Problem.

// Log severities accepted by SLIPSTREAM_LOGS_MIN_SEVERITY, lowest first
// (the OpenTelemetry log data model's severity ranges).
var minSeverities = []string{"trace", "debug", "info", "warn", "error", "fatal"}

// Limits on SLIPSTREAM_REDACT_PATTERNS: every pattern runs on every log
// line.
const (
	maxRedactPatterns  = 32
	maxRedactPatternSz = 1024
)

// logsOffBySetting is the consequence of an unusable filter setting.
const logsOffBySetting = "logs export off (a filter setting never falls back to exporting more)"

// control reads the filter settings. It runs after otlp, so that it can
// switch signals off.
func (l *loader) control() {
	c := l.cfg
	c.LogsMinSeverity = l.minSeverity("SLIPSTREAM_LOGS_MIN_SEVERITY")
	c.RedactDefaults = l.redactDefaults("SLIPSTREAM_REDACT_DEFAULTS")
	c.RedactPatterns = l.redactPatterns("SLIPSTREAM_REDACT_PATTERNS")
	c.LogFieldsAllow = l.fieldList("SLIPSTREAM_LOG_FIELDS_ALLOW")
	c.LogFieldsDeny = l.fieldList("SLIPSTREAM_LOG_FIELDS_DENY")
	c.TraceSampleRatio = l.sampleRatio("SLIPSTREAM_TRACE_SAMPLE_RATIO")
	l.proxy()
	l.auth()
	l.secretRefs()
}

// switchOff turns sig off because of name, unless something else already did.
func (l *loader) switchOff(s *Signal, sig, name string) {
	if s.Off == "" {
		s.Off = name
		s.forget(sig)
	}
}

func (l *loader) logsOff(name, value, accepted string) {
	l.problem(name, value, accepted, logsOffBySetting)
	l.switchOff(&l.cfg.OTLP.Logs, "logs", name)
}

func (l *loader) minSeverity(name string) string {
	v := l.get(name)
	if v == "" {
		return ""
	}
	lv := strings.ToLower(v)
	if lv == "warning" {
		lv = "warn"
	}
	if !contains(minSeverities, lv) {
		l.logsOff(name, v, strings.Join(minSeverities, "|"))
		return ""
	}
	return lv
}

// redactDefaults is a boolean whose invalid value keeps the built-in set
// and switches logs off: the user meant to change what is redacted, and
// neither guess is safe.
func (l *loader) redactDefaults(name string) bool {
	v := l.get(name)
	if v == "" {
		return true
	}
	b, ok := parseBool(v)
	if !ok {
		l.logsOff(name, v, "true|false")
		return true
	}
	return b
}

// redactPatterns reads a JSON array of Go regular expressions, or one
// regular expression when the value is not a JSON array of strings.
func (l *loader) redactPatterns(name string) []string {
	v := l.get(name)
	if v == "" {
		return nil
	}
	var list []string
	if json.Unmarshal([]byte(v), &list) != nil {
		list = []string{v}
	}
	accepted := fmt.Sprintf("a Go regular expression, or a JSON array of up to %d of them, each up to %d bytes", maxRedactPatterns, maxRedactPatternSz)
	if len(list) == 0 || len(list) > maxRedactPatterns {
		l.logsOff(name, v, accepted)
		return nil
	}
	for i, p := range list {
		if p == "" || len(p) > maxRedactPatternSz {
			l.logsOff(name, v, accepted+fmt.Sprintf(" (pattern %d is empty or too long)", i+1))
			return nil
		}
		if _, err := regexp.Compile(p); err != nil {
			l.logsOff(name, v, accepted+fmt.Sprintf(" (pattern %d: %s)", i+1, regexpReason(err)))
			return nil
		}
	}
	return list
}

// regexpReason is the reason of a compile error without the pattern,
// which the Problem line already quotes (clipped).
func regexpReason(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code)
	}
	return err.Error()
}

// fieldList reads a comma list of JSON log field names; each may hold the
// wildcards of path.Match (* ? [..]).
func (l *loader) fieldList(name string) []string {
	v := l.get(name)
	if v == "" {
		return nil
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if _, err := path.Match(item, ""); err != nil {
			out = nil
			break
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		l.logsOff(name, v, "a comma list of field names, * and ? allowed")
		return nil
	}
	return out
}

// sampleRatio reads a ratio 0..1 (nil when unset: everything is kept).
// An invalid value switches traces and logs off: falling back to 1 could
// multiply the volume a user meant to cut.
func (l *loader) sampleRatio(name string) *float64 {
	v := l.get(name)
	if v == "" {
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 1) {
		l.problem(name, v, "a decimal from 0 to 1", "traces and logs export off (a filter setting never falls back to exporting more)")
		l.switchOff(&l.cfg.OTLP.Traces, "traces", name)
		l.switchOff(&l.cfg.OTLP.Logs, "logs", name)
		return nil
	}
	return &f
}
