package exporter

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/receiver"
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

// fnItems returns the number of items (spans, records, points) of items.
func fnItems(items []*item) int64 {
	var n int64
	for _, it := range items {
		n += it.fn.n
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

// functionContext is what the worker asks the mapper (signals.Mapper has
// it; a mapper without it leaves the function's data where it was).
type functionContext interface {
	FunctionParent(traceID trace.TraceID) (span trace.SpanContext, xrayParent trace.SpanID, ok bool)
	InvocationSpan(requestID string) (trace.SpanContext, bool)
}

// prepareFn enriches the payload's resources and places it in its
// invocation's trace, once. A payload whose invocation the mapper does not
// know yet is looked at again at its next attempt.
func (w *worker) prepareFn(pl *fnPayload) {
	if pl.prepared {
		return
	}
	fc, _ := w.m.(functionContext)
	resolved := true
	switch m := pl.msg.(type) {
	case *coltracepb.ExportTraceServiceRequest:
		for _, rs := range m.ResourceSpans {
			rs.Resource = w.enrich(rs.Resource)
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					if fc != nil && !nest(fc, sp.TraceId, &sp.ParentSpanId) {
						resolved = false
					}
				}
			}
		}
	case *collogspb.ExportLogsServiceRequest:
		var sc trace.SpanContext
		if fc != nil {
			sc, _ = fc.InvocationSpan(pl.reqID)
		}
		for _, rl := range m.ResourceLogs {
			rl.Resource = w.enrich(rl.Resource)
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					if len(r.TraceId) == 0 && len(r.SpanId) == 0 && sc.IsValid() {
						tid, sid := sc.TraceID(), sc.SpanID()
						r.TraceId, r.SpanId = tid[:], sid[:]
					}
				}
			}
		}
	case *colmetricpb.ExportMetricsServiceRequest:
		for _, rm := range m.ResourceMetrics {
			rm.Resource = w.enrich(rm.Resource)
		}
	}
	pl.prepared = resolved
}

// nest makes the invocation span the parent of a span whose parent is the
// Lambda invocation's X-Ray segment (the Parent of the invocation's trace
// header, which the function's SDK continues from). It reports false when
// the span's trace is not (yet) known to be an invocation's.
func nest(fc functionContext, traceID []byte, parent *[]byte) bool {
	if len(traceID) != 16 || len(*parent) != 8 {
		return true // no trace context, or a root span: nothing to nest
	}
	sc, xp, ok := fc.FunctionParent(trace.TraceID(traceID))
	if !ok {
		return false
	}
	if xp.IsValid() && bytes.Equal(*parent, xp[:]) {
		sid := sc.SpanID()
		*parent = sid[:]
	}
	return true
}

// enrich adds to res the cloud.*, faas.* and service.instance.id
// attributes of the mapper's resource that res lacks.
func (w *worker) enrich(res *resourcepb.Resource) *resourcepb.Resource {
	if !w.cfg.ReceiverEnrich {
		return res
	}
	add := w.fnEnrichment()
	if len(add) == 0 {
		return res
	}
	if res == nil {
		res = &resourcepb.Resource{}
	}
	have := make(map[string]bool, len(res.Attributes))
	for _, kv := range res.Attributes {
		have[kv.Key] = true
	}
	for _, kv := range add {
		if !have[kv.Key] {
			res.Attributes = append(res.Attributes, kv)
		}
	}
	return res
}

// fnEnrichment returns the attributes enrichment adds, from the mapper's
// current resource (kept while the resource is the same).
func (w *worker) fnEnrichment() []*commonpb.KeyValue {
	res := w.m.Resource()
	if res == w.fnRes {
		return w.fnAdd
	}
	w.fnRes, w.fnAdd = res, enrichmentOf(res)
	return w.fnAdd
}

func enrichmentOf(res *resource.Resource) []*commonpb.KeyValue {
	var out []*commonpb.KeyValue
	for _, kv := range res.Attributes() {
		k := string(kv.Key)
		if !strings.HasPrefix(k, "cloud.") && !strings.HasPrefix(k, "faas.") && k != "service.instance.id" {
			continue
		}
		var v commonpb.AnyValue
		switch kv.Value.Type() {
		case attribute.STRING:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: kv.Value.AsString()}
		case attribute.INT64:
			v.Value = &commonpb.AnyValue_IntValue{IntValue: kv.Value.AsInt64()}
		case attribute.BOOL:
			v.Value = &commonpb.AnyValue_BoolValue{BoolValue: kv.Value.AsBool()}
		case attribute.FLOAT64:
			v.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: kv.Value.AsFloat64()}
		default:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: kv.Value.Emit()}
		}
		out = append(out, &commonpb.KeyValue{Key: k, Value: &v})
	}
	return out
}

// settleFunction settles a request of function items by its verdict.
func (w *worker) settleFunction(r sendResult) {
	items := r.f.items
	sig := r.f.sig
	n := fnItems(items)
	w.mq.selfDirty = true
	switch r.v {
	case verdictSent:
		w.q.done(items)
		w.noteQueue()
		w.snd.succeeded()
		w.c.countFn(sig, outSent, n)
		var dups int64
		for _, it := range items {
			if it.maybeDup {
				dups += it.fn.n
			}
			w.settle(it)
		}
		w.c.countFn(sig, outDup, dups)
	case verdictRetry:
		w.failed(r)
		if r.res.netErr && r.res.sent {
			for _, it := range items {
				it.maybeDup = true
			}
		}
		w.c.countFn(sig, outRetried, n)
		w.sum.retried += n
		w.putBackFn(items)
	case verdictAuth:
		w.q.done(items)
		w.noteQueue()
		w.failed(r)
		w.logAuth(r.res)
		w.dropFn(items, dropUnauthorized)
	default:
		w.q.done(items)
		w.noteQueue()
		w.snd.succeeded()
		w.sum.rejected += n
		w.sum.lastErr = errText(r.err)
		w.dropFn(items, dropRejected)
	}
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

// fnClients send the function's data: per lane an encoder's output and a
// send function, over HTTP (protobuf, or JSON for http/json traces) or
// gRPC, as the signal's configuration says.
type fnClients struct {
	json    [3]bool
	send    [3]func(ctx context.Context, body []byte) error
	timeout [3]time.Duration
	conns   []*grpc.ClientConn
}

// encode encodes a request for lane sig's protocol.
func (c *fnClients) encode(sig signal, msg proto.Message) ([]byte, error) {
	if c.json[fnLane(sig)] {
		return receiver.MarshalJSON(msg)
	}
	return proto.Marshal(msg)
}

func (c *fnClients) close() error {
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// newFnClients builds the clients from the configuration, with the
// transports the SDK exporters get (base replaces them in tests); the HTTP
// transports join exp.idle (closed after a failure).
func newFnClients(o config.OTLP, base http.RoundTripper, exp *exporters) (*fnClients, error) {
	c := &fnClients{}
	z := &gzipper{}
	for l, sig := range fnSignals {
		s := o.Traces
		path := "/v1/traces"
		switch sig {
		case sigLogs:
			s, path = o.Logs, "/v1/logs"
		case sigMetrics:
			s, path = o.Metrics, "/v1/metrics"
		}
		c.timeout[l] = timeoutOf(s)
		proto := s.Protocol
		if proto == "" {
			proto = o.Protocol
		}
		if !s.Enabled() {
			c.send[l] = func(context.Context, []byte) error { return errors.New("signal not exported") }
			continue
		}
		if proto == protoGRPC {
			send, cc, err := grpcFnSender(s, sig, exp.grpcOptions(o, s)...)
			if err != nil {
				return nil, fmt.Errorf("function %s client: %w", sig, err)
			}
			c.send[l] = send
			c.conns = append(c.conns, cc)
			continue
		}
		rt := base
		if rt == nil {
			t, err := httpTransport(s)
			if err != nil {
				return nil, fmt.Errorf("function %s client: %w", sig, err)
			}
			t.Proxy = proxyFor(o, nil) // SLIPSTREAM_HTTPS_PROXY (proxy.go)
			rt = t
		}
		if ci, ok := rt.(interface{ CloseIdleConnections() }); ok {
			exp.idle = append(exp.idle, ci)
		}
		t := exp.signed(s, observingTransport{base: rt}) // secure.go
		if s.Compression == "" || s.Compression == "gzip" {
			t = &gzipTransport{base: t, z: z}
		}
		t = exp.withSecrets(s, t)
		ct := "application/x-protobuf"
		if proto == protoHTTPJSON && sig == sigTraces {
			c.json[l] = true
			ct = "application/json"
		}
		c.send[l] = httpFnSender(&http.Client{Transport: t}, endpointOr(s, protoHTTPProtobuf, path), s.Headers, ct)
	}
	return c, nil
}

// httpFnSender POSTs a body; a non-2xx answer is an error (the status is
// classified from the attempt the observing transport fills in).
func httpFnSender(hc *http.Client, endpoint string, headers map[string]string, ct string) func(context.Context, []byte) error {
	return func(ctx context.Context, body []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return err
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("Content-Type", ct)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		// Read (a bounded part of) the answer so the connection is reused.
		_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("OTLP export of function data: HTTP %d", resp.StatusCode)
		}
		return rerr
	}
}

// grpcFnSender sends over the collector's gRPC stubs on a connection built
// like the gRPC exporters' (plaintext for http:// or _INSECURE, TLS
// otherwise; our observing interceptor; gzip).
func grpcFnSender(s config.Signal, sig signal, extra ...grpc.DialOption) (func(context.Context, []byte) error, *grpc.ClientConn, error) {
	endpoint := endpointOr(s, protoGRPC, "")
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, nil, fmt.Errorf("grpc endpoint %q: not a URL", s.RedactedEndpoint())
	}
	creds := insecure.NewCredentials()
	if u.Scheme == "https" || (u.Scheme != "http" && !s.Insecure) {
		tc, err := tlsConfig(s)
		if err != nil {
			return nil, nil, err
		}
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(tc)
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithUnaryInterceptor(grpcObserver)}, extra...)
	cc, err := grpc.NewClient(u.Host, dial...)
	if err != nil {
		return nil, nil, err
	}
	md := metadata.New(s.Headers)
	var opts []grpc.CallOption
	if s.Compression == "" || s.Compression == "gzip" {
		opts = append(opts, grpc.UseCompressor(gzip.Name))
	}
	// The body was encoded on the worker; decoding it here again gives
	// the stub a message no other goroutine touches.
	send := func(ctx context.Context, body []byte) error {
		ctx = metadata.NewOutgoingContext(ctx, md)
		switch sig {
		case sigTraces:
			req := &coltracepb.ExportTraceServiceRequest{}
			if err := proto.Unmarshal(body, req); err != nil {
				return err
			}
			_, err := coltracepb.NewTraceServiceClient(cc).Export(ctx, req, opts...)
			return err
		case sigLogs:
			req := &collogspb.ExportLogsServiceRequest{}
			if err := proto.Unmarshal(body, req); err != nil {
				return err
			}
			_, err := collogspb.NewLogsServiceClient(cc).Export(ctx, req, opts...)
			return err
		}
		req := &colmetricpb.ExportMetricsServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			return err
		}
		_, err := colmetricpb.NewMetricsServiceClient(cc).Export(ctx, req, opts...)
		return err
	}
	return send, cc, nil
}
