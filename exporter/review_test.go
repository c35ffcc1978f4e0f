package exporter

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// The export budget of an end-mode invocation runs from the arrival of its
// runtimeDone, not from when the worker gets to it: a worker held by a
// slow request of an earlier flush must not hold the invocation longer
// than FlushTimeout after the runtime finished.
func TestBusyWorkerDoesNotStretchTheFlushBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := newCollector()
		h, rt := synctestHarness(t, config.FlushEnd, col, knobs{})
		stall := make(chan struct{})
		rt.setRefuse(func(req *http.Request) error {
			select {
			case <-stall:
				return nil
			case <-req.Context().Done():
				return req.Context().Err()
			}
		})
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

// Close may be called again (main's error paths), and before Run ever
// ran: it must not hang.
func TestCloseTwiceWithoutRunReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := synctestHarness(t, config.FlushAsync, newCollector(), knobs{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 2 {
				if err := h.p.Close(context.Background()); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
			// Callers waiting on the worker return as well.
			h.p.Invoke(context.Background(), invokeEvent("x", time.Now().Add(time.Minute)))
			if err := h.p.Shutdown(context.Background(), shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err == nil {
				t.Error("Shutdown after Close: want an error")
			}
		}()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Close called twice without Run hangs")
		}
	})
}

// Without platform events no invocation ever starts or ends: INVOKEs must
// not leave open invocations that SHUTDOWN waits for and then reports as
// errors.
func TestInvokesWithoutPlatformEventsAreNotTracked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := newCollector()
		rt := &memRT{h: col}
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
		if _, logs, _ := col.snapshot(); logs["i2 says hi"] != 1 {
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
		if _, logs, _ := col.snapshot(); logs["i3 says hi"] != 1 {
			t.Errorf("logs = %v", logs)
		}
	})
}

// Typed nil records (a decoder bug) never panic the worker.
func TestTypedNilRecordsDoNotPanicTheWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := synctestHarness(t, config.FlushAsync, newCollector(), knobs{NewMapper: realMapper})
		h.run(t)
		h.p.Enqueue(context.Background(), []telemetry.Event{
			{Time: time.Now(), Type: telemetry.TypeStart, Record: (*telemetry.Start)(nil)},
			{Time: time.Now(), Type: telemetry.TypeRuntimeDone, Record: (*telemetry.RuntimeDone)(nil)},
			{Time: time.Now(), Type: telemetry.TypeReport, Record: (*telemetry.Report)(nil)},
			{Time: time.Now(), Type: telemetry.TypeInitStart, Record: (*telemetry.InitStart)(nil)},
			{Time: time.Now(), Type: "platform.future", Raw: []byte(`{}`)},
		})
		time.Sleep(time.Second)
		synctest.Wait()
		if err := h.p.Shutdown(context.Background(), shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
			t.Fatal(err)
		}
	})
}

// Metrics that cannot be sent by the SHUTDOWN deadline are spilled; with
// spill off they must at least be counted as dropped, never lost silently.
func TestUnsentMetricsAtShutdownAreSpilledOrCountedDropped(t *testing.T) {
	for _, spillOn := range []bool{true, false} {
		t.Run(fmt.Sprintf("spill %v", spillOn), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
				if !spillOn {
					cfg.SpillMaxBytes = 0
				}
				rt := &memRT{h: newCollector(), refuse: func(*http.Request) error { return errRefused }}
				h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}})
				h.run(t)
				ctx := context.Background()
				h.p.Invoke(ctx, invokeEvent("m1", time.Now().Add(time.Minute)))
				h.p.Enqueue(context.Background(), invocation("m1", 1, time.Now()))
				time.Sleep(time.Second)
				if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil && spillOn {
					t.Fatal(err)
				}
				st := h.p.tally()
				switch {
				case st.Metrics.Sent != 0:
					t.Errorf("metrics %+v: nothing could be sent", st.Metrics)
				case spillOn && (st.Metrics.Spilled == 0 || st.Metrics.Dropped != 0):
					t.Errorf("metrics %+v: want the unsent data points spilled", st.Metrics)
				case !spillOn && (st.Metrics.Dropped == 0 || st.Metrics.Spilled != 0):
					t.Errorf("metrics %+v: want the unsent data points counted as dropped", st.Metrics)
				}
				if n := h.logs.count("metric_points"); n == 0 {
					t.Errorf("no log line names the unsent metric points: %s", h.logs.String())
				}
			})
		})
	}
}

func initEvents(at time.Time) []telemetry.Event {
	return []telemetry.Event{
		{Time: at, Type: telemetry.TypeInitStart, Size: 300, Record: &telemetry.InitStart{InitializationType: telemetry.InitOnDemand,
			Phase: telemetry.PhaseInit, FunctionName: "fn", FunctionVersion: "$LATEST", InstanceID: "2026/11/26/[$LATEST]abc"}},
		{Time: at.Add(50 * time.Millisecond), Type: telemetry.TypeInitRuntimeDone, Size: 200, Record: &telemetry.InitRuntimeDone{
			InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInit, Status: telemetry.StatusSuccess}},
		{Time: at.Add(51 * time.Millisecond), Type: telemetry.TypeInitReport, Size: 200, Record: &telemetry.InitReport{
			InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInit, Status: telemetry.StatusSuccess,
			Metrics: telemetry.DurationMetrics{DurationMs: 51}}},
	}
}

// The spill carries the latest initStart only so that a replay rebuilds
// the resource (faas.instance): replaying it must not emit the init span
// again when that span was delivered by the first process.
func TestReplayDoesNotResendADeliveredInitSpan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		col := newCollector()
		rt := &memRT{h: col}
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}, NewMapper: realMapper})
		h.run(t)
		ctx := context.Background()
		h.p.Enqueue(context.Background(), initEvents(time.Now()))
		h.p.Invoke(ctx, invokeEvent("ok1", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("ok1", 0, time.Now()))
		h.p.Invoke(ctx, invokeEvent("ok2", time.Now().Add(time.Minute)))
		time.Sleep(time.Second)
		synctest.Wait()
		if spans, _, _ := col.snapshot(); spans[""] != 1 || spans["ok1"] != 1 {
			t.Fatalf("first process sent %v, want the init span and ok1", spans)
		}
		// The backend dies: ok2 is spilled at SHUTDOWN.
		rt.setRefuse(func(*http.Request) error { return errRefused })
		h.p.Enqueue(context.Background(), invocation("ok2", 0, time.Now()))
		if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
			t.Fatal(err)
		}
		h.close(t)
		if st := h.p.tally(); st.SpillFilesWritten != 1 {
			t.Fatalf("stats %+v, want one spill file", st)
		}

		col2 := newCollector()
		st := replayWith(t, cfg, col2, realMapper, nil, nil)
		spans, _, _ := col2.snapshot()
		if spans["ok2"] != 1 || spans[""] != 0 {
			t.Errorf("replay sent %v, want ok2's span only (the init span was delivered)", spans)
		}
		if st.SpillFilesDeleted != 1 {
			t.Errorf("stats = %+v", st)
		}
	})
}

// A cold start's init span, claimed by the invocation it delayed, is
// spilled with the init events it was mapped from, so a replay rebuilds it.
func TestReplayRebuildsAnUnsentColdStartInitSpan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		rt := &memRT{h: newCollector(), refuse: func(*http.Request) error { return errRefused }}
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}, NewMapper: realMapper})
		h.run(t)
		ctx := context.Background()
		t0 := time.Now()
		h.p.Enqueue(context.Background(), initEvents(t0))
		h.p.Invoke(ctx, invokeEvent("cold", time.Now().Add(time.Minute)))
		evs := invocation("cold", 0, t0.Add(60*time.Millisecond))
		evs[len(evs)-1].Record.(*telemetry.Report).Metrics.InitDurationMs = new(float64(51))
		h.p.Enqueue(context.Background(), evs)
		if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
			t.Fatal(err)
		}
		h.close(t)

		col := newCollector()
		replayWith(t, cfg, col, realMapper, nil, nil)
		if spans, _, _ := col.snapshot(); spans["cold"] != 1 || spans[""] != 1 {
			t.Errorf("replay sent %v, want the invocation span and its init span once each", spans)
		}
	})
}

// A runtimeDone that waits behind a full intake (the worker is busy) does
// not hold the invocation more than FlushTimeout after it arrived, and is
// not dropped: Enqueue waits for the worker instead.
func TestRuntimeDoneWaitingForAFullIntakeDoesNotHoldTheInvocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hold := make(chan struct{})
		nm := func(o signals.MapperOptions) (Mapper, error) {
			m, err := newFakeMapper(o)
			return holdingMapper{Mapper: m, id: "d1", hold: hold}, err
		}
		h, _ := synctestHarness(t, config.FlushEnd, newCollector(), knobs{IntakeMaxBytes: 1000, NewMapper: nm})
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

// holdingMapper blocks the worker in Consume of the start of invocation id
// until hold is closed.
type holdingMapper struct {
	Mapper
	id   string
	hold chan struct{}
}

func (m holdingMapper) Consume(ev telemetry.Event) {
	if s, ok := ev.Record.(*telemetry.Start); ok && s.RequestID == m.id {
		<-m.hold
	}
	m.Mapper.Consume(ev)
}

// A healthy shutdown, even with a late event before Close, drops no
// metrics and logs no such error.
func TestHealthyShutdownDropsNoMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := synctestHarness(t, config.FlushAsync, newCollector(), knobs{})
		h.run(t)
		ctx := context.Background()
		h.p.Invoke(ctx, invokeEvent("h1", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("h1", 1, time.Now()))
		if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
			t.Fatal(err)
		}
		h.p.Enqueue(context.Background(), []telemetry.Event{logLine("late", time.Now())})
		synctest.Wait()
		h.close(t)
		if st := h.p.tally(); st.Metrics.Dropped != 0 || st.Metrics.Sent == 0 {
			t.Errorf("metrics %+v, want sent and none dropped", st.Metrics)
		}
		if h.logs.count("unsent metrics") != 0 {
			t.Errorf("healthy shutdown logged dropped metrics: %s", h.logs.String())
		}
	})
}
