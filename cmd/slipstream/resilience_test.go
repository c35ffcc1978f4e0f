package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/extension"
	"github.com/slipstream-otel/slipstream/internal/leaktest"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// fakePipe stands in for the exporter. Its methods panic when named in
// panics; Run blocks until ctx ends or Close is called, unless stuck is
// set, when it blocks on stuck alone (an export hanging on a dead backend).
type fakePipe struct {
	panics   map[string]bool
	stuck    chan struct{}
	shutdown func(ctx context.Context) error

	running   chan struct{} // closed when Run starts
	exited    chan struct{} // closed when Run returns
	stop      chan struct{}
	stopOnce  sync.Once
	invokes   atomic.Int32
	enqueued  atomic.Int32
	shutdowns atomic.Int32
}

func newFakePipe(panics ...string) *fakePipe {
	f := &fakePipe{panics: map[string]bool{}, running: make(chan struct{}), exited: make(chan struct{}), stop: make(chan struct{})}
	for _, p := range panics {
		f.panics[p] = true
	}
	return f
}

func (f *fakePipe) maybePanic(op string) {
	if f.panics[op] {
		panic("fake exporter: " + op)
	}
}

func (f *fakePipe) Enqueue(_ context.Context, events []telemetry.Event) {
	f.enqueued.Add(int32(len(events)))
	f.maybePanic("enqueue")
}

func (f *fakePipe) Invoke(context.Context, extension.Event) {
	f.invokes.Add(1)
	f.maybePanic("invoke")
}

func (f *fakePipe) Shutdown(ctx context.Context, _ extension.ShutdownPlan) error {
	f.shutdowns.Add(1)
	f.maybePanic("shutdown")
	if f.shutdown != nil {
		return f.shutdown(ctx)
	}
	return nil
}

func (f *fakePipe) Run(ctx context.Context) error {
	close(f.running)
	defer close(f.exited)
	f.maybePanic("run")
	if f.stuck != nil {
		<-f.stuck
		return nil
	}
	select {
	case <-ctx.Done():
	case <-f.stop:
	}
	return nil
}

func (f *fakePipe) Close(context.Context) error {
	f.stopOnce.Do(func() { close(f.stop) })
	f.maybePanic("close")
	return nil
}

func (f *fakePipe) build(*config.Config, *slog.Logger, string) (pipe, error) { return f, nil }

// checkNoAgentGoroutines fails t when goroutines running the agent's code
// (its packages, outside test files) or the OpenTelemetry SDK's are still
// there once they have had a while to end after run returned.
func checkNoAgentGoroutines(t *testing.T) {
	t.Helper()
	leaktest.Check(t, "github.com/slipstream-otel/slipstream/...", "go.opentelemetry.io/otel/sdk/...")
}

func TestRunContainsExporterPanics(t *testing.T) {
	for _, op := range []string{"run", "invoke", "enqueue", "shutdown", "close"} {
		t.Run("a panic in the exporter's "+op+" is logged once and the lifecycle ends cleanly", func(t *testing.T) {
			f, api := newFakeLambda(t, invokeEvent("r1"), invokeEvent("r2"), shutdownEvent("spindown"))
			f.release = make(chan struct{})
			pipe := newFakePipe(op)
			var stderr bytes.Buffer
			done := make(chan int)
			go func() {
				done <- runWith(context.Background(), envFrom(map[string]string{
					"AWS_LAMBDA_RUNTIME_API":   api,
					"SLIPSTREAM_LISTENER_PORT": "0",
				}), &stderr, "slipstream", pipe.build)
			}()
			<-f.subscribed
			<-pipe.running
			batch := `[{"time":"2026-11-26T00:00:00.000Z","type":"function","record":"hello"}]`
			if code := postBatch(t, f.listenerURL(t), batch); code != http.StatusOK {
				t.Errorf("listener answered %d", code)
			}
			close(f.release)
			if code := <-done; code != 0 {
				t.Fatalf("exit code %d; log:\n%s", code, stderr.String())
			}
			errs := countLevel(logLines(t, stderr.Bytes()), "ERROR")
			if len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "panicked") {
				t.Errorf("want one ERROR line about the panic, got %v", errs)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.nextCalls != 3 || len(f.exitErrors) != 0 || len(f.initErrors) != 0 {
				t.Errorf("next calls %d, exit errors %v, init errors %v; want 3 and none", f.nextCalls, f.exitErrors, f.initErrors)
			}
			checkNoAgentGoroutines(t)
		})
	}
	t.Run("a panic while building the exporter leaves the lifecycle running", func(t *testing.T) {
		f, api := newFakeLambda(t, invokeEvent("r1"), shutdownEvent("spindown"))
		var stderr bytes.Buffer
		code := runWith(context.Background(), envFrom(map[string]string{"AWS_LAMBDA_RUNTIME_API": api}), &stderr, "slipstream",
			func(*config.Config, *slog.Logger, string) (pipe, error) { panic("fake exporter: new") })
		if code != 0 {
			t.Fatalf("exit code %d; log:\n%s", code, stderr.String())
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.nextCalls != 2 {
			t.Errorf("next calls %d, want 2", f.nextCalls)
		}
	})
}

func TestRunShutdownAlwaysExitsCleanlyBeforeTheDeadline(t *testing.T) {
	tests := []struct {
		name string
		pipe func() *fakePipe
	}{
		{"a final flush cut by a deadline already past is a warning, not exit/error", func() *fakePipe {
			p := newFakePipe()
			p.shutdown = func(ctx context.Context) error {
				<-ctx.Done()
				return fmt.Errorf("exporter: shutdown: %w", ctx.Err())
			}
			return p
		}},
		{"a worker stuck in an export does not hold the exit", func() *fakePipe {
			p := newFakePipe()
			p.stuck = make(chan struct{})
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd := shutdownEvent("spindown")
			sd["deadlineMs"] = time.Now().Add(-time.Second).UnixMilli()
			f, api := newFakeLambda(t, invokeEvent("r1"), sd)
			pipe := tt.pipe()
			if pipe.stuck != nil {
				defer func() { close(pipe.stuck); <-pipe.exited }()
			}
			var stderr bytes.Buffer
			code := runWith(context.Background(), envFrom(map[string]string{
				"AWS_LAMBDA_RUNTIME_API":   api,
				"SLIPSTREAM_LISTENER_PORT": "0",
			}), &stderr, "slipstream", pipe.build)
			if code != 0 {
				t.Errorf("exit code %d, want 0; log:\n%s", code, stderr.String())
			}
			if e := countLevel(logLines(t, stderr.Bytes()), "ERROR"); len(e) != 0 {
				t.Errorf("ERROR lines after a SHUTDOWN: %v", e)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.exitErrors) != 0 {
				t.Errorf("exit errors %v after SHUTDOWN", f.exitErrors)
			}
			if pipe.shutdowns.Load() != 1 {
				t.Errorf("pipeline Shutdown called %d times", pipe.shutdowns.Load())
			}
		})
	}
}

func TestRunStopsCleanlyOnSIGTERM(t *testing.T) {
	t.Run("a signal during the long poll closes intake and exits 0 without exit/error", func(t *testing.T) {
		f, api := newFakeLambda(t, invokeEvent("r1"))
		pipe := newFakePipe()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var stderr bytes.Buffer
		done := make(chan int)
		go func() {
			done <- runWith(ctx, envFrom(map[string]string{
				"AWS_LAMBDA_RUNTIME_API":   api,
				"SLIPSTREAM_LISTENER_PORT": "0",
			}), &stderr, "slipstream", pipe.build)
		}()
		<-f.subscribed
		<-pipe.running
		cancel() // what signal.NotifyContext does on SIGTERM
		if code := <-done; code != 0 {
			t.Fatalf("exit code %d; log:\n%s", code, stderr.String())
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.exitErrors) != 0 {
			t.Errorf("exit errors %v", f.exitErrors)
		}
		checkNoAgentGoroutines(t)
	})
}
