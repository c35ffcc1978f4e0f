package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Action is the behaviour a payload asks for.
type Action string

// The actions the function understands (see the package documentation).
const (
	ActionSucceed      Action = "succeed"
	ActionLog          Action = "log"
	ActionJSONLog      Action = "json-log"
	ActionError        Action = "error"
	ActionPanic        Action = "panic"
	ActionHandlerPanic Action = "handler-panic"
	ActionTimeout      Action = "timeout"
	ActionAlloc        Action = "alloc"
	ActionFlood        Action = "flood"
	ActionSleep        Action = "sleep"
	ActionExit         Action = "exit"
)

// Limits keep a mistyped payload from doing more than a test wants.
const (
	maxLines     = 1_000_000
	maxLineSize  = 1 << 20          // Lambda cuts log lines at 256 KiB; allow testing beyond it
	maxMB        = 10_240           // Lambda's largest memory size
	maxSleep     = 15 * time.Minute // Lambda's longest timeout
	floodEvery   = 100              // every floodEvery-th flood line is the large one
	pageSize     = 4096             // alloc touches one byte per page
	defaultMB    = 64               // alloc without "mb"
	defaultLogs  = 5                // log without "lines"
	defaultJSON  = 3                // json-log without "lines"
	defaultFlood = 20_000           // flood without "lines"
	bufferSize   = 64 << 10         // flood's output buffer
	defaultMsg   = "example: requested by the payload"
)

// Payload is the function's input.
type Payload struct {
	Action  Action `json:"action"`
	Lines   int    `json:"lines,omitempty"`
	Bytes   int    `json:"bytes,omitempty"`
	MB      int    `json:"mb,omitempty"`
	MS      int    `json:"ms,omitempty"`
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Response is the function's output.
type Response struct {
	Action    Action `json:"action"`
	RequestID string `json:"requestId"`
	ColdStart bool   `json:"coldStart"`
	Lines     int    `json:"lines,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
	MB        int    `json:"mb,omitempty"`
	SleptMS   int64  `json:"sleptMs,omitempty"`
}

// RequestedError is the error the "error" action returns; Lambda reports its type name as the
// invocation's errorType.
type RequestedError struct{ Message string }

func (e *RequestedError) Error() string { return e.Message }

// InvalidPayload is returned for an unknown action or an out-of-range field.
type InvalidPayload struct{ Reason string }

func (e *InvalidPayload) Error() string { return "invalid payload: " + e.Reason }

// function is the handler and what it writes to.
type function struct {
	stdout io.Writer
	// crash panics where nothing can recover (a new goroutine); replaced in tests.
	crash func(msg string)
	// exit ends the process; replaced in tests.
	exit func(code int)
	// invocations counts handled invocations, to report the cold start.
	invocations atomic.Int64
}

// handle dispatches on p.Action.
func (f *function) handle(ctx context.Context, p Payload) (Response, error) {
	resp := Response{Action: cmp.Or(p.Action, ActionSucceed), ColdStart: f.invocations.Add(1) == 1}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		resp.RequestID = lc.AwsRequestID
	}
	msg := cmp.Or(p.Message, defaultMsg)
	switch resp.Action {
	case ActionSucceed:
		return resp, nil
	case ActionLog:
		n, err := count(p.Lines, defaultLogs, maxLines, "lines")
		if err != nil {
			return resp, err
		}
		resp.Lines = n
		return resp, f.writeTextLogs(n, resp.RequestID)
	case ActionJSONLog:
		n, err := count(p.Lines, defaultJSON, maxLines, "lines")
		if err != nil {
			return resp, err
		}
		resp.Lines = n
		return resp, f.writeJSONLogs(n, resp.RequestID)
	case ActionError:
		return resp, &RequestedError{Message: msg}
	case ActionPanic:
		f.crash(msg)
		// The process is dying; only a test's crash returns, and then the deadline ends this.
		<-ctx.Done()
		return resp, fmt.Errorf("panic: %w", ctx.Err())
	case ActionHandlerPanic:
		panic(msg)
	case ActionTimeout:
		deadline, ok := ctx.Deadline()
		if !ok {
			return resp, &InvalidPayload{Reason: "timeout needs an invocation deadline"}
		}
		// Deliberately deaf to ctx: the point is to run past the deadline.
		wait := time.Until(deadline) + time.Second
		start := time.Now()
		<-time.After(wait)
		resp.SleptMS = time.Since(start).Milliseconds()
		return resp, nil
	case ActionAlloc:
		mb, err := count(p.MB, defaultMB, maxMB, "mb")
		if err != nil {
			return resp, err
		}
		resp.MB = mb
		resp.Bytes = allocate(mb)
		return resp, nil
	case ActionFlood:
		n, err := count(p.Lines, defaultFlood, maxLines, "lines")
		if err != nil {
			return resp, err
		}
		if p.Bytes < 0 || p.Bytes > maxLineSize {
			return resp, &InvalidPayload{Reason: fmt.Sprintf("bytes must be between 0 and %d", maxLineSize)}
		}
		resp.Lines = n
		resp.Bytes, err = f.flood(n, p.Bytes)
		return resp, err
	case ActionSleep:
		if p.MS < 0 || time.Duration(p.MS)*time.Millisecond > maxSleep {
			return resp, &InvalidPayload{Reason: fmt.Sprintf("ms must be between 0 and %d", maxSleep.Milliseconds())}
		}
		start := time.Now()
		t := time.NewTimer(time.Duration(p.MS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return resp, fmt.Errorf("sleep: %w", ctx.Err())
		}
		resp.SleptMS = time.Since(start).Milliseconds()
		return resp, nil
	case ActionExit:
		f.exit(cmp.Or(p.Code, 1))
		return resp, nil // only reached when a test replaced exit
	default:
		return resp, &InvalidPayload{Reason: fmt.Sprintf("unknown action %q", p.Action)}
	}
}

// count validates an optional positive count: 0 means def.
func count(v, def, limit int, name string) (int, error) {
	if v == 0 {
		return def, nil
	}
	if v < 0 || v > limit {
		return 0, &InvalidPayload{Reason: fmt.Sprintf("%s must be between 1 and %d", name, limit)}
	}
	return v, nil
}

// writeTextLogs writes n text lines, cycling through the prefixes runtimes use for levels.
func (f *function) writeTextLogs(n int, requestID string) error {
	prefixes := [...]string{"[INFO] ", "", "[ERROR] ", "[WARN] "}
	for i := range n {
		if _, err := fmt.Fprintf(f.stdout, "%sexample log line %d of %d for request %s\n",
			prefixes[i%len(prefixes)], i+1, n, requestID); err != nil {
			return fmt.Errorf("log: %w", err)
		}
	}
	return nil
}

// jsonLine is one line of the json-log action, shaped like the runtimes' JSON log format.
type jsonLine struct {
	Level     string `json:"level"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
	Line      int    `json:"line"`
}

// writeJSONLogs writes n JSON lines, cycling through levels.
func (f *function) writeJSONLogs(n int, requestID string) error {
	levels := [...]string{"INFO", "WARN", "ERROR", "DEBUG"}
	enc := json.NewEncoder(f.stdout) // Encode writes one line per value
	for i := range n {
		line := jsonLine{
			Level:     levels[i%len(levels)],
			Message:   fmt.Sprintf("example JSON log line %d of %d", i+1, n),
			RequestID: requestID,
			Line:      i + 1,
		}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("json-log: %w", err)
		}
	}
	return nil
}

// flood writes n lines, every floodEvery-th of them large bytes long, and returns the bytes written.
func (f *function) flood(n, large int) (int64, error) {
	w := bufio.NewWriterSize(f.stdout, bufferSize)
	pad := strings.Repeat("x", large)
	var written int64
	for i := range n {
		var (
			k   int
			err error
		)
		if large > 0 && i%floodEvery == floodEvery-1 {
			k, err = fmt.Fprintf(w, "flood line %d large %s\n", i+1, pad)
		} else {
			k, err = fmt.Fprintf(w, "flood line %d\n", i+1)
		}
		written += int64(k)
		if err != nil {
			return written, fmt.Errorf("flood: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return written, fmt.Errorf("flood: %w", err)
	}
	return written, nil
}

// allocate allocates mb MiB and writes one byte per page, so the memory is really resident.
func allocate(mb int) int64 {
	buf := make([]byte, mb<<20)
	for i := 0; i < len(buf); i += pageSize {
		buf[i] = byte(i / pageSize)
	}
	runtime.KeepAlive(buf)
	return int64(len(buf))
}
