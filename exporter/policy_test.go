package exporter

import (
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/config"
)

func TestPolicyDue(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	async := policy{mode: config.FlushAsync, batchDelay: 200 * time.Millisecond, batchMaxBytes: 1000, metricInterval: 10 * time.Second, freezeGap: 25 * time.Millisecond}
	adaptive := async
	adaptive.mode, adaptive.maxDataAge = config.FlushAdaptive, time.Minute
	periodic := async
	periodic.mode, periodic.period = config.FlushPeriodic, 5*time.Second
	queued := func(at time.Duration, wall time.Time) [2]head {
		return [2]head{{ok: true, qseq: 1, at: at, queued: wall}}
	}
	tests := []struct {
		name string
		pol  policy
		v    flushView
		want dueNow
	}{
		{"an empty queue is never due", async, flushView{now: t0, awake: time.Hour}, dueNow{}},
		{"a full batch is due at once", async, flushView{now: t0, queued: 1000, heads: queued(0, t0)}, dueNow{batch: true}},
		{"a batch is due at BatchDelay of awake time", async,
			flushView{now: t0, awake: 200 * time.Millisecond, heads: queued(0, t0)}, dueNow{batch: true}},
		{"a batch queued an hour ago in wall time but 100ms awake is not due", async,
			flushView{now: t0, awake: 100 * time.Millisecond, heads: queued(0, t0.Add(-time.Hour))}, dueNow{}},
		{"adaptive sends data older than MaxDataAge in wall time", adaptive,
			flushView{now: t0, awake: 100 * time.Millisecond, heads: queued(0, t0.Add(-time.Hour))}, dueNow{batch: true}},
		{"the first data arms the metric interval", async,
			flushView{now: t0, metrics: metricsView{dirty: true}}, dueNow{arm: true}},
		{"metrics are due a MetricInterval of awake time after the last collection", async,
			flushView{now: t0, awake: 11 * time.Second, metrics: metricsView{dirty: true, armed: true, lastAt: time.Second}}, dueNow{metrics: true}},
		{"no metrics without new data", async,
			flushView{now: t0, awake: time.Hour, metrics: metricsView{armed: true}}, dueNow{}},
		{"periodic starts its first period", periodic,
			flushView{now: t0, heads: queued(0, t0)}, dueNow{nextPeriod: t0.Add(5 * time.Second)}},
		{"periodic sends data and metrics together at the end of the period", periodic,
			flushView{now: t0, heads: queued(0, t0), nextPeriod: t0, metrics: metricsView{dirty: true, armed: true}},
			dueNow{batch: true, metrics: true, nextPeriod: t0.Add(5 * time.Second)}},
		{"periodic ignores BatchDelay", periodic,
			flushView{now: t0, awake: time.Hour, heads: queued(0, t0), nextPeriod: t0.Add(time.Second)},
			dueNow{nextPeriod: t0.Add(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pol.due(tt.v); got != tt.want {
				t.Errorf("due = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPolicyNextLook(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	async := policy{mode: config.FlushAsync, batchDelay: 200 * time.Millisecond, batchMaxBytes: 1000, metricInterval: 10 * time.Second, freezeGap: 25 * time.Millisecond}
	tests := []struct {
		name string
		v    flushView
		want time.Time
	}{
		{"nothing queued: only a signal wakes the worker", flushView{now: t0}, time.Time{}},
		{"a queued batch is looked at within half the freeze gap (awake time is counted in small steps)",
			flushView{now: t0, heads: [2]head{{ok: true, qseq: 1}}}, t0.Add(12500 * time.Microsecond)},
		{"a batch almost due is looked at when due",
			flushView{now: t0, awake: 195 * time.Millisecond, heads: [2]head{{ok: true, qseq: 1}}}, t0.Add(5 * time.Millisecond)},
		{"a batch waiting for the retry gate is looked at when the gate opens",
			flushView{now: t0, eager: 1, gate: t0.Add(3 * time.Second), heads: [2]head{{ok: true, qseq: 1}}}, t0.Add(3 * time.Second)},
		{"a signal with a request in flight waits for its result",
			flushView{now: t0, busy: [2]bool{true}, heads: [2]head{{ok: true, qseq: 1}}}, time.Time{}},
		{"a wanted metrics collection behind the gate waits for the gate",
			flushView{now: t0, gate: t0.Add(time.Second), metrics: metricsView{pending: true}}, t0.Add(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := async.nextLook(tt.v); !got.Equal(tt.want) {
				t.Errorf("nextLook = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyTick(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	p := policy{freezeGap: 25 * time.Millisecond}
	tests := []struct {
		name      string
		from, now time.Time
		thaw      time.Time
		want      time.Duration
	}{
		{"the first reading counts nothing", time.Time{}, t0, time.Time{}, 0},
		{"a short step is awake time", t0, t0.Add(10 * time.Millisecond), time.Time{}, 10 * time.Millisecond},
		{"a step longer than the freeze gap is a freeze", t0, t0.Add(time.Second), time.Time{}, 0},
		{"the time before an INVOKE may have been a freeze", t0, t0.Add(20 * time.Millisecond), t0.Add(15 * time.Millisecond), 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := p.tick(awakeClock{at: tt.from}, tt.now, tt.thaw)
			if c.awake != tt.want || !c.at.Equal(tt.now) {
				t.Errorf("tick = %+v, want awake %v at %v", c, tt.want, tt.now)
			}
		})
	}
}
