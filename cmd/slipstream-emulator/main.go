// Command slipstream-emulator runs a function and its extensions in a local
// Lambda execution environment with the Runtime, Extensions and Telemetry APIs
// (package emulator). It serves AWS's invoke endpoint on -addr until SIGINT or
// SIGTERM, or runs -invocations N at -rate R/s and prints a summary.
//
// The function and its extensions see only the variables Lambda sets and
// those given with -env K=V (repeatable), not this command's environment:
// -env SLIPSTREAM_OTLP_ENDPOINT=http://127.0.0.1:4318 points the agent at a
// collector. Unless -env sets SLIPSTREAM_SPILL_DIR, each run gets its own
// temporary spill directory, removed at exit, so that one run never replays
// another's unsent data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slipstream-otel/slipstream/emulator"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type options struct {
	cfg         emulator.Config
	invocations int
	rate        float64
	payload     string
	trace       string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	var exts, env multi
	fs := flag.NewFlagSet("slipstream-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.cfg.Function, "function", "", "path of the function bootstrap (required)")
	fs.Var(&exts, "extension", "path of an extension executable (repeatable)")
	fs.Var(&env, "env", "K=V variable for the function and the extensions, as in the function's configuration (repeatable)")
	fs.StringVar(&o.cfg.InvokeAddr, "addr", "127.0.0.1:9000", "invoke endpoint address (POST /2015-03-31/functions/function/invocations)")
	fs.StringVar(&o.cfg.RuntimeAddr, "runtime-addr", "127.0.0.1:0", "Runtime API address (never 9001 on a real host)")
	fs.StringVar(&o.cfg.FunctionName, "name", "function", "function name")
	fs.IntVar(&o.cfg.MemoryMB, "memory", 128, "memory size in MB")
	fs.DurationVar(&o.cfg.Timeout, "timeout", 3*time.Second, "function timeout")
	fs.DurationVar(&o.cfg.InitTimeout, "init-timeout", 10*time.Second, "init phase limit")
	noFreeze := fs.Bool("no-freeze", false, "do not SIGSTOP processes between invocations")
	noTelemetry := fs.Bool("no-telemetry", false, "answer 202 Telemetry.NotSupported like AWS's classic emulator")
	fs.IntVar(&o.invocations, "invocations", 0, "scripted mode: invoke N times, shut down and exit")
	fs.Float64Var(&o.rate, "rate", 10, "scripted mode: invocations per second (0 = back to back)")
	fs.StringVar(&o.payload, "payload", "{}", "scripted mode: JSON payload")
	fs.StringVar(&o.trace, "trace", "", "scripted mode: X-Amzn-Trace-Id header")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.cfg.Function == "" {
		return o, errors.New("-function is required")
	}
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return o, fmt.Errorf("-env %q: want K=V", kv)
		}
	}
	o.cfg.Extensions = exts
	o.cfg.Env = env
	o.cfg.Freeze = !*noFreeze
	o.cfg.TelemetrySupported = !*noTelemetry
	return o, nil
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	o, err := parse(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Error("bad flags", "error", err.Error())
		os.Exit(2)
	}
	o.cfg.Logger, o.cfg.Stdout, o.cfg.Stderr = log, os.Stdout, os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = runWithSpillDir(ctx, o, os.Stdout, log)
	stop()
	if err != nil {
		log.Error("emulator failed", "error", err.Error())
		os.Exit(1)
	}
}

// runWithSpillDir runs the environment with a spill directory of its own,
// removed afterwards, unless the variables name one.
func runWithSpillDir(ctx context.Context, o options, out io.Writer, log *slog.Logger) error {
	env, dir, err := withSpillDir(o.cfg.Env)
	if err != nil {
		return err
	}
	if dir != "" {
		defer os.RemoveAll(dir)
		log.Info("spill directory of this run", "dir", dir)
	}
	o.cfg.Env = env
	return run(ctx, o, out, log)
}

// withSpillDir returns env with SLIPSTREAM_SPILL_DIR set to a new
// temporary directory, and that directory, unless env sets it already
// (then env unchanged and "").
func withSpillDir(env []string) ([]string, string, error) {
	for _, kv := range env {
		if strings.HasPrefix(kv, "SLIPSTREAM_SPILL_DIR=") {
			return env, "", nil
		}
	}
	dir, err := os.MkdirTemp("", "slipstream-emulator-spill-")
	if err != nil {
		return nil, "", fmt.Errorf("spill directory: %w", err)
	}
	return append(slices.Clip(env), "SLIPSTREAM_SPILL_DIR="+dir), dir, nil
}

func run(ctx context.Context, o options, out io.Writer, log *slog.Logger) error {
	emu, err := emulator.Start(ctx, o.cfg)
	if err != nil {
		return err
	}
	log.Info("environment ready", "invoke_url", emu.InvokeURL(), "runtime_api", emu.RuntimeAPI())
	if o.invocations > 0 {
		scripted(ctx, emu, o, out)
	} else {
		<-ctx.Done()
	}
	res, err := emu.Shutdown(context.Background(), emulator.ReasonSpindown)
	for name, d := range res.ExtensionExit {
		fmt.Fprintf(out, "extension %s exited %s after SHUTDOWN\n", name, d.Round(time.Millisecond))
	}
	if len(res.Killed) > 0 {
		fmt.Fprintf(out, "killed: %s\n", strings.Join(res.Killed, ", "))
	}
	st := emu.Stats()
	fmt.Fprintf(out, "telemetry: %d POSTs, %d retries, %d events, %d dropped records, %d logsDropped\n",
		st.POSTs, st.Retries, st.Events, st.DroppedRecords, st.LogsDroppedEvents)
	return err
}

// scripted runs o.invocations invocations at o.rate and prints one line each.
func scripted(ctx context.Context, emu *emulator.Emulator, o options, out io.Writer) {
	var tick <-chan time.Time
	if o.rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.rate))
		defer t.Stop()
		tick = t.C
	}
	counts := map[emulator.Status]int{}
	for i := range o.invocations {
		if i > 0 && tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				return
			}
		}
		res, err := emu.Invoke(ctx, []byte(o.payload), emulator.InvokeOptions{TraceHeader: o.trace})
		if err != nil {
			fmt.Fprintf(out, "invoke %d: %v\n", i+1, err)
		}
		counts[res.Status]++
		fmt.Fprintf(out, "%s %-7s duration=%s billed=%s post_runtime=%s mem=%dMB init=%s\n", res.RequestID, res.Status,
			res.Duration.Round(time.Microsecond), res.BilledDuration, res.PostRuntime.Round(time.Microsecond), res.MaxMemoryUsedMB, res.InitDuration.Round(time.Microsecond))
	}
	fmt.Fprintf(out, "invocations: %d (%v)\n", o.invocations, counts)
}
