// Command slipstream-demo is `make demo`: it builds the agent and the
// example function, runs them in the local Lambda emulator for a handful of
// varied invocations and a shutdown, with the agent exporting to the
// built-in OTLP sink, and prints what arrived as one row per invocation.
package main

import (
	"context"
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
	trace   string
}

var script = []step{
	{"succeed, joining the caller's X-Ray trace", `{"action":"succeed"}`, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"},
	{"write 3 text log lines", `{"action":"log","lines":3}`, ""},
	{"write 3 JSON log lines", `{"action":"json-log","lines":3}`, ""},
	{"return an error", `{"action":"error"}`, ""},
	{"allocate 48 MB", `{"action":"alloc","mb":48}`, ""},
	{"exceed the 2 s timeout", `{"action":"timeout"}`, ""},
	{"panic (the environment is reset)", `{"action":"panic"}`, ""},
	{"succeed again", `{"action":"succeed"}`, "Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=0"},
}

func main() {
	agentLog := flag.String("agent-log", "", "file for the agent's and function's own output (default: discarded)")
	flag.Parse()
	if err := run(*agentLog); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(agentLog string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "slipstream-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Println("==> building the agent and the example function (the first run downloads Go modules and takes longer)")
	agent := filepath.Join(dir, "extensions", "slipstream")
	function := filepath.Join(dir, "bootstrap")
	if err := build(ctx, "./cmd/slipstream", agent); err != nil {
		return err
	}
	if err := build(ctx, "./examples/function", function); err != nil {
		return err
	}

	var out io.Writer = io.Discard
	if agentLog != "" {
		f, err := os.Create(agentLog)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}

	s := sink.New(sink.Options{})
	endpoint, err := s.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start OTLP sink: %w", err)
	}
	defer s.Close(context.WithoutCancel(ctx))

	fmt.Printf("==> starting the emulator: function + Slipstream, exporting to the sink at %s\n", endpoint)
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
			"SLIPSTREAM_LOG_LEVEL=info",
		},
	})
	if err != nil {
		return fmt.Errorf("start emulator: %w", err)
	}

	var ids []string
	for i, st := range script {
		res, err := emu.Invoke(ctx, []byte(st.payload), emulator.InvokeOptions{TraceHeader: st.trace})
		if err != nil {
			return fmt.Errorf("invoke %d: %w", i+1, err)
		}
		ids = append(ids, res.RequestID)
		fmt.Printf("    invoke %d: %-45s -> %-8s %6.1f ms\n", i+1, st.what, res.Status, float64(res.Duration.Microseconds())/1000)
	}

	fmt.Println("==> shutting down (SHUTDOWN spindown): the agent sends what is left")
	sres, err := emu.Shutdown(ctx, "spindown")
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	for name, d := range sres.ExtensionExit {
		fmt.Printf("    %s exited %.0f ms after SHUTDOWN (budget 2000 ms)\n", name, float64(d.Microseconds())/1000)
	}
	if len(sres.Killed) > 0 {
		fmt.Printf("    killed at the deadline: %v\n", sres.Killed)
	}

	// Everything is flushed before the agent exits; the wait only covers
	// requests still being decoded by the sink.
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	defer wcancel()
	err = s.WaitFor(wctx, func(snap *sink.Snapshot) bool { return hasAll(snap, ids) })
	fmt.Printf("\n==> what the OTLP sink received\n\n")
	if terr := s.Table(os.Stdout); terr != nil {
		return terr
	}
	fmt.Println(`
"-" in BILLED and MEMORY: under the default SLIPSTREAM_FLUSH=adaptive, the first invocation
after an init waits for its runtimeDone and sends its span right away; Lambda creates the
report (billed duration, memory) only after that, so those figures arrive as metrics.`)
	if err != nil {
		return fmt.Errorf("not every invocation reached the sink: %w", err)
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
