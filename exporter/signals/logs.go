package signals

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// Bounds on what one log record may carry.
const (
	maxLogFields     = 32        // JSON fields kept as attributes (sorted by key)
	maxFieldValueLen = 1024      // bytes per attribute value
	maxRecordLines   = 1000      // lines joined into one multi-line record
	maxRecordBytes   = 64 * 1024 // bytes of one multi-line record
)

// Attribute keys on log records.
const (
	attrInvocationID  = "faas.invocation_id"
	attrTelemetryType = "slipstream.telemetry.type"
)

// pendingLog is a text line held until we know whether the next lines
// continue it (a stack trace, a Go panic).
type pendingLog struct {
	active  bool
	first   string
	multi   bool   // a continuation arrived: the record is buf
	buf     []byte // joined lines (reused between records)
	lines   int
	goStack bool
	t       time.Time
	sev     log.Severity
	sevText string
	reqID   string
	tenant  string // the invocation's tenant ID, if any
	ctx     context.Context
	typ     telemetry.Type
}

// ensureLogger returns the logger, (re)building the LoggerProvider when the
// resource changed. The provider is never shut down: the processor belongs
// to the caller.
func (m *Mapper) ensureLogger() log.Logger {
	if m.logs == nil {
		return nil
	}
	if m.logger == nil || m.loggerOf != m.res {
		lp := sdklog.NewLoggerProvider(sdklog.WithResource(m.res), sdklog.WithProcessor(m.logs))
		m.logger = lp.Logger(ScopeName, log.WithInstrumentationVersion(m.ri.version))
		m.loggerOf = m.res
	}
	return m.logger
}

// invocationFor finds the invocation a line belongs to: by request ID, else
// (not under Managed Instances) the one running.
func (m *Mapper) invocationFor(reqID string) *invocation {
	if reqID != "" {
		return m.open[reqID]
	}
	if !m.lmi {
		return m.current
	}
	return nil
}

func (m *Mapper) contextOf(inv *invocation) context.Context {
	if inv == nil {
		return context.Background()
	}
	if inv.logCtx == nil {
		m.ensureSpanContext(inv)
		inv.logCtx = trace.ContextWithSpanContext(context.Background(), inv.sc)
	}
	return inv.logCtx
}

func (m *Mapper) consumeLog(ev telemetry.Event, r *telemetry.Log, src int) {
	p := &m.pendingLines[src]
	if r.JSON {
		m.flushPending(p)
		m.emitJSON(ev, r)
		return
	}
	line := r.Text
	size := len(p.first)
	if p.multi {
		size = len(p.buf)
	}
	if p.active && isContinuation(line, p) && p.lines < maxRecordLines && size+1+len(line) <= maxRecordBytes {
		if !p.multi {
			p.buf = append(p.buf[:0], p.first...)
			p.multi = true
		}
		p.buf = append(p.buf, '\n')
		p.buf = append(p.buf, line...)
		p.lines++
		if strings.HasPrefix(line, "goroutine ") {
			p.goStack = true
		}
		return
	}
	m.flushPending(p)
	sev, sevText, reqID := parseTextSeverity(line)
	if reqID == "" {
		reqID = m.knownRequestID(line)
	}
	inv := m.invocationFor(reqID)
	tenant := ""
	if inv != nil {
		reqID, tenant = inv.id, inv.tenantID
	}
	*p = pendingLog{
		active: true, first: line, buf: p.buf[:0], lines: 1,
		goStack: sevText == "PANIC",
		t:       ev.Time, sev: sev, sevText: sevText, reqID: reqID, tenant: tenant,
		ctx: m.contextOf(inv), typ: ev.Type,
	}
}

// isContinuation reports whether a line continues the pending record:
// indented lines (Java "\tat", Node "    at", Python "  File"), empty
// lines, Go's "goroutine N [...]:", "created by", "[signal ...", Java's
// "Caused by:", Python's "Traceback (most recent call last):", Go's
// "runtime stack:", a closing "}" or "]" and, inside a Go stack, function
// lines such as "main.handler(...)".
func isContinuation(line string, p *pendingLog) bool {
	if line == "" || line[0] == ' ' || line[0] == '\t' {
		return true
	}
	for _, pre := range continuationPrefixes {
		if strings.HasPrefix(line, pre) {
			return true
		}
	}
	if line == "}" || line == "]" {
		return true // the end of a pretty-printed JSON object (Ruby's unhandled error)
	}
	if p.goStack && isGoFrame(line) {
		return true
	}
	return false
}

var continuationPrefixes = [...]string{
	"goroutine ", "created by ", "[signal ", "Caused by: ", "Traceback (most recent call last)",
	"During handling of the above exception", "The above exception was the direct cause", "... ",
	"runtime stack:",
}

// isGoFrame matches a Go stack function line: "pkg.Func(args)" with no
// space before the first '('.
func isGoFrame(line string) bool {
	open := strings.IndexByte(line, '(')
	if open <= 0 || line[len(line)-1] != ')' {
		return false
	}
	name := line[:open]
	return !strings.ContainsAny(name, " \t") && (strings.IndexByte(name, '.') >= 0 || name == "panic")
}

func (m *Mapper) flushPending(p *pendingLog) {
	if !p.active {
		return
	}
	body := strings.TrimRight(p.first, "\n")
	if p.multi {
		body = strings.TrimRight(string(p.buf), "\n")
	}
	exc := textException(body)
	sev := p.sev
	if sev == log.SeverityUndefined && exc.found() {
		sev = log.SeverityError // an unhandled error printed without a level (Java)
	}
	var r log.Record
	r.SetTimestamp(p.t)
	r.SetObservedTimestamp(m.now())
	r.SetBody(attribute.StringValue(body))
	r.SetSeverity(sev)
	r.SetSeverityText(p.sevText)
	r.AddAttributes(attribute.String(attrTelemetryType, string(p.typ)))
	if p.reqID != "" {
		r.AddAttributes(attribute.String(attrInvocationID, p.reqID))
	}
	if p.tenant != "" {
		r.AddAttributes(attrTenantID.String(p.tenant))
	}
	exc.addTo(&r)
	m.checkOOM(p.typ, p.reqID, sev, body, &exc)
	ctx := p.ctx
	p.active, p.multi, p.first, p.ctx = false, false, "", nil
	if cap(p.buf) > maxRecordBytes {
		p.buf = nil // do not keep a large buffer around
	}
	if l := m.ensureLogger(); l != nil {
		l.Emit(ctx, r)
	}
}

// emitJSON emits a JSON log line: body = message, time = its timestamp,
// severity = its level, an error (errorType, errorMessage, stackTrace, or
// a message that is an error object) = the exception attributes, other
// fields = attributes.
func (m *Mapper) emitJSON(ev telemetry.Event, rec *telemetry.Log) {
	l := m.ensureLogger()
	if l == nil {
		return
	}
	msg, ts, level, reqID := rec.Message, rec.Timestamp, rec.Level, rec.RequestID
	// Fields read here rather than kept as attributes.
	var skip [8]string
	nskip := 0
	use := func(k string) (json.RawMessage, bool) {
		raw, ok := rec.Fields[k]
		if ok {
			skip[nskip] = k
			nskip++
		}
		return raw, ok
	}
	var exc exception
	if msg == "" {
		if raw, ok := rec.Fields["message"]; ok && len(raw) > 0 && raw[0] != 'n' {
			// Node.js logs an Error as an object message; any other
			// object, array or number is kept as its JSON text.
			use("message")
			if e, isErr := jsonErrorObject(raw); isErr {
				exc = e
			} else {
				msg = jsonMessage(raw)
			}
		} else if raw, ok := use("msg"); ok { // log/slog
			msg = jsonString(raw)
		}
	}
	if ts.IsZero() {
		if raw, ok := rec.Fields["time"]; ok {
			if t, err := time.Parse(time.RFC3339Nano, jsonString(raw)); err == nil {
				ts = t
				use("time")
			}
		}
	}
	if ts.IsZero() {
		// Python's runtime writes its unhandled errors' timestamp in UTC
		// without a zone ("2024-01-01T00:00:00").
		if raw, ok := rec.Fields["timestamp"]; ok {
			if t, err := time.Parse("2006-01-02T15:04:05", jsonString(raw)); err == nil {
				ts = t
				use("timestamp")
			}
		}
	}
	if ts.IsZero() {
		ts = ev.Time
	}
	if level == "" {
		// Python's runtime before awslambdaric 4.0.4 wrote unhandled
		// errors with "log_level".
		if raw, ok := rec.Fields["log_level"]; ok && len(raw) > 0 && raw[0] == '"' {
			use("log_level")
			level = jsonString(raw)
		}
	}
	if reqID == "" {
		// Java's LambdaLogger and log4j2 layout write "AWSRequestId".
		if raw, ok := rec.Fields["AWSRequestId"]; ok && len(raw) > 0 && raw[0] == '"' {
			use("AWSRequestId")
			reqID = jsonString(raw)
		}
	}
	if !exc.found() {
		if _, ok := rec.Fields["errorType"]; ok {
			exc = topLevelError(rec.Fields)
		} else if _, ok := rec.Fields["errorMessage"]; ok {
			exc = topLevelError(rec.Fields)
		}
		if exc.found() {
			use("errorType")
			use("errorMessage")
			use("stackTrace")
		} else if strings.IndexByte(msg, '\n') >= 0 {
			exc = textException(msg) // Java's and .NET's unhandled errors: the stack in the message
		}
	}
	if msg == "" && exc.found() {
		msg = exc.summary()
	}
	sev := levelSeverity(level)
	if sev == log.SeverityUndefined && (exc.found() || strings.HasPrefix(msg, timedOut)) {
		sev = log.SeverityError
	}
	inv := m.invocationFor(reqID)
	var r log.Record
	r.SetTimestamp(ts)
	r.SetObservedTimestamp(m.now())
	r.SetBody(attribute.StringValue(msg))
	r.SetSeverity(sev)
	if level != "" {
		r.SetSeverityText(level)
	}
	r.AddAttributes(attribute.String(attrTelemetryType, string(ev.Type)))
	if reqID != "" {
		r.AddAttributes(attribute.String(attrInvocationID, reqID))
	} else if inv != nil {
		r.AddAttributes(attribute.String(attrInvocationID, inv.id))
	}
	if inv != nil && inv.tenantID != "" {
		r.AddAttributes(attrTenantID.String(inv.tenantID))
	}
	exc.addTo(&r)
	if len(rec.Fields) > nskip {
		keys := m.keys[:0]
	fields:
		for k := range rec.Fields {
			for _, s := range skip[:nskip] {
				if k == s {
					continue fields
				}
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > maxLogFields {
			keys = keys[:maxLogFields]
		}
		for _, k := range keys {
			if v, ok := jsonValue(rec.Fields[k]); ok {
				r.AddAttributes(attribute.KeyValue{Key: attribute.Key(k), Value: v})
			}
		}
		m.keys = keys[:0]
	}
	id := reqID
	if id == "" && inv != nil {
		id = inv.id
	}
	m.checkOOM(ev.Type, id, sev, msg, &exc)
	l.Emit(m.contextOf(inv), r)
}

// topLevelError reads errorType, errorMessage and stackTrace from the top
// level of a JSON line.
func topLevelError(fields map[string]json.RawMessage) exception {
	var f errorFields
	if raw, ok := fields["errorType"]; ok && len(raw) > 0 && raw[0] == '"' {
		f.ErrorType = jsonString(raw)
	}
	if raw, ok := fields["errorMessage"]; ok && len(raw) > 0 && raw[0] == '"' {
		f.ErrorMessage = jsonString(raw)
	}
	f.StackTrace = fields["stackTrace"]
	return f.exception()
}

// checkOOM marks the invocation a function's error record belongs to as
// out of memory when the record says so (see outOfMemory).
func (m *Mapper) checkOOM(typ telemetry.Type, reqID string, sev log.Severity, body string, e *exception) {
	if typ != telemetry.TypeFunction || reqID == "" || (sev != log.SeverityUndefined && sev < log.SeverityError) {
		return
	}
	if !outOfMemory(body, e) && !outOfMemory(e.stack, e) {
		return
	}
	if inv, ok := m.open[reqID]; ok {
		m.markOOM(inv)
	}
}

// knownRequestID returns a UUID in the line's first line that names an
// open or recently finished invocation, so a line that carries the
// request ID outside any runtime column (a custom format) still finds its
// invocation. Other UUIDs (an order number) are not request IDs.
func (m *Mapper) knownRequestID(line string) string {
	if len(m.open) == 0 && len(m.done) == 0 {
		return ""
	}
	const maxScan = 1024
	if len(line) > maxScan {
		line = line[:maxScan]
	}
	for i := 0; i+36 <= len(line); {
		c := line[i]
		if c == '\n' {
			return ""
		}
		if _, ok := fromHex(c); !ok {
			i++
			continue
		}
		j := i
		for j < len(line) && (line[j] == '-' || isHex(line[j])) {
			j++
		}
		if j-i == 36 && isRequestID(line[i:j]) {
			id := line[i:j]
			if _, ok := m.open[id]; ok || m.reported(id) {
				return id
			}
		}
		i = j
	}
	return ""
}

func isHex(c byte) bool { _, ok := fromHex(c); return ok }

// jsonString returns a JSON string's value, or the raw text for other JSON.
func jsonString(raw json.RawMessage) string {
	if len(raw) >= 2 && raw[0] == '"' {
		if inner := raw[1 : len(raw)-1]; !strings.ContainsAny(string(inner), `\"`) {
			return string(inner)
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// jsonValue converts one JSON field to a log value, bounded in size:
// strings, numbers and booleans keep their type; objects and arrays become
// their JSON text.
func jsonValue(raw json.RawMessage) (attribute.Value, bool) {
	if len(raw) == 0 {
		return attribute.Value{}, false
	}
	switch raw[0] {
	case '"':
		return attribute.StringValue(truncate(jsonString(raw))), true
	case 't', 'f':
		if b, err := strconv.ParseBool(string(raw)); err == nil {
			return attribute.BoolValue(b), true
		}
	case 'n':
		return attribute.Value{}, false // null
	case '{', '[':
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			return attribute.StringValue(truncate(b.String())), true
		}
		return attribute.StringValue(truncate(string(raw))), true
	default:
		if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return attribute.Int64Value(i), true
		}
		if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
			return attribute.Float64Value(f), true
		}
	}
	return attribute.StringValue(truncate(string(raw))), true
}

func truncate(s string) string {
	if len(s) <= maxFieldValueLen {
		return s
	}
	i := maxFieldValueLen
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// platformLog emits a platform event as a CloudWatch-like line
// (SLIPSTREAM_PLATFORM_LOGS=true).
func (m *Mapper) platformLog(ev telemetry.Event) {
	l := m.ensureLogger()
	if l == nil {
		return
	}
	sev, reqID := log.SeverityInfo, ""
	var body string
	switch r := ev.Record.(type) {
	case *telemetry.Start:
		reqID = r.RequestID
		body = fmt.Sprintf("START RequestId: %s Version: %s", r.RequestID, r.Version)
	case *telemetry.RuntimeDone:
		reqID = r.RequestID
		body = "END RequestId: " + r.RequestID + statusSuffix(r.Status, r.ErrorType)
		sev = statusSeverity(r.Status)
	case *telemetry.Report:
		reqID = r.RequestID
		body = reportLine(r)
		sev = statusSeverity(r.Status)
	case *telemetry.InitStart:
		body = fmt.Sprintf("INIT_START Runtime Version: %s Runtime Version ARN: %s", r.RuntimeVersion, r.RuntimeVersionARN)
	case *telemetry.InitRuntimeDone:
		body = "INIT_RUNTIME_DONE Status: " + string(r.Status) + errorSuffix(r.ErrorType)
		sev = statusSeverity(r.Status)
	case *telemetry.InitReport:
		body = fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms Phase: %s Status: %s", r.Metrics.DurationMs, r.Phase, r.Status) + errorSuffix(r.ErrorType)
		sev = statusSeverity(r.Status)
	case *telemetry.RestoreStart:
		body = fmt.Sprintf("RESTORE_START Runtime Version: %s Runtime Version ARN: %s", r.RuntimeVersion, r.RuntimeVersionARN)
	case *telemetry.RestoreRuntimeDone:
		body = "RESTORE_RUNTIME_DONE Status: " + string(r.Status) + errorSuffix(r.ErrorType)
		sev = statusSeverity(r.Status)
	case *telemetry.RestoreReport:
		body = fmt.Sprintf("RESTORE_REPORT Restore Duration: %.2f ms Status: %s", r.Metrics.DurationMs, r.Status) + errorSuffix(r.ErrorType)
		sev = statusSeverity(r.Status)
	case *telemetry.Extension:
		body = fmt.Sprintf("EXTENSION Name: %s State: %s Events: %v", r.Name, r.State, r.Events) + errorSuffix(r.ErrorType)
		if r.ErrorType != "" {
			sev = log.SeverityError
		}
	case *telemetry.TelemetrySubscription:
		body = fmt.Sprintf("TELEMETRY Name: %s State: %s Types: %v", r.Name, r.State, r.Types)
	case *telemetry.LogsDropped:
		body = fmt.Sprintf("LOGS_DROPPED DroppedRecords: %d DroppedBytes: %d Reason: %s", r.DroppedRecords, r.DroppedBytes, r.Reason)
		sev = log.SeverityWarn
	default:
		return
	}
	var rec log.Record
	rec.SetTimestamp(ev.Time)
	rec.SetObservedTimestamp(m.now())
	rec.SetBody(attribute.StringValue(body))
	rec.SetSeverity(sev)
	rec.SetSeverityText(sev.String())
	rec.AddAttributes(attribute.String(attrTelemetryType, string(ev.Type)))
	var inv *invocation
	if reqID != "" {
		rec.AddAttributes(attribute.String(attrInvocationID, reqID))
		inv = m.open[reqID]
	}
	if inv != nil && inv.tenantID != "" {
		rec.AddAttributes(attrTenantID.String(inv.tenantID))
	}
	l.Emit(m.contextOf(inv), rec)
}

func statusSeverity(st telemetry.Status) log.Severity {
	if st == telemetry.StatusSuccess || st == "" {
		return log.SeverityInfo
	}
	return log.SeverityError
}

func statusSuffix(st telemetry.Status, errorType string) string {
	if st == telemetry.StatusSuccess || st == "" {
		return ""
	}
	return " Status: " + string(st) + errorSuffix(errorType)
}

func errorSuffix(errorType string) string {
	if errorType == "" {
		return ""
	}
	return " Error Type: " + errorType
}

func reportLine(r *telemetry.Report) string {
	var b strings.Builder
	met := &r.Metrics
	fmt.Fprintf(&b, "REPORT RequestId: %s Duration: %.2f ms", r.RequestID, met.DurationMs)
	if met.BilledDurationMs != nil {
		fmt.Fprintf(&b, " Billed Duration: %d ms", *met.BilledDurationMs)
	}
	if met.MemorySizeMB != nil {
		fmt.Fprintf(&b, " Memory Size: %d MB", *met.MemorySizeMB)
	}
	if met.MaxMemoryUsedMB != nil {
		fmt.Fprintf(&b, " Max Memory Used: %d MB", *met.MaxMemoryUsedMB)
	}
	if met.InitDurationMs != nil {
		fmt.Fprintf(&b, " Init Duration: %.2f ms", *met.InitDurationMs)
	}
	if met.RestoreDurationMs != nil {
		fmt.Fprintf(&b, " Restore Duration: %.2f ms", *met.RestoreDurationMs)
	}
	b.WriteString(statusSuffix(r.Status, r.ErrorType))
	return b.String()
}
