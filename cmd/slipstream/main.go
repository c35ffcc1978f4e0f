// Command slipstream is the Slipstream Lambda extension: attach it as a
// layer (it runs from /opt/extensions/slipstream) and it exports the
// function's Telemetry API data as OpenTelemetry.
//
// main only wires the packages together: it reads the configuration,
// registers with the Extensions API, starts the telemetry listener and the
// exporter, and runs the lifecycle loop until SHUTDOWN. It is the only
// place that exits.
//
// Slipstream must never be the reason a function fails: an invalid
// setting falls back to its default or switches off the signals it
// applies to (see package config); an unavailable Telemetry API or an
// exporter that cannot be built leave the agent following the lifecycle
// without exporting; a panic
// in the exporter (worker goroutine, INVOKE, SHUTDOWN or the listener's
// sink) is logged once and switches export off; after SHUTDOWN the exit
// code is always 0 and the agent never waits past the deadline for a busy
// worker.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/exporter"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/extension"
	"github.com/slipstream-otel/slipstream/receiver"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// version is telemetry.distro.version; release builds set it with
// -ldflags "-X main.version=...".
var version = signals.DefaultVersion

// apiTimeout bounds every Lambda API call except the /event/next long poll.
const apiTimeout = 5 * time.Second

func main() {
	if printVersion(os.Args[1:], os.Stdout) {
		os.Exit(0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	stopProfile := startProfile()
	code := run(ctx, os.Environ(), os.Stderr, filepath.Base(os.Args[0]))
	stopProfile()
	stop()
	os.Exit(code)
}

// printVersion writes the version to w when args ask for it (--version,
// as Lambda never passes arguments to an extension) and reports whether it did.
func printVersion(args []string, w io.Writer) bool {
	if len(args) != 1 || (args[0] != "--version" && args[0] != "-version") {
		return false
	}
	fmt.Fprintln(w, "slipstream", version)
	return true
}

// pipe is what the agent uses of the exporter: *exporter.Pipeline, a
// fake in tests.
type pipe interface {
	telemetry.Sink
	extension.Handler
	// Run is the worker goroutine; Close stops it.
	Run(ctx context.Context) error
	Close(ctx context.Context) error
}

// newPipelineFunc builds the exporter for run.
type newPipelineFunc func(cfg *config.Config, log *slog.Logger, accountID string) (pipe, error)

func newPipeline(cfg *config.Config, log *slog.Logger, accountID string) (pipe, error) {
	p, err := exporter.New(cfg, log, exporter.Options{AccountID: accountID, Version: version})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// run is the whole agent, configured from environ (os.Environ's
// KEY=value list); it returns the process exit code.
func run(ctx context.Context, environ []string, stderr io.Writer, name string) int {
	return runWith(ctx, environ, stderr, name, newPipeline)
}

// runWith is run with the exporter's constructor injected (tests pass a
// fake that panics or stalls).
func runWith(ctx context.Context, environ []string, stderr io.Writer, name string, build newPipelineFunc) int {
	cfg := config.LoadEnviron(environ)
	log := newLogger(stderr, cfg.LogLevel)
	cfg.ApplyRuntime()
	// Each line names the variable and says what happens instead.
	for _, p := range cfg.Problems {
		log.Error("invalid setting", "detail", p)
	}
	for _, w := range cfg.Warnings {
		log.Warn("setting not applied as given", "detail", w)
	}
	for _, n := range cfg.Notices {
		log.Info("setting", "detail", n)
	}
	if loop := cfg.RefuseReceiverLoop(); loop != "" {
		log.Error("no export endpoint set", "detail", loop)
	}
	started := func(subscription string) {
		log.Info("slipstream started", "version", version, "subscription", subscription, "config", cfg)
	}
	if cfg.RuntimeAPI == "" {
		log.Error("AWS_LAMBDA_RUNTIME_API is not set: not running inside Lambda")
		return 1
	}

	// The Lambda APIs are local: never route them through a proxy the
	// function configured for itself (HTTP_PROXY is shared with us).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	hc := &http.Client{Timeout: apiTimeout, Transport: tr}
	client := extension.NewClient(cfg.RuntimeAPI, hc)
	// The receiver's sockets are bound before registering: registering
	// lets Lambda start the runtime, whose init may already export.
	recv := bindReceiver(cfg, log)
	reg, err := client.Register(ctx, name, extension.EventsFor(cfg.ManagedInstances))
	if err != nil {
		log.Error("register extension", "error", err.Error())
		closeUnserved(recv)
		return 1
	}
	log.Debug("registered", "function_name", reg.FunctionName, "function_version", reg.FunctionVersion)

	if len(cfg.Problems) > 0 && cfg.StrictConfig {
		ierr := client.InitError(ctx, "Extension.ConfigInvalid", errors.New(strings.Join(cfg.Problems, "; ")))
		if ierr != nil {
			log.Error("report init error", "error", ierr.Error())
		}
		closeUnserved(recv)
		return 1
	}

	if !cfg.ExportEnabled {
		started("none: export off")
		return followIdle(ctx, client, log)
	}

	pipeline, err := buildSafely(build, cfg, log, reg.AccountID)
	if err != nil {
		log.Error("build exporter, export disabled", "error", err.Error())
		closeUnserved(recv)
		started("none: exporter not built")
		return followIdle(ctx, client, log)
	}

	a := &agent{pipeline: pipeline, log: log}
	if acc, ok := pipeline.(otlpAcceptor); ok && recv != nil {
		a.recv = recv
		recv.Serve(functionSink{a: a, acc: acc})
	} else {
		closeUnserved(recv)
	}
	a.listener = telemetry.NewListener(telemetry.ListenerConfig{
		Port:       cfg.ListenerPort,
		MaxBytes:   cfg.TelemetryMaxBytes,
		Logger:     log,
		SpoolDir:   cfg.SpillDir,
		SpoolBytes: cfg.SpoolMaxBytes,
	}, a)
	uri, err := a.listener.Start()
	if err == nil {
		err = subscribe(ctx, hc, cfg, client.ID(), uri, log)
	} else {
		log.Warn("start telemetry listener failed: following the lifecycle without platform data", "error", err.Error())
	}
	outcome := "subscribed"
	if err != nil {
		outcome = "failed: following the lifecycle only"
	}
	started(outcome)
	if err != nil {
		// Without the Telemetry API there is nothing to export: follow the
		// lifecycle only, so the function is never held up by us.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
		a.close(cctx)
		cancel()
		return followIdle(ctx, client, log)
	}

	// The worker runs until the lifecycle ends; the lifecycle ends at
	// SHUTDOWN (or when ctx is cancelled by a signal). A panic in the
	// worker switches export off; the lifecycle goes on.
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	var g errgroup.Group
	g.Go(func() error {
		defer a.contain("exporter worker")
		return pipeline.Run(workerCtx)
	})

	ev, runErr := extension.Run(ctx, client, a, log)
	deadline := a.deadline
	if !a.shutdown {
		// Signal or API failure without SHUTDOWN: close within a short budget.
		deadline = time.Now().Add(time.Second)
		cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		a.close(cctx)
		cancel()
	}
	stopWorker()
	waitWorker(&g, deadline, log)
	return finish(ctx, client, log, ev, runErr)
}

// buildSafely calls build, turning a panic into an error: a failure to
// build the exporter switches export off, it never fails init.
func buildSafely(build newPipelineFunc, cfg *config.Config, log *slog.Logger, accountID string) (p pipe, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return build(cfg, log, accountID)
}

// followIdle follows the lifecycle without exporting.
func followIdle(ctx context.Context, client *extension.Client, log *slog.Logger) int {
	ev, err := extension.Run(ctx, client, idle{}, log)
	return finish(ctx, client, log, ev, err)
}

// waitWorker waits for the exporter worker until deadline (at least
// extension.MinShutdownBudget from now). A worker still busy then (an
// export stuck on a slow backend) is left behind: the process exits
// before the platform's SHUTDOWN deadline rather than wait for it.
func waitWorker(g *errgroup.Group, deadline time.Time, log *slog.Logger) {
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	if earliest := time.Now().Add(extension.MinShutdownBudget); deadline.Before(earliest) {
		deadline = earliest
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error("exporter worker", "error", err.Error())
		}
	case <-t.C:
		log.Warn("exporter worker still busy at the shutdown deadline: exiting without it")
	}
}

// subscribe subscribes to the Telemetry API. Telemetry being unavailable
// (local emulators, closed subscription) is one warning, never fatal.
func subscribe(ctx context.Context, hc *http.Client, cfg *config.Config, id, uri string, log *slog.Logger) error {
	schema, err := telemetry.Subscribe(ctx, hc, cfg.RuntimeAPI, id, telemetry.Subscription{
		Types:     cfg.TelemetryTypes,
		MaxItems:  cfg.TelemetryMaxItems,
		MaxBytes:  cfg.TelemetryMaxBytes,
		TimeoutMs: cfg.TelemetryTimeoutMs,
		URI:       uri,
	})
	switch {
	case errors.Is(err, telemetry.ErrNotSupported):
		log.Warn("Telemetry API unavailable: following the lifecycle without platform data", "error", err.Error())
	case err != nil:
		log.Warn("subscribe to the Telemetry API failed: following the lifecycle without platform data", "error", err.Error())
	default:
		log.Debug("subscribed", "schema_version", schema, "uri", uri)
	}
	return err
}

// agent is the lifecycle handler of an exporting agent and the listener's
// sink. It contains panics of the exporter: the first one is logged as one
// ERROR line and switches export off; the agent then only follows the
// lifecycle, so Slipstream is never the reason a function fails.
type agent struct {
	pipeline pipe
	listener *telemetry.Listener
	log      *slog.Logger
	// off is set once the exporter panicked.
	off atomic.Bool

	// recv is the local OTLP receiver (nil when none is bound); recvOnce
	// closes it once.
	recv     *receiver.Receiver
	recvOnce sync.Once

	// shutdown and deadline are set by Shutdown and read after
	// extension.Run returned, on the same goroutine.
	shutdown bool
	deadline time.Time
}

// contain recovers a panic of the exporter; deferred by every call into it.
func (a *agent) contain(op string) {
	if r := recover(); r != nil {
		if a.off.CompareAndSwap(false, true) {
			a.log.Error("exporter panicked: export switched off, following the lifecycle only",
				"operation", op, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}
}

// guard runs f, containing a panic (reported as a nil error: it is logged).
func (a *agent) guard(op string, f func() error) error {
	if a.off.Load() {
		return nil
	}
	defer a.contain(op)
	return f()
}

// Enqueue is the listener's sink: it forwards to the exporter's queue
// while export is on.
func (a *agent) Enqueue(ctx context.Context, events []telemetry.Event) {
	if a.off.Load() {
		return
	}
	defer a.contain("enqueue")
	a.pipeline.Enqueue(ctx, events)
}

// Invoke hands the INVOKE to the exporter while export is on.
func (a *agent) Invoke(ctx context.Context, ev extension.Event) {
	if a.off.Load() {
		return
	}
	defer a.contain("invoke")
	a.pipeline.Invoke(ctx, ev)
}

// Shutdown keeps the listener open while the pipeline waits for the last
// invocation's report, then stops intake and flushes what is left.
func (a *agent) Shutdown(ctx context.Context, plan extension.ShutdownPlan) error {
	a.shutdown = true
	a.deadline = plan.Close
	// The receiver takes what the function's SIGTERM handler sends until
	// the plan's Drain; the final flush starts no earlier.
	drained := a.closeReceiverAt(ctx, plan.Drain, plan.Flush)
	err := a.guard("shutdown", func() error { return a.pipeline.Shutdown(ctx, plan) })
	<-drained
	err = errors.Join(err, a.listener.Close(ctx), a.guard("close", func() error { return a.pipeline.Close(ctx) }))
	a.intakeSummary()
	return err
}

// intakeSummary logs the listener's counters once, at the end: at WARN
// when a body was refused, had to wait (Lambda may then have dropped
// records) or was abandoned, at DEBUG otherwise.
func (a *agent) intakeSummary() {
	st := a.listener.Stats()
	level := slog.LevelDebug
	if st.Rejected4xx > 0 || st.Waited > 0 || st.Abandoned > 0 || st.FragmentsUnjoined > 0 {
		level = slog.LevelWarn
	}
	a.log.Log(context.Background(), level, "telemetry intake summary",
		"bodies", st.Batches, "events", st.Events, "bytes", st.Bytes, "bad_events", st.BadEvents,
		"rejected", st.Rejected4xx, "waited", st.Waited, "spooled", st.Spooled, "spooled_bytes", st.SpooledBytes,
		"abandoned", st.Abandoned, "fragments_joined", st.FragmentsJoined, "fragments_unjoined", st.FragmentsUnjoined)
}

func (a *agent) close(ctx context.Context) {
	a.closeReceiver(ctx)
	err := errors.Join(a.listener.Close(ctx), a.guard("close", func() error { return a.pipeline.Close(ctx) }))
	a.intakeSummary()
	if err != nil {
		a.log.Warn("close", "error", err.Error())
	}
}

// idle follows the lifecycle and does nothing else: export is off.
type idle struct{}

func (idle) Invoke(context.Context, extension.Event)                {}
func (idle) Shutdown(context.Context, extension.ShutdownPlan) error { return nil }

// finish maps the end of the lifecycle to the process exit code. After
// SHUTDOWN the exit is always clean: an incomplete final flush (a slow
// backend, a deadline already past) is a warning, never /exit/error nor a
// non-zero exit. A signal is a requested stop. Any other lifecycle failure
// is reported through /extension/exit/error and exits 1.
func finish(ctx context.Context, client *extension.Client, log *slog.Logger, ev extension.Event, err error) int {
	if ev.Type == extension.Shutdown {
		if err != nil {
			log.Warn("shutdown incomplete", "error", err.Error())
		}
		return 0
	}
	if err == nil || ctx.Err() != nil {
		return 0
	}
	log.Error("lifecycle", "error", err.Error())
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	defer cancel()
	if xerr := client.ExitError(ectx, "Extension.UnknownReason", err); xerr != nil {
		log.Error("report exit error", "error", xerr.Error())
	}
	return 1
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})).With("extension", "slipstream")
}
