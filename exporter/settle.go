package exporter

import (
	"log/slog"
)

// The worker's side of requests: their results are settled here (sent,
// retried, dropped), and what leaves the pipeline settles its spill file.

// reap settles the results that have come back, without waiting.
func (w *worker) reap() {
	for {
		select {
		case r := <-w.snd.results:
			w.onResult(r)
		default:
			return
		}
	}
}

// stopSenders cancels the requests in flight and waits for every sender
// goroutine, settling their results.
func (w *worker) stopSenders() {
	w.snd.cancelAll()
	for w.snd.live > 0 {
		w.onResult(<-w.snd.results)
	}
}

// abandonFlights cancels the requests in flight and takes their items
// back into the queue (SHUTDOWN's cut, Close). A request that completes
// anyway is sent again from the spill: at-least-once.
func (w *worker) abandonFlights() {
	for _, f := range w.snd.abandon() {
		if f.fn {
			w.putBackFn(f.items)
			continue
		}
		if f.sig != sigMetrics {
			w.putBack(f.sig, f.items)
			continue
		}
		if f.rm.self {
			continue
		}
		// A replayed collection is kept whatever the temporality: it
		// must be settled against its spill file (re-spilled).
		if f.rm.origin != nil || !w.mq.cumulative {
			w.mq.q = append([]*pendingMetrics{f.rm}, w.mq.q...)
		}
		if f.rm.origin == nil {
			w.mq.failed = true
		}
	}
}

// onResult settles the outcome of one request.
func (w *worker) onResult(r sendResult) {
	if !w.snd.take(r) {
		return // abandoned: its items were taken back
	}
	if r.f.sig == sigMetrics && !r.f.fn {
		w.settleMetrics(r) // the platform's metrics: collections, not items
		return
	}
	w.settleItems(r)
}

// settleItems settles a batch of spans or log records, or of the
// function's own OTLP requests, by its verdict:
// sent, put back for a retry, or dropped (unauthorized, rejected).
func (w *worker) settleItems(r sendResult) {
	sig, items := r.f.sig, r.f.items
	fn := r.f.fn // the function's own data: counted and put back by lane
	count := w.c.count
	if fn {
		count = w.c.countFn
	}
	drop := func(reason dropReason) {
		if fn {
			w.dropFn(items, reason)
		} else {
			w.dropItems(sig, reason, items)
		}
	}
	n := itemCount(items)
	w.mq.selfDirty = true
	switch r.v {
	case verdictSent:
		w.q.done(items)
		w.noteQueue()
		w.snd.succeeded()
		count(sig, outSent, n)
		var dups int64
		for _, it := range items {
			if it.maybeDup {
				dups += it.weight()
			}
			w.settle(it)
		}
		count(sig, outDup, dups)
	case verdictRetry:
		w.failed(r)
		if r.res.netErr && r.res.sent {
			for _, it := range items {
				it.maybeDup = true
			}
		}
		count(sig, outRetried, n)
		w.sum.retried += n
		if fn {
			w.putBackFn(items)
		} else {
			w.putBack(sig, items)
		}
	case verdictAuth:
		w.q.done(items)
		w.noteQueue()
		w.failed(r)
		w.logAuth(r.res)
		drop(dropUnauthorized)
	default:
		w.q.done(items)
		w.noteQueue()
		w.snd.succeeded() // the backend answered: it is alive
		w.sum.rejected += n
		w.sum.lastErr = errText(r.err)
		drop(dropRejected)
	}
}

// settleMetrics settles a metrics collection by its verdict. A failed
// collection goes back to the front of the metrics queue for the retry
// (a newer cumulative collection, if any, supersedes it).
func (w *worker) settleMetrics(r sendResult) {
	pm := r.f.rm
	switch r.v {
	case verdictSent:
		w.snd.succeeded()
		w.c.count(sigMetrics, outSent, pm.n)
		w.mq.settled = max(w.mq.settled, pm.gen)
		if !w.mq.hasOwn() {
			w.mq.failed = false
		}
		w.settleMetricsOrigin(pm)
	case verdictRetry:
		w.failed(r)
		w.c.count(sigMetrics, outRetried, pm.n)
		if !pm.self && pm.origin == nil {
			w.mq.failed = true
		}
		superseded := w.mq.cumulative && pm.origin == nil && w.mq.hasOwn()
		if !superseded {
			for _, d := range w.mq.requeue(pm) {
				w.c.drop(sigMetrics, dropTooManyPending, d.n)
			}
		}
	case verdictAuth:
		w.failed(r)
		w.logAuth(r.res)
		w.c.drop(sigMetrics, dropUnauthorized, pm.n)
		w.mq.settled = max(w.mq.settled, pm.gen)
		w.settleMetricsOrigin(pm)
	default:
		w.snd.succeeded() // the backend answered: it is alive
		w.sum.rejected += pm.n
		w.sum.lastErr = errText(r.err)
		w.c.drop(sigMetrics, dropRejected, pm.n)
		w.mq.settled = max(w.mq.settled, pm.gen)
		w.settleMetricsOrigin(pm)
	}
}

// failed records a failed request for the retry schedule and the summary.
func (w *worker) failed(r sendResult) {
	w.snd.failed(r.end, r.retryAfter)
	w.sum.failed++
	w.sum.lastErr = failureText(r.err, r.res)
}

// logAuth logs a rejected credential once per process, naming the header
// variable (never its value).
func (w *worker) logAuth(res attemptResult) {
	w.c.authFailures.Add(1)
	if w.authLogged {
		return
	}
	w.authLogged = true
	src := w.cfg.OTLP.Source
	if src == "" {
		src = "OTEL_EXPORTER_OTLP"
	}
	attrs := []any{slog.String("variable", src+"_HEADERS")}
	if res.status != 0 {
		attrs = append(attrs, slog.Int("status", res.status))
	} else {
		attrs = append(attrs, slog.String("grpc_code", res.grpcCode.String()))
	}
	w.log.Error("OTLP backend rejected the credentials; data is dropped, not retried: check the headers variable", attrs...)
}

// summary writes one log line after a step that had drops or failures.
func (w *worker) summary() {
	s := &w.sum
	intake := w.c.dropped(sigLogs, dropIntakeFull) + w.c.dropped(sigPlatform, dropIntakeFull)
	intakeDropped := intake - s.intakeDropped
	if s.dropped == 0 && s.failed == 0 && s.rejected == 0 && intakeDropped == 0 {
		return
	}
	w.log.Warn("export summary",
		slog.Int64("dropped", s.dropped), slog.Int64("intake_dropped", intakeDropped),
		slog.Int64("failed_requests", s.failed),
		slog.Int64("retried", s.retried), slog.Int64("rejected", s.rejected),
		slog.Int64("queue_bytes", w.q.bytes), slog.String("breaker", w.snd.br.current().String()),
		slog.String("last_error", s.lastErr))
	*s = flushSummary{intakeDropped: intake}
}

func (w *worker) putBack(sig signal, items []*item) {
	if len(items) == 0 {
		return
	}
	for _, d := range w.q.putBack(sig, items) {
		w.dropItems(sig, dropQueueFull, []*item{d})
	}
	w.noteQueue()
}

// dropItems counts items as dropped and settles their spill origin.
func (w *worker) dropItems(sig signal, reason dropReason, items []*item) {
	w.c.drop(sig, reason, int64(len(items)))
	w.sum.dropped += int64(len(items))
	for _, it := range items {
		w.settle(it)
	}
}

// settle records that an item left the pipeline (sent, dropped or
// re-spilled): the spill file it was replayed from is deleted once all of
// its outputs have.
func (w *worker) settle(it *item) { w.release(&it.origin) }

// settleMetricsOrigin does the same for a replayed metrics collection.
func (w *worker) settleMetricsOrigin(pm *pendingMetrics) { w.release(&pm.origin) }

// release settles one output against its spill file *origin, if any.
func (w *worker) release(origin **spillFile) {
	f := *origin
	if f == nil {
		return
	}
	*origin = nil
	f.pending--
	if f.pending == 0 {
		w.deleteSpill(f)
	}
}
