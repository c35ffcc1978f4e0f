package exporter

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// The export budget of an end-mode invocation runs from the arrival of its

// runtimeDone, not from when the worker gets to it: a worker held by a

// slow request of an earlier flush must not hold the invocation longer

// than FlushTimeout after the runtime finished.

// Close may be called again (main's error paths), and before Run ever

// ran: it must not hang.

func TestCloseTwiceWithoutRunReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := synctestHarness(t, config.FlushAsync, sink.New(sink.Options{}), knobs{})
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

// Metrics that cannot be sent by the SHUTDOWN deadline are spilled; with

// spill off they must at least be counted as dropped, never lost silently.

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

// A cold start's init span, claimed by the invocation it delayed, is

// spilled with the init events it was mapped from, so a replay rebuilds it.

// A runtimeDone that waits behind a full intake (the worker is busy) does

// not hold the invocation more than FlushTimeout after it arrived, and is

// not dropped: Enqueue waits for the worker instead.

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
