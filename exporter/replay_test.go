package exporter

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/telemetry"
)

func TestReplayDoesNotResendADeliveredInitSpan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		col := sink.New(sink.Options{})
		rt := &memRT{backend: col}
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}, NewMapper: realMapper})
		h.run(t)
		ctx := context.Background()
		h.p.Enqueue(context.Background(), initEvents(time.Now()))
		h.p.Invoke(ctx, invokeEvent("ok1", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("ok1", 0, time.Now()))
		h.p.Invoke(ctx, invokeEvent("ok2", time.Now().Add(time.Minute)))
		time.Sleep(time.Second)
		synctest.Wait()
		if spans, _ := received(col); spans[""] != 1 || spans["ok1"] != 1 {
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

		col2 := sink.New(sink.Options{})
		st := replayWith(t, cfg, col2, realMapper, nil, nil)
		spans, _ := received(col2)
		if spans["ok2"] != 1 || spans[""] != 0 {
			t.Errorf("replay sent %v, want ok2's span only (the init span was delivered)", spans)
		}
		if st.SpillFilesDeleted != 1 {
			t.Errorf("stats = %+v", st)
		}
	})
}

func TestReplayRebuildsAnUnsentColdStartInitSpan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		rt := refusedRT()
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

		col := sink.New(sink.Options{})
		replayWith(t, cfg, col, realMapper, nil, nil)
		if spans, _ := received(col); spans["cold"] != 1 || spans[""] != 1 {
			t.Errorf("replay sent %v, want the invocation span and its init span once each", spans)
		}
	})
}
