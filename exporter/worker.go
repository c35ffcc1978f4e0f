package exporter

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// finalFlush is SHUTDOWN's flush: everything is sent until the plan's
// Flush, then what is left (in flight included) is spilled before the
// reply.
type finalFlush struct {
	sd   *shutdownReq
	mgen uint64 // a collection of at least this generation must be sent
}

// worker is the state the goroutine running Pipeline.Run owns, and its
// methods run on that goroutine only (or on Close's, once Run has
// returned or never ran). It maps events with the mapper, queues the
// outputs, and decides what to send under the flush policy; the requests
// themselves run on the sender's goroutines.
type worker struct {
	cfg *config.Config
	log *slog.Logger
	now func() time.Time
	h   *handoff
	c   *counters
	exp *exporters
	pol policy
	snd *sender
	sp  *spill // nil when spill is disabled
	fnc *fnClients
	// fnRes and fnAdd: the attributes enrichment adds to the function's
	// resources, and the mapper resource they came from (otlpraw.go).
	fnRes *resource.Resource
	fnAdd []*commonpb.KeyValue

	m Mapper
	// newMapper builds a mapper whose outputs are attributed through lin;
	// replayMapper one whose metrics go nowhere (a spill replay).
	newMapper    func(metric.MeterProvider, *lineage) (Mapper, error)
	replayMapper func(*lineage) (Mapper, error)
	live         *lineage // lineage of the live mapper
	seq          uint64   // source events numbered in consumption order

	q  queue
	mq metricQueue

	// drainLocal: SHUTDOWN's flush waits for the plan's Drain (local inputs).
	drainLocal bool

	waiters []*waiter
	sd      *shutdownReq // SHUTDOWN waiting for the last reports
	final   *finalFlush  // SHUTDOWN flushing
	started bool         // an INVOKE or SHUTDOWN was seen: sending is allowed
	invokes int          // INVOKEs picked up so far
	// finished: SHUTDOWN's flush is over and its spill written; nothing is
	// sent any more (the process is about to exit: Close spills the rest).
	finished bool
	clock    awakeClock
	// nextPeriod is the end of the current period (periodic mode).
	nextPeriod time.Time
	// qseq numbers queued items; items queued up to drainMark are sent
	// without waiting for BatchDelay (a batch became due).
	qseq, drainMark uint64
	authLogged      bool
	// shutdown is the SHUTDOWN that closed open invocations, written into
	// spill files so that a replay closes them the same way.
	shutdown *spillShutdown
	// sum accumulates what the next summary log line reports.
	sum flushSummary
}

// flushSummary is what the next "export summary" line reports.
type flushSummary struct {
	dropped, failed, retried, rejected int64
	intakeDropped                      int64 // intake drops already reported
	lastErr                            string
}

// run is the worker loop: a step, then a wait for a signal, a request's
// result or the step's next look.
func (w *worker) run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, stop := w.step()
		if stop {
			w.stopSenders()
			return nil
		}
		timer.Stop()
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(max(next.Sub(w.now()), 0))
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			w.stopSenders()
			return nil
		case <-w.h.wake:
		case r := <-w.snd.results:
			w.onResult(r)
		case <-tc:
		}
	}
}

// step does all the work that is due and returns when it wants to be
// woken next (zero: only on a signal or a request's result), or stop when
// Close asked the worker to end. Its phases run in the order of their
// priority: take what was handed over, cancel the requests that hang,
// map it (INVOKEs first), let Close spill, move SHUTDOWN along, start the
// flushes invocations wait for, send, then settle what is complete.
func (w *worker) step() (next time.Time, stop bool) {
	w.reap()
	pk := w.h.pick()
	w.waiters = append(w.waiters, pk.waiters...)
	w.clock = w.pol.tick(w.clock, w.now(), pk.thaw)
	w.watchHangs(pk)
	w.mapInvokes(pk)
	w.mapEvents(pk.events, pk.close != nil)
	w.takeFunction(pk.fn)
	if pk.close != nil {
		pk.close.reply <- w.spillAll()
		return time.Time{}, true
	}
	w.acceptShutdown(pk.shutdown)
	now := w.now()
	var wake wakeAt
	w.advanceShutdown(now, &wake)
	w.startWaitedFlushes(now)
	eager := w.sendDue(now)
	w.settleWaitedFlushes(now, &wake)
	w.settleShutdown(now, &wake)
	wake.at(w.nextLook(now, eager))
	w.summary()
	return wake.t, false
}

// wakeAt collects the earliest of several wake-up times.
type wakeAt struct{ t time.Time }

func (e *wakeAt) at(t time.Time) {
	if !t.IsZero() && (e.t.IsZero() || t.Before(e.t)) {
		e.t = t
	}
}

// watchHangs has the sender count the INVOKEs picked up against the
// requests in flight, which cancels those that hang (sender.watch).
func (w *worker) watchHangs(pk pickup) {
	n := pk.invokedN - w.invokes
	w.invokes = pk.invokedN
	if n > 0 {
		w.snd.watch(n, w.clock.at)
	}
}

// mapInvokes hands the INVOKEs to the mapper; the first one means init is
// over (every extension called /event/next), so sending is allowed.
func (w *worker) mapInvokes(pk pickup) {
	for _, inv := range pk.invokes {
		w.m.Invoke(inv)
	}
	if pk.invoked {
		w.started = true
	}
}

// mapEvents maps the borrowed events. While a span or log request is in
// flight, an event whose output could overflow the queue is left in the
// intake with the rest, until the request ends: Enqueue waits meanwhile,
// which pushes back on the listener (whose spool absorbs a flood) instead
// of dropping records. Without a request in flight (a dead backend, a
// retry backoff, an open breaker, the shutdown flush over) everything is
// mapped and the queue's drop policy applies. Close's spill maps all.
func (w *worker) mapEvents(evs []telemetry.Event, closing bool) {
	var mapped int64
	rest := evs[len(evs):]
	for i, ev := range evs {
		if !closing && w.q.total()+2*eventSize(ev)+outputSlack > w.q.max && w.makeRoom() {
			rest = evs[i:]
			break
		}
		w.consume(w.m, w.live, ev)
		mapped += eventSize(ev)
	}
	w.h.giveBack(rest, mapped, closing)
}

// outputSlack is added to twice an event's size when the worker checks
// that mapping the event cannot overflow the queue: a log record is
// larger than its event, and a span also carries its phase's platform
// events (a few hundred bytes each) as its source.
const outputSlack = 4 << 10

// makeRoom reports whether a span or log request is in flight, starting
// what is due first when none is.
func (w *worker) makeRoom() bool {
	if w.finished {
		return false
	}
	inFlight := func() bool { return w.snd.busy(sigTraces) || w.snd.busy(sigLogs) }
	if !inFlight() {
		now := w.now()
		w.markDue(now)
		w.pump(now, w.drainMark)
	}
	return inFlight()
}

// acceptShutdown takes a SHUTDOWN request.
func (w *worker) acceptShutdown(sreq *shutdownReq) {
	if sreq == nil {
		return
	}
	if w.final != nil {
		sreq.reply <- errors.New("exporter: shutdown: already flushing")
		return
	}
	w.started = true
	w.sd = sreq
}

// advanceShutdown waits (until the plan's Reports) for the last reports,
// then closes what is open and starts the final flush.
func (w *worker) advanceShutdown(now time.Time, wake *wakeAt) {
	if sd := w.sd; sd != nil {
		reports := w.m.OpenInvocations() > 0 && now.Before(sd.plan.Reports)
		drain := w.drainLocal && now.Before(sd.plan.Drain)
		if (reports || drain) && sd.ctx.Err() == nil {
			if reports {
				wake.at(sd.plan.Reports)
			}
			if drain {
				wake.at(sd.plan.Drain)
			}
		} else {
			w.sd = nil
			w.shutdown = &spillShutdown{Reason: sd.plan.Reason, At: sd.plan.Received}
			w.m.Shutdown(sd.plan.Reason, sd.plan.Received)
			w.m.FlushLogs()
			w.final = &finalFlush{sd: sd}
		}
	}
	f := w.final
	if f == nil {
		return
	}
	switch {
	case w.mq.dirty || f.mgen == 0:
		// The final collection comes after the last event consumed.
		f.mgen = w.mq.gen + 1
		w.mq.wantGen(f.mgen)
	case w.mq.selfDirty && w.mq.settled >= f.mgen && w.flushed(math.MaxUint64, 0):
		// Metrics went out beside the last spans and logs: one more
		// collection carries those requests' self-metrics.
		f.mgen = w.mq.gen + 1
		w.mq.wantGen(f.mgen)
		w.mq.selfOnly = true
	}
}

// startWaitedFlushes starts the flush of each waiting invocation whose
// runtimeDone has been mapped, and releases those that can no longer be
// served (deadline, open breaker).
func (w *worker) startWaitedFlushes(now time.Time) {
	if len(w.waiters) == 0 {
		return
	}
	keep := w.waiters[:0]
	for _, wt := range w.waiters {
		switch {
		case wt.ctx.Err() != nil, !wt.flushStarted && (w.snd.br.blocking(now) || w.snd.hg.blocking()):
			close(wt.done)
			continue
		case !wt.flushStarted && w.m.RuntimeDone(wt.requestID):
			w.m.FlushLogs()
			dl, _ := wt.ctx.Deadline()
			if fdl := now.Add(wt.flush); dl.IsZero() || fdl.Before(dl) {
				dl = fdl
			}
			wt.flushStarted, wt.deadline = true, dl
			wt.mark, wt.mgen = w.qseq, w.mq.gen+1
			w.mq.wantGen(wt.mgen)
			close(wt.flushing)
		}
		keep = append(keep, wt)
	}
	clear(w.waiters[len(keep):])
	w.waiters = keep
}

// sendDue starts what is due: background batches and metrics, and
// everything a flush waits for. It returns the mark up to which queued
// items are sent now.
func (w *worker) sendDue(now time.Time) uint64 {
	w.markDue(now)
	eager := w.drainMark
	if w.sd != nil || w.final != nil {
		eager = math.MaxUint64
	}
	for _, wt := range w.waiters {
		if wt.flushStarted && wt.mark > eager {
			eager = wt.mark
		}
	}
	w.pump(now, eager)
	return eager
}

// settleWaitedFlushes releases the waiting invocations whose flush is
// complete or cannot complete in time (an endpoint hangs).
func (w *worker) settleWaitedFlushes(now time.Time, wake *wakeAt) {
	if len(w.waiters) == 0 {
		return
	}
	keep := w.waiters[:0]
	for _, wt := range w.waiters {
		if wt.flushStarted && (w.flushed(wt.mark, wt.mgen) || !now.Before(wt.deadline) || w.stuck(now, wt.deadline) || w.snd.hg.blocking()) {
			close(wt.done)
			continue
		}
		if wt.flushStarted {
			wake.at(wt.deadline)
		}
		keep = append(keep, wt)
	}
	clear(w.waiters[len(keep):])
	w.waiters = keep
}

// settleShutdown ends the final flush when it is complete, when the plan's
// Flush has come, or when it cannot complete before then.
func (w *worker) settleShutdown(now time.Time, wake *wakeAt) {
	f := w.final
	if f == nil {
		return
	}
	cut := f.sd.plan.Flush
	switch {
	case w.flushed(math.MaxUint64, f.mgen):
		w.finishShutdown(true)
	case !now.Before(cut), f.sd.ctx.Err() != nil, w.stuck(now, cut):
		w.finishShutdown(false)
	default:
		wake.at(cut)
	}
}

// finishShutdown ends SHUTDOWN's flush: requests still in flight are
// canceled and their items taken back, everything left is spilled (or
// counted as dropped) and Shutdown gets its reply.
func (w *worker) finishShutdown(sent bool) {
	f := w.final
	w.final = nil
	w.abandonFlights()
	if !sent && w.mq.dirty {
		w.mq.failed = true // what changed since the last export is not delivered
	}
	err := w.spillAll()
	w.finished = true
	w.h.finish()
	w.releaseWaiters()
	w.summary()
	f.sd.reply <- err
}

// releaseWaiters lets every waiting Invoke return.
func (w *worker) releaseWaiters() {
	for _, wt := range w.waiters {
		close(wt.done)
	}
	w.waiters = nil
}

// flushed reports whether every item queued up to mark and a metrics
// collection of generation mgen have been sent or given up.
func (w *worker) flushed(mark, mgen uint64) bool {
	for _, f := range w.snd.flights[:flMetrics] {
		if f != nil && f.minSeq <= mark {
			return false
		}
	}
	if len(w.q.spans) > 0 && w.q.spans[0].qseq <= mark || len(w.q.logs) > 0 && w.q.logs[0].qseq <= mark {
		return false
	}
	return w.mq.settled >= mgen && w.fnFlushed(mark)
}

// stuck reports whether nothing is in flight and nothing may be sent
// before deadline (retry backoff, open breaker): a flush bounded by
// deadline cannot complete.
func (w *worker) stuck(now, deadline time.Time) bool {
	if !w.snd.idle() {
		return false
	}
	return w.snd.gate().After(deadline) || !w.started || w.finished
}

// sendable reports whether a send may start now.
func (w *worker) sendable(now time.Time) bool {
	return w.started && !w.finished && w.snd.open(now)
}

// view is the state the flush policy decides on.
func (w *worker) view(now time.Time, eager uint64) flushView {
	v := flushView{now: now, awake: w.clock.awake, queued: w.q.bytes, nextPeriod: w.nextPeriod,
		gate: w.snd.gate(), eager: eager, metrics: w.mq.view(w.snd.busy(sigMetrics))}
	for i, list := range [2][]*item{w.q.spans, w.q.logs} {
		if len(list) > 0 {
			v.heads[i] = head{ok: true, qseq: list[0].qseq, at: list[0].at, queued: list[0].queued}
		}
	}
	v.busy = [2]bool{w.snd.busy(sigTraces), w.snd.busy(sigLogs)}
	w.foldFunctionHeads(&v)
	return v
}

// markDue marks what the flush policy finds due: the queued items (up to
// drainMark) and a metrics collection.
func (w *worker) markDue(now time.Time) {
	if !w.sendable(now) {
		return
	}
	d := w.pol.due(w.view(now, w.drainMark))
	w.nextPeriod = d.nextPeriod
	if d.batch {
		w.drainMark = w.qseq
	}
	if d.arm {
		w.mq.arm(w.clock.awake, now)
	}
	if d.metrics {
		w.mq.wantGen(w.mq.gen + 1)
	}
}

// nextLook is when the worker should look again for background work.
func (w *worker) nextLook(now time.Time, eager uint64) time.Time {
	if !w.started || w.finished {
		return time.Time{}
	}
	return w.pol.nextLook(w.view(now, eager))
}

// pump starts a request for every signal that has none in flight and has
// something to send now: queued items up to eager, or metrics.
func (w *worker) pump(now time.Time, eager uint64) {
	if !w.sendable(now) {
		return
	}
	for _, sig := range []signal{sigTraces, sigLogs} {
		list := w.q.logs
		if sig == sigTraces {
			list = w.q.spans
		}
		if w.snd.busy(sig) || len(list) == 0 || list[0].qseq > eager {
			continue
		}
		if !w.snd.allow(now) {
			return
		}
		w.startItems(sig, w.q.take(sig, w.pol.batchMaxBytes))
	}
	if !w.pumpFunction(now, eager) {
		return
	}
	if w.snd.busy(sigMetrics) {
		return
	}
	if w.mq.wanted() {
		w.collect(now)
	}
	for _, e := range w.mq.dropEmpty() {
		w.settleMetricsOrigin(e)
	}
	if len(w.mq.q) == 0 || !w.snd.allow(now) {
		return
	}
	pm := w.mq.pop()
	w.snd.start(&flight{sig: sigMetrics, rm: pm}, w.exp.metricsTimeout, func(ctx context.Context) error {
		return w.exp.metrics.Export(ctx, pm.rm)
	})
}

// collect takes a metrics collection, stamped with the mapper's resource.
func (w *worker) collect(now time.Time) {
	if !w.cfg.OTLP.Metrics.Enabled() {
		w.mq.skip(w.clock.awake, now)
		return
	}
	dropped, err := w.mq.collect(w.clock.awake, now, w.m.Resource())
	if err != nil {
		w.sum.lastErr = errText(err)
	}
	for _, pm := range dropped {
		w.c.drop(sigMetrics, dropTooManyPending, pm.n)
	}
}

// startItems starts the export of one batch of spans or log records.
func (w *worker) startItems(sig signal, items []*item) {
	w.noteQueue()
	if len(items) == 0 {
		return
	}
	f := &flight{sig: sig, items: items, minSeq: items[0].qseq}
	if sig == sigTraces {
		spans := make([]sdktrace.ReadOnlySpan, len(items))
		for i, it := range items {
			spans[i] = it.span
		}
		w.snd.start(f, w.exp.tracesTimeout, func(ctx context.Context) error {
			return w.exp.traces.ExportSpans(ctx, spans)
		})
		return
	}
	recs := make([]sdklog.Record, len(items))
	for i, it := range items {
		recs[i] = it.rec
	}
	w.snd.start(f, w.exp.logsTimeout, func(ctx context.Context) error {
		return w.exp.logs.Export(ctx, recs)
	})
}

// consume maps one event through mapper m, with lin recording it as the
// source of what it produces.
func (w *worker) consume(m Mapper, lin *lineage, ev telemetry.Event) {
	w.seq++
	se := &srcEvent{seq: w.seq, ev: ev}
	ph := signals.PhaseOf(ev)
	if lin.origin == nil && ph.Kind == signals.PhaseInvocation {
		// An invocation started: init is over, every extension has called
		// /event/next, so sending is allowed (Lambda Managed Instances
		// send no INVOKE).
		w.started = true
	}
	lin.begin(se, ph)
	m.Consume(ev)
	lin.end()
	w.mq.dirty = true
}

// onSpans queues finished spans of phase ph with their source events.
func (w *worker) onSpans(lin *lineage, ph signals.Phase, spans []sdktrace.ReadOnlySpan) {
	src := lin.spanSources(ph)
	for _, s := range spans {
		w.push(sigTraces, &item{span: s, bytes: spanBytes(s) + srcBytes(src), src: src, origin: lin.origin})
	}
}

// onLog queues a log record with its source events.
func (w *worker) onLog(lin *lineage, r sdklog.Record) {
	src := lin.logSources()
	w.push(sigLogs, &item{rec: r, bytes: logBytes(&r) + srcBytes(src) - sharedBytes(&r, src), src: src, origin: lin.origin})
}

func (w *worker) push(sig signal, it *item) {
	if it.origin != nil {
		it.origin.pending++
	}
	w.qseq++
	it.qseq = w.qseq
	it.at = w.clock.awake
	if it.queued = w.clock.at; it.queued.IsZero() {
		it.queued = w.now()
	}
	for _, d := range w.q.push(sig, it) {
		w.dropItems(signalOf(d), dropQueueFull, []*item{d})
	}
	w.noteQueue()
}

func (w *worker) noteQueue() { w.c.queueBytes.Store(w.q.total()) }

func signalOf(it *item) signal {
	if it.span != nil {
		return sigTraces
	}
	return sigLogs
}
