package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// worker is the state owned by the goroutine running Run.
type worker struct {
	m   Mapper
	tr  *tracker
	seq uint64
	cur consumeCtx
	q   queue

	waiters     []*waiter
	sd          *shutdownReq
	started     bool      // an INVOKE or SHUTDOWN was seen: sending is allowed
	retryAt     time.Time // no send before this (backoff / Retry-After)
	attempts    int       // consecutive failed attempts
	lastMetrics time.Time
	dirty       bool // events consumed since metrics were last sent
	nextPeriod  time.Time
	// pendingMetrics are delta collections that failed to send (a
	// cumulative collection supersedes the failed one instead).
	pendingMetrics []*metricdata.ResourceMetrics
	// metricsFailed: the last metrics export did not go through.
	metricsFailed bool
	authLogged    bool
	// shutdown is the SHUTDOWN that closed open invocations, written into
	// spill files so that a replay closes them the same way.
	shutdown *spillShutdown
	// sum accumulates what the next summary log line reports.
	sum struct {
		dropped, failed, retried, rejected int64
		lastErr                            string
	}
}

// step does all the work that is due and returns when it wants to be woken
// next (zero: only on a signal), or stop when Close asked the worker to end.
func (p *Pipeline) step() (next time.Time, stop bool) {
	w := &p.w
	p.mu.Lock()
	invs := p.invokes
	p.invokes = nil
	invoked := p.invoked > 0
	evs := p.in.take()
	w.waiters = append(w.waiters, p.newWaiters...)
	p.newWaiters = nil
	sreq := p.shutdownReq
	p.shutdownReq = nil
	creq := p.closeReq
	p.closeReq = nil
	p.mu.Unlock()

	for _, inv := range invs {
		w.m.Invoke(inv)
	}
	if invoked {
		w.started = true // init is over: every extension called /event/next
	}
	for _, ev := range evs {
		p.consume(w.m, w.tr, ev, nil)
	}
	if creq != nil {
		creq.reply <- p.spillAll()
		return time.Time{}, true
	}
	if sreq != nil {
		w.started = true
		w.sd = sreq
	}
	now := p.now()

	// Shutdown: wait (bounded) for the last reports, then close what is
	// open, flush within the deadline and spill the rest.
	if sd := w.sd; sd != nil {
		waitUntil := sd.deadline.Add(-p.flushTimeout() - 200*time.Millisecond)
		if t := sd.at.Add(time.Second); t.Before(waitUntil) {
			waitUntil = t
		}
		if w.m.OpenInvocations() > 0 && now.Before(waitUntil) && sd.ctx.Err() == nil {
			return waitUntil, false
		}
		w.sd = nil
		w.shutdown = &spillShutdown{Reason: sd.reason, At: sd.at}
		p.withCur(w.tr, nil, func() { w.m.Shutdown(sd.reason, sd.at) })
		ctx, cancel := context.WithDeadline(sd.ctx, sd.deadline)
		sent := false
		if !p.br.blocking(p.now()) {
			sent = p.flushAll(ctx, sd.deadline)
		}
		cancel()
		if !sent && w.dirty {
			w.metricsFailed = true // what changed since the last export is not delivered
		}
		err := p.spillAll()
		p.releaseWaiters()
		p.summary()
		sd.reply <- err
		return time.Time{}, false
	}

	// end/adaptive invocations waiting for their runtimeDone.
	if len(w.waiters) > 0 {
		keep := w.waiters[:0]
		for _, wt := range w.waiters {
			switch {
			case wt.ctx.Err() != nil:
				close(wt.done)
			case p.br.blocking(now):
				close(wt.done)
			case w.m.RuntimeDone(wt.requestID):
				if f, ok := w.m.(logFlusher); ok {
					p.withCur(w.tr, nil, f.FlushLogs)
				}
				dl, _ := wt.ctx.Deadline()
				if fdl := now.Add(wt.flush); dl.IsZero() || fdl.Before(dl) {
					dl = fdl
				}
				close(wt.flushing)
				p.flushAll(context.Background(), dl)
				close(wt.done)
			default:
				keep = append(keep, wt)
			}
		}
		clear(w.waiters[len(keep):])
		w.waiters = keep
	}

	// Background export while awake.
	next = p.background()
	p.summary()
	return next, false
}

// releaseWaiters lets every waiting Invoke return.
func (p *Pipeline) releaseWaiters() {
	for _, wt := range p.w.waiters {
		close(wt.done)
	}
	p.w.waiters = nil
}

// background sends what is due under the flush policy without blocking on
// retries, and returns when the worker should look again.
func (p *Pipeline) background() time.Time {
	w := &p.w
	now := p.now()
	if !w.started {
		return time.Time{}
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
	case w.q.len() > 0 && !now.Before(w.q.oldest().Add(p.o.BatchDelay)):
		due = true
	}
	metricsDue := w.dirty && !now.Before(w.lastMetrics.Add(p.o.MetricInterval))
	if w.lastMetrics.IsZero() && w.dirty {
		w.lastMetrics = now // first data: start the interval
		metricsDue = false
	}
	if periodic {
		metricsDue = metricsDue && due
	}
	if (due || metricsDue) && p.sendable(now) {
		ctx := context.Background()
		ok := true
		if due {
			ok = p.drain(ctx)
		}
		if ok && (metricsDue || due && periodic) {
			p.sendMetrics(ctx)
		}
	}

	// When to look again.
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	gate := w.retryAt
	if t := p.br.retryAt(); t.After(gate) {
		gate = t
	}
	switch {
	case periodic:
		if w.q.len() > 0 || w.dirty {
			earliest(w.nextPeriod)
		}
	default:
		if w.q.len() > 0 {
			earliest(w.q.oldest().Add(p.o.BatchDelay))
		}
		if w.dirty {
			earliest(w.lastMetrics.Add(p.o.MetricInterval))
		}
	}
	if !next.IsZero() && next.Before(gate) {
		next = gate
	}
	return next
}

// sendable reports whether a send may start now (retry gate; the breaker
// is asked per request).
func (p *Pipeline) sendable(now time.Time) bool {
	return p.w.started && !now.Before(p.w.retryAt)
}

// drain sends queued batches until the queue is empty or a send fails. It
// reports whether everything went out.
func (p *Pipeline) drain(ctx context.Context) bool {
	w := &p.w
	for w.q.len() > 0 {
		if ctx.Err() != nil || !p.sendable(p.now()) {
			return false
		}
		spans, logs := w.q.takeBatch(p.o.BatchMaxBytes)
		p.queueBytes.Store(w.q.bytes)
		if len(spans) > 0 && !p.sendItems(ctx, sigTraces, spans) {
			p.putBack(sigLogs, logs)
			return false
		}
		if len(logs) > 0 && !p.sendItems(ctx, sigLogs, logs) {
			return false
		}
	}
	return true
}

// flushAll sends everything queued and the metrics, retrying until
// deadline (blocking the worker for at most that long). ctx bounds the
// requests themselves: at SHUTDOWN it ends with the deadline; for an
// end-mode invocation it does not, so that a slow request is not cut (and
// duplicated) when the invocation stops waiting: Invoke returns at its
// budget on its own and the request completes in the background.
func (p *Pipeline) flushAll(ctx context.Context, deadline time.Time) bool {
	w := &p.w
	for {
		if p.drain(ctx) && p.sendMetrics(ctx) {
			return true
		}
		at := w.retryAt
		if t := p.br.retryAt(); t.After(at) {
			at = t
		}
		if ctx.Err() != nil || at.IsZero() || at.After(deadline) {
			return false
		}
		t := time.NewTimer(max(at.Sub(p.now()), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// sendItems exports one batch of one signal and settles the outcome. It
// reports whether the batch is done with (sent, or dropped as rejected);
// false means it was put back for a retry or the breaker refused.
func (p *Pipeline) sendItems(ctx context.Context, sig signal, items []*item) bool {
	now := p.now()
	if !p.br.allow(now) {
		p.putBack(sig, items)
		return false
	}
	var timeout time.Duration
	if sig == sigTraces {
		timeout = p.exp.tracesTimeout
	} else {
		timeout = p.exp.logsTimeout
	}
	v, retryAfter, res, err := p.attempt(ctx, sig, timeout, func(ctx context.Context) error {
		if sig == sigTraces {
			spans := make([]sdktrace.ReadOnlySpan, len(items))
			for i, it := range items {
				spans[i] = it.span
			}
			return p.exp.traces.ExportSpans(ctx, spans)
		}
		recs := make([]sdklog.Record, len(items))
		for i, it := range items {
			recs[i] = it.rec
		}
		return p.exp.logs.Export(ctx, recs)
	})
	n := int64(len(items))
	switch v {
	case verdictSent:
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
		return true
	case verdictRetry:
		p.failed(now, retryAfter, err, res)
		if res.netErr && res.sent {
			for _, it := range items {
				it.maybeDup = true
			}
		}
		p.count(sig, "retried", n)
		p.w.sum.retried += n
		p.putBack(sig, items)
		return false
	case verdictAuth:
		p.failed(now, 0, err, res)
		p.logAuth(res)
		p.dropItems(sig, "unauthorized", items)
		return true
	default:
		p.sent() // the backend answered: it is alive
		p.w.sum.rejected += n
		p.w.sum.lastErr = errText(err)
		p.dropItems(sig, "rejected", items)
		return true
	}
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
	p.queueBytes.Store(p.w.q.bytes)
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
func (p *Pipeline) sendMetrics(ctx context.Context) bool {
	w := &p.w
	now := p.now()
	if !p.sendable(now) {
		return false
	}
	w.lastMetrics, w.dirty = now, false
	rm := &metricdata.ResourceMetrics{}
	if err := p.reader.Collect(ctx, rm); err != nil {
		p.w.sum.lastErr = errText(err)
		w.metricsFailed = true
		return false
	}
	res := w.m.Resource()
	if res == nil {
		res = resource.Empty()
	}
	rm.Resource = res
	batch := append(w.pendingMetrics, rm)
	w.pendingMetrics = nil
	for i, r := range batch {
		n := dataPoints(r)
		if n == 0 {
			continue
		}
		if !p.br.allow(p.now()) {
			p.keepMetrics(batch[i:])
			w.metricsFailed = true
			return false
		}
		v, retryAfter, res, err := p.attempt(ctx, sigMetrics, p.exp.metricsTimeout, func(ctx context.Context) error {
			return p.exp.metrics.Export(ctx, r)
		})
		switch v {
		case verdictSent:
			p.sent()
			p.count(sigMetrics, "sent", n)
		case verdictRetry:
			p.failed(now, retryAfter, err, res)
			p.count(sigMetrics, "retried", n)
			p.keepMetrics(batch[i:])
			w.metricsFailed = true
			return false
		case verdictAuth:
			p.failed(now, 0, err, res)
			p.logAuth(res)
			p.count(sigMetrics, "dropped", n)
		default:
			p.sent() // the backend answered: it is alive
			p.w.sum.rejected += n
			p.w.sum.lastErr = errText(err)
			p.count(sigMetrics, "dropped", n)
		}
	}
	w.metricsFailed = false
	return true
}

// dropUnsentMetrics counts as dropped, with one log line, the metric data
// points that the final flush could not send: they are aggregated state,
// not events, so they are not spilled (a replay does not recount them).
func (p *Pipeline) dropUnsentMetrics() {
	w := &p.w
	// A cumulative collection after a successful export would count every
	// stream again although little changed: only failed exports (and
	// delta collections, which hold just what is new) are counted.
	if !w.metricsFailed && len(w.pendingMetrics) == 0 && (!w.dirty || p.cumulative) {
		return
	}
	var n int64
	for _, rm := range w.pendingMetrics {
		n += dataPoints(rm)
	}
	w.pendingMetrics = nil
	rm := &metricdata.ResourceMetrics{}
	if err := p.reader.Collect(context.Background(), rm); err == nil {
		n += dataPoints(rm)
	}
	w.dirty, w.metricsFailed = false, false
	if n == 0 {
		return
	}
	p.count(sigMetrics, "dropped", n)
	p.log.Error("unsent metrics dropped at shutdown", slog.Int64("metric_points", n))
}

func (p *Pipeline) keepMetrics(rms []*metricdata.ResourceMetrics) {
	if p.cumulative {
		return // the next collection carries the totals
	}
	for len(rms) > maxPendingMetrics {
		p.count(sigMetrics, "dropped", dataPoints(rms[0]))
		rms = rms[1:]
	}
	p.w.pendingMetrics = append([]*metricdata.ResourceMetrics(nil), rms...)
}

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
	if s.dropped == 0 && s.failed == 0 && s.rejected == 0 {
		return
	}
	p.log.Warn("export summary",
		slog.Int64("dropped", s.dropped), slog.Int64("failed_requests", s.failed),
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
	if typedNil(ev.Record) {
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
