package exporter

import (
	"time"

	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

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
	fn       *fnPayload    // set for the function's own data (otlpraw.go)
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
	fn    [3][]*item // the function's own data, by lane (fnLane)
	bytes int64      // queued, not in flight
	held  int64      // taken by requests in flight, not yet settled
	max   int64
}

// total is the bytes the queue accounts for: queued and in flight.
func (q *queue) total() int64 { return q.bytes + q.held }

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
	for l := range q.fn {
		out = append(out, q.fn[l]...)
		q.fn[l] = nil
	}
	q.spans, q.logs, q.bytes, q.held = nil, nil, 0, 0
	return out
}
