package exporter

import (
	"slices"
	"time"

	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// defaultEventSize is the size charged for an event whose Size is unknown.
const defaultEventSize = 256

func eventSize(ev telemetry.Event) int64 {
	if ev.Size > 0 {
		return int64(ev.Size)
	}
	return defaultEventSize
}

func isLogEvent(ev telemetry.Event) bool {
	return ev.Type == telemetry.TypeFunction || ev.Type == telemetry.TypeExtensionLog
}

// intake is the bounded hand-off between the telemetry listener and the
// worker: decoded events waiting to be mapped. When full it drops
// function/extension log events first (incoming, then already queued, oldest
// first) and platform events last; every drop is counted. Not safe for
// concurrent use: Pipeline.mu guards it.
type intake struct {
	evs   []telemetry.Event
	bytes int64
	max   int64
}

// batchBytes is what evs take in the intake.
func batchBytes(evs []telemetry.Event) int64 {
	var n int64
	for _, ev := range evs {
		n += eventSize(ev)
	}
	return n
}

// add appends evs, dropping what does not fit; an empty intake takes a
// batch of any size (one Telemetry API batch may exceed the bound). It
// returns the number of log and platform events dropped.
func (in *intake) add(evs []telemetry.Event) (droppedLogs, droppedPlatform int) {
	return in.addSized(evs, batchBytes(evs))
}

// addSized is add for a batch whose batchBytes is need.
func (in *intake) addSized(evs []telemetry.Event, need int64) (droppedLogs, droppedPlatform int) {
	if in.bytes+need <= in.max || in.bytes == 0 {
		in.evs = append(in.evs, evs...)
		in.bytes += need
		return 0, 0
	}
	var platNeed int64
	for _, ev := range evs {
		if !isLogEvent(ev) {
			platNeed += eventSize(ev)
		}
	}
	// Make room for the platform events by evicting queued log events,
	// oldest first.
	if free := in.max - in.bytes; platNeed > free {
		droppedLogs += in.evictLogs(platNeed - free)
	}
	// Platform events first (in order, while they fit), then log events
	// with what is left; the accepted ones keep their original order.
	free := in.max - in.bytes
	keep := make([]bool, len(evs))
	for i, ev := range evs {
		if !isLogEvent(ev) && eventSize(ev) <= free {
			keep[i] = true
			free -= eventSize(ev)
		}
	}
	for i, ev := range evs {
		if isLogEvent(ev) && eventSize(ev) <= free {
			keep[i] = true
			free -= eventSize(ev)
		}
	}
	for i, ev := range evs {
		if !keep[i] {
			if isLogEvent(ev) {
				droppedLogs++
			} else {
				droppedPlatform++
			}
			continue
		}
		in.evs = append(in.evs, ev)
		in.bytes += eventSize(ev)
	}
	return droppedLogs, droppedPlatform
}

// evictLogs removes queued log events, oldest first, until at least want
// bytes are freed or none is left. It returns how many it removed.
func (in *intake) evictLogs(want int64) int {
	var freed int64
	n := 0
	out := in.evs[:0]
	for _, ev := range in.evs {
		if freed < want && isLogEvent(ev) {
			freed += eventSize(ev)
			n++
			continue
		}
		out = append(out, ev)
	}
	clear(in.evs[len(out):])
	in.evs = out
	in.bytes -= freed
	return n
}

// borrow returns every queued event, which stay counted in bytes until
// giveBack: the worker maps them meanwhile.
func (in *intake) borrow() []telemetry.Event {
	evs := in.evs
	in.evs = nil
	return evs
}

// giveBack ends a borrow: mapped bytes were mapped, and rest (the tail of
// the borrowed events, still counted) goes back to the front of the
// intake, before what Enqueue added meanwhile.
func (in *intake) giveBack(rest []telemetry.Event, mapped int64) {
	in.bytes -= mapped
	if len(rest) > 0 {
		in.evs = append(slices.Clip(rest), in.evs...)
	}
}

// take returns every queued event and empties the intake.
func (in *intake) take() []telemetry.Event {
	evs := in.evs
	in.evs, in.bytes = nil, 0
	return evs
}

// signal names an exported signal (the "signal" attribute of self-metrics).
type signal string

const (
	sigTraces  signal = "traces"
	sigLogs    signal = "logs"
	sigMetrics signal = "metrics"
)

// srcEvent is a decoded event kept as the source of mapped outputs, so that
// what cannot be sent can be spilled as our own data and re-mapped later.
type srcEvent struct {
	seq uint64
	ev  telemetry.Event
}

// item is one mapped output waiting in the queue: a span or a log record,
// its byte estimate, the events it was mapped from and, for replayed data,
// the spill file it came from.
type item struct {
	span     sdktrace.ReadOnlySpan // set for traces
	rec      sdklog.Record         // set for logs
	bytes    int64
	at       time.Duration // when it was queued, in the worker's awake time
	queued   time.Time     // when it was queued, wall clock (adaptive's MaxDataAge)
	src      []*srcEvent   // source events (re-mappable form)
	origin   *spillFile    // replayed from this file; nil for live data
	maybeDup bool          // a failed attempt may have reached the server
	qseq     uint64        // queue order: a flush covers the items queued up to a mark
}

// queue is the ONE bounded buffer of mapped outputs (spans and log
// records), bounded in estimated bytes, including the items of the requests
// in flight (held): a send does not make room for more. When full, log
// records are evicted before spans (oldest first). Metrics are not queued:
// they are aggregated state in the MeterProvider and collected at each
// flush. Worker-only: no lock.
type queue struct {
	spans []*item
	logs  []*item
	bytes int64 // queued, not in flight
	held  int64 // taken by requests in flight, not yet settled
	max   int64
}

// total is the bytes the queue accounts for: queued and in flight.
func (q *queue) total() int64 { return q.bytes + q.held }

// oldest returns the awake time at which the oldest queued item was
// queued; ok is false when the queue is empty.
func (q *queue) oldest() (at time.Duration, ok bool) {
	if len(q.spans) > 0 {
		at, ok = q.spans[0].at, true
	}
	if len(q.logs) > 0 && (!ok || q.logs[0].at < at) {
		at, ok = q.logs[0].at, true
	}
	return at, ok
}

// oldestWall returns the wall time at which the oldest queued item was
// queued; ok is false when the queue is empty.
func (q *queue) oldestWall() (t time.Time, ok bool) {
	if len(q.spans) > 0 {
		t, ok = q.spans[0].queued, true
	}
	if len(q.logs) > 0 && (!ok || q.logs[0].queued.Before(t)) {
		t, ok = q.logs[0].queued, true
	}
	return t, ok
}

// push queues it and returns the items dropped to make room (possibly it).
func (q *queue) push(sig signal, it *item) (dropped []*item) {
	for q.bytes+q.held+it.bytes > q.max {
		switch {
		case len(q.logs) > 0:
			dropped = append(dropped, q.logs[0])
			q.bytes -= q.logs[0].bytes
			q.logs[0] = nil
			q.logs = q.logs[1:]
		case sig == sigTraces && len(q.spans) > 0:
			dropped = append(dropped, q.spans[0])
			q.bytes -= q.spans[0].bytes
			q.spans[0] = nil
			q.spans = q.spans[1:]
		default:
			// A log record never evicts a span; an item larger than the
			// whole queue is dropped.
			return append(dropped, it)
		}
	}
	q.bytes += it.bytes
	if sig == sigTraces {
		q.spans = append(q.spans, it)
	} else {
		q.logs = append(q.logs, it)
	}
	return dropped
}

// take removes up to maxBytes of the oldest items of one signal (at least
// one when any is queued); they stay accounted as held until done or
// putBack.
func (q *queue) take(sig signal, maxBytes int64) []*item {
	list := &q.logs
	if sig == sigTraces {
		list = &q.spans
	}
	items, n := takeFront(list, 0, maxBytes)
	q.bytes -= n
	q.held += n
	return items
}

// done releases taken items that left the pipeline (sent or dropped).
func (q *queue) done(items []*item) {
	for _, it := range items {
		q.held -= it.bytes
	}
}

// takeFront removes from the front of *list the items that fit in maxBytes
// on top of n (at least one when n is 0) and returns them in a new slice.
// The rest moves down so that *list keeps its backing array: the queue is
// refilled and drained on every invocation, and slicing from the front
// would make every later append reallocate.
func takeFront(list *[]*item, n, maxBytes int64) ([]*item, int64) {
	l := *list
	k := 0
	for k < len(l) && (n == 0 || n+l[k].bytes <= maxBytes) {
		n += l[k].bytes
		k++
	}
	if k == 0 {
		return nil, n
	}
	out := make([]*item, k)
	copy(out, l[:k])
	rest := copy(l, l[k:])
	clear(l[rest:])
	*list = l[:rest]
	return out, n
}

// putBack returns taken items of a failed export to the front of the
// queue, in their order. They were accounted while in flight, so they fit;
// should they not, the oldest of the batch are returned as dropped.
func (q *queue) putBack(sig signal, items []*item) (dropped []*item) {
	var n int64
	for _, it := range items {
		n += it.bytes
	}
	q.held -= n
	for q.bytes+q.held+n > q.max && len(items) > 0 {
		// Newer data already queued wins; drop the oldest of the batch.
		dropped = append(dropped, items[0])
		n -= items[0].bytes
		items = items[1:]
	}
	q.bytes += n
	if sig == sigTraces {
		q.spans = append(items[:len(items):len(items)], q.spans...)
	} else {
		q.logs = append(items[:len(items):len(items)], q.logs...)
	}
	return dropped
}

// drain removes and returns everything queued.
func (q *queue) drain() []*item {
	out := append(q.spans, q.logs...)
	q.spans, q.logs, q.bytes, q.held = nil, nil, 0, 0
	return out
}

// tracker keeps, per phase (one invocation, init, restore), the source
// events consumed so far, so that a span mapped at platform.report can be
// spilled together with the start and runtimeDone it was built from.
// Bounded: at most maxKeys phases, the oldest forgotten first.
type tracker struct {
	byKey   map[string][]*srcEvent
	order   []string
	maxKeys int
	// context is the latest initStart/restoreStart: written into every
	// spill file so that a replay rebuilds the same resource.
	context *srcEvent
	// pending holds, per stream (function, extension), the log events the
	// mapper has consumed but not yet emitted as a record (multi-line).
	pending [2][]*srcEvent
}

func newTracker() *tracker {
	return &tracker{byKey: make(map[string][]*srcEvent), maxKeys: 64}
}

// phaseKey returns the phase an event belongs to ("" for none).
func phaseKey(ev telemetry.Event) string {
	switch r := ev.Record.(type) {
	case *telemetry.Start:
		return "req:" + r.RequestID
	case *telemetry.RuntimeDone:
		return "req:" + r.RequestID
	case *telemetry.Report:
		return "req:" + r.RequestID
	case *telemetry.InitStart, *telemetry.InitRuntimeDone, *telemetry.InitReport:
		return "init"
	case *telemetry.RestoreStart, *telemetry.RestoreRuntimeDone, *telemetry.RestoreReport:
		return "restore"
	}
	return ""
}

// closesPhase reports whether ev is the last event of its phase. Init and
// restore phases stay known until the next one starts: their spans may be
// held until the first invocation's report.
func closesPhase(ev telemetry.Event) bool {
	_, ok := ev.Record.(*telemetry.Report)
	return ok
}

// opensPhase reports whether ev starts a phase that replaces an earlier
// one under the same key.
func opensPhase(ev telemetry.Event) bool {
	switch ev.Record.(type) {
	case *telemetry.InitStart, *telemetry.RestoreStart:
		return true
	}
	return false
}

func (t *tracker) add(key string, se *srcEvent) {
	if _, ok := t.byKey[key]; !ok {
		if len(t.order) >= t.maxKeys {
			delete(t.byKey, t.order[0])
			t.order = t.order[1:]
		}
		t.order = append(t.order, key)
	}
	if len(t.byKey[key]) < 16 {
		t.byKey[key] = append(t.byKey[key], se)
	}
}

func (t *tracker) events(key string) []*srcEvent {
	return append([]*srcEvent(nil), t.byKey[key]...)
}

func (t *tracker) forget(key string) {
	if _, ok := t.byKey[key]; !ok {
		return
	}
	delete(t.byKey, key)
	for i, k := range t.order {
		if k == key {
			t.order = append(t.order[:i], t.order[i+1:]...)
			break
		}
	}
}
