// Command slipstream-demo is `make demo`: it builds the agent and the
// example function, runs them in the local Lambda emulator for a handful of
// varied invocations and a shutdown, with the agent exporting to the
// built-in OTLP sink, and prints what the platform measured, what arrived
// (one row per invocation, the trace trees, the metric values) and the
// agent's own log lines. Each run uses its own temporary directory, spill
// directory included, so one run never replays another's data.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// step is one scripted invocation.
type step struct {
	what    string
	payload string
	trace   string // X-Amzn-Trace-Id; "" gets a fresh sampled one, as Lambda gives with active tracing
}

var script = []step{
	{"succeed, joining the caller's X-Ray trace", `{"action":"succeed"}`, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"},
	{"write 3 text log lines", `{"action":"log","lines":3}`, ""},
	{"write 3 JSON log lines", `{"action":"json-log","lines":3}`, ""},
	{"return an error", `{"action":"error"}`, ""},
	{"allocate 48 MB", `{"action":"alloc","mb":48}`, ""},
	{"exceed the 2 s timeout", `{"action":"timeout"}`, ""},
	{"panic (the environment is reset)", `{"action":"panic"}`, ""},
	{"succeed, caller's trace not sampled", `{"action":"succeed"}`, "Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=0"},
}

func main() {
	agentLog := flag.String("agent-log", "", "file for a copy of the agent's and the function's own output")
	flag.Parse()
	if err := run(*agentLog, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(agentLog string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "slipstream-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintln(stdout, "==> building the agent and the example function (the first run downloads Go modules and takes longer)")
	agent := filepath.Join(dir, "extensions", "slipstream")
	function := filepath.Join(dir, "bootstrap")
	if err := build(ctx, "./cmd/slipstream", agent); err != nil {
		return err
	}
	if err := build(ctx, "./examples/function", function); err != nil {
		return err
	}

	// The children's output is kept (the agent's own lines are shown at
	// the end) and copied to -agent-log when given.
	var output lines
	var out io.Writer = &output
	if agentLog != "" {
		f, err := os.Create(agentLog)
		if err != nil {
			return err
		}
		defer f.Close()
		out = io.MultiWriter(&output, f)
	}

	s := sink.New(sink.Options{})
	endpoint, err := s.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start OTLP sink: %w", err)
	}
	defer s.Close(context.WithoutCancel(ctx))
	spill := filepath.Join(dir, "spill")

	fmt.Fprintf(stdout, "==> starting the emulator: the function + Slipstream, exporting to the sink at %s\n", endpoint)
	fmt.Fprintf(stdout, "    (spill directory %s: this run's own, removed at the end)\n\n", spill)
	emu, err := emulator.Start(ctx, emulator.Config{
		Function:           function,
		Extensions:         []string{agent},
		FunctionName:       "slipstream-demo",
		MemoryMB:           128,
		Timeout:            2 * time.Second,
		Freeze:             true,
		TelemetrySupported: true,
		Stdout:             out,
		Stderr:             out,
		Env: []string{
			"SLIPSTREAM_OTLP_ENDPOINT=" + endpoint,
			"SLIPSTREAM_LISTENER_PORT=0", // a free port, named in the subscription
			"SLIPSTREAM_SPILL_DIR=" + spill,
			"SLIPSTREAM_LOG_LEVEL=info",
		},
	})
	if err != nil {
		return fmt.Errorf("start emulator: %w", err)
	}

	var ran []invocation
	for i, st := range script {
		header := st.trace
		if header == "" {
			header = xrayHeader()
		}
		res, err := emu.Invoke(ctx, []byte(st.payload), emulator.InvokeOptions{TraceHeader: header})
		if err != nil {
			return fmt.Errorf("invoke %d: %w", i+1, err)
		}
		ran = append(ran, invocation{step: st, header: header, result: res})
	}
	printInvocations(stdout, ran)

	fmt.Fprintln(stdout, "\n==> shutting down (SHUTDOWN, reason spindown): the agent sends what is left")
	sres, err := emu.Shutdown(ctx, "spindown")
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	for name, d := range sres.ExtensionExit {
		fmt.Fprintf(stdout, "    %s exited %.0f ms after SHUTDOWN (budget 2000 ms)\n", name, float64(d.Microseconds())/1000)
	}
	if len(sres.Killed) > 0 {
		fmt.Fprintf(stdout, "    killed at the deadline: %v\n", sres.Killed)
	}

	// Everything is flushed before the agent exits; the wait only covers
	// requests still being decoded by the sink.
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	defer wcancel()
	ids := make([]string, len(ran))
	for i, r := range ran {
		ids[i] = r.result.RequestID
	}
	werr := s.WaitFor(wctx, func(snap *sink.Snapshot) bool { return hasAll(snap, ids) })
	snap := s.Snapshot()
	if err := printReceived(stdout, snap, ran); err != nil {
		return err
	}
	printAgentLines(stdout, output.agentLines())
	if werr != nil {
		return fmt.Errorf("not every invocation reached the sink: %w", werr)
	}
	return nil
}

// hasAll reports whether every request ID has its invocation span.
func hasAll(snap *sink.Snapshot, ids []string) bool {
	got := map[string]bool{}
	for _, inv := range snap.Invocations() {
		got[inv.RequestID] = true
	}
	for _, id := range ids {
		if !got[id] {
			return false
		}
	}
	return true
}

// xrayHeader returns a sampled X-Ray trace header with a fresh root and
// parent, as Lambda passes with active tracing
// (https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader).
func xrayHeader() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	h := hex.EncodeToString(b)
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=1", time.Now().Unix(), h[:24], h[24:])
}

// build compiles a package of this module as a static linux binary for the
// machine the demo runs on.
func build(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "grpcnotrace", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}
