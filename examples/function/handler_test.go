package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// invoke calls the handler as aws-lambda-go would, with a request ID and a 3 s deadline.
func invoke(t *testing.T, f *function, payload string) (Response, error) {
	t.Helper()
	var p Payload
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return f.handle(ctx, p)
}

// fake returns a function writing to out, whose crash and exit only record their argument.
func fake(out *bytes.Buffer, crashed *string, exited *int) *function {
	return &function{
		stdout: out,
		crash:  func(msg string) { *crashed = msg },
		exit:   func(code int) { *exited = code },
	}
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		check   func(t *testing.T, resp Response, err error, out string, crashed string, exited int)
	}{
		{"an empty payload succeeds", `{}`, func(t *testing.T, resp Response, err error, out, _ string, _ int) {
			if err != nil || resp.Action != ActionSucceed || resp.RequestID != "req-1" || !resp.ColdStart || out != "" {
				t.Errorf("got %+v, %v, output %q", resp, err, out)
			}
		}},
		{"log writes text lines with level prefixes", `{"action":"log","lines":5}`,
			func(t *testing.T, resp Response, err error, out, _ string, _ int) {
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				if err != nil || resp.Lines != 5 || len(lines) != 5 {
					t.Fatalf("got %+v, %v, %d lines", resp, err, len(lines))
				}
				for i, prefix := range []string{"[INFO] ", "example", "[ERROR] ", "[WARN] ", "[INFO] "} {
					if !strings.HasPrefix(lines[i], prefix) || !strings.Contains(lines[i], "req-1") {
						t.Errorf("line %d = %q, want prefix %q and the request ID", i, lines[i], prefix)
					}
				}
			}},
		{"json-log writes JSON lines with level and request ID", `{"action":"json-log","lines":3}`,
			func(t *testing.T, resp Response, err error, out, _ string, _ int) {
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				if err != nil || len(lines) != 3 {
					t.Fatalf("got %v, %d lines", err, len(lines))
				}
				for i, level := range []string{"INFO", "WARN", "ERROR"} {
					var l map[string]any
					if err := json.Unmarshal([]byte(lines[i]), &l); err != nil {
						t.Fatalf("line %d: %v", i, err)
					}
					if l["level"] != level || l["requestId"] != "req-1" || l["message"] == "" {
						t.Errorf("line %d = %v", i, l)
					}
				}
			}},
		{"error returns a RequestedError", `{"action":"error","message":"nope"}`,
			func(t *testing.T, _ Response, err error, _, _ string, _ int) {
				var re *RequestedError
				if !errors.As(err, &re) || re.Message != "nope" {
					t.Errorf("err = %v, want RequestedError nope", err)
				}
			}},
		{"panic crashes the process", `{"action":"panic"}`,
			func(t *testing.T, _ Response, err error, _, crashed string, _ int) {
				if crashed != defaultMsg || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("crashed with %q, err %v", crashed, err)
				}
			}},
		{"alloc allocates the memory asked for", `{"action":"alloc","mb":2}`,
			func(t *testing.T, resp Response, err error, _, _ string, _ int) {
				if err != nil || resp.MB != 2 || resp.Bytes != 2<<20 {
					t.Errorf("got %+v, %v", resp, err)
				}
			}},
		{"flood writes many lines, every 100th large", `{"action":"flood","lines":250,"bytes":1000}`,
			func(t *testing.T, resp Response, err error, out, _ string, _ int) {
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				if err != nil || len(lines) != 250 || resp.Bytes != int64(len(out)) {
					t.Fatalf("got %+v, %v, %d lines, %d bytes", resp, err, len(lines), len(out))
				}
				var large int
				for _, l := range lines {
					if len(l) > 1000 {
						large++
					}
				}
				if large != 2 {
					t.Errorf("%d large lines, want 2", large)
				}
			}},
		{"exit exits with the code asked for", `{"action":"exit","code":3}`,
			func(t *testing.T, _ Response, _ error, _, _ string, exited int) {
				if exited != 3 {
					t.Errorf("exited with %d, want 3", exited)
				}
			}},
		{"an unknown action is an invalid payload", `{"action":"dance"}`,
			func(t *testing.T, _ Response, err error, _, _ string, _ int) {
				var ip *InvalidPayload
				if !errors.As(err, &ip) || !strings.Contains(err.Error(), "dance") {
					t.Errorf("err = %v", err)
				}
			}},
		{"an out-of-range count is an invalid payload", `{"action":"log","lines":-1}`,
			func(t *testing.T, _ Response, err error, out, _ string, _ int) {
				var ip *InvalidPayload
				if !errors.As(err, &ip) || out != "" {
					t.Errorf("err = %v, output %q", err, out)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// In a bubble, the panic case's wait for the deadline takes no real time.
			synctest.Test(t, func(t *testing.T) {
				var (
					out     bytes.Buffer
					crashed string
					exited  int
				)
				resp, err := invoke(t, fake(&out, &crashed, &exited), tc.payload)
				tc.check(t, resp, err, out.String(), crashed, exited)
			})
		})
	}
}

func TestHandlerPanicPanicsInTheHandler(t *testing.T) {
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want boom", r)
		}
	}()
	var out bytes.Buffer
	invoke(t, &function{stdout: &out}, `{"action":"handler-panic","message":"boom"}`)
	t.Error("handler returned")
}

func TestOnlyTheFirstInvocationIsAColdStart(t *testing.T) {
	var out bytes.Buffer
	f := &function{stdout: &out}
	first, _ := invoke(t, f, `{}`)
	second, _ := invoke(t, f, `{}`)
	if !first.ColdStart || second.ColdStart {
		t.Errorf("cold starts: %v then %v, want true then false", first.ColdStart, second.ColdStart)
	}
}

func TestTimeoutRunsPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		resp, err := invoke(t, &function{}, `{"action":"timeout"}`)
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 4*time.Second || resp.SleptMS != 4000 {
			t.Errorf("slept %v (%d ms reported), want the 3 s deadline + 1 s", got, resp.SleptMS)
		}
	})
}

func TestSleep(t *testing.T) {
	t.Run("a sleep within the deadline completes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			resp, err := invoke(t, &function{}, `{"action":"sleep","ms":250}`)
			if err != nil || resp.SleptMS != 250 {
				t.Errorf("got %+v, %v", resp, err)
			}
		})
	})
	t.Run("a sleep past the deadline ends with it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			_, err := invoke(t, &function{}, `{"action":"sleep","ms":5000}`)
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 3*time.Second {
				t.Errorf("err %v after %v, want the deadline after 3 s", err, time.Since(start))
			}
		})
	})
}

// TestPanicCrashesWithAGoStackTrace runs the real crash in a child process: the Go runtime must
// print a multi-line stack trace on stderr and exit with status 2, as it does in Lambda.
func TestPanicCrashesWithAGoStackTrace(t *testing.T) {
	if os.Getenv("EXAMPLE_FUNCTION_CRASH") == "1" {
		var out bytes.Buffer
		invoke(t, &function{stdout: &out, crash: crashOnNewGoroutine}, `{"action":"panic","message":"crash test"}`)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanicCrashesWithAGoStackTrace$")
	cmd.Env = append(os.Environ(), "EXAMPLE_FUNCTION_CRASH=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("child ended with %v, want exit status 2; stderr:\n%s", err, stderr.String())
	}
	trace := stderr.String()
	if !strings.Contains(trace, "panic: crash test") || !strings.Contains(trace, "goroutine ") ||
		strings.Count(trace, "\n") < 4 {
		t.Errorf("stderr is not a multi-line Go panic:\n%s", trace)
	}
}
