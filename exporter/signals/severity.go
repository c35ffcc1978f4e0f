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

// maxLevelTokens is how many leading tokens of a text line are examined.
const maxLevelTokens = 4

// parseTextSeverity finds the severity of a text log line as the Lambda
// runtimes format them:
//
//	Node.js  2024-01-01T00:00:00.000Z\t<request id>\tERROR\tmessage
//	Python   [ERROR]\t2024-01-01T00:00:00.000Z\t<request id>\tmessage
//	Java     2024-01-01 00:00:00 <request id> ERROR Class - message
//	Go       time=... level=ERROR msg=...   |  panic: ...  |  fatal error: ...
//	.NET     2024-01-01T00:00:00.000Z\t<request id>\t[Error] message  |  fail: Category[0]
//
// It returns the severity, the level word as written (the severity text) and,
// for the Node.js and Python tab formats, the request ID the runtime wrote.
// Unknown lines give log.SeverityUndefined. It does not allocate.
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
	rest := line
	for i := 0; i < maxLevelTokens && len(rest) > 0; i++ {
		var tok string
		tok, rest = nextToken(rest)
		if tok == "" {
			break
		}
		if isRequestID(tok) {
			requestID = tok
			continue
		}
		if v, ok := strings.CutPrefix(tok, "level="); ok {
			if s := levelSeverity(strings.Trim(v, `"`)); s != log.SeverityUndefined {
				return s, strings.Trim(v, `"`), requestID
			}
			continue
		}
		w := tok
		if len(w) > 2 && w[0] == '[' && w[len(w)-1] == ']' {
			w = w[1 : len(w)-1]
		} else if len(w) > 1 && w[len(w)-1] == ':' {
			w = w[:len(w)-1]
		}
		for _, lw := range levelWords {
			if lw.word == w {
				// Pick up a request ID that follows the level (Python).
				if requestID == "" {
					requestID = findRequestID(rest, maxLevelTokens-i)
				}
				return lw.sev, w, requestID
			}
		}
	}
	return log.SeverityUndefined, "", ""
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

func findRequestID(s string, n int) string {
	for ; n > 0 && len(s) > 0; n-- {
		var tok string
		tok, s = nextToken(s)
		if isRequestID(tok) {
			return tok
		}
	}
	return ""
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
