package signals

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
)

// Exception attributes of a log record, as the OpenTelemetry semantic
// conventions define them for exceptions in logs
// (https://opentelemetry.io/docs/specs/semconv/exceptions/exceptions-logs/).
const (
	attrExceptionType       = "exception.type"
	attrExceptionMessage    = "exception.message"
	attrExceptionStacktrace = "exception.stacktrace"
)

// Bounds on the exception attributes (the stack trace has the bound of a
// multi-line text record, maxRecordBytes).
const (
	maxExceptionType    = maxFieldValueLen
	maxExceptionMessage = 4 * 1024
)

// exception is what a log record says about an error.
type exception struct {
	typ, msg, stack string
}

// found reports whether the record described an exception: the semantic
// conventions require a type or a message.
func (e *exception) found() bool { return e.typ != "" || e.msg != "" }

// summary is "type: message" (or the one that is set), the way the
// runtimes print an error on one line.
func (e *exception) summary() string {
	switch {
	case e.typ != "" && e.msg != "":
		return e.typ + ": " + e.msg
	case e.typ != "":
		return e.typ
	}
	return e.msg
}

func (e *exception) addTo(r *log.Record) {
	if e.typ != "" {
		r.AddAttributes(attribute.String(attrExceptionType, truncateTo(e.typ, maxExceptionType)))
	}
	if e.msg != "" {
		r.AddAttributes(attribute.String(attrExceptionMessage, truncateTo(e.msg, maxExceptionMessage)))
	}
	if st := strings.TrimRight(e.stack, "\n"); st != "" {
		r.AddAttributes(attribute.String(attrExceptionStacktrace, truncateTo(st, maxRecordBytes)))
	}
}

// errorFields are the keys the runtimes use for an error in a JSON log
// line: Node.js (message object, or top level beside a formatted
// message), Python (logger.exception and unhandled errors), .NET
// (ILambdaLogger with an exception), Java (log4j2 LambdaLayout).
type errorFields struct {
	ErrorType    string          `json:"errorType"`
	ErrorMessage string          `json:"errorMessage"`
	StackTrace   json.RawMessage `json:"stackTrace"`
	Stack        json.RawMessage `json:"stack"` // Node.js text format's "Invoke Error" object
}

func (f *errorFields) exception() exception {
	e := exception{typ: f.ErrorType, msg: f.ErrorMessage}
	st := f.StackTrace
	if len(st) == 0 {
		st = f.Stack
	}
	e.stack = stackText(st, &e)
	return e
}

// stackText renders a JSON stack trace as text: a string as is; an array
// of lines joined (Python's frames get their "Traceback" header and the
// closing "Type: message" line, so the text reads as Python prints it);
// log4j2's frame objects as Java's "\tat class.method(file:line)" lines
// under "Type: message".
func stackText(raw json.RawMessage, e *exception) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		return jsonString(raw)
	case '[':
	default:
		return ""
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil || len(elems) == 0 {
		return ""
	}
	var b strings.Builder
	python := false
	for i, el := range elems {
		if b.Len() > maxRecordBytes {
			break
		}
		el = bytes.TrimSpace(el)
		if len(el) == 0 {
			continue
		}
		var line string
		switch el[0] {
		case '"':
			line = jsonString(el)
			if i == 0 && strings.HasPrefix(line, `  File "`) {
				python = true
				b.WriteString("Traceback (most recent call last):\n")
			}
		case '{':
			if i == 0 && e.found() {
				b.WriteString(e.summary())
				b.WriteByte('\n')
			}
			line = javaFrame(el)
		default:
			line = string(el)
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	if python && e.found() {
		b.WriteString(e.summary())
	}
	return strings.TrimRight(b.String(), "\n")
}

// javaFrame renders a log4j2 JSON stack element
// ({"class","method","file","line"}) as Java prints it.
func javaFrame(el json.RawMessage) string {
	var f struct {
		Class  string `json:"class"`
		Method string `json:"method"`
		File   string `json:"file"`
		Line   int    `json:"line"`
	}
	if json.Unmarshal(el, &f) != nil || f.Class == "" {
		var b bytes.Buffer
		if json.Compact(&b, el) == nil {
			return b.String()
		}
		return string(el)
	}
	s := "\tat " + f.Class + "." + f.Method + "("
	switch {
	case f.File != "" && f.Line > 0:
		s += f.File + ":" + strconv.Itoa(f.Line)
	case f.File != "":
		s += f.File
	default:
		s += "Unknown Source"
	}
	return s + ")"
}

// jsonErrorObject decodes a JSON object that holds an error (errorType or
// errorMessage). ok is false for any other object.
func jsonErrorObject(raw json.RawMessage) (e exception, ok bool) {
	if len(raw) == 0 || raw[0] != '{' || !bytes.Contains(raw, []byte(`"error`)) {
		return exception{}, false
	}
	var f errorFields
	if json.Unmarshal(raw, &f) != nil {
		return exception{}, false
	}
	e = f.exception()
	return e, e.found()
}

// textException finds an exception in a text record (one line, or the
// lines of a stack trace joined): Python tracebacks, Java, .NET and
// Node.js stack traces ("Type: message" above "at ..." frames), Go panics,
// and the JSON error object Node.js (text format) and Ruby print after
// an unhandled error.
func textException(body string) exception {
	nl := strings.IndexByte(body, '\n')
	if nl < 0 {
		// One line: Node.js's "Invoke Error \t{...}" (the object is the
		// last tab-separated field).
		if t := strings.LastIndexByte(body, '\t'); t >= 0 && strings.HasPrefix(body[t+1:], "{") {
			if e, ok := jsonErrorObject(json.RawMessage(body[t+1:])); ok {
				return e
			}
		}
		return exception{}
	}
	first := body[:nl]
	if p := goPanicPrefix(first); p != "" {
		msg := strings.TrimSuffix(first[len(p):], " [recovered]")
		return exception{msg: msg, stack: body}
	}
	if i := strings.Index(body, "Traceback (most recent call last):"); i >= 0 {
		return pythonException(body, first, i)
	}
	if e, ok := frameException(body); ok {
		return e
	}
	// Ruby's unhandled error: a message line, then the error object
	// pretty-printed as JSON.
	if i := strings.Index(body, "\n{"); i >= 0 || strings.HasPrefix(body, "{") {
		obj := strings.TrimSpace(body[i+1:])
		if strings.HasSuffix(obj, "}") {
			if e, ok := jsonErrorObject(json.RawMessage(obj)); ok {
				return e
			}
		}
	}
	return exception{}
}

func goPanicPrefix(line string) string {
	for _, p := range goFatalPrefixes {
		if strings.HasPrefix(line, p) {
			return p
		}
	}
	return ""
}

// pythonException reads a Python traceback starting at tb: the exception
// is the last line when it is "Type: message" (logging.exception and the
// interpreter), else the first line's message ("[ERROR] Type: message",
// the runtime's unhandled error).
func pythonException(body, first string, tb int) exception {
	e := exception{stack: body[tb:]}
	last := strings.TrimRight(body, "\n")
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	// The runtime indents its frames with no-break spaces (U+00A0).
	if last != "" && last[0] != ' ' && last[0] != '\t' && !strings.HasPrefix(last, "\u00a0") {
		if typ, msg, ok := splitTypeMessage(last, isPythonType); ok {
			e.typ, e.msg = typ, msg
			return e
		}
	}
	if typ, msg, ok := splitTypeMessage(messageColumn(first), isPythonType); ok {
		e.typ, e.msg = typ, msg
		e.stack += "\n" + e.summary()
	}
	return e
}

// frameException finds the first line followed by a stack frame
// ("at ..." after indentation: Java "\tat", .NET "   at", Node.js
// "    at") that reads "Type: message" or "Type".
func frameException(body string) (exception, bool) {
	lineStart := 0
	for lineStart < len(body) {
		end := strings.IndexByte(body[lineStart:], '\n')
		if end < 0 {
			return exception{}, false
		}
		end += lineStart
		next := body[end+1:]
		if nl := strings.IndexByte(next, '\n'); nl >= 0 {
			next = next[:nl]
		}
		if t := strings.TrimLeft(next, " \t"); len(t) < len(next) && strings.HasPrefix(t, "at ") {
			line := body[lineStart:end]
			if lineStart == 0 {
				line = messageColumn(line)
			}
			if typ, msg, ok := splitTypeMessage(strings.TrimRight(line, "\r"), isThrowableType); ok {
				start := lineStart
				if lineStart == 0 {
					start = len(body[:end]) - len(line)
				}
				return exception{typ: typ, msg: msg, stack: body[start:]}, true
			}
		}
		lineStart = end + 1
	}
	return exception{}, false
}

// messageColumn strips the columns a runtime puts before the message of
// a text line (timestamp, request ID, level), keeping the text after the
// last tab, or after a leading "[LEVEL] ".
func messageColumn(line string) string {
	if t := strings.LastIndexByte(line, '\t'); t >= 0 {
		return line[t+1:]
	}
	if len(line) > 2 && line[0] == '[' {
		if i := strings.Index(line, "] "); i > 0 {
			return line[i+2:]
		}
	}
	return line
}

// splitTypeMessage splits "Type: message" (or "Type") when Type passes
// isType.
func splitTypeMessage(s string, isType func(string) bool) (typ, msg string, ok bool) {
	typ, msg, _ = strings.Cut(s, ": ")
	if !isType(typ) {
		return "", "", false
	}
	return typ, msg, true
}

// isPythonType accepts a dotted identifier (ValueError,
// botocore.exceptions.ClientError).
func isPythonType(s string) bool {
	if s == "" || len(s) > 256 || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isIdentStart(c) && !(c >= '0' && c <= '9') && c != '.' {
			return false
		}
	}
	return true
}

// isThrowableType accepts a class name that says it is an error: dotted
// (java.lang.IllegalStateException, System.InvalidOperationException,
// Runtime.UnhandledPromiseRejection) or ending in Error, Exception or
// Throwable (Node.js's Error, TypeError).
func isThrowableType(s string) bool {
	if s == "" || len(s) > 256 || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isIdentStart(c) && !(c >= '0' && c <= '9') && !strings.ContainsRune(".$`+<>", rune(c)) {
			return false
		}
	}
	return strings.IndexByte(s, '.') > 0 || strings.HasSuffix(s, "Error") ||
		strings.HasSuffix(s, "Exception") || strings.HasSuffix(s, "Throwable")
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// outOfMemory reports whether a function's log record says the function
// ran out of memory: Python's MemoryError, Node.js's "JavaScript heap out
// of memory" / "FATAL ERROR: ... heap ...", Go's "fatal error: runtime: out
// of memory", Java's OutOfMemoryError, .NET's OutOfMemoryException, and
// the runtime killed by a signal ("Runtime exited with error: signal:
// killed"). e is the exception found in the record, if any.
func outOfMemory(body string, e *exception) bool {
	if e.typ != "" && (e.typ == "MemoryError" || strings.Contains(e.typ, "OutOfMemory")) {
		return true
	}
	// One cheap scan rules out almost every line.
	if !strings.Contains(body, "emory") && !strings.Contains(body, "heap") && !strings.Contains(body, "killed") {
		return false
	}
	for _, s := range oomPhrases {
		if strings.Contains(body, s) {
			return true
		}
	}
	if strings.HasPrefix(body, "FATAL ERROR: ") && strings.Contains(firstLine(body), "heap") {
		return true // V8: "FATAL ERROR: Reached heap limit Allocation failed - ..."
	}
	return startsLine(body, "MemoryError") || startsLine(body, "signal: killed")
}

var oomPhrases = [...]string{
	"JavaScript heap out of memory",
	"fatal error: runtime: out of memory",
	"java.lang.OutOfMemoryError",
	"System.OutOfMemoryException",
	"exited with error: signal: killed",
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// startsLine reports whether a line of s starts with prefix followed by
// the end of the line, ':' or a space.
func startsLine(s, prefix string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], prefix)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(prefix)
		if (j == 0 || s[j-1] == '\n' || s[j-1] == ' ') && (end == len(s) || s[end] == '\n' || s[end] == ':' || s[end] == ' ' || s[end] == '\r') {
			return true
		}
		i = end
	}
}

// jsonMessage renders a non-string JSON "message" (a logged object) as
// its compact JSON text.
func jsonMessage(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

// truncateTo cuts s to at most n bytes on a rune boundary.
func truncateTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
