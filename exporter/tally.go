package exporter

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// signal names an exported signal (the "signal" attribute of self-metrics).
type signal string

const (
	sigTraces  signal = "traces"
	sigLogs    signal = "logs"
	sigMetrics signal = "metrics"
	// sigPlatform counts Telemetry API platform events dropped at the
	// intake, before they were mapped to any signal.
	sigPlatform signal = "platform_events"
)

// outcome is what became of an item (the "outcome" attribute).
type outcome string

const (
	outSent    outcome = "sent"
	outDropped outcome = "dropped"
	outRetried outcome = "retried"
	outDup     outcome = "duplicate_suspected"
	outSpilled outcome = "spilled"
)

// dropReason says why items were dropped (the "reason" attribute of
// dropped items, and the totals at exit).
type dropReason string

const (
	// dropQueueFull: the queue was full (log records are evicted first).
	dropQueueFull dropReason = "queue_full"
	// dropIntakeFull: the intake was full before the worker ran, or after
	// SHUTDOWN's flush.
	dropIntakeFull dropReason = "intake_full"
	// dropClosed: the data arrived after the final spill.
	dropClosed dropReason = "closed"
	// dropUnauthorized: the backend rejected the credentials (401/403).
	dropUnauthorized dropReason = "unauthorized"
	// dropRejected: the backend rejected the data as invalid (4xx).
	dropRejected dropReason = "rejected"
	// dropTooManyPending: more metric collections waited than are kept.
	dropTooManyPending dropReason = "too_many_pending"
	// dropSpillFailed: the spill file could not be written, or spill is off.
	dropSpillFailed dropReason = "spill_failed"
	// dropUnencodable: a metric collection could not be encoded for spill.
	dropUnencodable dropReason = "unencodable"
	// dropSignalOff: spilled data of a signal switched off since.
	dropSignalOff dropReason = "signal_off"
	// dropNotExported: the function sent a signal Slipstream does not
	// export (switched off, or export off).
	dropNotExported dropReason = "not_exported"
)

var dropReasons = []dropReason{dropQueueFull, dropIntakeFull, dropClosed, dropUnauthorized,
	dropRejected, dropTooManyPending, dropSpillFailed, dropUnencodable, dropSignalOff, dropNotExported}

// signals in the order of the totals.
var tallySignals = []signal{sigTraces, sigLogs, sigMetrics, sigPlatform}

// signalTally counts the items of one signal by outcome, and the dropped
// ones by reason.
type signalTally struct {
	Sent, Dropped, Retried, DuplicateSuspected, Spilled int64
	DroppedBy                                           map[dropReason]int64
}

// tally is a snapshot of the pipeline's counters since New.
type tally struct {
	Traces, Logs, Metrics, Platform signalTally
	// FunctionTraces, FunctionLogs, FunctionMetrics count the function's
	// own data (package receiver).
	FunctionTraces, FunctionLogs, FunctionMetrics signalTally
	// IntakeWaits counts the times Enqueue waited for the worker to take
	// a full intake (backpressure instead of a drop).
	IntakeWaits                                              int64
	AuthFailures                                             int64
	SpillFilesWritten, SpillFilesReplayed, SpillFilesDeleted int64
	SpillFilesExpired, SpillErrors                           int64
	QueueBytes                                               int64
	IntakeBytes                                              int64
	Breaker                                                  string
	// IntakeDroppedLogs and IntakeDroppedPlatform count the events Enqueue
	// dropped (intake full, or after Close's spill).
	IntakeDroppedLogs, IntakeDroppedPlatform int64
}

// counters are the pipeline's counters: atomic, written by the worker and
// by Enqueue, read by the exit summary and the self-metrics.
type counters struct {
	inst  *selfMetrics // nil until the MeterProvider exists
	items [4][5]atomic.Int64
	drops [4][10]atomic.Int64
	// fnItems and fnDrops count the function's own data (receiver), by
	// fnLane: source=function in the self-metrics.
	fnItems [3][5]atomic.Int64
	fnDrops [3][10]atomic.Int64

	intakeWaits, authFailures                                         atomic.Int64
	spillWritten, spillReplayed, spillDeleted, spillExpired, spillErr atomic.Int64
	// queueBytes mirrors the queue's total (the slipstream.queue.size gauge).
	queueBytes atomic.Int64
}

func sigIndex(s signal) int {
	switch s {
	case sigTraces:
		return 0
	case sigLogs:
		return 1
	case sigMetrics:
		return 2
	}
	return 3
}

func outIndex(o outcome) int {
	switch o {
	case outSent:
		return 0
	case outDropped:
		return 1
	case outRetried:
		return 2
	case outDup:
		return 3
	}
	return 4
}

func reasonIndex(r dropReason) int {
	for i, x := range dropReasons {
		if x == r {
			return i
		}
	}
	return 0
}

// count adds n items of sig with outcome o (not a drop: see drop).
func (c *counters) count(sig signal, o outcome, n int64) {
	if n == 0 {
		return
	}
	c.items[sigIndex(sig)][outIndex(o)].Add(n)
	if c.inst != nil {
		c.inst.items(context.Background(), sig, o, "", n)
	}
}

// drop counts n items of sig dropped for reason.
func (c *counters) drop(sig signal, reason dropReason, n int64) {
	if n == 0 {
		return
	}
	c.items[sigIndex(sig)][outIndex(outDropped)].Add(n)
	c.drops[sigIndex(sig)][reasonIndex(reason)].Add(n)
	if c.inst != nil {
		c.inst.items(context.Background(), sig, outDropped, reason, n)
	}
}

// countFn adds n items of the function's own data of sig with outcome o.
func (c *counters) countFn(sig signal, o outcome, n int64) {
	if n == 0 {
		return
	}
	c.fnItems[fnLane(sig)][outIndex(o)].Add(n)
	if c.inst != nil {
		c.inst.itemsFrom(context.Background(), srcFunction, sig, o, "", n)
	}
}

// dropFn counts n items of the function's own data of sig dropped for reason.
func (c *counters) dropFn(sig signal, reason dropReason, n int64) {
	if n == 0 {
		return
	}
	c.fnItems[fnLane(sig)][outIndex(outDropped)].Add(n)
	c.fnDrops[fnLane(sig)][reasonIndex(reason)].Add(n)
	if c.inst != nil {
		c.inst.itemsFrom(context.Background(), srcFunction, sig, outDropped, reason, n)
	}
}

// functionSignal returns the counts of the function's own data of sig.
func (c *counters) functionSignal(sig signal) signalTally {
	l := fnLane(sig)
	t := signalTally{
		Sent: c.fnItems[l][0].Load(), Dropped: c.fnItems[l][1].Load(), Retried: c.fnItems[l][2].Load(),
		DuplicateSuspected: c.fnItems[l][3].Load(), Spilled: c.fnItems[l][4].Load(),
	}
	for j, r := range dropReasons {
		if n := c.fnDrops[l][j].Load(); n > 0 {
			if t.DroppedBy == nil {
				t.DroppedBy = make(map[dropReason]int64)
			}
			t.DroppedBy[r] = n
		}
	}
	return t
}

// dropped returns how many items of sig were dropped for reason.
func (c *counters) dropped(sig signal, reason dropReason) int64 {
	return c.drops[sigIndex(sig)][reasonIndex(reason)].Load()
}

func (c *counters) signal(sig signal) signalTally {
	i := sigIndex(sig)
	t := signalTally{
		Sent: c.items[i][0].Load(), Dropped: c.items[i][1].Load(), Retried: c.items[i][2].Load(),
		DuplicateSuspected: c.items[i][3].Load(), Spilled: c.items[i][4].Load(),
	}
	for j, r := range dropReasons {
		if n := c.drops[i][j].Load(); n > 0 {
			if t.DroppedBy == nil {
				t.DroppedBy = make(map[dropReason]int64)
			}
			t.DroppedBy[r] = n
		}
	}
	return t
}

// snapshot returns the counters (the intake and breaker fields are the
// caller's).
func (c *counters) snapshot() tally {
	logs, platform := c.signal(sigLogs), c.signal(sigPlatform)
	return tally{
		Traces: c.signal(sigTraces), Logs: logs, Metrics: c.signal(sigMetrics), Platform: platform,
		FunctionTraces: c.functionSignal(sigTraces), FunctionLogs: c.functionSignal(sigLogs), FunctionMetrics: c.functionSignal(sigMetrics),
		IntakeDroppedLogs:     logs.DroppedBy[dropIntakeFull] + logs.DroppedBy[dropClosed],
		IntakeDroppedPlatform: platform.Dropped,
		IntakeWaits:           c.intakeWaits.Load(), AuthFailures: c.authFailures.Load(),
		SpillFilesWritten: c.spillWritten.Load(), SpillFilesReplayed: c.spillReplayed.Load(),
		SpillFilesDeleted: c.spillDeleted.Load(), SpillFilesExpired: c.spillExpired.Load(),
		SpillErrors: c.spillErr.Load(), QueueBytes: c.queueBytes.Load(),
	}
}

// totals logs the one summary line at exit: per signal what was sent,
// spilled and dropped (and why). It is a WARN when anything was dropped,
// or when incomplete: Close gave up waiting for the worker's spill.
func (c *counters) totals(log *slog.Logger, incomplete bool) {
	level := slog.LevelInfo
	attrs := make([]slog.Attr, 0, 8)
	if incomplete {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Bool("incomplete", true))
	}
	type row struct {
		name string
		sig  signal
		t    signalTally
	}
	var rows []row
	for _, sig := range tallySignals {
		rows = append(rows, row{string(sig), sig, c.signal(sig)})
	}
	for _, sig := range fnSignals {
		rows = append(rows, row{"function_" + string(sig), sig, c.functionSignal(sig)})
	}
	for _, r := range rows {
		sig, t := r.sig, r.t
		if t.Sent == 0 && t.Dropped == 0 && t.Spilled == 0 && t.Retried == 0 {
			continue
		}
		g := []any{}
		if sig != sigPlatform {
			g = append(g, slog.Int64("sent", t.Sent), slog.Int64("spilled", t.Spilled), slog.Int64("retried", t.Retried))
		}
		g = append(g, slog.Int64("dropped", t.Dropped))
		if t.Dropped > 0 {
			level = slog.LevelWarn
			for _, r := range dropReasons {
				if n := t.DroppedBy[r]; n > 0 {
					g = append(g, slog.Int64("dropped_"+string(r), n))
				}
			}
		}
		attrs = append(attrs, slog.Group(r.name, g...))
	}
	if n := c.spillErr.Load(); n > 0 {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Int64("spill_errors", n))
	}
	if n := c.authFailures.Load(); n > 0 {
		attrs = append(attrs, slog.Int64("auth_failures", n))
	}
	log.LogAttrs(context.Background(), level, "export totals", attrs...)
}
