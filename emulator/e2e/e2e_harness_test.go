//go:build e2e

package e2e

// Harness of the end-to-end tests (files e2e_*_test.go): the real agent
// (./cmd/slipstream) and the example function (./examples/function), built
// once per test run as static binaries, run in the local emulator (package
// emulator, in process) and export to the built-in OTLP sink (package
// emulator/sink, in process). Every name here starts with "e2e" so that the
// RIE files of this package can coexist; rie_harness_test.go owns TestMain.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/emulator/e2e/e2ebuild"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// e2eAgentName is the agent's file name, hence its extension name.
const e2eAgentName = "slipstream"

// Bounds of the waits: deadlines for things that normally take
// milliseconds, never durations anything is expected to last.
const (
	e2eStartTimeout = 60 * time.Second // build excluded
	e2eSinkTimeout  = 30 * time.Second // data reaching the sink after SHUTDOWN
)

// e2eBinaries are the programs built once per test run.
type e2eBinaries struct {
	dir      string
	agent    string // dir/extensions/slipstream
	function string // dir/bootstrap
}

var e2eBuild struct {
	once sync.Once
	bins *e2eBinaries
	err  error
}

// e2eBuilt builds the agent and the example function the first time it is
// called and returns them; a build failure fails the calling test.
func e2eBuilt(t *testing.T) *e2eBinaries {
	t.Helper()
	e2eBuild.once.Do(func() { e2eBuild.bins, e2eBuild.err = e2eBuildAll() })
	if e2eBuild.err != nil {
		t.Fatalf("build the binaries of the end-to-end tests: %v", e2eBuild.err)
	}
	return e2eBuild.bins
}

// e2eRemoveBuilds removes the binaries built by e2eBuilt. It belongs in
// TestMain after m.Run (rie_harness_test.go owns TestMain).
func e2eRemoveBuilds() {
	if e2eBuild.bins != nil {
		if err := os.RemoveAll(e2eBuild.bins.dir); err != nil {
			fmt.Fprintln(os.Stderr, "remove end-to-end test binaries:", err)
		}
	}
}

func e2eBuildAll() (*e2eBinaries, error) {
	b, err := e2ebuild.AgentAndFunction("slipstream-e2e-")
	if err != nil {
		return nil, err
	}
	return &e2eBinaries{dir: b.Dir, agent: b.Agent, function: b.Function}, nil
}

// e2eTail keeps the last max bytes written to it (the children's stderr,
// printed when a test fails).
type e2eTail struct {
	max int
	mu  sync.Mutex // guards buf
	buf []byte
}

func (w *e2eTail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = slices.Delete(w.buf, 0, over)
	}
	return len(p), nil
}

func (w *e2eTail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// e2eConfig is one environment of a test.
type e2eConfig struct {
	// endpoint is SLIPSTREAM_OTLP_ENDPOINT (required).
	endpoint string
	freeze   bool
	// lateReport delivers the telemetry pending at shutdown after SHUTDOWN.
	lateReport bool
	// timeout is the function timeout (default 3 s).
	timeout time.Duration
	// bufferBytes is the emulator's per-subscriber log buffer (0: its default).
	bufferBytes int
	// spillDir is SLIPSTREAM_SPILL_DIR (default: a new directory of the test).
	spillDir string
	// env holds extra variables for the function and the agent.
	env []string
	// receiverPort is SLIPSTREAM_RECEIVER_HTTP_PORT (default: a free port;
	// the gRPC receiver gets another). The example function's own
	// OpenTelemetry SDK is off (OTEL_SDK_DISABLED=true) unless env says
	// otherwise.
	receiverPort int
}

// e2eRun is one running environment: the emulator with the agent and the
// example function.
type e2eRun struct {
	t        *testing.T
	emu      *emulator.Emulator
	spillDir string
	stderr   *e2eTail
	// receiverPort is the agent's OTLP/HTTP receiver port.
	receiverPort int

	mu sync.Mutex // guards platform
	// platform holds every platform.* event the emulator produced, in order.
	platform []emulator.Event
}

// e2eStart starts the emulator with the agent exporting to c.endpoint and
// returns once the Init phase completed.
func e2eStart(ctx context.Context, t *testing.T, c e2eConfig) *e2eRun {
	t.Helper()
	bins := e2eBuilt(t)
	r := &e2eRun{t: t, spillDir: c.spillDir, stderr: &e2eTail{max: 64 << 10}, receiverPort: c.receiverPort}
	if r.spillDir == "" {
		r.spillDir = filepath.Join(t.TempDir(), "spill")
	}
	if r.receiverPort == 0 {
		r.receiverPort = e2eFreePort(t)
	}
	env := append([]string{
		"OTEL_SDK_DISABLED=true",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:" + strconv.Itoa(r.receiverPort),
		"SLIPSTREAM_RECEIVER_HTTP_PORT=" + strconv.Itoa(r.receiverPort),
		"SLIPSTREAM_RECEIVER_GRPC_PORT=" + strconv.Itoa(e2eFreePort(t)),
		"SLIPSTREAM_OTLP_ENDPOINT=" + c.endpoint,
		"SLIPSTREAM_LISTENER_PORT=0", // a free port, named in the subscription
		// Spill files must not leak from one test into the next agent.
		"SLIPSTREAM_SPILL_DIR=" + r.spillDir,
		"SLIPSTREAM_LOG_LEVEL=info",
	}, c.env...)
	sctx, cancel := context.WithTimeout(ctx, e2eStartTimeout)
	defer cancel()
	// InitTimeout: Lambda's 10 s init limit is not under test here; on a
	// busy machine (the race detector, other builds) exec and register can
	// take longer, and a failed init would say nothing about delivery.
	emu, err := emulator.Start(sctx, emulator.Config{
		Function:             bins.function,
		Extensions:           []string{bins.agent},
		FunctionName:         "slipstream-e2e",
		MemoryMB:             128,
		Timeout:              c.timeout,
		InitTimeout:          e2eStartTimeout,
		Freeze:               c.freeze,
		ReportAfterShutdown:  c.lateReport,
		TelemetrySupported:   true,
		TelemetryBufferBytes: c.bufferBytes,
		Stderr:               r.stderr,
		Env:                  env,
		OnEvent: func(ev emulator.Event) {
			if strings.HasPrefix(ev.Type, "platform.") {
				r.mu.Lock()
				r.platform = append(r.platform, ev)
				r.mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatalf("start the emulator: %v\nstderr of the children:\n%s", err, r.stderr)
	}
	r.emu = emu
	t.Cleanup(func() {
		// A test that failed half-way leaves the environment running.
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if _, err := emu.Shutdown(cctx, emulator.ReasonSpindown); err != nil && !errors.Is(err, emulator.ErrClosed) {
			t.Errorf("shut the emulator down: %v", err)
		}
		if t.Failed() {
			t.Logf("last stderr of the agent and the function:\n%s", r.stderr)
		}
	})
	return r
}

// invoke runs one invocation; an emulator error fails the test.
func (r *e2eRun) invoke(ctx context.Context, payload, traceHeader string) emulator.InvokeResult {
	r.t.Helper()
	res, err := r.emu.Invoke(ctx, []byte(payload), emulator.InvokeOptions{TraceHeader: traceHeader})
	if err != nil {
		r.t.Fatalf("invoke %s: %v", payload, err)
	}
	return res
}

// shutdown runs the Shutdown phase (reason spindown).
func (r *e2eRun) shutdown(ctx context.Context) emulator.ShutdownResult {
	r.t.Helper()
	res, err := r.emu.Shutdown(ctx, emulator.ReasonSpindown)
	if err != nil {
		r.t.Fatalf("shutdown: %v", err)
	}
	return res
}

// platformEvents returns the platform events of type typ produced so far.
func (r *e2eRun) platformEvents(typ string) []emulator.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []emulator.Event
	for _, ev := range r.platform {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// e2eRecord decodes the record of an encoded event into v.
func e2eRecord(t *testing.T, ev emulator.Event, v any) {
	t.Helper()
	var outer struct {
		Record json.RawMessage `json:"record"`
	}
	if err := json.Unmarshal(ev.JSON, &outer); err != nil {
		t.Fatalf("decode %s event: %v", ev.Type, err)
	}
	if err := json.Unmarshal(outer.Record, v); err != nil {
		t.Fatalf("decode %s record: %v", ev.Type, err)
	}
}

// e2eCheckExit fails the test unless the agent left on its own before the
// SHUTDOWN deadline: it was not SIGKILLed (a protocol fact, not a timing).
func e2eCheckExit(t *testing.T, res emulator.ShutdownResult) {
	t.Helper()
	if slices.Contains(res.Killed, e2eAgentName) {
		t.Errorf("the agent was SIGKILLed at the SHUTDOWN deadline (killed: %v)", res.Killed)
	}
	if _, ok := res.ExtensionExit[e2eAgentName]; !ok {
		t.Errorf("the agent did not receive SHUTDOWN (exits recorded: %v)", res.ExtensionExit)
	}
	t.Logf("the agent exited %v after SHUTDOWN", res.ExtensionExit[e2eAgentName])
}

// e2eSink starts a sink on addr ("" for an ephemeral port) and closes it
// when the test ends.
func e2eSink(t *testing.T, addr string, faults ...sink.Fault) (*sink.Sink, string) {
	t.Helper()
	s := sink.New(sink.Options{Faults: faults})
	endpoint, err := s.Start(addr)
	if err != nil {
		t.Fatalf("start the OTLP sink: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close the sink: %v", err)
		}
	})
	return s, endpoint
}

// e2eInvocationSpans groups the invocation (SERVER) spans by request ID,
// duplicates included.
func e2eInvocationSpans(snap *sink.Snapshot) map[string][]sink.SpanView {
	out := map[string][]sink.SpanView{}
	for _, sp := range snap.Spans() {
		if id, ok := sp.Attributes["faas.invocation_id"].(string); ok && sp.Kind == "Server" {
			out[id] = append(out[id], sp)
		}
	}
	return out
}

// e2ePostRuntimeSpans returns the postRuntime spans (the report's figures) by faas.invocation_id.
func e2ePostRuntimeSpans(snap *sink.Snapshot) map[string][]sink.SpanView {
	out := map[string][]sink.SpanView{}
	for _, sp := range snap.Spans() {
		if id, ok := sp.Attributes["faas.invocation_id"].(string); ok && sp.Name == "postRuntime" {
			out[id] = append(out[id], sp)
		}
	}
	return out
}

// e2eLogsByInvocation groups the function's log records by their
// faas.invocation_id (the agent's own lines, which the Telemetry API also
// delivers as extension logs during an invocation, are left out).
func e2eLogsByInvocation(snap *sink.Snapshot) map[string][]sink.LogView {
	out := map[string][]sink.LogView{}
	for _, lr := range snap.Logs() {
		id, ok := lr.Attributes["faas.invocation_id"].(string)
		if ok && lr.Attributes["slipstream.telemetry.type"] == "function" {
			out[id] = append(out[id], lr)
		}
	}
	return out
}

// e2eLogCopies counts, over ids, the log records that repeat a body already
// received for the same invocation, and the ids with fewer than want
// distinct records.
func e2eLogCopies(byID map[string][]sink.LogView, ids []string, want int) (dups int, missing []string) {
	for _, id := range ids {
		bodies := map[string]bool{}
		for _, lr := range byID[id] {
			if bodies[lr.Body] {
				dups++
			}
			bodies[lr.Body] = true
		}
		if len(bodies) < want {
			missing = append(missing, id)
		}
	}
	return dups, missing
}

// e2eHasSpans reports whether every request ID has its invocation span.
func e2eHasSpans(ids []string) func(*sink.Snapshot) bool {
	return func(snap *sink.Snapshot) bool {
		spans := e2eInvocationSpans(snap)
		for _, id := range ids {
			if len(spans[id]) == 0 {
				return false
			}
		}
		return true
	}
}

// e2eWait waits until cond holds at the sink, bounded by e2eSinkTimeout.
func e2eWait(ctx context.Context, t *testing.T, s *sink.Sink, what string, cond func(*sink.Snapshot) bool) bool {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, e2eSinkTimeout)
	defer cancel()
	if err := s.WaitFor(wctx, cond); err != nil {
		t.Errorf("waiting for %s: %v", what, err)
		return false
	}
	return true
}

// e2eDuplicates counts, over ids, how many items arrived beyond want and
// which ids have fewer.
func e2eDuplicates[V any](byID map[string][]V, ids []string, want int) (dups int, missing []string) {
	for _, id := range ids {
		n := len(byID[id])
		if n < want {
			missing = append(missing, id)
		} else {
			dups += n - want
		}
	}
	return dups, missing
}

// e2eResponseOK checks a successful invocation's response body.
func e2eResponseOK(res emulator.InvokeResult) error {
	if res.Status != emulator.StatusSuccess {
		return fmt.Errorf("status %s (%s): %s", res.Status, res.ErrorType, res.Response)
	}
	var body struct {
		RequestID string `json:"requestId"`
	}
	if err := json.Unmarshal(res.Response, &body); err != nil {
		return fmt.Errorf("response %q: %w", res.Response, err)
	}
	if body.RequestID != res.RequestID {
		return fmt.Errorf("response %s names request %q, want %q", res.Response, body.RequestID, res.RequestID)
	}
	return nil
}

// e2eSpillFiles lists the files the agent left in its spill directory.
func e2eSpillFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(path, dir+"/"))
		}
		return nil // a missing directory is an empty list
	})
	return out
}

// e2eMillis formats durations as milliseconds with one decimal.
func e2eMillis(ds []time.Duration) string {
	var b bytes.Buffer
	for i, d := range ds {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f", float64(d.Microseconds())/1000)
	}
	return b.String()
}
