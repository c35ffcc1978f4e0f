package exporter

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/telemetry"
)

func TestBusyWorkerDoesNotStretchTheFlushBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		h, _ := synctestHarness(t, config.FlushEnd, col, knobs{})
		stall := make(chan struct{})
		col.InjectFault(sink.Fault{Stall: stall})
		h.run(t)
		ctx := context.Background()
		// a1's flush leaves the worker inside a stalled request (up to the
		// 2s request timeout).
		h.p.Enqueue(context.Background(), invocation("a1", 1, time.Now()))
		h.p.Invoke(ctx, invokeEvent("a1", time.Now().Add(time.Minute)))

		returned := make(chan time.Time, 1)
		go func() {
			h.p.Invoke(ctx, invokeEvent("a2", time.Now().Add(time.Minute)))
			returned <- time.Now()
		}()
		h.p.Enqueue(context.Background(), []telemetry.Event{start("a2", time.Now())})
		time.Sleep(100 * time.Millisecond) // the function runs
		arrived := time.Now()
		h.p.Enqueue(context.Background(), []telemetry.Event{runtimeDone("a2", arrived)})
		got := <-returned
		if d := got.Sub(arrived); d > 500*time.Millisecond {
			t.Errorf("Invoke returned %v after runtimeDone arrived, want at most FlushTimeout (500ms)", d)
		}
		close(stall)
	})
}

func TestInvokesWithoutPlatformEventsAreNotTracked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		rt := &memRT{backend: col}
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		cfg.TelemetryTypes = []string{"function"}
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}, NewMapper: realMapper})
		h.run(t)
		ctx := context.Background()
		for _, id := range []string{"i1", "i2", "i3"} {
			h.p.Invoke(ctx, invokeEvent(id, time.Now().Add(time.Minute)))
			h.p.Enqueue(context.Background(), []telemetry.Event{logLine(id+" says hi", time.Now())})
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if _, logs := received(col); logs["i2 says hi"] != 1 {
			t.Errorf("logs sent before SHUTDOWN = %v, want them sent while awake", logs)
		}
		t0 := time.Now()
		if err := h.p.Shutdown(ctx, shutdownEvent(t0.Add(2*time.Second), "spindown")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d != 0 {
			t.Errorf("Shutdown waited %v for reports that cannot come", d)
		}
		if st := h.p.tally(); st.Traces.Sent+st.Traces.Spilled != 0 {
			t.Errorf("%d phantom invocation spans (closed as errors at SHUTDOWN)", st.Traces.Sent+st.Traces.Spilled)
		}
		if _, logs := received(col); logs["i3 says hi"] != 1 {
			t.Errorf("logs = %v", logs)
		}
	})
}

func TestRuntimeDoneWaitingForAFullIntakeDoesNotHoldTheInvocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hold := make(chan struct{})
		nm := func(o signals.MapperOptions) (Mapper, error) {
			m, err := newFakeMapper(o)
			return holdingMapper{Mapper: m, id: "d1", hold: hold}, err
		}
		h, _ := synctestHarness(t, config.FlushEnd, sink.New(sink.Options{}), knobs{IntakeMaxBytes: 1000, NewMapper: nm})
		h.run(t)
		ctx := context.Background()
		// The worker is held mapping d1's start: the intake fills.
		h.p.Enqueue(context.Background(), []telemetry.Event{start("d1", time.Now())})
		synctest.Wait()
		returned := make(chan time.Time, 1)
		go func() {
			h.p.Invoke(ctx, invokeEvent("d2", time.Now().Add(10*time.Minute)))
			returned <- time.Now()
		}()
		big := start("d2", time.Now())
		big.Size = 700 // with d1's start (200, counted while it is mapped) the intake is nearly full
		h.p.Enqueue(context.Background(), []telemetry.Event{big})
		synctest.Wait()
		arrived := time.Now()
		enqueued := make(chan struct{})
		go func() {
			h.p.Enqueue(context.Background(), []telemetry.Event{runtimeDone("d2", arrived)})
			close(enqueued)
		}()
		if d := (<-returned).Sub(arrived); d > 500*time.Millisecond {
			t.Errorf("Invoke returned %v after its runtimeDone arrived, want at most FlushTimeout", d)
		}
		select {
		case <-enqueued:
			t.Fatal("Enqueue returned while the worker could not take the full intake")
		default:
		}
		close(hold)
		<-enqueued
		if st := h.p.tally(); st.IntakeDroppedPlatform != 0 || st.IntakeDroppedLogs != 0 || st.IntakeWaits != 1 {
			t.Errorf("intake drops %d/%d, waits %d; want none dropped and one wait", st.IntakeDroppedLogs, st.IntakeDroppedPlatform, st.IntakeWaits)
		}
	})
}
