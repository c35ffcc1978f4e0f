package exporter

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// A backend that never answers: SHUTDOWN cancels the requests in flight
// before its deadline minus the margin, spills everything (in flight
// included) and counts it; the next start replays it.
func TestShutdownWithABackendThatNeverAnswersSpillsWithinTheBudget(t *testing.T) {
	for _, mode := range []config.FlushMode{config.FlushAsync, config.FlushAdaptive, config.FlushEnd} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				never := make(chan struct{}) // never closed
				rt := &memRT{backend: sink.New(sink.Options{Faults: []sink.Fault{{Stall: never}}})}
				cfg := testConfig(t, "http://collector.invalid", mode)
				for _, s := range []*config.Signal{&cfg.OTLP.Traces, &cfg.OTLP.Logs, &cfg.OTLP.Metrics} {
					s.Timeout = 10 * time.Second // the OTLP default: longer than SHUTDOWN's budget
				}
				h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}, BatchDelay: time.Millisecond})
				h.run(t)
				ctx := context.Background()
				const n, lines = 5, 3
				for i := range n {
					id := fmt.Sprintf("never-%d", i)
					h.p.Enqueue(context.Background(), invocation(id, lines, time.Now()))
					h.p.Invoke(ctx, invokeEvent(id, time.Now().Add(time.Minute)))
					time.Sleep(100 * time.Millisecond)
				}
				synctest.Wait()
				if rt.callCount() == 0 {
					t.Fatal("nothing was in flight before SHUTDOWN")
				}
				t0 := time.Now()
				deadline := t0.Add(2 * time.Second)
				plan := shutdownEvent(deadline, "spindown")
				if err := h.p.Shutdown(ctx, plan); err != nil {
					t.Fatal(err)
				}
				took := time.Since(t0)
				if !t0.Add(took).Before(plan.Close) {
					t.Errorf("Shutdown took %v, want it to return before the plan's Close (%v)", took, plan.Close.Sub(t0))
				}
				t.Logf("Shutdown returned after %v of a %v budget", took, deadline.Sub(t0))
				st := h.p.tally()
				if st.SpillFilesWritten != 1 || st.Traces.Spilled != n || st.Logs.Spilled != n*lines {
					t.Errorf("spill: %d files, %d spans, %d log records; want 1, %d, %d (stats %+v)",
						st.SpillFilesWritten, st.Traces.Spilled, st.Logs.Spilled, n, n*lines, st)
				}
				if st.Traces.Sent+st.Logs.Sent != 0 || st.Traces.Dropped+st.Logs.Dropped != 0 {
					t.Errorf("stats %+v: want nothing sent nor dropped, everything spilled", st)
				}
				if st.Metrics.Spilled == 0 || st.Metrics.Dropped != 0 {
					t.Errorf("metrics %+v: want the unsent data points spilled", st.Metrics)
				}
				if st.QueueBytes != 0 {
					t.Errorf("queue holds %d bytes after the spill", st.QueueBytes)
				}
				h.close(t) // waits for every sender goroutine (synctest fails on leaks)

				col2 := sink.New(sink.Options{})
				st2 := replayInto(t, cfg, col2, nil, nil)
				spans, logs := received(col2)
				for i := range n {
					id := fmt.Sprintf("never-%d", i)
					if spans[id] != 1 {
						t.Errorf("replayed span %s received %d times, want 1", id, spans[id])
					}
				}
				if len(logs) != n*lines {
					t.Errorf("replay delivered %d log records, want %d", len(logs), n*lines)
				}
				if st2.SpillFilesReplayed != 1 || st2.SpillFilesDeleted != 1 {
					t.Errorf("replay stats %+v", st2)
				}
			})
		})
	}
}

// While a request is stalled, the worker keeps mapping: ten times the
// intake's size of log events flow through the intake into the queue
// without a drop, and go out once the backend answers.
func TestMappingGoesOnWhileARequestIsStalled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		const intake = 4 << 10
		h, rt := synctestHarness(t, config.FlushAsync, col, knobs{IntakeMaxBytes: intake, BatchDelay: time.Millisecond})
		release := make(chan struct{})
		col.InjectFault(sink.Fault{Stall: release})
		h.run(t)
		h.p.Invoke(context.Background(), invokeEvent("flood", time.Now().Add(time.Hour)))
		h.p.Enqueue(context.Background(), []telemetry.Event{start("flood", time.Now()), logLine("first", time.Now())})
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		calls := rt.callCount()
		if calls == 0 {
			t.Fatal("no request in flight")
		}
		var sent, bytes int
		for bytes < 10*intake {
			var batch []telemetry.Event
			for range 8 {
				ev := logLine(fmt.Sprintf("line %05d", sent), time.Now())
				batch = append(batch, ev)
				bytes += ev.Size
				sent++
			}
			h.p.Enqueue(context.Background(), batch)
			synctest.Wait() // the listener's pace: the worker gets to run
		}
		st := h.p.tally()
		if st.Logs.Dropped != 0 {
			t.Fatalf("%d log events or records dropped (by reason: %v) while a request was stalled",
				st.Logs.Dropped, st.Logs.DroppedBy)
		}
		if st.QueueBytes < int64(bytes) {
			t.Errorf("queue holds %d bytes, want the %d bytes mapped while the request was stalled", st.QueueBytes, bytes)
		}
		if got := rt.callCount(); got != calls {
			t.Errorf("%d more requests started while one per signal was in flight", got-calls)
		}
		close(release)
		time.Sleep(time.Second)
		synctest.Wait()
		_, logs := received(col)
		if len(logs) != sent+1 {
			t.Errorf("%d distinct log records delivered, want %d", len(logs), sent+1)
		}
		for b, c := range logs {
			if c != 1 {
				t.Errorf("log %q delivered %d times", b, c)
			}
		}
	})
}

// Traces, logs and metrics are sent concurrently: with a backend that
// answers after 600 ms, SHUTDOWN's flush costs one round trip for the data
// (and one for the self-metrics of those requests), not one per signal.
func TestSlowBackendCostsOneRoundTripAtShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		h, _ := synctestHarness(t, config.FlushAsync, col, knobs{})
		col.InjectFault(sink.Fault{Delay: 600 * time.Millisecond}) // the backend's latency
		h.run(t)
		ctx := context.Background()
		h.p.Invoke(ctx, invokeEvent("slow", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), invocation("slow", 2, time.Now()))
		t0 := time.Now()
		if err := h.p.Shutdown(ctx, shutdownEvent(t0.Add(2*time.Second), "spindown")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d != 1200*time.Millisecond {
			t.Errorf("Shutdown took %v, want 1.2s (data and metrics together, then the self-metrics)", d)
		}
		st := h.p.tally()
		if st.Traces.Sent != 1 || st.Logs.Sent != 2 || st.Metrics.Sent == 0 || st.SpillFilesWritten != 0 {
			t.Errorf("stats %+v, want everything sent, nothing spilled", st)
		}
		if names := col.Snapshot().MetricNames(); !slices.Contains(names, "slipstream.export.duration") {
			t.Errorf("the final requests' self-metrics were not sent (got %v)", names)
		}
	})
}

// adaptive's end branch sends what end mode sends: the first invocation's
// span, closed at runtimeDone, leaves before Invoke returns, and its
// report's figures follow on its postRuntime span. A busy invocation's
// span is the same span, closed at runtimeDone too: it leaves in the
// background without waiting for the report.
func TestAdaptiveEndBranchSendsTheSpanAtRuntimeDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := sink.New(sink.Options{})
		cfg := testConfig(t, "http://collector.invalid", config.FlushAdaptive)
		cfg.ServiceName = "fn"
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: &memRT{backend: col}}, NewMapper: realMapper})
		h.run(t)
		ctx := context.Background()
		returned := make(chan struct{})
		go func() {
			h.p.Invoke(ctx, invokeEvent("first", time.Now().Add(time.Minute)))
			close(returned)
		}()
		synctest.Wait()
		h.p.Enqueue(context.Background(), []telemetry.Event{start("first", time.Now()), logLine("hello", time.Now())})
		time.Sleep(50 * time.Millisecond)
		h.p.Enqueue(context.Background(), []telemetry.Event{runtimeDone("first", time.Now())})
		<-returned
		if spans, logs := received(col); spans["first"] != 1 || logs["hello"] != 1 {
			t.Errorf("when the first Invoke returned: spans %v logs %v, want its span and log sent", spans, logs)
		}

		h.p.Invoke(ctx, invokeEvent("busy", time.Now().Add(time.Minute)))
		h.p.Enqueue(context.Background(), []telemetry.Event{report("first", time.Now()), start("busy", time.Now()), runtimeDone("busy", time.Now())})
		time.Sleep(time.Second)
		synctest.Wait()
		if spans, _ := received(col); spans["busy"] != 1 || spans["first"] != 1 || spans["postRuntime/first"] != 1 || spans["postRuntime/busy"] != 0 {
			t.Errorf("before the busy invocation's report: spans %v, want first's and busy's once, first's postRuntime", spans)
		}
		h.p.Enqueue(context.Background(), []telemetry.Event{report("busy", time.Now())})
		time.Sleep(time.Second)
		synctest.Wait()
		if spans, _ := received(col); spans["busy"] != 1 || spans["postRuntime/busy"] != 1 {
			t.Errorf("after the busy invocation's report: spans %v, want busy's span and its postRuntime once", spans)
		}
	})
}
