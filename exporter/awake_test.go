package exporter

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// jumpClock is the bubble's clock plus the freezes it was told about: a
// freeze moves the wall clock forward without the bubble's time passing.
type jumpClock struct {
	// mu guards jump.
	mu   sync.Mutex
	jump time.Duration
}

func (c *jumpClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.jump)
}

func (c *jumpClock) freeze(d time.Duration) {
	c.mu.Lock()
	c.jump += d
	c.mu.Unlock()
}

// Batch age is measured in awake time: a freeze longer than BatchDelay does
// not make a batch due at thaw, whether the worker wakes at thaw from its
// own timer or from the next INVOKE; the batch leaves after BatchDelay of
// awake time.
func TestBatchDelayCountsAwakeTime(t *testing.T) {
	tests := []struct {
		name string
		thaw func(h *harness)
	}{
		{"when the worker's timer fires at thaw", func(h *harness) { time.Sleep(13 * time.Millisecond) }},
		{"when the next INVOKE arrives at thaw", func(h *harness) {
			h.p.Invoke(context.Background(), invokeEvent("b", time.Now().Add(time.Minute)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				col := sink.New(sink.Options{})
				clk := &jumpClock{}
				h, _ := synctestHarness(t, config.FlushAsync, col, knobs{Now: clk.now, BatchDelay: 200 * time.Millisecond})
				h.run(t)
				h.p.Invoke(context.Background(), invokeEvent("a", time.Now().Add(time.Minute)))
				h.p.Enqueue(context.Background(), invocation("a", 2, time.Now()))
				time.Sleep(50 * time.Millisecond)
				synctest.Wait()
				if n := requestCount(col); n != 0 {
					t.Fatalf("%d requests before BatchDelay", n)
				}
				clk.freeze(time.Hour)
				tt.thaw(h)
				synctest.Wait()
				if n := requestCount(col); n != 0 {
					t.Fatalf("%d requests at thaw after a freeze, want none", n)
				}
				// 50ms awake before the freeze, 150ms after the thaw
				// (the worker's first reading after the freeze, or the INVOKE).
				time.Sleep(135 * time.Millisecond)
				synctest.Wait()
				if n := requestCount(col); n != 0 {
					t.Fatalf("%d requests before 200ms awake", n)
				}
				time.Sleep(30 * time.Millisecond)
				synctest.Wait()
				if requestsFor(col, sink.SignalTraces) != 1 || requestsFor(col, sink.SignalLogs) != 1 {
					t.Fatalf("requests %v, want traces and logs after BatchDelay of awake time", col.Requests())
				}
				h.close(t)
			})
		})
	}
}

// Without a freeze a batch leaves BatchDelay after it was queued, not before.
func TestBatchDueAfterBatchDelayAwake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		h, _ := synctestHarness(t, config.FlushAsync, col, knobs{BatchDelay: 200 * time.Millisecond})
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("a", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("a", 2, time.Now()))
		time.Sleep(199 * time.Millisecond)
		synctest.Wait()
		if n := requestCount(col); n != 0 {
			t.Fatalf("%d requests before BatchDelay", n)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if requestsFor(col, sink.SignalTraces) != 1 || requestsFor(col, sink.SignalLogs) != 1 {
			t.Fatalf("requests %v, want traces and logs at BatchDelay", col.Requests())
		}
		h.close(t)
	})
}

// The metric interval is measured in awake time too: freezes do not make
// metrics due; MetricInterval of awake time does.
func TestMetricIntervalCountsAwakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		clk := &jumpClock{}
		h, _ := synctestHarness(t, config.FlushAsync, col, knobs{Now: clk.now,
			BatchDelay: time.Hour, MetricInterval: time.Second})
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("a", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("a", 1, time.Now()))
		for i := range 5 {
			time.Sleep(100 * time.Millisecond)
			clk.freeze(time.Minute)
			id := string(rune('b' + i))
			h.p.Invoke(context.Background(), invokeEvent(id, time.Now().Add(time.Minute)))
			h.p.Enqueue(context.Background(), invocation(id, 1, time.Now()))
			synctest.Wait()
		}
		// 5 minutes of wall time, 500ms of it awake (the worker's last
		// reading before each freeze counts: 437.5ms at least).
		if n := requestsFor(col, sink.SignalMetrics); n != 0 {
			t.Fatalf("%d metrics requests after 500ms awake, want none", n)
		}
		time.Sleep(440 * time.Millisecond)
		synctest.Wait()
		if n := requestsFor(col, sink.SignalMetrics); n != 0 {
			t.Fatalf("%d metrics requests before 1s awake", n)
		}
		time.Sleep(130 * time.Millisecond)
		synctest.Wait()
		if n := requestsFor(col, sink.SignalMetrics); n != 1 {
			t.Fatalf("%d metrics requests after MetricInterval awake, want 1", n)
		}
		if n := requestCount(col); n != 1 {
			t.Errorf("requests %v, want metrics only (BatchDelay is 1h)", col.Requests())
		}
		h.close(t)
	})
}

// In async mode Invoke only hands the INVOKE over: it does not wait for
// the lock under which Enqueue works on the intake (a flood), so the
// extension loop calls /event/next at once. (Were it to wait, this test
// would hang.)
func TestAsyncInvokeDoesNotWaitForTheIntakeLock(t *testing.T) {
	h := newHarness(t, testConfig(t, "http://collector.invalid", config.FlushAsync), knobs{})
	h.p.h.mu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.p.Invoke(context.Background(), invokeEvent("a", time.Now().Add(time.Minute)))
	}()
	<-done
	h.p.h.mu.Unlock()
	h.p.h.invMu.Lock()
	n := len(h.p.h.invokes)
	h.p.h.invMu.Unlock()
	if n != 1 {
		t.Errorf("%d invocations handed over, want 1", n)
	}
	h.close(t)
}

// Adaptive's SLIPSTREAM_MAX_DATA_AGE bounds data age in wall time: a
// function invoked more often than that (so never flushed as in end mode)
// still has its data sent once it is MaxDataAge old, at the first look
// while awake, although little awake time has passed.
func TestAdaptiveSendsDataOlderThanMaxDataAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		clk := &jumpClock{}
		h, _ := synctestHarness(t, config.FlushAdaptive, col, knobs{Now: clk.now})
		h.run(t)
		// The first invocation waits for its runtimeDone (end branch).
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.p.Invoke(context.Background(), invokeEvent("a", time.Now().Add(time.Minute)))
		}()
		synctest.Wait()
		h.p.Enqueue(context.Background(), invocation("a", 1, time.Now()))
		<-done
		synctest.Wait()
		sent := requestsFor(col, sink.SignalTraces)
		// Then one invocation every 25s of wall time, 5ms awake each.
		for _, id := range []string{"b", "c", "d"} {
			clk.freeze(25 * time.Second)
			h.p.Invoke(context.Background(), invokeEvent(id, time.Now().Add(time.Minute)))
			h.p.Enqueue(context.Background(), invocation(id, 1, time.Now()))
			time.Sleep(5 * time.Millisecond)
			synctest.Wait()
			if n := requestsFor(col, sink.SignalTraces) - sent; n != 0 {
				t.Fatalf("after %q: %d traces requests, want none before MaxDataAge", id, n)
			}
		}
		// b's data was queued 50s ago; the next thaw finds it 75s old.
		clk.freeze(25 * time.Second)
		h.p.Invoke(context.Background(), invokeEvent("e", time.Now().Add(time.Minute)))
		synctest.Wait()
		if n := requestsFor(col, sink.SignalTraces) - sent; n != 1 {
			t.Fatalf("%d traces requests after data became MaxDataAge old, want 1", n)
		}
		if spans, _ := received(col); spans["b"] != 1 || spans["d"] != 1 {
			t.Errorf("spans %v, want b..d sent", spans)
		}
		h.close(t)
	})
}
