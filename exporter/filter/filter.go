package filter

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// Filter decides what leaves the function. Its methods are safe for
// concurrent use.
type Filter struct {
	red      *redactor // nil when nothing is redacted
	minSev   log.Severity
	allow    []string
	deny     []string
	sample   sampler
	lmi      bool // Lambda Managed Instances: no "current" invocation
	keys     bool // the built-in set is on: follow private key blocks across lines
	disabled bool // nothing to do at all

	// mu guards src; Events holds it for a whole batch.
	mu  sync.Mutex
	src [2]lineState // function, extension
	// dmu guards decisions, order and current: held briefly, so that
	// Invoke (on the invocation's path) never waits behind a batch.
	dmu sync.Mutex
	// decisions remembers the sampling decision of recent invocations by
	// request ID (bounded by maxDecisions, oldest forgotten first).
	decisions map[string]bool
	order     []string
	current   string // request ID of the latest platform.start

	stats Stats
}

// Stats counts what the filter removed. Read it with Filter.Totals.
type Stats struct {
	// BelowSeverity: log lines dropped by SLIPSTREAM_LOGS_MIN_SEVERITY.
	BelowSeverity atomic.Int64
	// Unsampled: log lines (and OTLP records and spans) of invocations
	// SLIPSTREAM_TRACE_SAMPLE_RATIO did not keep.
	Unsampled atomic.Int64
	// Redacted: records in which at least one value was redacted or a
	// field removed.
	Redacted atomic.Int64
}

// Totals is a snapshot of Stats.
type Totals struct {
	BelowSeverity, Unsampled, Redacted int64
}

// lineState follows one stream of text lines (function or extension):
// whether the lines continuing the last record are dropped, or are the
// inside of a private key block.
type lineState struct {
	dropping bool
	inKey    int // lines seen inside a private key block; 0 = outside
}

// maxDecisions bounds the sampling decisions remembered; maxKeyLines
// bounds the lines taken for the inside of a private key block.
const (
	maxDecisions = 1024
	maxKeyLines  = 256
)

// New builds the filter of cfg's LogsMinSeverity, RedactDefaults,
// RedactPatterns, LogFieldsAllow, LogFieldsDeny and TraceSampleRatio.
// config.Load has validated them; an error here means cfg was built by
// hand with an invalid value.
func New(cfg *config.Config) (*Filter, error) {
	f := &Filter{
		minSev:    minSeverity(cfg.LogsMinSeverity),
		allow:     cfg.LogFieldsAllow,
		deny:      cfg.LogFieldsDeny,
		sample:    sampler{all: true},
		lmi:       cfg.ManagedInstances,
		keys:      cfg.RedactDefaults,
		decisions: map[string]bool{},
	}
	if cfg.TraceSampleRatio != nil {
		f.sample = newSampler(*cfg.TraceSampleRatio)
	}
	red, err := newRedactor(cfg.RedactDefaults, cfg.RedactPatterns)
	if err != nil {
		return nil, fmt.Errorf("filter: SLIPSTREAM_REDACT_PATTERNS: %w", err)
	}
	if red.active() {
		f.red = red
	}
	for _, p := range append(append([]string(nil), f.allow...), f.deny...) {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("filter: log field pattern %q: %w", p, err)
		}
	}
	f.disabled = f.red == nil && f.minSev == log.SeverityUndefined && len(f.allow) == 0 && len(f.deny) == 0 && f.sample.all
	return f, nil
}

// minSeverity maps SLIPSTREAM_LOGS_MIN_SEVERITY to the lowest severity of
// its range.
func minSeverity(s string) log.Severity {
	switch s {
	case "trace":
		return log.SeverityTrace1
	case "debug":
		return log.SeverityDebug1
	case "info":
		return log.SeverityInfo1
	case "warn":
		return log.SeverityWarn1
	case "error":
		return log.SeverityError1
	case "fatal":
		return log.SeverityFatal1
	}
	return log.SeverityUndefined
}

// Totals returns what the filter has removed so far.
func (f *Filter) Totals() Totals {
	return Totals{BelowSeverity: f.stats.BelowSeverity.Load(), Unsampled: f.stats.Unsampled.Load(), Redacted: f.stats.Redacted.Load()}
}

// Invoke notes an INVOKE's trace header, so that the invocation's log
// lines get the decision its spans get (the mapper prefers the telemetry
// tracing of platform.start, then the INVOKE header).
func (f *Filter) Invoke(requestID, traceHeader string) {
	if f.sample.all || requestID == "" {
		return
	}
	id, ok := signals.XRayTraceID(traceHeader)
	keep := f.sample.keep(id, ok, requestID)
	f.dmu.Lock()
	f.remember(requestID, keep, true)
	f.dmu.Unlock()
}

// KeepInvocation is the sampling decision of an invocation
// (signals.Sampler): from its X-Ray trace ID, or its request ID when it
// has none.
func (f *Filter) KeepInvocation(traceID trace.TraceID, hasTrace bool, requestID string) bool {
	return f.sample.keep(traceID, hasTrace, requestID)
}

// KeepTrace is the sampling decision of a trace ID (the function's own
// spans and log records).
func (f *Filter) KeepTrace(traceID [16]byte) bool {
	return f.sample.keep(traceID, true, "")
}

// remember stores a decision; replace says whether it overrides one
// already stored. Called with dmu held.
func (f *Filter) remember(requestID string, keep, replace bool) {
	if _, ok := f.decisions[requestID]; ok {
		if replace {
			f.decisions[requestID] = keep
		}
		return
	}
	if len(f.order) >= maxDecisions {
		delete(f.decisions, f.order[0])
		f.order = f.order[1:]
	}
	f.decisions[requestID] = keep
	f.order = append(f.order, requestID)
}

// keepRequest returns the decision of a request ID, the latest
// platform.start's when requestID is empty (not under Managed Instances,
// where invocations overlap): true when there is none.
func (f *Filter) keepRequest(requestID string) bool {
	f.dmu.Lock()
	defer f.dmu.Unlock()
	if requestID == "" && !f.lmi {
		requestID = f.current
	}
	if requestID == "" {
		return true
	}
	if keep, ok := f.decisions[requestID]; ok {
		return keep
	}
	return f.sample.keep(trace.TraceID{}, false, requestID)
}

// Events filters a batch of Telemetry API events in place and returns the
// events kept (a prefix of evs' storage). It is the pipeline's pre-queue
// step: what it removes is never queued, spilled or sent.
//
// Function and extension log lines below SLIPSTREAM_LOGS_MIN_SEVERITY,
// and those of invocations the sampler drops, are removed (with the
// continuation lines of a removed line). Every other log line is redacted:
// its text, its JSON message and fields (a field whose name says it is a
// secret loses its value; the allow and deny lists remove fields). Events
// kept raw (unknown types, records that did not decode) are redacted as
// text. Platform events are never removed: they carry the metrics.
func (f *Filter) Events(evs []telemetry.Event) []telemetry.Event {
	if f == nil || f.disabled {
		return evs
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := evs[:0]
	for _, ev := range evs {
		if f.event(&ev) {
			out = append(out, ev)
		}
	}
	clear(evs[len(out):]) // do not keep what was removed reachable
	return out
}

// event filters one event; false drops it. Called with mu held.
func (f *Filter) event(ev *telemetry.Event) bool {
	switch r := ev.Record.(type) {
	case *telemetry.Log:
		if r == nil {
			return true
		}
		src := &f.src[0]
		if ev.Type == telemetry.TypeExtensionLog {
			src = &f.src[1]
		}
		return f.logLine(ev, r, src)
	case *telemetry.Start:
		if r != nil && !f.sample.all {
			f.started(r)
		}
		return true
	case nil:
		if len(ev.Raw) > 0 && f.red != nil {
			if raw, ok := f.rawJSON(ev.Raw); ok {
				ev.Raw = raw
				f.stats.Redacted.Add(1)
			}
		}
	}
	return true
}

// started notes a platform.start: its tracing decides (the mapper
// prefers it to the INVOKE header), else the INVOKE's or the request ID's.
func (f *Filter) started(r *telemetry.Start) {
	var id trace.TraceID
	ok := false
	if r.Tracing != nil && r.Tracing.Value != "" {
		id, ok = signals.XRayTraceID(r.Tracing.Value)
	}
	keep := f.sample.keep(id, ok, r.RequestID)
	f.dmu.Lock()
	defer f.dmu.Unlock()
	f.remember(r.RequestID, keep, ok)
	f.current = r.RequestID
}

// logLine filters one function or extension log line. Called with mu held.
func (f *Filter) logLine(ev *telemetry.Event, r *telemetry.Log, src *lineState) bool {
	if !r.JSON {
		if src.inKey > 0 {
			// The inside of a private key block whose BEGIN line was
			// redacted: dropped up to and including its END line.
			src.inKey++
			if strings.Contains(r.Text, "PRIVATE KEY-----") && strings.Contains(r.Text, "-----END") || src.inKey > maxKeyLines {
				src.inKey = 0
			}
			f.stats.Redacted.Add(1)
			return false
		}
		if src.dropping && signals.ContinuesRecord(r.Text) {
			return false
		}
	}
	src.dropping = false
	if f.minSev != log.SeverityUndefined || !f.sample.all {
		sev, reqID := signals.LogSeverity(r)
		if sev != log.SeverityUndefined && sev < f.minSev {
			src.dropping = !r.JSON
			f.stats.BelowSeverity.Add(1)
			return false
		}
		if !f.sample.all {
			if !f.keepRequest(reqID) {
				src.dropping = !r.JSON
				f.stats.Unsampled.Add(1)
				return false
			}
		}
	}
	// A BEGIN line without its END (text logs come line by line): the
	// built-in rule redacts it to its end, and the key's lines follow.
	opens := !r.JSON && f.keys && startsKeyBlock(r.Text)
	if f.redactLog(r) {
		f.stats.Redacted.Add(1)
	}
	if opens {
		src.inKey = 1
	}
	return true
}

// startsKeyBlock reports whether a (redacted) line opened a private key
// block it did not close: the lines up to its END line are the key.
func startsKeyBlock(line string) bool {
	if !strings.Contains(line, "PRIVATE KEY-----") {
		return false
	}
	i := strings.LastIndex(line, "-----BEGIN")
	if i < 0 {
		return false
	}
	return strings.Contains(line[i:], "PRIVATE KEY-----") && !strings.Contains(line[i:], "-----END")
}

// redactLog redacts a log record in place and applies the field lists;
// it reports whether anything changed.
func (f *Filter) redactLog(r *telemetry.Log) bool {
	changed := false
	if !r.JSON {
		if f.red != nil {
			r.Text, changed = f.red.text(r.Text)
		}
		return changed
	}
	// A JSON line: the mapper reads Message and Fields. Text (the line as
	// written, when it came as a string) would be a second, unredacted
	// copy in the spill file.
	if r.Text != "" {
		r.Text = ""
	}
	if f.red != nil {
		var ok bool
		if r.Message, ok = f.red.text(r.Message); ok {
			changed = true
		}
	}
	for k, raw := range r.Fields {
		if !f.fieldKept(k) {
			delete(r.Fields, k)
			changed = true
			continue
		}
		if f.red == nil {
			continue
		}
		if sensitiveKey(k) {
			if string(raw) != `"`+Redacted+`"` && string(raw) != "null" {
				r.Fields[k] = json.RawMessage(`"` + Redacted + `"`)
				changed = true
			}
			continue
		}
		if nv, ok := f.red.jsonValue(raw); ok {
			r.Fields[k] = nv
			changed = true
		}
	}
	return changed
}

// fieldKept applies SLIPSTREAM_LOG_FIELDS_ALLOW and _DENY to a field name.
func (f *Filter) fieldKept(k string) bool {
	if len(f.allow) > 0 && !matchAny(f.allow, k) {
		return false
	}
	return !matchAny(f.deny, k)
}

func matchAny(patterns []string, k string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, k); ok {
			return true
		}
	}
	return false
}

// rawJSON redacts a raw JSON record as text; a result that is no longer
// JSON is replaced whole.
func (f *Filter) rawJSON(raw json.RawMessage) (json.RawMessage, bool) {
	s := string(raw)
	if !f.red.suspect(s) && !hasSensitiveKey(raw) {
		return raw, false
	}
	if nv, ok := f.red.jsonValue(raw); ok {
		return nv, true
	}
	return raw, false
}

// sampler is OpenTelemetry's TraceIdRatioBased decision
// (https://opentelemetry.io/docs/specs/otel/trace/sdk/#traceidratiobased):
// keep a trace when the last 8 bytes of its ID, shifted right by one, are
// below ratio × 2^63, as the Go SDK computes it.
type sampler struct {
	all   bool
	bound uint64
}

func newSampler(ratio float64) sampler {
	if ratio >= 1 {
		return sampler{all: true}
	}
	if ratio <= 0 {
		return sampler{}
	}
	return sampler{bound: uint64(ratio * (1 << 63))}
}

// keep decides for a trace ID, or, when there is none, for an ID derived
// from the request ID (a UUID's 16 bytes; a hash for anything else).
func (s sampler) keep(id trace.TraceID, hasTrace bool, requestID string) bool {
	if s.all {
		return true
	}
	if !hasTrace {
		id = requestTraceID(requestID)
	}
	return binary.BigEndian.Uint64(id[8:16])>>1 < s.bound
}

func requestTraceID(requestID string) trace.TraceID {
	var id trace.TraceID
	n := 0
	for i := 0; i < len(requestID); i++ {
		c := requestID[i]
		if c == '-' {
			continue
		}
		v, ok := unhex(c)
		if !ok || n >= 32 {
			n = -1
			break
		}
		id[n/2] |= v << (4 * (1 - n%2))
		n++
	}
	if n != 32 {
		sum := sha256.Sum256([]byte(requestID))
		copy(id[:], sum[:16])
	}
	return id
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
