//go:build e2e

package backends

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/emulator/e2e/e2ebuild"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// agentName is the agent's file name, hence its extension name.
const agentName = "slipstream"

// Bounds of the waits: deadlines for things that normally take
// milliseconds or a few seconds, never durations anything is expected to
// last.
const (
	startTimeout = 60 * time.Second // a backend or an environment becoming ready
	stopTimeout  = 30 * time.Second // a backend leaving after SIGTERM
	readTimeout  = 30 * time.Second // data becoming visible at a backend's query API
	pollEvery    = 100 * time.Millisecond
)

// TestMain removes the binaries built for the tests after all tests ran.
func TestMain(m *testing.M) {
	code := m.Run()
	if build.bins != nil {
		if err := os.RemoveAll(build.bins.dir); err != nil {
			fmt.Fprintln(os.Stderr, "remove test binaries:", err)
		}
	}
	os.Exit(code)
}

// moduleRoot is the agent module's directory.
var moduleRoot = e2ebuild.ModuleRoot

// tool returns the path of a backend program installed by `make tools`
// (in $SLIPSTREAM_TOOLS, default ./.tools) and skips the test when it is
// not there.
func tool(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("SLIPSTREAM_TOOLS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, ".tools")
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is not installed (%v): `make tools` builds it into ./.tools", name, err)
	}
	return path
}

// binaries are the agent and the example function, built once per run.
type binaries struct {
	dir      string
	agent    string // dir/extensions/slipstream
	function string // dir/bootstrap
}

var build struct {
	once sync.Once
	bins *binaries
	err  error
}

// built builds the agent and the example function the first time it is
// called, as the layer ships them (static, trimmed, stripped).
func built(t *testing.T) *binaries {
	t.Helper()
	build.once.Do(func() {
		b, err := e2ebuild.AgentAndFunction("slipstream-backends-")
		if err != nil {
			build.err = err
			return
		}
		build.bins = &binaries{dir: b.Dir, agent: b.Agent, function: b.Function}
	})
	if build.err != nil {
		t.Fatalf("build the agent and the example function: %v", build.err)
	}
	return build.bins
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("reserve a port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tail keeps the last max bytes written to it and closes ready the first
// time the kept output contains marker.
type tail struct {
	max    int
	marker []byte
	ready  chan struct{}

	mu     sync.Mutex // guards buf, closed
	buf    []byte
	closed bool
}

func newTail(marker string) *tail {
	return &tail{max: 256 << 10, marker: []byte(marker), ready: make(chan struct{})}
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if !w.closed && len(w.marker) > 0 && bytes.Contains(w.buf, w.marker) {
		w.closed = true
		close(w.ready)
	}
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = slices.Delete(w.buf, 0, over)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// backend is a running backend process.
type backend struct {
	name string
	out  *tail
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done closes
}

// startBackend runs path with args and returns once its output contains
// ready. The process gets SIGTERM when the test ends (or when stop is
// called) and its output is printed when the test failed.
func startBackend(ctx context.Context, t *testing.T, name, ready, path string, args ...string) *backend {
	t.Helper()
	b := &backend{name: name, out: newTail(ready), done: make(chan struct{})}
	b.cmd = exec.Command(path, args...)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("last output of %s:\n%s", name, b.out)
		}
	})
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	select {
	case <-b.out.ready:
		return b
	case <-b.done:
		t.Fatalf("%s exited before it was ready: %v\n%s", name, b.err, b.out)
	case <-sctx.Done():
		t.Fatalf("%s not ready (no %q in its output): %v\n%s", name, ready, sctx.Err(), b.out)
	}
	return nil
}

// stop sends SIGTERM and waits for the exit (SIGKILL after stopTimeout).
// It can be called more than once.
func (b *backend) stop() error {
	select {
	case <-b.done:
		return nil
	default:
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-b.done:
		var exit *exec.ExitError
		if errors.As(b.err, &exit) && exit.ExitCode() == -1 {
			return nil // ended by the signal
		}
		return b.err
	case <-time.After(stopTimeout):
		b.cmd.Process.Kill()
		<-b.done
		return fmt.Errorf("%s ignored SIGTERM for %v and was killed", b.name, stopTimeout)
	}
}

// writeFile writes a backend's config file into a directory of the test.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// envConfig is one Lambda execution environment of a test.
type envConfig struct {
	function string   // the function name (AWS_LAMBDA_FUNCTION_NAME); default "slipstream-backends"
	env      []string // variables for the agent and the function
}

// lambdaEnv is a running environment: the emulator with the agent and the
// example function.
type lambdaEnv struct {
	t      *testing.T
	emu    *emulator.Emulator
	stderr *tail
	closed bool
}

// startEnv starts the emulator with the agent and returns once the Init
// phase completed.
func startEnv(ctx context.Context, t *testing.T, c envConfig) *lambdaEnv {
	t.Helper()
	bins := built(t)
	e := &lambdaEnv{t: t, stderr: newTail("")}
	// Each environment gets receiver ports of its own (two environments
	// run side by side); the example function exports its own spans there.
	http, grpc := freePort(t), freePort(t)
	env := append([]string{
		"SLIPSTREAM_LISTENER_PORT=" + strconv.Itoa(freePort(t)),
		"SLIPSTREAM_RECEIVER_HTTP_PORT=" + strconv.Itoa(http),
		"SLIPSTREAM_RECEIVER_GRPC_PORT=" + strconv.Itoa(grpc),
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:" + strconv.Itoa(http),
		"SLIPSTREAM_SPILL_DIR=" + filepath.Join(t.TempDir(), "spill"),
		"SLIPSTREAM_LOG_LEVEL=info",
	}, c.env...)
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	emu, err := emulator.Start(sctx, emulator.Config{
		Function:           bins.function,
		Extensions:         []string{bins.agent},
		FunctionName:       cmp.Or(c.function, "slipstream-backends"),
		MemoryMB:           128,
		Timeout:            3 * time.Second,
		TelemetrySupported: true,
		// As Lambda does: the last invocation's report comes after SHUTDOWN.
		ReportAfterShutdown: true,
		Stderr:              e.stderr,
		Env:                 env,
	})
	if err != nil {
		t.Fatalf("start the emulator: %v\nstderr of the children:\n%s", err, e.stderr)
	}
	e.emu = emu
	t.Cleanup(func() {
		if !e.closed {
			cctx, ccancel := context.WithTimeout(context.Background(), stopTimeout)
			defer ccancel()
			if _, err := emu.Shutdown(cctx, emulator.ReasonSpindown); err != nil && !errors.Is(err, emulator.ErrClosed) {
				t.Errorf("shut the emulator down: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("last stderr of the agent and the function:\n%s", e.stderr)
		}
	})
	return e
}

// invoke runs one invocation and fails the test unless it ends with want.
func (e *lambdaEnv) invoke(ctx context.Context, payload, traceHeader string, want emulator.Status) emulator.InvokeResult {
	e.t.Helper()
	res, err := e.emu.Invoke(ctx, []byte(payload), emulator.InvokeOptions{TraceHeader: traceHeader})
	if err != nil {
		e.t.Fatalf("invoke %s: %v", payload, err)
	}
	if res.Status != want {
		e.t.Fatalf("invoke %s: status %s (%s), want %s; response %s", payload, res.Status, res.ErrorType, want, res.Response)
	}
	return res
}

// shutdown runs the Shutdown phase. With agentRunning (no reset since the
// last invocation), it fails the test unless the agent received SHUTDOWN
// and left on its own, having exported what it had.
func (e *lambdaEnv) shutdown(ctx context.Context, agentRunning bool) {
	e.t.Helper()
	res, err := e.emu.Shutdown(ctx, emulator.ReasonSpindown)
	e.closed = true
	if err != nil {
		e.t.Fatalf("shutdown: %v", err)
	}
	if slices.Contains(res.Killed, agentName) {
		e.t.Errorf("the agent was SIGKILLed at the SHUTDOWN deadline (killed: %v)", res.Killed)
	}
	if _, ok := res.ExtensionExit[agentName]; !ok && agentRunning {
		e.t.Errorf("the agent did not receive SHUTDOWN (exits recorded: %v)", res.ExtensionExit)
	}
}

// warnings returns the WARN and ERROR lines the agent logged (a refused or
// failed export among them).
func (e *lambdaEnv) warnings() []string {
	var out []string
	for _, line := range strings.Split(e.stderr.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
			out = append(out, line)
		}
	}
	return out
}

// xray is an X-Ray trace header's trace and parent IDs (hex, as OTLP has them).
type xray struct {
	traceID, parentID string
}

// newXRay returns a new sampled X-Ray trace context.
func newXRay() xray {
	var b [20]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	epoch := fmt.Sprintf("%08x", uint32(time.Now().Unix()))
	return xray{traceID: epoch + hex.EncodeToString(b[:12]), parentID: hex.EncodeToString(b[12:])}
}

// header is the X-Amzn-Trace-Id value.
func (x xray) header() string {
	return fmt.Sprintf("Root=1-%s-%s;Parent=%s;Sampled=1", x.traceID[:8], x.traceID[8:], x.parentID)
}

// eventually calls check until it reports done, an error, or readTimeout
// passes; the last detail is in the failure message.
func eventually(ctx context.Context, t *testing.T, what string, check func(context.Context) (done bool, detail string, err error)) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		done, detail, err := check(wctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if done {
			return
		}
		select {
		case <-wctx.Done():
			t.Fatalf("%s: not seen within %v; last: %s", what, readTimeout, detail)
		case <-tick.C:
		}
	}
}

// getJSON GETs url and decodes a 200 answer into v; it returns the status.
func getJSON(ctx context.Context, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w: %.200s", url, err, body)
	}
	return resp.StatusCode, nil
}

// testSink starts the built-in sink for the signals a test does not send to
// a real backend.
func testSink(t *testing.T) *sink.Sink {
	t.Helper()
	s := sink.New(sink.Options{})
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("start the OTLP sink: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close the sink: %v", err)
		}
	})
	return s
}
