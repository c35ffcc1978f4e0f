package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"time"

	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// maxPendingMetrics bounds the delta collections kept for retry.
const maxPendingMetrics = 8

// Indexes of worker.flights.
const (
	flTraces = iota
	flLogs
	flMetrics
)

func flightIndex(sig signal) int {
	switch sig {
	case sigTraces:
		return flTraces
	case sigLogs:
		return flLogs
	}
	return flMetrics
}

// flight is one export request running on its sender goroutine. The
// worker keeps it in worker.flights until the result comes back, or until
// it abandons the request (SHUTDOWN's cut, Close) and takes its items back.
type flight struct {
	sig    signal
	items  []*item         // traces, logs
	minSeq uint64          // lowest qseq of items
	rm     *pendingMetrics // metrics
	cancel context.CancelFunc
}

// pendingMetrics is one metrics collection waiting to be sent.
type pendingMetrics struct {
	rm  *metricdata.ResourceMetrics
	gen uint64 // collection number
	n   int64  // data points
	// self: taken at SHUTDOWN only to carry the self-metrics of the final
	// requests; cut off, it is given up without counting (best effort).
	self bool
	// origin is the spill file a replayed collection came from (nil for
	// this process's own): never superseded by a new collection, and
	// settled against its file like a replayed span or log record.
	origin *spillFile
}

// sendResult is what a sender goroutine hands back to the worker.
type sendResult struct {
	f          *flight
	v          verdict
	retryAfter time.Duration
	res        attemptResult
	err        error
	end        time.Time
}

// finalFlush is SHUTDOWN's flush: everything is sent until cut, then what
// is left (in flight included) is spilled before the reply.
type finalFlush struct {
	sd   *shutdownReq
	cut  time.Time
	mgen uint64 // a collection of at least this generation must be sent
}

// worker is the state owned by the goroutine running Run.
type worker struct {
	m   Mapper
	tr  *tracker
	seq uint64
	cur consumeCtx
	q   queue

	waiters []*waiter
	sd      *shutdownReq // SHUTDOWN waiting for the last reports
	final   *finalFlush  // SHUTDOWN flushing
	started bool         // an INVOKE or SHUTDOWN was seen: sending is allowed
	// finished: SHUTDOWN's flush is over and its spill written; nothing is
	// sent any more (the process is about to exit: Close spills the rest).
	finished bool
	retryAt  time.Time // no send before this (backoff / Retry-After)
	attempts int       // consecutive failed attempts
	// awake is the worker's awake-time clock (tickAwake), read from the
	// wall clock at awakeAt: batch age (item.at) and the metric interval
	// are measured on it, so that a freeze does not make them due.
	awake   time.Duration
	awakeAt time.Time
	// lastMetrics is the awake time of the last collection (or of the
	// first data, metricsArmed), lastMetricsWall its wall time.
	lastMetrics     time.Duration
	lastMetricsWall time.Time
	metricsArmed    bool
	dirty           bool // events consumed since metrics were last collected
	nextPeriod      time.Time

	// flights are the requests in flight: at most one per signal.
	flights [3]*flight
	// live counts the sender goroutines not yet reaped (abandoned ones
	// included): Run does not return before it is zero.
	live int
	// qseq numbers queued items; items queued up to drainMark are sent
	// without waiting for BatchDelay (a batch became due).
	qseq, drainMark uint64
	// mq are metrics collections waiting to be sent (a delta collection
	// that failed is kept for the next attempt, bounded; a cumulative one
	// is superseded by the next collection). mgen numbers collections;
	// one is taken when mgen < mwant; msettled: collections up to it have
	// been sent or given up.
	mq                    []*pendingMetrics
	mgen, mwant, msettled uint64
	// metricsFailed: the last metrics export did not go through.
	metricsFailed bool
	// selfDirty: a span/log request was settled since the last collection
	// (its self-metrics are not collected yet); selfOnly: the next
	// collection is taken for them alone.
	selfDirty, selfOnly bool
	authLogged          bool
	// shutdown is the SHUTDOWN that closed open invocations, written into
	// spill files so that a replay closes them the same way.
	shutdown *spillShutdown
	// sum accumulates what the next summary log line reports.
	sum struct {
		dropped, failed, retried, rejected int64
		lastErr                            string
	}
	// intakeReported is the intake drop count (logs + platform events)
	// the last summary line included.
	intakeReported int64
}

// step does all the work that is due and returns when it wants to be woken
// next (zero: only on a signal or a send result), or stop when Close asked
// the worker to end. It never waits on the network: requests run on
// sender goroutines and their results come back through p.results.
func (p *Pipeline) step() (next time.Time, stop bool) {
	w := &p.w
	p.reap()
	p.mu.Lock()
	// The events stay counted in the intake while they are mapped, so that
	// an Enqueue meanwhile finds it as full as it was.
	evs := p.in.borrow()
	w.waiters = append(w.waiters, p.newWaiters...)
	p.newWaiters = nil
	sreq := p.shutdownReq
	p.shutdownReq = nil
	creq := p.closeReq
	p.closeReq = nil
	p.mu.Unlock()
	// After mu: an INVOKE handed over before the events just taken is
	// taken with them, and mapped first.
	p.invMu.Lock()
	invs := p.invokes
	p.invokes = nil
	invoked := p.invoked > 0
	thaw := p.thawAt
	p.thawAt = time.Time{}
	p.invMu.Unlock()
	p.tickAwake(p.now(), thaw)

	for _, inv := range invs {
		w.m.Invoke(inv)
	}
	if invoked {
		w.started = true // init is over: every extension called /event/next
	}
	var mapped int64
	rest := evs[len(evs):]
	for i, ev := range evs {
		if creq == nil && w.q.total()+2*eventSize(ev)+outputSlack > w.q.max && p.makeRoom() {
			// Mapping ev could evict queued records: wait for the requests
			// in flight instead, leaving the rest in the intake.
			rest = evs[i:]
			break
		}
		p.consume(w.m, w.tr, ev, nil)
		mapped += eventSize(ev)
	}
	p.mu.Lock()
	p.in.giveBack(rest, mapped)
	if len(rest) == 0 {
		// Held back, the Enqueues waiting stay asleep until a request
		// ends (no busy loop); otherwise they find room now.
		p.openRoom()
	}
	if creq != nil {
		p.closing = true // Enqueue counts what comes later as dropped
	}
	p.mu.Unlock()
	if creq != nil {
		creq.reply <- p.spillAll()
		return time.Time{}, true
	}
	if sreq != nil {
		if w.final != nil {
			sreq.reply <- errors.New("exporter: shutdown: already flushing")
		} else {
			w.started = true
			w.sd = sreq
		}
	}
	now := p.now()
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}

	// Shutdown: wait (bounded) for the last reports, then close what is
	// open and flush until the cut; what is left is spilled.
	if sd := w.sd; sd != nil {
		waitUntil := sd.deadline.Add(-p.flushTimeout() - 200*time.Millisecond)
		if t := sd.at.Add(time.Second); t.Before(waitUntil) {
			waitUntil = t
		}
		if w.m.OpenInvocations() > 0 && now.Before(waitUntil) && sd.ctx.Err() == nil {
			earliest(waitUntil)
		} else {
			w.sd = nil
			w.shutdown = &spillShutdown{Reason: sd.reason, At: sd.at}
			p.withCur(w.tr, nil, func() { w.m.Shutdown(sd.reason, sd.at) })
			if f, ok := w.m.(logFlusher); ok {
				p.withCur(w.tr, nil, f.FlushLogs)
			}
			// The spill gets the last Margin of the budget.
			w.final = &finalFlush{sd: sd, cut: sd.deadline.Add(-p.o.Margin)}
		}
	}
	if f := w.final; f != nil {
		switch {
		case w.dirty || f.mgen == 0:
			// The final collection comes after the last event consumed.
			f.mgen = w.mgen + 1
			w.mwant = max(w.mwant, f.mgen)
		case w.selfDirty && w.msettled >= f.mgen && p.flushed(math.MaxUint64, 0):
			// Metrics went out beside the last spans and logs: one more
			// collection carries those requests' self-metrics.
			f.mgen = w.mgen + 1
			w.mwant = max(w.mwant, f.mgen)
			w.selfOnly = true
		}
	}

	// end/adaptive invocations waiting for their runtimeDone.
	if len(w.waiters) > 0 {
		keep := w.waiters[:0]
		for _, wt := range w.waiters {
			switch {
			case wt.ctx.Err() != nil, !wt.flushStarted && p.br.blocking(now):
				close(wt.done)
				continue
			case !wt.flushStarted && w.m.RuntimeDone(wt.requestID):
				if f, ok := w.m.(logFlusher); ok {
					p.withCur(w.tr, nil, f.FlushLogs)
				}
				dl, _ := wt.ctx.Deadline()
				if fdl := now.Add(wt.flush); dl.IsZero() || fdl.Before(dl) {
					dl = fdl
				}
				wt.flushStarted, wt.deadline = true, dl
				wt.mark, wt.mgen = w.qseq, w.mgen+1
				w.mwant = max(w.mwant, wt.mgen)
				close(wt.flushing)
			}
			keep = append(keep, wt)
		}
		clear(w.waiters[len(keep):])
		w.waiters = keep
	}

	// Start what is due: background batches and metrics, and everything a
	// flush waits for.
	p.background(now)
	eager := w.drainMark
	if w.sd != nil || w.final != nil {
		eager = math.MaxUint64
	}
	for _, wt := range w.waiters {
		if wt.flushStarted && wt.mark > eager {
			eager = wt.mark
		}
	}
	p.pump(now, eager)

	// Settle the flushes that are complete or cannot complete in time.
	if len(w.waiters) > 0 {
		keep := w.waiters[:0]
		for _, wt := range w.waiters {
			if wt.flushStarted && (p.flushed(wt.mark, wt.mgen) || !now.Before(wt.deadline) || p.stuck(now, wt.deadline)) {
				close(wt.done)
				continue
			}
			if wt.flushStarted {
				earliest(wt.deadline)
			}
			keep = append(keep, wt)
		}
		clear(w.waiters[len(keep):])
		w.waiters = keep
	}
	if f := w.final; f != nil {
		switch {
		case p.flushed(math.MaxUint64, f.mgen):
			p.finishShutdown(true)
		case !now.Before(f.cut), f.sd.ctx.Err() != nil, p.stuck(now, f.cut):
			p.finishShutdown(false)
		default:
			earliest(f.cut)
		}
	}

	earliest(p.nextLook(now, eager))
	p.summary()
	return next, false
}

// outputSlack is added to twice an event's size when the worker checks
// that mapping the event cannot overflow the queue: a log record is
// larger than its event, and a span also carries its phase's platform
// events (a few hundred bytes each) as its source.
const outputSlack = 4 << 10

// makeRoom reports whether a span or log request is in flight, starting
// what is due first when none is. The worker then leaves the events it
// could not map without evicting queued records in the intake until the
// requests end: Enqueue waits meanwhile, which pushes back on the listener
// (whose spool absorbs a flood) instead of dropping records. Without a
// request in flight (a dead backend, a retry backoff, an open breaker, the
// shutdown flush over) the events are mapped and the queue's drop policy
// applies.
func (p *Pipeline) makeRoom() bool {
	w := &p.w
	if w.finished {
		return false
	}
	inFlight := func() bool { return w.flights[flightIndex(sigTraces)] != nil || w.flights[flightIndex(sigLogs)] != nil }
	if !inFlight() {
		now := p.now()
		p.background(now)
		p.pump(now, w.drainMark)
	}
	return inFlight()
}

// finishShutdown ends SHUTDOWN's flush: requests still in flight are
// canceled and their items taken back, everything left is spilled (or
// counted as dropped) and Shutdown gets its reply.
func (p *Pipeline) finishShutdown(sent bool) {
	w := &p.w
	f := w.final
	w.final = nil
	p.abandonFlights()
	if !sent && w.dirty {
		w.metricsFailed = true // what changed since the last export is not delivered
	}
	err := p.spillAll()
	w.finished = true
	p.mu.Lock()
	p.finished = true
	p.openRoom()
	p.mu.Unlock()
	p.releaseWaiters()
	p.summary()
	f.sd.reply <- err
}

// releaseWaiters lets every waiting Invoke return.
func (p *Pipeline) releaseWaiters() {
	for _, wt := range p.w.waiters {
		close(wt.done)
	}
	p.w.waiters = nil
}

// flushed reports whether every item queued up to mark and a metrics
// collection of generation mgen have been sent or given up.
func (p *Pipeline) flushed(mark, mgen uint64) bool {
	w := &p.w
	for _, f := range w.flights[:flMetrics] {
		if f != nil && f.minSeq <= mark {
			return false
		}
	}
	if len(w.q.spans) > 0 && w.q.spans[0].qseq <= mark || len(w.q.logs) > 0 && w.q.logs[0].qseq <= mark {
		return false
	}
	return w.msettled >= mgen
}

// stuck reports whether nothing is in flight and nothing may be sent
// before deadline (retry backoff, open breaker): a flush bounded by
// deadline cannot complete.
func (p *Pipeline) stuck(now, deadline time.Time) bool {
	for _, f := range p.w.flights {
		if f != nil {
			return false
		}
	}
	return p.gate().After(deadline) || !p.w.started || p.w.finished
}

// gate is when the next send may start: the retry backoff or the end of
// the breaker's open period, whichever is later (zero when none).
func (p *Pipeline) gate() time.Time {
	g := p.w.retryAt
	if t := p.br.retryAt(); t.After(g) {
		g = t
	}
	return g
}

// background marks what is due under the flush policy: batches that are
// full or BatchDelay old (or the period), and metrics every MetricInterval.
func (p *Pipeline) background(now time.Time) {
	w := &p.w
	if !w.started || !p.sendable(now) {
		return
	}
	periodic := p.mode == config.FlushPeriodic && p.cfg.FlushPeriod > 0
	due := false
	switch {
	case w.q.bytes >= p.o.BatchMaxBytes:
		due = true
	case periodic:
		if w.nextPeriod.IsZero() {
			w.nextPeriod = now.Add(p.cfg.FlushPeriod)
		}
		if !now.Before(w.nextPeriod) {
			due = true
			w.nextPeriod = now.Add(p.cfg.FlushPeriod)
		}
	default:
		if at, ok := w.q.oldest(); ok && w.awake-at >= p.o.BatchDelay {
			due = true
		}
		if t, ok := w.q.oldestWall(); ok && p.tooOld(now, t) {
			due = true
		}
	}
	if due {
		w.drainMark = w.qseq
	}
	metricsDue := w.dirty && (w.awake-w.lastMetrics >= p.o.MetricInterval || p.tooOld(now, w.lastMetricsWall))
	if !w.metricsArmed && w.dirty {
		// First data: start the interval.
		w.lastMetrics, w.lastMetricsWall, w.metricsArmed = w.awake, now, true
		metricsDue = false
	}
	if periodic {
		metricsDue = metricsDue && due
	}
	if metricsDue || due && periodic {
		w.mwant = max(w.mwant, w.mgen+1)
	}
}

// tickAwake advances the worker's awake clock to now, the way awakeContext
// counts a request's awake time: a step of the wall clock longer than
// FreezeGap is a freeze of the environment and does not count (a timer
// that expired during a freeze fires at thaw; the thaw's first telemetry
// may reach the worker before the INVOKE does), and neither does the time
// before an INVOKE that arrived since the last reading (thaw): Lambda
// freezes the environment only while every extension waits in
// /event/next, so that wait may have been a freeze too short to see.
// Awake time is therefore a lower bound (a CPU-throttled process loses
// some too); while it is awaited, the worker reads the clock every
// FreezeGap/2 (awakeWake).
func (p *Pipeline) tickAwake(now, thaw time.Time) {
	w := &p.w
	from := w.awakeAt
	w.awakeAt = now
	if from.IsZero() {
		return
	}
	if thaw.After(from) {
		from = thaw
	}
	if el := now.Sub(from); el > 0 && el <= p.o.FreezeGap {
		w.awake += el
	}
}

// maxDataAge is the bound on data age in wall time that the flush policy
// sets: adaptive's SLIPSTREAM_MAX_DATA_AGE (zero: none). Adaptive flushes
// the invocation after a longer gap as in end mode; a function invoked
// more often than that has its data sent once it is MaxDataAge old, at
// the worker's first look while the environment is awake.
func (p *Pipeline) maxDataAge() time.Duration {
	if p.mode != config.FlushAdaptive {
		return 0
	}
	return p.cfg.MaxDataAge
}

// tooOld reports whether data queued (or collected) at t is older than
// maxDataAge.
func (p *Pipeline) tooOld(now, t time.Time) bool {
	d := p.maxDataAge()
	return d > 0 && !t.IsZero() && now.Sub(t) >= d
}

// awakeWake returns the wall time at which the worker should look again
// for something due at awake time at: as soon as it may be due, and no
// later than FreezeGap/2 from now, so that, while the environment is
// awake, its readings of the clock stay within the FreezeGap tickAwake
// counts.
func (p *Pipeline) awakeWake(now time.Time, at time.Duration) time.Time {
	return now.Add(min(max(at-p.w.awake, 0), max(p.o.FreezeGap/2, time.Millisecond)))
}

// nextLook returns when the worker should look again for background work
// (zero: only on a signal or a send result). A signal with a request in
// flight is looked at again when its result comes back.
func (p *Pipeline) nextLook(now time.Time, eager uint64) time.Time {
	w := &p.w
	if !w.started || w.finished {
		return time.Time{}
	}
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	gate := p.gate()
	after := func(t time.Time) time.Time {
		if gate.After(t) {
			return gate
		}
		return t
	}
	periodic := p.mode == config.FlushPeriodic && p.cfg.FlushPeriod > 0
	for i, list := range [][]*item{w.q.spans, w.q.logs} {
		if w.flights[i] != nil || len(list) == 0 {
			continue
		}
		switch {
		case list[0].qseq <= eager:
			// Blocked by the gate (or by a half-open probe in flight,
			// whose result wakes the worker).
			if gate.After(now) {
				earliest(gate)
			}
		case periodic:
			earliest(after(w.nextPeriod))
		default:
			earliest(after(p.awakeWake(now, list[0].at+p.o.BatchDelay)))
			if d := p.maxDataAge(); d > 0 {
				earliest(after(list[0].queued.Add(d)))
			}
		}
	}
	if w.flights[flMetrics] == nil {
		switch {
		case w.mgen < w.mwant || len(w.mq) > 0:
			if gate.After(now) {
				earliest(gate)
			}
		case w.dirty && periodic:
			earliest(after(w.nextPeriod))
		case w.dirty:
			earliest(after(p.awakeWake(now, w.lastMetrics+p.o.MetricInterval)))
			if d := p.maxDataAge(); d > 0 && w.metricsArmed {
				earliest(after(w.lastMetricsWall.Add(d)))
			}
		}
	}
	return next
}

// sendable reports whether a send may start now (retry gate; the breaker
// is asked per request).
func (p *Pipeline) sendable(now time.Time) bool {
	return p.w.started && !p.w.finished && !now.Before(p.w.retryAt)
}

// pump starts a request for every signal that has none in flight and has
// something to send now: queued items up to eager, or metrics.
func (p *Pipeline) pump(now time.Time, eager uint64) {
	w := &p.w
	if !p.sendable(now) {
		return
	}
	for _, sig := range []signal{sigTraces, sigLogs} {
		i := flightIndex(sig)
		list := w.q.logs
		if sig == sigTraces {
			list = w.q.spans
		}
		if w.flights[i] != nil || len(list) == 0 || list[0].qseq > eager {
			continue
		}
		if !p.br.allow(now) {
			return
		}
		p.startItems(sig, w.q.take(sig, p.o.BatchMaxBytes))
	}
	if w.flights[flMetrics] != nil {
		return
	}
	if w.mgen < w.mwant {
		p.collect(now)
	}
	for len(w.mq) > 0 && w.mq[0].n == 0 {
		w.msettled = max(w.msettled, w.mq[0].gen)
		p.settleMetricsOrigin(w.mq[0], false)
		w.mq[0] = nil
		w.mq = w.mq[1:]
	}
	if len(w.mq) > 0 && p.br.allow(now) {
		pm := w.mq[0]
		w.mq[0] = nil
		w.mq = w.mq[1:]
		p.launch(&flight{sig: sigMetrics, rm: pm}, p.exp.metricsTimeout, func(ctx context.Context) error {
			return p.exp.metrics.Export(ctx, pm.rm)
		})
	}
}

// collect takes a metrics collection, stamped with the mapper's resource,
// and queues it for sending.
func (p *Pipeline) collect(now time.Time) {
	w := &p.w
	self := w.selfOnly && !w.dirty
	w.lastMetrics, w.lastMetricsWall, w.metricsArmed = w.awake, now, true
	w.dirty, w.selfDirty, w.selfOnly = false, false, false
	w.mgen = max(w.mgen+1, w.mwant)
	rm := &metricdata.ResourceMetrics{}
	if err := p.reader.Collect(context.Background(), rm); err != nil {
		w.sum.lastErr = errText(err)
		w.metricsFailed = true
		w.msettled = max(w.msettled, w.mgen) // nothing to wait for
		return
	}
	res := w.m.Resource()
	if res == nil {
		res = resource.Empty()
	}
	rm.Resource = res
	pm := &pendingMetrics{rm: rm, gen: w.mgen, n: dataPoints(rm), self: self}
	if p.cumulative {
		// The new collection carries the totals: it supersedes this
		// process's collections not sent yet (not the replayed ones).
		w.mq = slices.DeleteFunc(w.mq, func(q *pendingMetrics) bool { return q.origin == nil })
	}
	w.mq = append(w.mq, pm)
	p.boundMetrics()
}

// boundMetrics keeps at most maxPendingMetrics of this process's
// collections, counting the oldest as dropped.
func (p *Pipeline) boundMetrics() {
	w := &p.w
	// Only this process's collections count: replayed ones are bounded by
	// the spill files they came from (SLIPSTREAM_SPILL_MAX_BYTES).
	own := 0
	for _, pm := range w.mq {
		if pm.origin == nil {
			own++
		}
	}
	for i := 0; own > maxPendingMetrics && i < len(w.mq); {
		pm := w.mq[i]
		if pm.origin != nil {
			i++
			continue
		}
		p.count(sigMetrics, "dropped", pm.n)
		w.mq = slices.Delete(w.mq, i, i+1)
		own--
	}
}

// startItems starts the export of one batch of spans or log records.
func (p *Pipeline) startItems(sig signal, items []*item) {
	p.noteQueue()
	if len(items) == 0 {
		return
	}
	f := &flight{sig: sig, items: items, minSeq: items[0].qseq}
	if sig == sigTraces {
		spans := make([]sdktrace.ReadOnlySpan, len(items))
		for i, it := range items {
			spans[i] = it.span
		}
		p.launch(f, p.exp.tracesTimeout, func(ctx context.Context) error {
			return p.exp.traces.ExportSpans(ctx, spans)
		})
		return
	}
	recs := make([]sdklog.Record, len(items))
	for i, it := range items {
		recs[i] = it.rec
	}
	p.launch(f, p.exp.logsTimeout, func(ctx context.Context) error {
		return p.exp.logs.Export(ctx, recs)
	})
}

// launch runs one export attempt on a sender goroutine; its result comes
// back to the worker through p.results. The worker reaps every sender it
// launched (stopSenders) before Run returns.
func (p *Pipeline) launch(f *flight, timeout time.Duration, call func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	p.w.flights[flightIndex(f.sig)] = f
	p.w.live++
	go func() {
		v, retryAfter, res, err := p.attempt(ctx, f.sig, timeout, call)
		p.results <- sendResult{f: f, v: v, retryAfter: retryAfter, res: res, err: err, end: p.now()}
	}()
}

// reap settles the results that have come back, without waiting.
func (p *Pipeline) reap() {
	for {
		select {
		case r := <-p.results:
			p.onResult(r)
		default:
			return
		}
	}
}

// stopSenders cancels the requests in flight and waits for every sender
// goroutine, settling their results.
func (p *Pipeline) stopSenders() {
	for _, f := range p.w.flights {
		if f != nil {
			f.cancel()
		}
	}
	for p.w.live > 0 {
		p.onResult(<-p.results)
	}
}

// abandonFlights cancels the requests in flight and takes their items
// back into the queue (SHUTDOWN's cut, Close): their results, when they
// come, are ignored. A request that completes anyway is sent again from
// the spill: at-least-once.
func (p *Pipeline) abandonFlights() {
	w := &p.w
	for i, f := range w.flights {
		if f == nil {
			continue
		}
		f.cancel()
		w.flights[i] = nil
		if f.sig == sigMetrics {
			if f.rm.self {
				continue
			}
			// A replayed collection is kept whatever the temporality: it
			// must be settled against its spill file (re-spilled).
			if f.rm.origin != nil || !p.cumulative {
				w.mq = append([]*pendingMetrics{f.rm}, w.mq...)
			}
			if f.rm.origin == nil {
				w.metricsFailed = true
			}
			continue
		}
		p.putBack(f.sig, f.items)
	}
}

// onResult settles the outcome of one request.
func (p *Pipeline) onResult(r sendResult) {
	w := &p.w
	w.live--
	i := flightIndex(r.f.sig)
	if w.flights[i] != r.f {
		return // abandoned: its items were taken back
	}
	w.flights[i] = nil
	r.f.cancel()
	if r.f.sig == sigMetrics {
		p.settleMetrics(r)
		return
	}
	p.settleItems(r)
}

// settleItems settles a batch of spans or log records by its verdict:
// sent, put back for a retry, or dropped (unauthorized, rejected).
func (p *Pipeline) settleItems(r sendResult) {
	sig, items := r.f.sig, r.f.items
	n := int64(len(items))
	p.w.selfDirty = true
	switch r.v {
	case verdictSent:
		p.w.q.done(items)
		p.noteQueue()
		p.sent()
		p.count(sig, "sent", n)
		var dups int64
		for _, it := range items {
			if it.maybeDup {
				dups++
			}
			p.settle(it)
		}
		p.count(sig, "duplicate_suspected", dups)
	case verdictRetry:
		p.failed(r.end, r.retryAfter, r.err, r.res)
		if r.res.netErr && r.res.sent {
			for _, it := range items {
				it.maybeDup = true
			}
		}
		p.count(sig, "retried", n)
		p.w.sum.retried += n
		p.putBack(sig, items)
	case verdictAuth:
		p.w.q.done(items)
		p.noteQueue()
		p.failed(r.end, 0, r.err, r.res)
		p.logAuth(r.res)
		p.dropItems(sig, "unauthorized", items)
	default:
		p.w.q.done(items)
		p.noteQueue()
		p.sent() // the backend answered: it is alive
		p.w.sum.rejected += n
		p.w.sum.lastErr = errText(r.err)
		p.dropItems(sig, "rejected", items)
	}
}

// settleMetrics settles a metrics collection by its verdict. A failed
// collection goes back to the front of the metrics queue for the retry
// (a newer cumulative collection, if any, supersedes it).
func (p *Pipeline) settleMetrics(r sendResult) {
	w := &p.w
	pm := r.f.rm
	switch r.v {
	case verdictSent:
		p.sent()
		p.count(sigMetrics, "sent", pm.n)
		w.msettled = max(w.msettled, pm.gen)
		if !slices.ContainsFunc(w.mq, func(q *pendingMetrics) bool { return q.origin == nil }) {
			w.metricsFailed = false
		}
		p.settleMetricsOrigin(pm, false)
	case verdictRetry:
		p.failed(r.end, r.retryAfter, r.err, r.res)
		p.count(sigMetrics, "retried", pm.n)
		if !pm.self && pm.origin == nil {
			w.metricsFailed = true
		}
		superseded := p.cumulative && pm.origin == nil && slices.ContainsFunc(w.mq, func(q *pendingMetrics) bool { return q.origin == nil })
		if !superseded {
			w.mq = append([]*pendingMetrics{pm}, w.mq...)
			p.boundMetrics()
		}
	case verdictAuth:
		p.failed(r.end, 0, r.err, r.res)
		p.logAuth(r.res)
		p.count(sigMetrics, "dropped", pm.n)
		w.msettled = max(w.msettled, pm.gen)
		p.settleMetricsOrigin(pm, true)
	default:
		p.sent() // the backend answered: it is alive
		w.sum.rejected += pm.n
		w.sum.lastErr = errText(r.err)
		p.count(sigMetrics, "dropped", pm.n)
		w.msettled = max(w.msettled, pm.gen)
		p.settleMetricsOrigin(pm, true)
	}
}

// settleMetricsOrigin settles a replayed collection against its spill
// file (sent, dropped or re-spilled); lost marks a drop.
func (p *Pipeline) settleMetricsOrigin(pm *pendingMetrics, lost bool) {
	f := pm.origin
	if f == nil {
		return
	}
	pm.origin = nil
	f.lost = f.lost || lost
	f.pending--
	if f.pending == 0 {
		p.deleteSpill(f)
	}
}

// unsentMetrics takes the metric data the final flush could not send, to
// be spilled with the spans and log records: the replayed collections
// still queued, and this process's unsent collections (with delta
// temporality each one holds only what is new; a cumulative one is
// superseded by a fresh collection, which carries the totals). Nothing is
// taken when everything up to the last event was sent: a cumulative
// collection after a successful export would repeat every stream.
func (p *Pipeline) unsentMetrics() []*pendingMetrics {
	w := &p.w
	var out []*pendingMetrics
	own := false
	for _, pm := range w.mq {
		switch {
		case pm.n == 0:
			p.settleMetricsOrigin(pm, false) // nothing to keep
		case pm.origin != nil:
			out = append(out, pm)
		case !p.cumulative:
			out = append(out, pm)
			own = true
		default:
			own = true
		}
	}
	w.mq = nil
	if !w.metricsFailed && !own && (!w.dirty || p.cumulative) {
		return out
	}
	rm := &metricdata.ResourceMetrics{}
	if err := p.reader.Collect(context.Background(), rm); err == nil && dataPoints(rm) > 0 {
		res := w.m.Resource()
		if res == nil {
			res = resource.Empty()
		}
		rm.Resource = res
		out = append(out, &pendingMetrics{rm: rm, n: dataPoints(rm)})
	}
	w.dirty, w.metricsFailed = false, false
	return out
}

// attempt runs one export call bounded by timeout of awake time and
// returns its verdict.
func (p *Pipeline) attempt(ctx context.Context, sig signal, timeout time.Duration, call func(context.Context) error) (verdict, time.Duration, attemptResult, error) {
	a := &attempt{}
	actx, stop := p.awakeContext(withAttempt(ctx, a), timeout)
	start := p.now()
	err := call(actx)
	jumped := stop()
	res := a.snapshot()
	end := p.now()
	v, retryAfter := classify(err, res, end)
	p.inst.duration(ctx, string(sig), v.String(), end.Sub(start))
	if res.netErr || jumped && v != verdictSent {
		// A connection frozen mid-request may be dead: retry on a fresh one.
		p.exp.closeIdle()
	}
	return v, retryAfter, res, err
}

func (p *Pipeline) sent() {
	p.br.success()
	p.w.attempts = 0
	p.w.retryAt = time.Time{}
}

func (p *Pipeline) failed(now time.Time, retryAfter time.Duration, err error, res attemptResult) {
	p.br.failure(now)
	p.w.attempts++
	p.w.retryAt, _ = p.bo.next(now, time.Time{}, p.w.attempts, retryAfter)
	p.w.sum.failed++
	p.w.sum.lastErr = errText(err)
	if res.status != 0 {
		p.w.sum.lastErr = fmt.Sprintf("HTTP %d", res.status)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// logAuth logs a rejected credential once per process, naming the header
// variable (never its value).
func (p *Pipeline) logAuth(res attemptResult) {
	p.bump(func(s *Stats) { s.AuthFailures++ })
	if p.w.authLogged {
		return
	}
	p.w.authLogged = true
	src := p.cfg.OTLP.Source
	if src == "" {
		src = "OTEL_EXPORTER_OTLP"
	}
	attrs := []any{slog.String("variable", src+"_HEADERS")}
	if res.status != 0 {
		attrs = append(attrs, slog.Int("status", res.status))
	} else {
		attrs = append(attrs, slog.String("grpc_code", res.grpcCode.String()))
	}
	p.log.Error("OTLP backend rejected the credentials; data is dropped, not retried: check the headers variable", attrs...)
}

func (p *Pipeline) putBack(sig signal, items []*item) {
	if len(items) == 0 {
		return
	}
	for _, d := range p.w.q.putBack(sig, items) {
		p.dropItems(sig, "queue_full", []*item{d})
	}
	p.noteQueue()
}

// dropItems counts items as dropped and settles their spill origin.
func (p *Pipeline) dropItems(sig signal, _ string, items []*item) {
	p.count(sig, "dropped", int64(len(items)))
	p.w.sum.dropped += int64(len(items))
	for _, it := range items {
		if it.origin != nil {
			it.origin.lost = true
		}
		p.settle(it)
	}
}

// settle records that an item left the pipeline (sent, dropped or
// re-spilled): the spill file it was replayed from is deleted once all of
// its items have.
func (p *Pipeline) settle(it *item) {
	f := it.origin
	if f == nil {
		return
	}
	it.origin = nil
	f.pending--
	if f.pending == 0 {
		p.deleteSpill(f)
	}
}

// sendMetrics collects the MeterProvider, stamps the mapper's resource and
// exports. A failed delta collection is kept for the next flush (bounded);
// a failed cumulative one is superseded by the next collection.
func dataPoints(rm *metricdata.ResourceMetrics) int64 {
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				n += int64(len(d.DataPoints))
			case metricdata.Sum[float64]:
				n += int64(len(d.DataPoints))
			case metricdata.Gauge[int64]:
				n += int64(len(d.DataPoints))
			case metricdata.Gauge[float64]:
				n += int64(len(d.DataPoints))
			case metricdata.Histogram[int64]:
				n += int64(len(d.DataPoints))
			case metricdata.Histogram[float64]:
				n += int64(len(d.DataPoints))
			case metricdata.ExponentialHistogram[int64]:
				n += int64(len(d.DataPoints))
			case metricdata.ExponentialHistogram[float64]:
				n += int64(len(d.DataPoints))
			case metricdata.Summary:
				n += int64(len(d.DataPoints))
			default:
				n++
			}
		}
	}
	return n
}

// summary writes one log line for a flush that had drops or failures.
func (p *Pipeline) summary() {
	s := &p.w.sum
	p.mu.Lock()
	intake := p.intakeDrops[0] + p.intakeDrops[1]
	p.mu.Unlock()
	intakeDropped := intake - p.w.intakeReported
	if s.dropped == 0 && s.failed == 0 && s.rejected == 0 && intakeDropped == 0 {
		return
	}
	p.w.intakeReported = intake
	p.log.Warn("export summary",
		slog.Int64("dropped", s.dropped), slog.Int64("intake_dropped", intakeDropped),
		slog.Int64("failed_requests", s.failed),
		slog.Int64("retried", s.retried), slog.Int64("rejected", s.rejected),
		slog.Int64("queue_bytes", p.w.q.bytes), slog.String("breaker", p.br.current().String()),
		slog.String("last_error", s.lastErr))
	*s = struct {
		dropped, failed, retried, rejected int64
		lastErr                            string
	}{}
}

// consume maps one event, remembering it as the source of what it produces.
func (p *Pipeline) consume(m Mapper, tr *tracker, ev telemetry.Event, origin *spillFile) {
	w := &p.w
	if telemetry.NilRecord(ev.Record) {
		ev.Record = nil // a decoder bug must not panic the worker
	}
	w.seq++
	se := &srcEvent{seq: w.seq, ev: ev}
	key := phaseKey(ev)
	if key != "" {
		if opensPhase(ev) {
			tr.forget(key)
			tr.context = se
		}
		tr.add(key, se)
	}
	if origin == nil && key != "" && key[0] == 'r' {
		// An invocation started: init is over, every extension has called
		// /event/next, so sending is allowed (Lambda Managed Instances
		// send no INVOKE).
		w.started = true
	}
	w.cur = consumeCtx{se: se, key: key, tr: tr, origin: origin}
	m.Consume(ev)
	if isLogEvent(ev) && !w.cur.used {
		s := stream(ev)
		if len(tr.pending[s]) < 1024 {
			tr.pending[s] = append(tr.pending[s], se)
		}
	}
	if closesPhase(ev) {
		tr.forget(key)
	}
	w.cur = consumeCtx{}
	w.dirty = true
}

// withCur runs f (a mapper call outside Consume) with outputs attributed
// through tr.
func (p *Pipeline) withCur(tr *tracker, origin *spillFile, f func()) {
	p.w.cur = consumeCtx{tr: tr, origin: origin}
	f()
	p.w.cur = consumeCtx{}
}

var errAwakeTimeout = errors.New("export attempt exceeded its awake-time timeout")

// awakeContext derives a context canceled after d of AWAKE time: it ticks
// every AwakeTick and ignores any step of the clock longer than three
// ticks (a freeze of the execution environment), so a request frozen
// mid-flight gets its full timeout after thaw. stop cancels it and
// reports whether a freeze was seen.
func (p *Pipeline) awakeContext(parent context.Context, d time.Duration) (context.Context, func() (jumped bool)) {
	ctx, cancel := context.WithCancelCause(parent)
	var froze atomic.Bool
	done := make(chan struct{})
	tick := p.o.AwakeTick
	go func() {
		defer close(done)
		t := time.NewTicker(tick)
		defer t.Stop()
		last := p.now()
		var awake time.Duration
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n := p.now()
				el := n.Sub(last)
				last = n
				if el < 0 || el > 3*tick {
					froze.Store(true)
					continue
				}
				awake += el
				if awake >= d {
					cancel(errAwakeTimeout)
					return
				}
			}
		}
	}()
	return ctx, func() bool {
		cancel(context.Canceled)
		<-done
		return froze.Load()
	}
}
