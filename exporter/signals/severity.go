package signals

import (
	"strings"

	"go.opentelemetry.io/otel/log"
)

// levelWord maps a level word as the runtimes write it to an OpenTelemetry
// severity. Lookups are exact (case-sensitive) so that ordinary prose
// ("error connecting") is not mistaken for a level; parseLevel handles the
// case-insensitive JSON "level" field separately.
var levelWords = [...]struct {
	word string
	sev  log.Severity
}{
	// Node.js, Java (log4j/logback), Go (log/slog text), Python.
	{"TRACE", log.SeverityTrace},
	{"DEBUG", log.SeverityDebug},
	{"INFO", log.SeverityInfo},
	{"NOTICE", log.SeverityInfo2},
	{"WARN", log.SeverityWarn},
	{"WARNING", log.SeverityWarn},
	{"ERROR", log.SeverityError},
	{"FATAL", log.SeverityFatal},
	{"CRITICAL", log.SeverityFatal},
	{"PANIC", log.SeverityFatal},
	// .NET Lambda logger ([Information], [Error], ...).
	{"Trace", log.SeverityTrace},
	{"Debug", log.SeverityDebug},
	{"Information", log.SeverityInfo},
	{"Warning", log.SeverityWarn},
	{"Error", log.SeverityError},
	{"Critical", log.SeverityFatal},
}

// dotnetPrefixes are Microsoft.Extensions.Logging console prefixes
// ("fail: Category[0]").
var dotnetPrefixes = [...]struct {
	prefix string
	sev    log.Severity
	text   string
}{
	{"trce: ", log.SeverityTrace, "Trace"},
	{"dbug: ", log.SeverityDebug, "Debug"},
	{"info: ", log.SeverityInfo, "Information"},
	{"warn: ", log.SeverityWarn, "Warning"},
	{"fail: ", log.SeverityError, "Error"},
	{"crit: ", log.SeverityFatal, "Critical"},
}

// goFatalPrefixes start the Go runtime's fatal output.
var goFatalPrefixes = [...]string{"panic: ", "fatal error: "}

// dotnetLabels are the level columns of the .NET runtime's text format
// (Amazon.Lambda.RuntimeSupport DefaultLogMessageFormatter: the labels of
// the Microsoft.Extensions.Logging console).
var dotnetLabels = [...]struct {
	label string
	sev   log.Severity
}{
	{"trce", log.SeverityTrace}, {"dbug", log.SeverityDebug}, {"info", log.SeverityInfo},
	{"warn", log.SeverityWarn}, {"fail", log.SeverityError}, {"crit", log.SeverityFatal},
}

// maxLevelTokens is how many leading tokens of a line in no known layout
// are examined for a level.
const maxLevelTokens = 4

// timedOut starts the line Lambda writes when an invocation times out.
const timedOut = "Task timed out after "

// parseTextSeverity finds the severity of a text log line as the Lambda
// runtimes format them, and the request ID from the runtime's own column:
//
//	Node.js  2024-01-01T00:00:00.000Z\t<request id>\tERROR\tmessage
//	.NET     2024-01-01T00:00:00.000Z\t<request id>\tfail\tmessage  |  [Error] message  |  fail: Category[0]
//	Python   [ERROR]\t2024-01-01T00:00:00.000Z\t<request id>\tmessage
//	Java     [ERROR] message  |  2024-01-01 00:00:00 <request id> ERROR Class - message (log4j2)
//	Ruby     E, [2024-01-01T00:00:00.000000 #8] ERROR <request id> -- : message
//	Lambda   2024-01-01T00:00:00.000Z <request id> Task timed out after 3.00 seconds
//	Go       time=... level=ERROR msg=...   |  panic: ...  |  fatal error: ...
//
// A UUID anywhere else in the line is not a request ID here (it may be an
// order number). It returns the severity, the level word as written (the
// severity text) and the request ID; a line with no known level gives
// log.SeverityUndefined (and maybe a request ID). It does not allocate.
func parseTextSeverity(line string) (sev log.Severity, text, requestID string) {
	for _, p := range goFatalPrefixes {
		if strings.HasPrefix(line, p) {
			return log.SeverityFatal, "PANIC", ""
		}
	}
	for _, p := range dotnetPrefixes {
		if strings.HasPrefix(line, p.prefix) {
			return p.sev, p.text, ""
		}
	}
	if strings.HasPrefix(line, timedOut) {
		return log.SeverityError, "", ""
	}
	var tok [5]string
	var rest [5]string // the line after each token
	n, r := 0, line
	for n < len(tok) {
		tok[n], r = nextToken(r)
		if tok[n] == "" {
			break
		}
		rest[n] = r
		n++
	}
	if n == 0 {
		return log.SeverityUndefined, "", ""
	}
	switch {
	case isBracketed(tok[0]):
		// Python (with timestamp and request ID columns) or Java's
		// LambdaLogger with a level.
		if n >= 3 && isTimestamp(tok[1]) && isRequestID(tok[2]) {
			requestID = tok[2]
		}
		if s, w := levelOf(tok[0]); s != log.SeverityUndefined {
			return s, w, requestID
		}
		return log.SeverityUndefined, "", requestID
	case n >= 2 && isTimestamp(tok[0]) && isRequestID(tok[1]):
		// Node.js, .NET, and Lambda's own lines.
		requestID = tok[1]
		if n >= 3 {
			if s, w := levelOf(tok[2]); s != log.SeverityUndefined {
				return s, w, requestID
			}
			for _, d := range dotnetLabels {
				if tok[2] == d.label {
					return d.sev, d.label, requestID
				}
			}
		}
		if strings.HasPrefix(strings.TrimLeft(rest[1], " \t"), timedOut) {
			return log.SeverityError, "", requestID
		}
		return log.SeverityUndefined, "", requestID
	case n >= 4 && isDate(tok[0]) && isClock(tok[1]):
		// log4j2 with the Lambda pattern: date, time, request ID, level.
		i := 2
		if isRequestID(tok[2]) {
			requestID, i = tok[2], 3
		}
		if s, w := levelOf(tok[i]); s != log.SeverityUndefined {
			return s, w, requestID
		}
		return log.SeverityUndefined, "", requestID
	case n >= 4 && len(tok[0]) == 2 && tok[0][1] == ',' && strings.HasPrefix(tok[1], "["):
		// Ruby's Logger: "E, [time #pid] LEVEL <request id> -- ...".
		i := 2
		for i < n && !strings.HasSuffix(tok[i-1], "]") {
			i++
		}
		if i < n {
			if i+1 < n && isRequestID(tok[i+1]) {
				requestID = tok[i+1]
			}
			if s, w := levelOf(tok[i]); s != log.SeverityUndefined {
				return s, w, requestID
			}
		}
		return log.SeverityUndefined, "", requestID
	}
	for i := 0; i < maxLevelTokens && i < n; i++ {
		if v, ok := strings.CutPrefix(tok[i], "level="); ok {
			if s := levelSeverity(strings.Trim(v, `"`)); s != log.SeverityUndefined {
				return s, strings.Trim(v, `"`), ""
			}
			continue
		}
		if s, w := levelOf(tok[i]); s != log.SeverityUndefined {
			return s, w, ""
		}
	}
	return log.SeverityUndefined, "", ""
}

// levelOf reads a level word, bare, bracketed ("[ERROR]") or with a
// colon ("ERROR:").
func levelOf(w string) (log.Severity, string) {
	if len(w) > 2 && w[0] == '[' && w[len(w)-1] == ']' {
		w = w[1 : len(w)-1]
	} else if len(w) > 1 && w[len(w)-1] == ':' {
		w = w[:len(w)-1]
	}
	for _, lw := range levelWords {
		if lw.word == w {
			return lw.sev, w
		}
	}
	return log.SeverityUndefined, ""
}

func isBracketed(s string) bool { return len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' }

// isDate reports whether s starts with a date "2024-01-01".
func isDate(s string) bool {
	return len(s) >= 10 && isDigits(s[:4]) && s[4] == '-' && isDigits(s[5:7]) && s[7] == '-' && isDigits(s[8:10])
}

// isTimestamp reports whether s is an RFC 3339 timestamp
// ("2024-01-01T00:00:00.000Z").
func isTimestamp(s string) bool { return len(s) > 10 && isDate(s) && s[10] == 'T' }

// isClock reports whether s starts with a time of day "00:00:00".
func isClock(s string) bool {
	return len(s) >= 8 && isDigits(s[:2]) && s[2] == ':' && isDigits(s[3:5]) && s[5] == ':' && isDigits(s[6:8])
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// levelSeverity maps a JSON "level" value (any case) to a severity.
func levelSeverity(level string) log.Severity {
	for _, lw := range levelWords {
		if strings.EqualFold(lw.word, level) {
			return lw.sev
		}
	}
	switch {
	case strings.EqualFold(level, "err"):
		return log.SeverityError
	case strings.EqualFold(level, "crit"), strings.EqualFold(level, "emerg"), strings.EqualFold(level, "alert"):
		return log.SeverityFatal
	}
	return log.SeverityUndefined
}

// nextToken splits off the next tab- or space-separated token.
func nextToken(s string) (tok, rest string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	s = s[i:]
	j := 0
	for j < len(s) && s[j] != ' ' && s[j] != '\t' {
		j++
	}
	return s[:j], s[j:]
}

// isRequestID reports whether s has the shape of a Lambda request ID (a UUID).
func isRequestID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if _, ok := fromHex(c); !ok {
				return false
			}
		}
	}
	return true
}
