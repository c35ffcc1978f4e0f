package exporter

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/telemetry"
)

func TestUnsentMetricsAtShutdownAreSpilledOrCountedDropped(t *testing.T) {
	for _, spillOn := range []bool{true, false} {
		t.Run(fmt.Sprintf("spill %v", spillOn), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
				if !spillOn {
					cfg.SpillMaxBytes = 0
				}
				rt := refusedRT()
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

func TestHealthyShutdownDropsNoMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := synctestHarness(t, config.FlushAsync, sink.New(sink.Options{}), knobs{})
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
