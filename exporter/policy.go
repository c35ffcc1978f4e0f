package exporter

import (
	"time"

	"github.com/slipstream-otel/slipstream/config"
)

// policy decides, for every flush mode (SLIPSTREAM_FLUSH), when queued data
// and metrics are due, when the worker should look again, and how awake
// time is counted. It is a pure value: every input is passed in (no clock,
// no state), so it is table-tested without a worker. Which invocations the
// agent waits for (end, adaptive) is decided apart, in Pipeline.Invoke.
//
//   - async (and adaptive between waited invocations): a batch is due when
//     it is full or BatchDelay old, metrics every MetricInterval, both in
//     awake time;
//   - adaptive also sends data older than SLIPSTREAM_MAX_DATA_AGE in wall
//     time at the first look while awake;
//   - periodic,<d>: every d, queued data and metrics together;
//   - end: as async for what no invocation waits for (the waits themselves
//     are the worker's).
type policy struct {
	mode           config.FlushMode
	period         time.Duration // periodic,<d>; zero otherwise
	batchDelay     time.Duration
	batchMaxBytes  int64
	metricInterval time.Duration
	maxDataAge     time.Duration // adaptive's bound on data age in wall time; zero: none
	freezeGap      time.Duration
}

// newPolicy returns the policy of mode with cfg's period and data age.
func newPolicy(cfg *config.Config, mode config.FlushMode, p policy) policy {
	p.mode = mode
	if mode == config.FlushPeriodic && cfg.FlushPeriod > 0 {
		p.period = cfg.FlushPeriod
	}
	if mode == config.FlushAdaptive {
		p.maxDataAge = cfg.MaxDataAge
	}
	return p
}

// awakeClock counts the time the environment was awake: batch age and the
// metric interval are measured on it, so that a freeze between
// invocations does not make them due at thaw.
type awakeClock struct {
	awake time.Duration
	at    time.Time // wall time of the last reading
}

// tick advances c to now: a step of the wall clock longer than freezeGap
// is a freeze of the environment and does not count (a timer that expired
// during a freeze fires at thaw), and neither does the time before an
// INVOKE that arrived since the last reading (thaw): Lambda freezes the
// environment only while every extension waits in /event/next, so that
// wait may have been a freeze too short to see. Awake time is therefore a
// lower bound (a CPU-throttled process loses some too).
func (p policy) tick(c awakeClock, now, thaw time.Time) awakeClock {
	from := c.at
	c.at = now
	if from.IsZero() {
		return c
	}
	if thaw.After(from) {
		from = thaw
	}
	if el := now.Sub(from); el > 0 && el <= p.freezeGap {
		c.awake += el
	}
	return c
}

// head is the oldest queued item of one signal.
type head struct {
	ok     bool
	qseq   uint64        // queue order
	at     time.Duration // queued, in awake time
	queued time.Time     // queued, in wall time
}

// metricsView is the metrics state the policy decides on.
type metricsView struct {
	dirty    bool          // events consumed since the last collection
	armed    bool          // the interval runs (since the first data)
	busy     bool          // a metrics request is in flight
	pending  bool          // a collection is wanted or queued
	lastAt   time.Duration // last collection, awake time
	lastWall time.Time     // last collection, wall time
}

// flushView is what the policy decides on: the worker's state at now.
type flushView struct {
	now        time.Time
	awake      time.Duration
	queued     int64   // bytes queued, not in flight
	heads      [2]head // traces, logs
	busy       [2]bool // a request in flight: traces, logs
	nextPeriod time.Time
	gate       time.Time // no send before (backoff, open breaker)
	eager      uint64    // items queued up to eager are sent now
	metrics    metricsView
}

// dueNow is what the policy finds due.
type dueNow struct {
	batch      bool      // send everything queued now
	metrics    bool      // take a metrics collection now
	arm        bool      // first data: start the metric interval now
	nextPeriod time.Time // periodic: the end of the current period
}

func (p policy) periodic() bool { return p.period > 0 }

// tooOld reports whether data queued (or collected) at t is older than
// maxDataAge.
func (p policy) tooOld(now, t time.Time) bool {
	return p.maxDataAge > 0 && !t.IsZero() && now.Sub(t) >= p.maxDataAge
}

// due returns what is due at v.now.
func (p policy) due(v flushView) dueNow {
	d := dueNow{nextPeriod: v.nextPeriod}
	switch {
	case v.queued >= p.batchMaxBytes:
		d.batch = true
	case p.periodic():
		if d.nextPeriod.IsZero() {
			d.nextPeriod = v.now.Add(p.period)
		}
		if !v.now.Before(d.nextPeriod) {
			d.batch = true
			d.nextPeriod = v.now.Add(p.period)
		}
	default:
		for _, h := range v.heads {
			if h.ok && (v.awake-h.at >= p.batchDelay || p.tooOld(v.now, h.queued)) {
				d.batch = true
			}
		}
	}
	m := v.metrics
	d.metrics = m.dirty && (v.awake-m.lastAt >= p.metricInterval || p.tooOld(v.now, m.lastWall))
	if !m.armed && m.dirty {
		d.arm, d.metrics = true, false
	}
	if p.periodic() {
		d.metrics = d.batch // metrics leave with each period's data
	}
	return d
}

// awakeWake returns the wall time at which to look again for something
// due at awake time at: as soon as it may be due, and no later than
// freezeGap/2 from now, so that, while the environment is awake, the
// readings of the clock stay within the freezeGap tick counts.
func (p policy) awakeWake(now time.Time, awake, at time.Duration) time.Time {
	return now.Add(min(max(at-awake, 0), max(p.freezeGap/2, time.Millisecond)))
}

// nextLook returns when to look again for background work (zero: only on
// a signal or a request's result, which wakes the worker anyway).
func (p policy) nextLook(v flushView) time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	after := func(t time.Time) time.Time {
		if v.gate.After(t) {
			return v.gate
		}
		return t
	}
	for i, h := range v.heads {
		if v.busy[i] || !h.ok {
			continue
		}
		switch {
		case h.qseq <= v.eager:
			// Blocked by the gate (or by a half-open probe in flight,
			// whose result wakes the worker).
			if v.gate.After(v.now) {
				earliest(v.gate)
			}
		case p.periodic():
			earliest(after(v.nextPeriod))
		default:
			earliest(after(p.awakeWake(v.now, v.awake, h.at+p.batchDelay)))
			if p.maxDataAge > 0 {
				earliest(after(h.queued.Add(p.maxDataAge)))
			}
		}
	}
	m := v.metrics
	if !m.busy {
		switch {
		case m.pending:
			if v.gate.After(v.now) {
				earliest(v.gate)
			}
		case m.dirty && p.periodic():
			earliest(after(v.nextPeriod))
		case m.dirty:
			earliest(after(p.awakeWake(v.now, v.awake, m.lastAt+p.metricInterval)))
			if p.maxDataAge > 0 && m.armed {
				earliest(after(m.lastWall.Add(p.maxDataAge)))
			}
		}
	}
	return next
}
