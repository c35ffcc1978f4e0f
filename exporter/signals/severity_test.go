package signals

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/log"
)

const rid = "8f5b1c2e-6a3d-4e8f-9b1a-2c3d4e5f6a71"

func TestParseTextSeverity(t *testing.T) {
	tests := []struct {
		name, line string
		sev        log.Severity
		text, req  string
	}{
		{"Node.js error with request ID", "2024-01-01T00:00:00.000Z\t" + rid + "\tERROR\tboom", log.SeverityError, "ERROR", rid},
		{"Node.js info", "2024-01-01T00:00:00.000Z\t" + rid + "\tINFO\thello", log.SeverityInfo, "INFO", rid},
		{"Python error with request ID after the level", "[ERROR]\t2024-01-01T00:00:00.000Z\t" + rid + "\tValueError", log.SeverityError, "ERROR", rid},
		{"Python warning", "[WARNING] careful", log.SeverityWarn, "WARNING", ""},
		{"Python critical", "[CRITICAL] down", log.SeverityFatal, "CRITICAL", ""},
		{"Java log4j", "2024-01-01 00:00:00 " + rid + " WARN com.example.Handler - slow", log.SeverityWarn, "WARN", rid},
		{".NET bracketed", "2024-01-01T00:00:00.000Z\t" + rid + "\t[Information] started", log.SeverityInfo, "Information", rid},
		{".NET console fail:", "fail: MyApp.Handler[0]", log.SeverityError, "Error", ""},
		{".NET console warn:", "warn: MyApp.Handler[0]", log.SeverityWarn, "Warning", ""},
		{"Go slog text", `time=2024-01-01T00:00:00Z level=DEBUG msg="x"`, log.SeverityDebug, "DEBUG", ""},
		{"Go slog quoted level", `level="ERROR" msg=x`, log.SeverityError, "ERROR", ""},
		{"Go panic", "panic: runtime error: index out of range", log.SeverityFatal, "PANIC", ""},
		{"Go fatal error", "fatal error: all goroutines are asleep - deadlock!", log.SeverityFatal, "PANIC", ""},
		{"bare level first", "ERROR: disk full", log.SeverityError, "ERROR", ""},
		{"prose is not a level", "error connecting to db", log.SeverityUndefined, "", ""},
		{"a level word late in the line is ignored", "a b c d ERROR", log.SeverityUndefined, "", ""},
		{"plain text", "handling request", log.SeverityUndefined, "", ""},
		{"a UUID after a bare level is not a request ID", "ERROR order " + rid + " failed", log.SeverityError, "ERROR", ""},
		{"a UUID after a Python level without columns is not a request ID", "[ERROR] order " + rid + " failed", log.SeverityError, "ERROR", ""},
		{"a UUID first in the line is not a request ID", rid + " ERROR boom", log.SeverityError, "ERROR", ""},
		{"Node.js column without a level keeps the request ID", "2024-01-01T00:00:00.000Z\t" + rid + "\tcustom line", log.SeverityUndefined, "", rid},
		{".NET text fail column", "2024-01-01T00:00:00.000Z\t" + rid + "\tfail\tboom", log.SeverityError, "fail", rid},
		{".NET text info column", "2024-01-01T00:00:00.000Z\t" + rid + "\tinfo\thello", log.SeverityInfo, "info", rid},
		{"a .NET label outside its column is prose", "info about the order", log.SeverityUndefined, "", ""},
		{"log4j2 without a request ID", "2024-01-01 00:00:00 ERROR com.example.Handler - x", log.SeverityError, "ERROR", ""},
		{"Ruby Logger", "I, [2024-01-01T00:00:00.000000 #8]  INFO " + rid + " -- : hello", log.SeverityInfo, "INFO", rid},
		{"Ruby Logger error", "E, [2024-01-01T00:00:00.000000 #8] ERROR " + rid + " -- : boom", log.SeverityError, "ERROR", rid},
		{"Lambda's timeout line", "2024-01-01T00:00:03.009Z " + rid + " Task timed out after 3.00 seconds", log.SeverityError, "", rid},
		{"empty", "", log.SeverityUndefined, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sev, text, req := parseTextSeverity(tt.line)
			if sev != tt.sev || text != tt.text || req != tt.req {
				t.Errorf("parseTextSeverity(%q) = %v %q %q, want %v %q %q", tt.line, sev, text, req, tt.sev, tt.text, tt.req)
			}
		})
	}
}

func TestLevelSeverity(t *testing.T) {
	for level, want := range map[string]log.Severity{
		"TRACE": log.SeverityTrace, "debug": log.SeverityDebug, "Info": log.SeverityInfo, "WARN": log.SeverityWarn,
		"warning": log.SeverityWarn, "ERROR": log.SeverityError, "err": log.SeverityError, "FATAL": log.SeverityFatal,
		"CRITICAL": log.SeverityFatal, "verbose": log.SeverityUndefined, "": log.SeverityUndefined,
	} {
		if got := levelSeverity(level); got != want {
			t.Errorf("levelSeverity(%q) = %v, want %v", level, got, want)
		}
	}
}

func TestParseTextSeverityDoesNotAllocate(t *testing.T) {
	line := "2024-01-01T00:00:00.000Z\t" + rid + "\tERROR\tboom"
	if n := testing.AllocsPerRun(100, func() { parseTextSeverity(line) }); n != 0 {
		t.Errorf("parseTextSeverity allocates %v times", n)
	}
}

func FuzzParseTextSeverity(f *testing.F) {
	for _, s := range []string{
		"2024-01-01T00:00:00.000Z\t" + rid + "\tERROR\tboom", "[ERROR]\t2024\t" + rid + "\tx", "fail: x",
		"panic: x", `level=warn msg=x`, "[Error] x", "\t\t", "[]", "[", "level=",
		"2024-01-01 00:00:00 " + rid + " WARN x", "I, [t #8]  INFO " + rid + " -- : x", "2024-01-01T00:00:00.000Z\t" + rid + "\tfail\tx",
		"Task timed out after 3.00 seconds",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sev, text, req := parseTextSeverity(s)
		if sev == log.SeverityUndefined && text != "" {
			t.Fatalf("undefined severity with text %q", text)
		}
		if req != "" && (!isRequestID(req) || !strings.Contains(s, req)) {
			t.Fatalf("request ID %q not from %q", req, s)
		}
		known := text == "PANIC"
		for _, p := range dotnetPrefixes {
			known = known || (p.text == text && strings.HasPrefix(s, p.prefix))
		}
		if text != "" && !known && !strings.Contains(s, text) {
			t.Fatalf("severity text %q not from %q", text, s)
		}
	})
}

func TestIsContinuation(t *testing.T) {
	goPanic := &pendingLog{goStack: true}
	plain := &pendingLog{}
	tests := []struct {
		name string
		line string
		p    *pendingLog
		want bool
	}{
		{"an indented Java frame continues", "\tat com.example.X(X.java:1)", plain, true},
		{"an indented Node frame continues", "    at Object.<anonymous> (/var/task/index.js:1:1)", plain, true},
		{"an empty line continues", "", plain, true},
		{"goroutine header continues", "goroutine 1 [running]:", plain, true},
		{"Caused by continues", "Caused by: java.io.IOException", plain, true},
		{"a Go frame continues a panic", "main.handler({0x1, 0x2})", goPanic, true},
		{"panic( frame continues a panic", "panic({0x5c1e40?, 0xc000012345?})", goPanic, true},
		{"a Go frame alone starts a record", "main.handler()", plain, false},
		{"a sentence with parentheses starts a record", "done (ok)", goPanic, false},
		{"a new log line starts a record", "2024-01-01T00:00:00.000Z\tx\tINFO\tnext", goPanic, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isContinuation(tt.line, tt.p); got != tt.want {
				t.Errorf("isContinuation(%q) = %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}
