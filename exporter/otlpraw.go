package exporter

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// The function's own OpenTelemetry data (package receiver) takes the same
// way as the platform's: the one queue and its bound, the flush policy,
// retry, breaker and spill. It cannot go through the SDK exporters, which
// take only SDK spans and records, so it has a lane of its own per signal
// (the sender keeps one request in flight per lane) and is sent as OTLP
// by our own client, over the same observing and gzip transports, or
// the collector's gRPC stubs. What the function sent is sent as it is,
// but for three additions: attributes its resource lacks (cloud.*,
// faas.*, service.instance.id, when SLIPSTREAM_RECEIVER_ENRICH is on),
// the invocation span as the parent of the spans whose parent is the
// Lambda invocation's X-Ray segment, and the invocation's trace context
// on log records that have none.

// fnSignals are the function lanes' signals, by lane.
var fnSignals = [3]signal{sigTraces, sigLogs, sigMetrics}

func fnLane(sig signal) int {
	switch sig {
	case sigTraces:
		return 0
	case sigLogs:
		return 1
	}
	return 2
}

// fnOverhead is added to a payload's encoded size in the queue's
// accounting (the item and the message's structs).
const fnOverhead = 256

// fnPayload is one request the function's SDK sent.
type fnPayload struct {
	sig   signal
	msg   proto.Message // *coltracepb.ExportTraceServiceRequest, *collogspb..., *colmetricpb...
	n     int64         // spans, log records or data points
	bytes int64
	// reqID is the latest INVOKE's request ID when the payload arrived
	// (empty under Lambda Managed Instances, whose invocations overlap):
	// its log records without trace context belong to that invocation.
	reqID string
	// prepared: enriched and nested in its invocation's trace (done once).
	prepared bool
}

// fnFront is the front door's state of the function lanes, in handoff.
type fnFront struct {
	// reserved counts the bytes of payloads accepted but not yet queued
	// by the worker: accepting checks the queue's bound against it.
	reserved atomic.Int64
	max      int64
}

// AcceptOTLP takes one request of the function's own OTLP data (a
// *coltracepb.ExportTraceServiceRequest, *colmetricpb... or *collogspb...;
// the receiver's sink). It never waits: the request is queued when the
// queue has room for it, and otherwise refused whole, counted as dropped,
// with rejected items and the reason for the receiver's partial_success.
// It may keep msg.
func (p *Pipeline) AcceptOTLP(msg proto.Message) (rejected int64, reason string) {
	if p.ctl != nil {
		// The pre-queue step, as for the Telemetry API's events: what it
		// removes is never queued, spilled or sent (and not counted here).
		reqID := ""
		if !p.cfg.ManagedInstances {
			p.h.invMu.Lock()
			reqID = p.h.lastRequestID
			p.h.invMu.Unlock()
		}
		p.ctl.Request(msg, reqID)
	}
	sig, n := countOTLP(msg)
	if n == 0 {
		return 0, ""
	}
	s := p.cfg.OTLP.Traces
	switch sig {
	case sigLogs:
		s = p.cfg.OTLP.Logs
	case sigMetrics:
		s = p.cfg.OTLP.Metrics
	}
	if p.disabled || !s.Enabled() {
		p.c.dropFn(sig, dropNotExported, n)
		off := s.Off
		if off == "" {
			off = "SLIPSTREAM_DISABLED"
		}
		return n, fmt.Sprintf("Slipstream does not export %s (%s): data dropped", sig, off)
	}
	size := int64(proto.Size(msg)) + fnOverhead
	h := p.h
	if !h.fn.reserve(size, &p.c.queueBytes) {
		p.c.dropFn(sig, dropQueueFull, n)
		return n, "Slipstream's export buffer is full (SLIPSTREAM_BUFFER_MAX_BYTES): data dropped"
	}
	pl := &fnPayload{sig: sig, msg: msg, n: n, bytes: size}
	if !p.cfg.ManagedInstances {
		h.invMu.Lock()
		pl.reqID = h.lastRequestID
		h.invMu.Unlock()
	}
	h.mu.Lock()
	if h.closing || h.stopped {
		h.mu.Unlock()
		h.fn.reserved.Add(-size)
		p.c.dropFn(sig, dropClosed, n)
		return n, "Slipstream is shutting down: data dropped"
	}
	h.fnIn = append(h.fnIn, pl)
	h.mu.Unlock()
	h.signal()
	return 0, ""
}

// reserve claims size bytes of the queue's bound for an accepted payload.
func (f *fnFront) reserve(size int64, queued *atomic.Int64) bool {
	for {
		r := f.reserved.Load()
		if queued.Load()+r+size > f.max {
			return false
		}
		if f.reserved.CompareAndSwap(r, r+size) {
			return true
		}
	}
}

// countOTLP returns the signal of msg and its number of items.
func countOTLP(msg proto.Message) (signal, int64) {
	var n int64
	switch m := msg.(type) {
	case *coltracepb.ExportTraceServiceRequest:
		for _, rs := range m.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				n += int64(len(ss.GetSpans()))
			}
		}
		return sigTraces, n
	case *collogspb.ExportLogsServiceRequest:
		for _, rl := range m.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				n += int64(len(sl.GetLogRecords()))
			}
		}
		return sigLogs, n
	case *colmetricpb.ExportMetricsServiceRequest:
		for _, rm := range m.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, mt := range sm.GetMetrics() {
					n += dataPoints(mt)
				}
			}
		}
		return sigMetrics, n
	}
	return sigTraces, 0
}

func dataPoints(m *metricspb.Metric) int64 {
	switch d := m.GetData().(type) {
	case *metricspb.Metric_Gauge:
		return int64(len(d.Gauge.GetDataPoints()))
	case *metricspb.Metric_Sum:
		return int64(len(d.Sum.GetDataPoints()))
	case *metricspb.Metric_Histogram:
		return int64(len(d.Histogram.GetDataPoints()))
	case *metricspb.Metric_ExponentialHistogram:
		return int64(len(d.ExponentialHistogram.GetDataPoints()))
	case *metricspb.Metric_Summary:
		return int64(len(d.Summary.GetDataPoints()))
	}
	return 0
}

// takeFunction queues the payloads the front door accepted.
func (w *worker) takeFunction(pls []*fnPayload) {
	for _, pl := range pls {
		w.pushFn(&item{fn: pl, bytes: pl.bytes})
		w.h.fn.reserved.Add(-pl.bytes)
	}
}

// pushFn queues a function item (live or replayed) in its lane. Its room
// was reserved when it was accepted; should the queue still be full (a
// replay, platform data meanwhile), it is dropped: function data never
// evicts anything.
func (w *worker) pushFn(it *item) {
	if it.origin != nil {
		it.origin.pending++
	}
	w.qseq++
	it.qseq = w.qseq
	it.at = w.clock.awake
	if it.queued = w.clock.at; it.queued.IsZero() {
		it.queued = w.now()
	}
	if w.q.total()+it.bytes > w.q.max {
		w.dropFn([]*item{it}, dropQueueFull)
		return
	}
	l := fnLane(it.fn.sig)
	w.q.fn[l] = append(w.q.fn[l], it)
	w.q.bytes += it.bytes
	w.noteQueue()
}

// weight is how many telemetry items it stands for: one span or log
// record, or the spans, records or data points of a function request.
func (it *item) weight() int64 {
	if it.fn != nil {
		return it.fn.n
	}
	return 1
}

// itemCount is the number of telemetry items in items.
func itemCount(items []*item) int64 {
	var n int64
	for _, it := range items {
		n += it.weight()
	}
	return n
}

// dropFn counts function items as dropped and settles their spill origin.
func (w *worker) dropFn(items []*item, reason dropReason) {
	for _, it := range items {
		w.c.dropFn(it.fn.sig, reason, it.fn.n)
		w.sum.dropped += it.fn.n
		w.settle(it)
	}
}

// pumpFunction starts a request for every function lane that has none in
// flight and has items queued up to eager. It reports false when the
// breaker refused a request.
func (w *worker) pumpFunction(now time.Time, eager uint64) bool {
	for l, sig := range fnSignals {
		list := w.q.fn[l]
		if w.snd.flights[fnFlight(l)] != nil || len(list) == 0 || list[0].qseq > eager {
			continue
		}
		if !w.snd.allow(now) {
			return false
		}
		items, n := takeFront(&w.q.fn[l], 0, w.pol.batchMaxBytes)
		w.q.bytes -= n
		w.q.held += n
		w.startFunction(sig, items)
	}
	return true
}

// fnFlight is the index in sender.flights of function lane l.
func fnFlight(l int) int { return flMetrics + 1 + l }

// laneOf is the index in sender.flights of f's lane.
func laneOf(f *flight) int {
	if f.fn {
		return fnFlight(fnLane(f.sig))
	}
	return flightIndex(f.sig)
}

// startFunction prepares, encodes and starts one request of function items.
func (w *worker) startFunction(sig signal, items []*item) {
	w.noteQueue()
	f := &flight{sig: sig, fn: true, items: items, minSeq: items[0].qseq}
	for _, it := range items {
		w.prepareFn(it.fn)
	}
	body, err := w.fnc.encode(sig, mergeFn(sig, items))
	if err != nil {
		// Cannot happen for a message that was decoded: dropped, counted.
		w.q.done(items)
		w.sum.lastErr = errText(err)
		w.dropFn(items, dropUnencodable)
		return
	}
	send := w.fnc.send[fnLane(sig)]
	w.snd.start(f, w.fnc.timeout[fnLane(sig)], func(ctx context.Context) error { return send(ctx, body) })
}

// mergeFn joins the payloads of items into one request (their resource
// lists, in order).
func mergeFn(sig signal, items []*item) proto.Message {
	switch sig {
	case sigTraces:
		out := &coltracepb.ExportTraceServiceRequest{}
		for _, it := range items {
			out.ResourceSpans = append(out.ResourceSpans, it.fn.msg.(*coltracepb.ExportTraceServiceRequest).ResourceSpans...)
		}
		return out
	case sigLogs:
		out := &collogspb.ExportLogsServiceRequest{}
		for _, it := range items {
			out.ResourceLogs = append(out.ResourceLogs, it.fn.msg.(*collogspb.ExportLogsServiceRequest).ResourceLogs...)
		}
		return out
	}
	out := &colmetricpb.ExportMetricsServiceRequest{}
	for _, it := range items {
		out.ResourceMetrics = append(out.ResourceMetrics, it.fn.msg.(*colmetricpb.ExportMetricsServiceRequest).ResourceMetrics...)
	}
	return out
}

// putBackFn returns the items of a failed or abandoned request to the
// front of their lane; what no longer fits is dropped, oldest first.
func (w *worker) putBackFn(items []*item) {
	if len(items) == 0 {
		return
	}
	var n int64
	for _, it := range items {
		n += it.bytes
	}
	q := &w.q
	q.held -= n
	for q.bytes+q.held+n > q.max && len(items) > 0 {
		w.dropFn(items[:1], dropQueueFull)
		n -= items[0].bytes
		items = items[1:]
	}
	if len(items) == 0 {
		w.noteQueue()
		return
	}
	q.bytes += n
	l := fnLane(items[0].fn.sig)
	q.fn[l] = append(items[:len(items):len(items)], q.fn[l]...)
	w.noteQueue()
}

// fnFlushed reports whether every function item queued up to mark has
// been sent or given up.
func (w *worker) fnFlushed(mark uint64) bool {
	for l := range fnSignals {
		if f := w.snd.flights[fnFlight(l)]; f != nil && f.minSeq <= mark {
			return false
		}
		if list := w.q.fn[l]; len(list) > 0 && list[0].qseq <= mark {
			return false
		}
	}
	return true
}

// foldFunctionHeads adds the function lanes to the flush policy's view:
// the traces head (index 0) stands for the platform's and the function's
// traces and metrics, the logs head (1) for both logs lanes; a head is
// busy only while every lane it stands for that has data is busy.
func (w *worker) foldFunctionHeads(v *flushView) {
	for l := range fnSignals {
		list := w.q.fn[l]
		if len(list) == 0 {
			continue
		}
		i := 0
		if fnSignals[l] == sigLogs {
			i = 1
		}
		busy := w.snd.flights[fnFlight(l)] != nil
		h := head{ok: true, qseq: list[0].qseq, at: list[0].at, queued: list[0].queued}
		switch {
		case !v.heads[i].ok:
			v.heads[i], v.busy[i] = h, busy
		case v.busy[i] && !busy:
			v.heads[i], v.busy[i] = h, false
		case v.busy[i] == busy && h.qseq < v.heads[i].qseq:
			v.heads[i] = h
		}
	}
}

// splitFunction separates the function items from items.
func splitFunction(items []*item) (platform, fn []*item) {
	platform = items[:0:0]
	for _, it := range items {
		if it.fn != nil {
			fn = append(fn, it)
		} else {
			platform = append(platform, it)
		}
	}
	return platform, fn
}

// spillOTLP is one function request in a spill file: its OTLP protobuf
// encoding (base64 in the JSON document).
type spillOTLP struct {
	Signal    signal `json:"signal"`
	Items     int64  `json:"items"`
	RequestID string `json:"request_id,omitempty"`
	Data      []byte `json:"data"`
}

// fnSpill encodes function items for a spill file, prepared first (the
// next process's mapper will not know these invocations).
func (w *worker) fnSpill(items []*item) []spillOTLP {
	out := make([]spillOTLP, 0, len(items))
	for _, it := range items {
		w.prepareFn(it.fn)
		b, err := proto.Marshal(it.fn.msg)
		if err != nil {
			continue // cannot happen for a decoded message
		}
		out = append(out, spillOTLP{Signal: it.fn.sig, Items: it.fn.n, RequestID: it.fn.reqID, Data: b})
	}
	return out
}

// settleFnSpill counts spilled function items (ok) or drops them.
func (w *worker) settleFnSpill(items []*item, ok bool) {
	for _, it := range items {
		if ok {
			w.c.countFn(it.fn.sig, outSpilled, it.fn.n)
			w.settle(it)
		} else {
			w.dropFn([]*item{it}, dropSpillFailed)
		}
	}
}

// replayFunction queues the function requests of a spill file f.
func (w *worker) replayFunction(reqs []spillOTLP, f *spillFile, name string) {
	for _, r := range reqs {
		var msg proto.Message
		switch r.Signal {
		case sigTraces:
			msg = &coltracepb.ExportTraceServiceRequest{}
		case sigLogs:
			msg = &collogspb.ExportLogsServiceRequest{}
		case sigMetrics:
			msg = &colmetricpb.ExportMetricsServiceRequest{}
		default:
			continue
		}
		if err := proto.Unmarshal(r.Data, msg); err != nil {
			w.log.Warn("spill replay: unreadable function data dropped", slog.String("file", name), slog.String("error", err.Error()))
			continue
		}
		sig, n := countOTLP(msg)
		if n == 0 {
			continue
		}
		if !w.fnEnabled(sig) {
			// Spilled before the signal was switched off: not sent.
			w.c.dropFn(sig, dropSignalOff, n)
			continue
		}
		w.pushFn(&item{fn: &fnPayload{sig: sig, msg: msg, n: n, bytes: int64(len(r.Data)) + fnOverhead, reqID: r.RequestID, prepared: true}, bytes: int64(len(r.Data)) + fnOverhead, origin: f})
	}
}

// fnEnabled reports whether signal sig is exported.
func (w *worker) fnEnabled(sig signal) bool {
	switch sig {
	case sigTraces:
		return w.cfg.OTLP.Traces.Enabled()
	case sigLogs:
		return w.cfg.OTLP.Logs.Enabled()
	}
	return w.cfg.OTLP.Metrics.Enabled()
}
