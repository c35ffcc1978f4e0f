// Command slipstream is the Slipstream Lambda extension: attach it as a
// layer (it runs from /opt/extensions/slipstream) and it exports the
// function's Telemetry API data as OpenTelemetry.
//
// main only wires the packages together: it reads the configuration,
// registers with the Extensions API, starts the telemetry listener and the
// exporter, and runs the lifecycle loop until SHUTDOWN. It is the only
// place that exits.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/exporter"
	"github.com/slipstream-otel/slipstream/extension"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// apiTimeout bounds every Lambda API call except the /event/next long poll.
const apiTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Getenv, os.Stderr, filepath.Base(os.Args[0]))
	stop()
	os.Exit(code)
}

// run is the whole agent; it returns the process exit code.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer, name string) int {
	cfg := config.Load(getenv)
	log := newLogger(stderr, cfg.LogLevel)
	cfg.ApplyRuntime()
	for _, w := range cfg.Warnings {
		log.Warn("setting ignored, default used", "detail", w)
	}
	for _, p := range cfg.Problems {
		log.Error("invalid setting, export disabled", "detail", p)
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
	reg, err := client.Register(ctx, name, extension.EventsFor(cfg.ManagedInstances))
	if err != nil {
		log.Error("register extension", "error", err.Error())
		return 1
	}
	log.Debug("registered", "function_name", reg.FunctionName, "function_version", reg.FunctionVersion)

	if len(cfg.Problems) > 0 && cfg.StrictConfig {
		ierr := client.InitError(ctx, "Extension.ConfigInvalid", errors.New(strings.Join(cfg.Problems, "; ")))
		if ierr != nil {
			log.Error("report init error", "error", ierr.Error())
		}
		return 1
	}

	if !cfg.ExportEnabled {
		if cfg.Disabled {
			log.Info("SLIPSTREAM_DISABLED is set: following the lifecycle only")
		}
		_, err := extension.Run(ctx, client, idle{}, log)
		return exitCode(ctx, client, log, err)
	}

	pipeline, err := exporter.New(cfg, log, exporter.Options{AccountID: reg.AccountID})
	if err != nil {
		log.Error("build exporter, export disabled", "error", err.Error())
		_, err := extension.Run(ctx, client, idle{}, log)
		return exitCode(ctx, client, log, err)
	}

	listener := telemetry.NewListener(telemetry.ListenerConfig{
		Port:     cfg.ListenerPort,
		MaxBytes: cfg.TelemetryMaxBytes,
		Logger:   log,
	}, pipeline)
	uri, err := listener.Start()
	if err == nil {
		err = subscribe(ctx, hc, cfg, client.ID(), uri, log)
	} else {
		log.Warn("start telemetry listener failed: following the lifecycle without platform data", "error", err.Error())
	}
	if err != nil {
		// Without the Telemetry API there is nothing to export: follow the
		// lifecycle only, so the function is never held up by us.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
		if cerr := errors.Join(listener.Close(cctx), pipeline.Close(cctx)); cerr != nil {
			log.Warn("close", "error", cerr.Error())
		}
		cancel()
		_, err := extension.Run(ctx, client, idle{}, log)
		return exitCode(ctx, client, log, err)
	}

	// The worker runs until the lifecycle ends; the lifecycle ends at
	// SHUTDOWN (or when ctx is cancelled by a signal).
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	var g errgroup.Group
	g.Go(func() error { return pipeline.Run(workerCtx) })

	h := &agent{pipeline: pipeline, listener: listener, log: log}
	_, runErr := extension.Run(ctx, client, h, log)
	if !h.shutdown {
		// Signal or API failure without SHUTDOWN: close within a short budget.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		h.close(cctx)
		cancel()
	}
	stopWorker()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("exporter worker", "error", err.Error())
	}
	return exitCode(ctx, client, log, runErr)
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

// agent is the lifecycle handler of an exporting agent.
type agent struct {
	pipeline *exporter.Pipeline
	listener *telemetry.Listener
	log      *slog.Logger
	shutdown bool
}

func (a *agent) Invoke(ctx context.Context, ev extension.Event) { a.pipeline.Invoke(ctx, ev) }

// Shutdown keeps the listener open while the pipeline waits for the last
// invocation's report, then stops intake and flushes what is left.
func (a *agent) Shutdown(ctx context.Context, ev extension.Event) error {
	a.shutdown = true
	err := a.pipeline.Shutdown(ctx, ev)
	return errors.Join(err, a.listener.Close(ctx), a.pipeline.Close(ctx))
}

func (a *agent) close(ctx context.Context) {
	if err := errors.Join(a.listener.Close(ctx), a.pipeline.Close(ctx)); err != nil {
		a.log.Warn("close", "error", err.Error())
	}
}

// idle follows the lifecycle and does nothing else: export is off.
type idle struct{}

func (idle) Invoke(context.Context, extension.Event)         {}
func (idle) Shutdown(context.Context, extension.Event) error { return nil }

// exitCode reports an unexpected lifecycle failure through
// /extension/exit/error and maps it to the process exit code.
func exitCode(ctx context.Context, client *extension.Client, log *slog.Logger, err error) int {
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
