package exporter

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/telemetry"
)

func TestIntakeDropsLogsBeforePlatformEvents(t *testing.T) {
	at := time.Now()
	plat := func(id string) telemetry.Event { e := start(id, at); e.Size = 100; return e }
	logEv := func(s string) telemetry.Event { e := logLine(s, at); e.Size = 100; return e }
	t.Run("incoming logs are dropped to keep incoming platform events", func(t *testing.T) {
		in := intake{max: 400}
		in.add([]telemetry.Event{plat("0")})
		dl, dp := in.add([]telemetry.Event{logEv("a"), plat("1"), logEv("b"), plat("2"), logEv("c"), plat("3")})
		if dl != 3 || dp != 0 || in.bytes != 400 {
			t.Errorf("dropped %d logs, %d platform, %d bytes kept; want 3, 0, 400", dl, dp, in.bytes)
		}
	})
	t.Run("an empty intake takes a batch larger than its bound whole", func(t *testing.T) {
		in := intake{max: 300}
		dl, dp := in.add([]telemetry.Event{logEv("a"), plat("1"), logEv("b"), plat("2"), logEv("c"), plat("3")})
		if dl != 0 || dp != 0 || in.bytes != 600 {
			t.Errorf("dropped %d logs, %d platform, %d bytes kept; want 0, 0, 600", dl, dp, in.bytes)
		}
	})
	t.Run("queued logs are evicted, oldest first, for platform events", func(t *testing.T) {
		in := intake{max: 300}
		in.add([]telemetry.Event{logEv("old"), logEv("newer"), plat("1")})
		dl, dp := in.add([]telemetry.Event{plat("2")})
		if dl != 1 || dp != 0 {
			t.Fatalf("dropped %d logs, %d platform; want 1, 0", dl, dp)
		}
		if got := in.evs[0].Record.(*telemetry.Log).Text; got != "newer" {
			t.Errorf("kept %q, want the newer log", got)
		}
	})
	t.Run("platform events go last", func(t *testing.T) {
		in := intake{max: 200}
		in.add([]telemetry.Event{plat("1"), plat("2")})
		dl, dp := in.add([]telemetry.Event{logEv("x"), plat("3")})
		if dl != 1 || dp != 1 {
			t.Errorf("dropped %d logs, %d platform; want 1, 1", dl, dp)
		}
	})
}

func TestEnqueueNeverBlocksAndCountsDrops(t *testing.T) {
	h := newHarness(t, testConfig(t, "http://collector.invalid", "async"), knobs{IntakeMaxBytes: 1000})
	// No worker running: the intake fills up and Enqueue keeps returning.
	at := time.Now()
	for i := range 100 {
		h.p.Enqueue(context.Background(), []telemetry.Event{logLine("line", at), start(string(rune('a'+i%26)), at)})
	}
	st := h.p.tally()
	if st.IntakeDroppedLogs == 0 || st.IntakeBytes > 1000 {
		t.Errorf("stats = %+v", st)
	}
	if st.IntakeDroppedPlatform > 0 && st.IntakeDroppedLogs < 100 {
		t.Errorf("platform events dropped (%d) while log events were still queued", st.IntakeDroppedPlatform)
	}
}

func TestQueueEvictsLogsBeforeSpans(t *testing.T) {
	q := queue{max: 300}
	span := func() *item { return &item{bytes: 100} }
	logRec := func() *item { return &item{bytes: 100} }
	q.push(sigLogs, logRec())
	q.push(sigTraces, span())
	q.push(sigLogs, logRec())
	if d := q.push(sigTraces, span()); len(d) != 1 || len(q.logs) != 1 || len(q.spans) != 2 {
		t.Fatalf("a span evicted %d items, queue has %d logs %d spans; want 1 log evicted", len(d), len(q.logs), len(q.spans))
	}
	if d := q.push(sigTraces, span()); len(d) != 1 || len(q.logs) != 0 || len(q.spans) != 3 {
		t.Fatalf("second span: evicted %d, %d logs %d spans left", len(d), len(q.logs), len(q.spans))
	}
	in := logRec()
	if d := q.push(sigLogs, in); len(d) != 1 || d[0] != in || len(q.spans) != 3 {
		t.Fatalf("a log record evicted a span")
	}
	if d := q.push(sigTraces, span()); len(d) != 1 || len(q.spans) != 3 {
		t.Fatalf("span into a queue full of spans: evicted %d", len(d))
	}
	if q.bytes != 300 {
		t.Errorf("bytes = %d, want 300", q.bytes)
	}
}

// Intake drops are reported in the summary line, not only counted.

func TestIntakeDropsReachTheSummaryLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := synctestHarness(t, config.FlushAsync, sink.New(sink.Options{}), knobs{IntakeMaxBytes: 1000})
		at := time.Now()
		for range 50 {
			h.p.Enqueue(context.Background(), []telemetry.Event{logLine("line", at)})
		}
		h.run(t)
		synctest.Wait()
		if !strings.Contains(h.logs.String(), `"intake_dropped":`) {
			t.Fatalf("no summary line with intake_dropped; log:\n%s", h.logs.String())
		}
		if strings.Contains(h.logs.String(), `"intake_dropped":0`) {
			t.Errorf("summary reports no intake drops; log:\n%s", h.logs.String())
		}
	})
}
