//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// e2eLogLines is how many lines every logging invocation writes.
const e2eLogLines = 2

// e2eWorkload invokes the function until done reports true (checked after
// each invocation, once at least min ran) or max invocations ran. Even
// invocations write e2eLogLines log lines, odd ones sleep sleepMs, so the
// environment stays awake and time passes without the test sleeping.
func e2eWorkload(ctx context.Context, t *testing.T, r *e2eRun, sleepMs, min, max int, done func() bool) []emulator.InvokeResult {
	t.Helper()
	var results []emulator.InvokeResult
	for i := 0; ; i++ {
		if i >= min && done() {
			return results
		}
		if i >= max {
			t.Fatalf("the condition did not hold after %d invocations", max)
		}
		payload := fmt.Sprintf(`{"action":"log","lines":%d}`, e2eLogLines)
		if i%2 == 1 {
			payload = fmt.Sprintf(`{"action":"sleep","ms":%d}`, sleepMs)
		}
		res := r.invoke(ctx, payload, "")
		if err := e2eResponseOK(res); err != nil {
			t.Fatalf("invocation %d (%s): %v", i+1, payload, err)
		}
		results = append(results, res)
	}
}

// e2eLogged reports whether the i-th invocation of e2eWorkload writes logs.
func e2eLogged(i int) bool { return i%2 == 0 }

// e2eAllDelivered waits for every invocation span and log record of a
// workload, then checks none is missing and reports duplicates.
func e2eAllDelivered(ctx context.Context, t *testing.T, s *sink.Sink, results []emulator.InvokeResult) (spanDups, logDups int) {
	t.Helper()
	var ids, logIDs []string
	for i, res := range results {
		ids = append(ids, res.RequestID)
		if e2eLogged(i) {
			logIDs = append(logIDs, res.RequestID)
		}
	}
	e2eWait(ctx, t, s, "every span and log record", func(snap *sink.Snapshot) bool {
		_, ms := e2eDuplicates(e2eInvocationSpans(snap), ids, 1)
		_, ml := e2eLogCopies(e2eLogsByInvocation(snap), logIDs, e2eLogLines)
		return len(ms) == 0 && len(ml) == 0
	})
	snap := s.Snapshot()
	spanDups, missing := e2eDuplicates(e2eInvocationSpans(snap), ids, 1)
	if len(missing) > 0 {
		t.Errorf("%d of %d invocations have no span: %v", len(missing), len(ids), missing)
	}
	logDups, missing = e2eLogCopies(e2eLogsByInvocation(snap), logIDs, e2eLogLines)
	if len(missing) > 0 {
		t.Errorf("%d of %d logging invocations miss log records: %v", len(missing), len(logIDs), missing)
	}
	t.Logf("%d invocations: %d duplicate spans, %d duplicate log records; sink requests %+v",
		len(ids), spanDups, logDups, snap.Requests())
	// Every workload invocation succeeds; sums take the latest cumulative point.
	if got := snap.Sum("faas.invocations"); got != float64(len(ids)) {
		t.Errorf("Σ faas.invocations = %v, want %d", got, len(ids))
	}
	if got := snap.Count("faas.invoke_duration"); got != uint64(len(ids)) {
		t.Errorf("count of faas.invoke_duration = %d, want %d", got, len(ids))
	}
	return spanDups, logDups
}

// e2eCumulativeSum totals the named cumulative sum over the snapshots of
// several backends: the latest point of each stream (start time and
// attributes) counts once, wherever it arrived.
func e2eCumulativeSum(name string, snaps ...*sink.Snapshot) float64 {
	latest := map[string]sink.MetricPoint{}
	for _, snap := range snaps {
		for _, p := range snap.Metrics()[name] {
			key := fmt.Sprint(p.Start.UnixNano(), p.Attributes)
			if old, ok := latest[key]; !ok || !p.Time.Before(old.Time) {
				latest[key] = p
			}
		}
	}
	var total float64
	for _, p := range latest {
		total += p.Value
	}
	return total
}

// e2eRecordPostRuntime logs the post-runtime time of each invocation.
func e2eRecordPostRuntime(t *testing.T, results []emulator.InvokeResult) {
	t.Helper()
	var post []time.Duration
	for _, res := range results {
		post = append(post, res.PostRuntime)
	}
	t.Logf("post-runtime ms per invocation: %s", e2eMillis(post))
}

// TestE2EDelivery checks delivery end to end: spans and logs by request ID,
// metrics by sums, against a healthy, a throttling, an absent and a slow
// backend, at a shutdown right after the last invocation, and under a
// log flood.
func TestE2EDelivery(t *testing.T) {
	t.Run("a healthy backend receives every span and log record exactly once and metric sums equal the counts", func(t *testing.T) {
		const n = 20
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, endpoint := e2eSink(t, "")
		r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint})
		var results []emulator.InvokeResult
		var ok, failed int
		for i := range n {
			payload := fmt.Sprintf(`{"action":"log","lines":%d}`, e2eLogLines)
			if i%5 == 4 {
				payload = `{"action":"error"}`
			}
			res := r.invoke(ctx, payload, "")
			if res.Status == emulator.StatusSuccess {
				ok++
			} else {
				failed++
			}
			results = append(results, res)
		}
		e2eCheckExit(t, r.shutdown(ctx))
		var ids []string
		want := map[string]int{}
		for i, res := range results {
			ids = append(ids, res.RequestID)
			if i%5 != 4 {
				want[res.RequestID] = e2eLogLines
			}
		}
		e2eWait(ctx, t, s, "every invocation span", e2eHasSpans(ids))
		snap := s.Snapshot()
		spans, logs := e2eInvocationSpans(snap), e2eLogsByInvocation(snap)
		for _, id := range ids {
			if len(spans[id]) != 1 {
				t.Errorf("invocation %s: %d spans, want exactly 1", id, len(spans[id]))
			}
			// An error invocation writes no line of its own; aws-lambda-go
			// may log the error, so only logging invocations are exact.
			if w, ok := want[id]; ok && len(logs[id]) != w {
				t.Errorf("invocation %s: %d log records, want exactly %d", id, len(logs[id]), w)
			}
		}
		for _, p := range snap.Metrics()["faas.invocations"] {
			if p.Temporality != "Cumulative" {
				t.Errorf("faas.invocations point with temporality %q, want Cumulative (the default)", p.Temporality)
				break
			}
		}
		// Sum and Count take the latest point of each cumulative stream.
		sums := []struct {
			name string
			got  float64
			want int
		}{
			{"Σ faas.invocations (successful)", snap.Sum("faas.invocations"), ok},
			{"Σ faas.errors", snap.Sum("faas.errors"), failed},
			{"Σ faas.coldstarts", snap.Sum("faas.coldstarts"), 1},
			{"count of faas.invoke_duration", float64(snap.Count("faas.invoke_duration")), n},
			{"count of slipstream.billed_duration", float64(snap.Count("slipstream.billed_duration")), n},
			{"count of faas.mem_usage", float64(snap.Count("faas.mem_usage")), n},
		}
		for _, c := range sums {
			if c.got != float64(c.want) {
				t.Errorf("%s = %v, want %d", c.name, c.got, c.want)
			}
		}
		if d := snap.Sum("slipstream.exporter.items", attribute.String("outcome", "dropped")); d != 0 {
			t.Errorf("the agent counted %v dropped items against a healthy backend", d)
		}
	})

	t.Run("503 with Retry-After for 10 s then healthy: everything arrives", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, endpoint := e2eSink(t, "", sink.Fault{Status: http.StatusServiceUnavailable, RetryAfter: 2 * time.Second, For: 10 * time.Second})
		r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint})
		// Invoke until the agent got data through after the outage.
		results := e2eWorkload(ctx, t, r, 500, 10, 200, func() bool {
			return s.Requests()[sink.SignalTraces].Accepted > 0
		})
		e2eCheckExit(t, r.shutdown(ctx))
		e2eAllDelivered(ctx, t, s, results)
		if f := s.Requests()[sink.SignalTraces].Faulted; f == 0 {
			t.Errorf("no trace request met the 503 fault")
		}
		e2eRecordPostRuntime(t, results)
	})

	t.Run("refused connections for 10 s then healthy: everything arrives", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		port := freePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		s := sink.New(sink.Options{})
		t.Cleanup(func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ccancel()
			if err := s.Close(cctx); err != nil {
				t.Errorf("close the sink: %v", err)
			}
		})
		r := e2eStart(ctx, t, e2eConfig{endpoint: "http://" + addr})
		outage := time.NewTimer(10 * time.Second)
		defer outage.Stop()
		started := false
		results := e2eWorkload(ctx, t, r, 500, 10, 400, func() bool {
			select {
			case <-outage.C:
				if _, err := s.Start(addr); err != nil {
					t.Fatalf("start the sink on the reserved port after the outage: %v", err)
				}
				started = true
			default:
			}
			return started && s.Requests()[sink.SignalTraces].Accepted > 0
		})
		e2eCheckExit(t, r.shutdown(ctx))
		e2eAllDelivered(ctx, t, s, results)
		e2eRecordPostRuntime(t, results)
	})

	t.Run("2 s responses", func(t *testing.T) {
		const n = 10
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, endpoint := e2eSink(t, "", sink.Fault{Delay: 2 * time.Second})
		spill := filepath.Join(t.TempDir(), "spill")
		r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint, spillDir: spill})
		// e2eWorkload fails the test on any response but the normal one.
		results := e2eWorkload(ctx, t, r, 500, n, n, func() bool { return true })
		sres := r.shutdown(ctx)
		// The agent has exited: what it sent has been answered or dropped.
		e2eWait(ctx, t, s, "no request held", func(snap *sink.Snapshot) bool {
			for _, c := range snap.Requests() {
				if c.Held > 0 {
					return false
				}
			}
			return true
		})

		t.Run("leave every invocation unharmed", func(t *testing.T) {
			for i, res := range results {
				if err := e2eResponseOK(res); err != nil {
					t.Errorf("invocation %d: %v", i+1, err)
				}
			}
			e2eRecordPostRuntime(t, results)
		})

		t.Run("leave every span delivered or spilled, and the spill replays at the next start", func(t *testing.T) {
			e2eCheckExit(t, sres)
			// A 2 s answer cannot fit in the SHUTDOWN budget (2 s minus
			// the runtime's share): what is left then must be spilled.
			var spilled [][]byte
			for _, f := range e2eSpillFiles(spill) {
				b, err := os.ReadFile(filepath.Join(spill, f))
				if err != nil {
					t.Fatal(err)
				}
				spilled = append(spilled, b)
			}
			inSpill := func(id string) bool {
				for _, b := range spilled {
					if bytes.Contains(b, []byte(id)) {
						return true
					}
				}
				return false
			}
			direct := e2eInvocationSpans(s.Snapshot())
			var ids, delivered, replayed []string
			for _, res := range results {
				ids = append(ids, res.RequestID)
				switch {
				case len(direct[res.RequestID]) > 0:
					delivered = append(delivered, res.RequestID)
				case inSpill(res.RequestID):
					replayed = append(replayed, res.RequestID)
				default:
					t.Errorf("invocation %s: neither delivered nor spilled (lost silently)", res.RequestID)
				}
			}
			t.Logf("%d of %d invocation spans delivered during the run, %d spilled (%d spill files); sink requests %+v",
				len(delivered), n, len(replayed), len(spilled), s.Requests())

			// The next start in the same environment replays the spill
			// file to a backend that answers at once.
			s2, endpoint2 := e2eSink(t, "")
			r2 := e2eStart(ctx, t, e2eConfig{endpoint: endpoint2, spillDir: spill})
			r2.invoke(ctx, `{"action":"succeed"}`, "")
			e2eCheckExit(t, r2.shutdown(ctx))
			if e2eWait(ctx, t, s2, "the replayed spans", e2eHasSpans(replayed)) {
				both := []map[string][]sink.LogView{e2eLogsByInvocation(s.Snapshot()), e2eLogsByInvocation(s2.Snapshot())}
				for i, id := range ids {
					if !e2eLogged(i) {
						continue
					}
					bodies := map[string]bool{}
					for _, m := range both {
						for _, lr := range m[id] {
							bodies[lr.Body] = true
						}
					}
					if len(bodies) < e2eLogLines {
						t.Errorf("invocation %s: %d of its %d log lines arrived, directly or replayed", id, len(bodies), e2eLogLines)
					}
				}
			}
			if left := e2eSpillFiles(spill); len(left) > 0 {
				t.Errorf("spill files left after a successful replay: %v", left)
			}

			t.Run("and the run's metric sums arrive, directly or replayed", func(t *testing.T) {
				got := e2eCumulativeSum("faas.invocations", s.Snapshot(), s2.Snapshot())
				t.Logf("Σ faas.invocations over both runs: %v for %d + 1 successful invocations (during the run %v, after the restart %v)",
					got, n, s.Sum("faas.invocations"), s2.Sum("faas.invocations"))
				if got != n+1 {
					t.Errorf("Σ faas.invocations over both runs = %v, want %d", got, n+1)
				}
			})
		})
	})

	t.Run("shutdown right after the last invocation still delivers its report's figures", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, endpoint := e2eSink(t, "")
		// Frozen after each invocation like Lambda, so the last report is
		// still buffered when Shutdown starts; it reaches the agent only
		// after the SHUTDOWN event, as in Lambda (Telemetry API).
		r := e2eStart(ctx, t, e2eConfig{endpoint: endpoint, freeze: true, lateReport: true})
		var results []emulator.InvokeResult
		for range 3 {
			results = append(results, r.invoke(ctx, `{"action":"alloc","mb":8}`, ""))
		}
		e2eCheckExit(t, r.shutdown(ctx))
		last := results[len(results)-1]
		e2eWait(ctx, t, s, "the last invocation's postRuntime span", func(snap *sink.Snapshot) bool {
			return len(e2ePostRuntimeSpans(snap)[last.RequestID]) > 0
		})
		if n := len(e2eInvocationSpans(s.Snapshot())[last.RequestID]); n != 1 {
			t.Fatalf("%d spans for the last invocation, want 1", n)
		}
		// The report's figures come on the postRuntime span beside the invocation span.
		spans := e2ePostRuntimeSpans(s.Snapshot())[last.RequestID]
		if len(spans) != 1 {
			t.Fatalf("%d postRuntime spans for the last invocation, want 1", len(spans))
		}
		got, ok := spans[0].Attributes["slipstream.billed_duration"]
		if want := float64(last.BilledDuration.Milliseconds()) / 1000; !ok || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("last invocation: slipstream.billed_duration = %v s (present %v), its report says %v s", got, ok, want)
		}
		if got, ok := spans[0].Attributes["slipstream.max_memory_used"]; !ok || fmt.Sprint(got) != fmt.Sprint(int64(last.MaxMemoryUsedMB)<<20) {
			t.Errorf("last invocation: slipstream.max_memory_used = %v By (present %v), its report says %d MB", got, ok, last.MaxMemoryUsedMB)
		}
		if c := s.Snapshot().Count("slipstream.billed_duration"); c != uint64(len(results)) {
			t.Errorf("count of slipstream.billed_duration = %d, want %d", c, len(results))
		}
	})

	t.Run("a log flood's lines are received or counted as dropped", func(t *testing.T) {
		const lines, large = 20_000, 64 << 10
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, endpoint := e2eSink(t, "")
		r := e2eStart(ctx, t, e2eConfig{
			endpoint: endpoint,
			timeout:  time.Minute,
			// The platform's buffer at the largest documented maxBytes
			// (Telemetry API, 1 MiB).
			bufferBytes: 1 << 20,
			// No extension logs, so that every log drop is a flood line.
			env: []string{"SLIPSTREAM_TELEMETRY_TYPES=platform,function"},
		})
		res := r.invoke(ctx, fmt.Sprintf(`{"action":"flood","lines":%d,"bytes":%d}`, lines, large), "")
		if err := e2eResponseOK(res); err != nil {
			t.Fatal(err)
		}
		e2eCheckExit(t, r.shutdown(ctx))
		e2eWait(ctx, t, s, "the flood invocation's span", e2eHasSpans([]string{res.RequestID}))
		snap := s.Snapshot()

		floodLine := regexp.MustCompile(`^flood line (\d+)( large x+)?$`)
		seen := map[int]int{}
		var largeSeen, other int
		for _, lr := range snap.Logs() {
			m := floodLine.FindStringSubmatch(lr.Body)
			if m == nil {
				other++
				continue
			}
			k, _ := strconv.Atoi(m[1])
			seen[k]++
			if m[2] != "" {
				largeSeen++
			}
		}
		var dups int
		for _, c := range seen {
			dups += c - 1
		}
		st := r.emu.Stats()
		if st.FailedBatches != 0 {
			t.Errorf("the emulator failed to deliver %d batches to the agent", st.FailedBatches)
		}
		agentDropped := snap.Sum("slipstream.exporter.items", attribute.String("signal", "logs"), attribute.String("outcome", "dropped"))
		agentSpilled := snap.Sum("slipstream.exporter.items", attribute.String("signal", "logs"), attribute.String("outcome", "spilled"))
		platformDropped := snap.Sum("slipstream.logs_dropped.records")
		received := len(seen)
		t.Logf("%d lines written: %d received (%d large, %d duplicates, %d other records), emulator dropped %d (in %d logsDropped events; agent saw %v), agent dropped %v, agent spilled %v; spill files %v",
			lines, received, largeSeen, dups, other, st.DroppedRecords, st.LogsDroppedEvents, platformDropped, agentDropped, agentSpilled, e2eSpillFiles(r.spillDir))
		if total := received + int(st.DroppedRecords) + int(agentDropped) + int(agentSpilled); total != lines {
			t.Errorf("received %d + emulator dropped %d + agent dropped %v + agent spilled %v = %d, want the %d lines written (loss must be counted)",
				received, st.DroppedRecords, agentDropped, agentSpilled, total, lines)
		}
		if agentDropped != 0 {
			// Healthy backend: the agent's spool and backpressure hold a
			// flood rather than drop it.
			t.Errorf("the agent dropped %v flood lines with a healthy backend", agentDropped)
		}
		if platformDropped != float64(st.DroppedRecords) {
			t.Errorf("slipstream.logs_dropped.records = %v, the emulator reported %d dropped records in platform.logsDropped", platformDropped, st.DroppedRecords)
		}
	})
}
