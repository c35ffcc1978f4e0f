package exporter

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/exporter/internal/metriccodec"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// spillWithDeadBackend runs a pipeline against a refusing backend and
// shuts it down: everything ends up in one spill file.
func spillWithDeadBackend(t *testing.T, cfg *config.Config, ids ...string) {
	t.Helper()
	spillWithMapper(t, cfg, newFakeMapper, 1, ids...)
}

// spillWithMapper spills ids (finished invocations, each mapped to
// spansPer spans) and one invocation SHUTDOWN cuts.
func spillWithMapper(t *testing.T, cfg *config.Config, nm func(signals.MapperOptions) (Mapper, error), spansPer int, ids ...string) {
	t.Helper()
	rt := refusedRT()
	h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}, NewMapper: nm})
	h.run(t)
	ctx := context.Background()
	for _, id := range ids {
		h.p.Enqueue(context.Background(), invocation(id, 2, time.Now()))
		h.p.Invoke(ctx, invokeEvent(id, time.Now().Add(time.Minute)))
	}
	// The last invocation's report never comes: closed by SHUTDOWN.
	h.p.Enqueue(context.Background(), []telemetry.Event{start("open", time.Now()), logLine("open line", time.Now())})
	if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "timeout")); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	st := h.p.tally()
	if st.SpillFilesWritten != 1 || st.Traces.Spilled != int64(spansPer*len(ids)+1) || st.Logs.Spilled != int64(2*len(ids)+1) {
		t.Fatalf("spill stats = %+v", st)
	}
	h.close(t)
}

func spillFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// replayInto runs a pipeline over a healthy collector until the replayed
// data is sent; hook, when set, is the beforeDelete test hook.
func replayInto(t *testing.T, cfg *config.Config, col *sink.Sink, now func() time.Time, hook func(string) bool) tally {
	t.Helper()
	return replayWith(t, cfg, col, newFakeMapper, now, hook)
}

func replayWith(t *testing.T, cfg *config.Config, col *sink.Sink, nm func(signals.MapperOptions) (Mapper, error), now func() time.Time, hook func(string) bool) tally {
	t.Helper()
	h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: &memRT{backend: col}}, Now: now, NewMapper: nm, BeforeSpillDelete: hook})
	before := requestCount(col)
	h.run(t)
	synctest.Wait()
	if requestCount(col) != before {
		t.Error("replayed data sent before the first INVOKE")
	}
	h.p.Invoke(context.Background(), invokeEvent("next", time.Now().Add(time.Minute)))
	time.Sleep(time.Second)
	synctest.Wait()
	st := h.p.tally()
	h.stop() // a kill: no Close, no Shutdown
	return st
}

func TestSpillIsWrittenReplayedAndDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		spillWithDeadBackend(t, cfg, "s1", "s2")

		files := spillFiles(t, cfg.SpillDir)
		if len(files) != 1 {
			t.Fatalf("%d spill files, want 1", len(files))
		}
		fi, err := os.Stat(files[0])
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("spill file mode %v, want 0600", fi.Mode().Perm())
		}
		di, err := os.Stat(cfg.SpillDir)
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("spill dir mode %v, want 0700", di.Mode().Perm())
		}

		col := sink.New(sink.Options{})
		st := replayInto(t, cfg, col, nil, nil)
		spans, logs := received(col)
		for _, id := range []string{"s1", "s2", "open"} {
			if spans[id] != 1 {
				t.Errorf("replayed span %s received %d times, want 1", id, spans[id])
			}
		}
		if st := statusOf(col, "open"); st != "timeout" {
			t.Errorf("invocation closed by SHUTDOWN replayed with status %q, want timeout", st)
		}
		for _, b := range []string{"s1 line a", "s1 line b", "s2 line a", "s2 line b", "open line"} {
			if logs[b] != 1 {
				t.Errorf("replayed log %q received %d times, want 1", b, logs[b])
			}
		}
		if st.SpillFilesReplayed != 1 || st.SpillFilesDeleted != 1 {
			t.Errorf("stats = %+v", st)
		}
		if got := spillFiles(t, cfg.SpillDir); len(got) != 0 {
			t.Errorf("spill file not deleted after the 2xx: %v", got)
		}
	})
}

func TestSpillOlderThanTTLIsDeletedNotReplayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		spillWithDeadBackend(t, cfg, "old")
		col := sink.New(sink.Options{})
		later := func() time.Time { return time.Now().Add(16 * time.Minute) }
		st := replayInto(t, cfg, col, later, nil)
		if spans, _ := received(col); spans["old"] != 0 {
			t.Error("expired spill replayed")
		}
		if st.SpillFilesExpired != 1 || st.SpillFilesReplayed != 0 {
			t.Errorf("stats = %+v", st)
		}
		if got := spillFiles(t, cfg.SpillDir); len(got) != 0 {
			t.Errorf("expired file kept: %v", got)
		}
	})
}

func TestSpillIsBoundedInBytes(t *testing.T) {
	dir := t.TempDir()
	clock := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	s := &spill{dir: dir, max: 3000, ttl: time.Hour, env: "e", now: func() time.Time { return clock }, rand: rand.Reader}
	evs := func(n int) []telemetry.Event {
		var out []telemetry.Event
		for i := range n {
			out = append(out, logLine(fmt.Sprintf("line %03d", i), clock))
		}
		return out
	}
	write := func(n int) (string, error) {
		clock = clock.Add(time.Second)
		id, _, err := s.write(evs(n), nil, nil, nil, nil)
		return id, err
	}
	first, err := write(10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := write(10); err != nil {
		t.Fatal(err)
	}
	if _, err := write(10); err != nil {
		t.Fatal(err)
	}
	ents, err := s.list()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range ents {
		total += e.size
		if strings.Contains(e.name, first) {
			t.Error("oldest file kept although over the bound")
		}
	}
	if total > s.max {
		t.Errorf("spill holds %d bytes, bound %d", total, s.max)
	}
	if len(ents) == 3 {
		t.Errorf("no file evicted: %d files, %d bytes", len(ents), total)
	}
	if _, err := write(200); err == nil {
		t.Error("a batch larger than the bound was written")
	}
}

// A process killed after the 2xx but before deleting the spill file sends
// that batch once more at the next start: at most one duplicate.
func TestKillBetweenSendAndDeleteGivesAtMostOneDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		spillWithDeadBackend(t, cfg, "k1", "k2")
		col := sink.New(sink.Options{})

		killed := false
		st := replayInto(t, cfg, col, nil, func(string) bool { killed = true; return false })
		if !killed || st.SpillFilesDeleted != 0 {
			t.Fatalf("delete was not reached: %+v", st)
		}
		if len(spillFiles(t, cfg.SpillDir)) != 1 {
			t.Fatal("spill file gone although the delete was skipped")
		}
		st = replayInto(t, cfg, col, nil, nil)
		if st.SpillFilesReplayed != 1 || st.SpillFilesDeleted != 1 {
			t.Fatalf("second start: %+v", st)
		}
		st = replayInto(t, cfg, col, nil, nil)
		if st.SpillFilesReplayed != 0 {
			t.Fatalf("third start replayed again: %+v", st)
		}
		spans, logs := received(col)
		for _, id := range []string{"k1", "k2", "open"} {
			if spans[id] != 2 {
				t.Errorf("span %s received %d times, want 2 (one duplicate)", id, spans[id])
			}
		}
		for b, n := range logs {
			if n > 2 {
				t.Errorf("log %q received %d times", b, n)
			}
		}
	})
}

// With the backend down and a small buffer, log records are dropped before
// spans, and every drop is counted.
func TestFullQueueDropsLogsBeforeSpans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		cfg.BufferMaxBytes = 256 << 10
		cfg.SpillMaxBytes = 0
		rt := refusedRT()
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}})
		h.run(t)
		for i := range 40 {
			id := fmt.Sprintf("q%02d", i)
			h.p.Enqueue(context.Background(), invocation(id, 20, time.Now()))
			h.p.Invoke(context.Background(), invokeEvent(id, time.Now().Add(time.Minute)))
			synctest.Wait()
		}
		st := h.p.tally()
		if st.Logs.Dropped == 0 {
			t.Fatalf("no log record dropped: %+v", st)
		}
		if st.Traces.Dropped != 0 {
			t.Errorf("%d spans dropped while log records were queued", st.Traces.Dropped)
		}
		if st.QueueBytes > cfg.BufferMaxBytes {
			t.Errorf("queue holds %d bytes, bound %d", st.QueueBytes, cfg.BufferMaxBytes)
		}
	})
}

// Metrics the final flush could not send are spilled with the spans and
// log records, and a replay sends them as they were collected: the
// counters add up once, with either temporality.
func TestUnsentMetricsAreSpilledAndReplayed(t *testing.T) {
	for _, temporality := range []string{"cumulative", "delta"} {
		t.Run(temporality, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
				cfg.Temporality = temporality
				rt := refusedRT()
				h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}})
				h.run(t)
				ctx := context.Background()
				for _, id := range []string{"m1", "m2", "m3"} {
					h.p.Enqueue(context.Background(), invocation(id, 1, time.Now()))
					h.p.Invoke(ctx, invokeEvent(id, time.Now().Add(time.Minute)))
					time.Sleep(15 * time.Second) // metrics are collected (and fail) every 10 s
				}
				if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				st := h.p.tally()
				h.close(t)
				if st.Metrics.Spilled == 0 || st.Metrics.Dropped != 0 || st.SpillFilesWritten != 1 {
					t.Fatalf("metrics %+v, spill files %d: want metrics spilled, none dropped, one file", st.Metrics, st.SpillFilesWritten)
				}

				col := sink.New(sink.Options{})
				rst := replayInto(t, cfg, col, nil, nil)
				got := col.Snapshot().SumAll("faas.invocations")
				if got != 3 {
					t.Errorf("replayed faas.invocations add up to %v, want 3", got)
				}
				if rst.Metrics.Sent == 0 || rst.SpillFilesDeleted != 1 || len(spillFiles(t, cfg.SpillDir)) != 0 {
					t.Errorf("replay stats %+v, files left %v", rst, spillFiles(t, cfg.SpillDir))
				}
			})
		})
	}
}

// Replayed metrics that cannot be sent again (a backend that never
// answers, cut at SHUTDOWN) are spilled again and their old file deleted:
// the third start sends every count once.
func TestReplayedMetricsCutAtShutdownAreSpilledAgain(t *testing.T) {
	for _, temporality := range []string{"cumulative", "delta"} {
		t.Run(temporality, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
				cfg.Temporality = temporality
				spillWithDeadBackend(t, cfg, "r1", "r2")

				// Second start: the backend takes requests and never answers.
				never := make(chan struct{})
				rt := &memRT{backend: sink.New(sink.Options{Faults: []sink.Fault{{Stall: never}}})}
				h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rt}})
				h.run(t)
				ctx := context.Background()
				h.p.Invoke(ctx, invokeEvent("later", time.Now().Add(time.Minute)))
				time.Sleep(time.Second)
				if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				h.close(t)
				st := h.p.tally()
				if st.SpillFilesReplayed != 1 || st.SpillFilesWritten != 1 || st.SpillFilesDeleted != 1 {
					t.Fatalf("second start: %+v; want the file replayed, spilled again and the old one deleted", st)
				}

				col := sink.New(sink.Options{})
				replayInto(t, cfg, col, nil, nil)
				got := col.Snapshot().SumAll("faas.invocations")
				if got != 2 {
					t.Errorf("faas.invocations adds up to %v after the third start, want 2", got)
				}
				if left := spillFiles(t, cfg.SpillDir); len(left) != 0 {
					t.Errorf("spill files left: %v", left)
				}
			})
		})
	}
}

// A spilled metric collection without data points neither keeps its file
// nor blocks the replay of the rest.
func TestReplayedEmptyMetricsDoNotKeepTheFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: &memRT{backend: sink.New(sink.Options{})}}})
		empty, err := metriccodec.Encode(&metricdata.ResourceMetrics{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.p.w.sp.write(invocation("e1", 1, time.Now()), []json.RawMessage{empty}, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		h.close(t)
		col := sink.New(sink.Options{})
		st := replayInto(t, cfg, col, nil, nil)
		if spans, _ := received(col); spans["e1"] != 1 || st.SpillFilesDeleted != 1 || len(spillFiles(t, cfg.SpillDir)) != 0 {
			t.Errorf("replay: spans %v, stats %+v, files left %v", spans, st, spillFiles(t, cfg.SpillDir))
		}
	})
}

// Events that reach Enqueue after Close's spill are counted as dropped,
// not left in an intake that nothing will take again.
func TestEnqueueAfterCloseCountsDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := synctestHarness(t, config.FlushAsync, sink.New(sink.Options{}), knobs{})
		h.run(t)
		h.close(t)
		h.p.Enqueue(context.Background(), invocation("late", 2, time.Now()))
		st := h.p.tally()
		if st.IntakeDroppedLogs != 2 || st.IntakeDroppedPlatform != 3 || st.IntakeBytes != 0 {
			t.Errorf("after Close: %+v; want the 2 log and 3 platform events counted as dropped", st)
		}
	})
}

// More spill files with metrics than the live bound of pending
// collections are all replayed: replayed collections do not count against
// it.
func TestManySpilledMetricCollectionsAreAllReplayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: &memRT{backend: sink.New(sink.Options{})}}})
		const files = maxPendingMetrics + 3
		for range files {
			reader := sdkmetric.NewManualReader()
			c, err := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("m").Int64Counter("faas.invocations")
			if err != nil {
				t.Fatal(err)
			}
			c.Add(context.Background(), 1)
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			raw, err := metriccodec.Encode(&rm)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := h.p.w.sp.write(nil, []json.RawMessage{raw}, nil, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		h.close(t)
		col := sink.New(sink.Options{})
		st := replayInto(t, cfg, col, nil, nil)
		got := col.Snapshot().SumAll("faas.invocations")
		if got != files || st.Metrics.Dropped != 0 || st.SpillFilesDeleted != files {
			t.Errorf("faas.invocations adds up to %v (want %d), stats %+v", got, files, st)
		}
	})
}

// With a slow but healthy backend and a small buffer, a flood waits for
// the requests in flight (Enqueue blocks) instead of evicting queued log
// records: everything arrives once and nothing is dropped.
func TestFloodWaitsForASlowBackendInsteadOfDropping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		cfg.BufferMaxBytes = 64 << 10
		const intakeMax = 8 << 10
		col := sink.New(sink.Options{})
		var maxQueue atomic.Int64
		var h *harness
		col.InjectFault(sink.Fault{Delay: 200 * time.Millisecond}) // every request takes 200 ms
		measure := func(*http.Request) error {
			maxQueue.Store(max(maxQueue.Load(), h.p.tally().QueueBytes))
			return nil
		}
		h = newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: &memRT{backend: col, refuse: measure}}, IntakeMaxBytes: intakeMax, BatchMaxBytes: 16 << 10})
		h.run(t)
		synctest.Wait() // the worker runs: Enqueue waits rather than drops
		const n, lines = 40, 20
		var maxIntake int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range n {
				id := fmt.Sprintf("f%02d", i)
				h.p.Invoke(context.Background(), invokeEvent(id, time.Now().Add(time.Hour)))
				evs := invocation(id, lines, time.Now())
				for j := range evs {
					h.p.Enqueue(context.Background(), evs[j:j+1]) // one event per batch, as a busy listener would
					maxIntake = max(maxIntake, h.p.tally().IntakeBytes)
				}
			}
		}()
		<-done
		if err := h.p.Shutdown(context.Background(), shutdownEvent(time.Now().Add(time.Hour), "spindown")); err != nil {
			t.Fatal(err)
		}
		h.close(t)
		st := h.p.tally()
		spans, logs := received(col)
		if len(spans) != n || len(logs) != n*lines {
			t.Errorf("received %d spans and %d distinct log lines, want %d and %d", len(spans), len(logs), n, n*lines)
		}
		for b, c := range logs {
			if c != 1 {
				t.Errorf("log %q received %d times", b, c)
			}
		}
		if st.Logs.Dropped != 0 || st.Traces.Dropped != 0 || st.IntakeDroppedLogs != 0 || st.IntakeDroppedPlatform != 0 {
			t.Errorf("dropped: %+v", st)
		}
		if st.IntakeWaits == 0 {
			t.Errorf("Enqueue never waited: the test did not fill the buffer (%+v)", st)
		}
		if m := maxQueue.Load(); m > cfg.BufferMaxBytes {
			t.Errorf("queue held %d bytes, bound %d", m, cfg.BufferMaxBytes)
		}
		if maxIntake > intakeMax {
			t.Errorf("intake held %d bytes, bound %d", maxIntake, intakeMax)
		}
	})
}

// The spill holds re-mappable events: the real mapping rebuilds the same
// spans (including the one closed by SHUTDOWN) and log records.
func TestSpillReplayWithTheSignalsMapper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		cfg.ServiceName = "fn"
		// The signals mapper sends an invocation span and its postRuntime span.
		spillWithMapper(t, cfg, realMapper, 2, "m1", "m2")
		col := sink.New(sink.Options{})
		st := replayWith(t, cfg, col, realMapper, nil, nil)
		spans, logs := received(col)
		for _, id := range []string{"m1", "m2", "open"} {
			if spans[id] != 1 {
				t.Errorf("replayed span %s received %d times, want 1 (all: %v)", id, spans[id], spans)
			}
		}
		for _, b := range []string{"m1 line a", "m1 line b", "m2 line a", "m2 line b", "open line"} {
			if logs[b] != 1 {
				t.Errorf("replayed log %q received %d times, want 1 (all: %v)", b, logs[b], logs)
			}
		}
		if st.SpillFilesDeleted != 1 {
			t.Errorf("stats = %+v", st)
		}
	})
}

// Close after the worker was stopped without SHUTDOWN (e.g. the agent's
// context ended) maps what is left in the intake and spills it.
func TestCloseSpillsWhatIsLeft(t *testing.T) {
	cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
	h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: &memRT{backend: sink.New(sink.Options{})}}})
	h.p.Enqueue(context.Background(), invocation("c1", 1, time.Now()))
	if err := h.p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.p.tally(); st.SpillFilesWritten != 1 || st.Traces.Spilled != 1 || st.Logs.Spilled != 1 {
		t.Errorf("stats = %+v", st)
	}
	if len(spillFiles(t, cfg.SpillDir)) != 1 {
		t.Error("no spill file")
	}
	if err := h.p.Run(context.Background()); err == nil {
		t.Error("Run after Close succeeded")
	}
}

// Spilled metrics of a signal switched off since are dropped, counted with
// their reason, and do not keep the file; the spans and logs are replayed.
func TestSpilledMetricsOfASignalSwitchedOffAreDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
		spillWithDeadBackend(t, cfg, "s1")
		cfg.OTLP.Metrics.Off = "SLIPSTREAM_METRICS_EXPORTER"
		col := sink.New(sink.Options{})
		st := replayInto(t, cfg, col, nil, nil)
		if n := requestsFor(col, sink.SignalMetrics); n != 0 {
			t.Errorf("metrics sent with metrics switched off (%d requests)", n)
		}
		if st.Metrics.DroppedBy[dropSignalOff] == 0 {
			t.Errorf("spilled metrics not counted as dropped (signal_off): %+v", st.Metrics)
		}
		if spans, _ := received(col); spans["s1"] != 1 {
			t.Errorf("span s1 replayed %d times, want 1", spans["s1"])
		}
		if got := spillFiles(t, cfg.SpillDir); len(got) != 0 {
			t.Errorf("spill file kept: %v", got)
		}
	})
}
