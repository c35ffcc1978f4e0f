package exporter

import (
	"context"
	"slices"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/slipstream-otel/slipstream/exporter/internal/metriccodec"
)

// maxPendingMetrics bounds this process's collections kept for retry.
const maxPendingMetrics = 8

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

// metricQueue holds the metric collections waiting to be sent and the
// state that decides when the next one is taken. Metrics are aggregated
// state in the MeterProvider, not queued events: a collection is taken
// when one is wanted (gen < want), a delta collection that failed is kept
// for the next attempt (bounded), a cumulative one is superseded by the
// next collection. Worker-only.
type metricQueue struct {
	reader     *sdkmetric.ManualReader
	cumulative bool

	q []*pendingMetrics
	// gen numbers collections; one is taken when gen < want; settled:
	// collections up to it have been sent or given up.
	gen, want, settled uint64
	// failed: the last export of this process's metrics did not go through.
	failed bool
	// dirty: events were consumed since the last collection.
	dirty bool
	// selfDirty: a span/log request was settled since the last collection
	// (its self-metrics are not collected yet); selfOnly: the next
	// collection is taken for them alone.
	selfDirty, selfOnly bool
	// The interval: the awake and wall time of the last collection (or of
	// the first data, armed).
	lastAt   time.Duration
	lastWall time.Time
	armed    bool
	// starts moves the start of cumulative series that appear after the
	// first collection to the collection before (see seriesStarts).
	starts seriesStarts
}

// wantGen asks for a collection of generation g or later.
func (mq *metricQueue) wantGen(g uint64) { mq.want = max(mq.want, g) }

// wanted reports whether a collection is wanted and not taken yet.
func (mq *metricQueue) wanted() bool { return mq.gen < mq.want }

// arm starts the interval at the first data.
func (mq *metricQueue) arm(awake time.Duration, now time.Time) {
	mq.lastAt, mq.lastWall, mq.armed = awake, now, true
}

// view is the metrics state the flush policy decides on.
func (mq *metricQueue) view(busy bool) metricsView {
	return metricsView{dirty: mq.dirty, armed: mq.armed, busy: busy, pending: mq.wanted() || len(mq.q) > 0,
		lastAt: mq.lastAt, lastWall: mq.lastWall}
}

// collect takes a collection stamped with res and queues it; it returns
// the collections dropped to keep the bound.
func (mq *metricQueue) collect(awake time.Duration, now time.Time, res *resource.Resource) ([]*pendingMetrics, error) {
	self := mq.selfOnly && !mq.dirty
	mq.arm(awake, now)
	mq.dirty, mq.selfDirty, mq.selfOnly = false, false, false
	mq.gen = max(mq.gen+1, mq.want)
	rm := &metricdata.ResourceMetrics{}
	if err := mq.reader.Collect(context.Background(), rm); err != nil {
		mq.failed = true
		mq.settled = max(mq.settled, mq.gen) // nothing to wait for
		return nil, err
	}
	rm.Resource = orEmpty(res)
	if mq.cumulative {
		mq.starts.apply(rm)
	}
	pm := &pendingMetrics{rm: rm, gen: mq.gen, n: metriccodec.DataPoints(rm), self: self}
	if mq.cumulative {
		// The new collection carries the totals: it supersedes this
		// process's collections not sent yet (not the replayed ones).
		mq.q = slices.DeleteFunc(mq.q, func(q *pendingMetrics) bool { return q.origin == nil })
	}
	mq.q = append(mq.q, pm)
	return mq.bound(), nil
}

// skip stands for a collection when metrics are switched off: nothing is
// collected, and nothing waits for it.
func (mq *metricQueue) skip(awake time.Duration, now time.Time) {
	mq.arm(awake, now)
	mq.dirty, mq.selfDirty, mq.selfOnly = false, false, false
	mq.gen = max(mq.gen+1, mq.want)
	mq.settled = mq.gen
}

func orEmpty(res *resource.Resource) *resource.Resource {
	if res == nil {
		return resource.Empty()
	}
	return res
}

// add queues a replayed collection.
func (mq *metricQueue) add(pm *pendingMetrics) { mq.q = append(mq.q, pm) }

// requeue puts a collection back at the front (a retry, or a request cut
// at SHUTDOWN) and returns what the bound drops.
func (mq *metricQueue) requeue(pm *pendingMetrics) []*pendingMetrics {
	mq.q = append([]*pendingMetrics{pm}, mq.q...)
	return mq.bound()
}

// hasOwn reports whether one of this process's collections is queued.
func (mq *metricQueue) hasOwn() bool {
	return slices.ContainsFunc(mq.q, func(q *pendingMetrics) bool { return q.origin == nil })
}

// bound keeps at most maxPendingMetrics of this process's collections and
// returns the oldest ones beyond it. Replayed collections are bounded by
// the spill files they came from (SLIPSTREAM_SPILL_MAX_BYTES).
func (mq *metricQueue) bound() []*pendingMetrics {
	own := 0
	for _, pm := range mq.q {
		if pm.origin == nil {
			own++
		}
	}
	var dropped []*pendingMetrics
	for i := 0; own > maxPendingMetrics && i < len(mq.q); {
		pm := mq.q[i]
		if pm.origin != nil {
			i++
			continue
		}
		dropped = append(dropped, pm)
		mq.q = slices.Delete(mq.q, i, i+1)
		own--
	}
	return dropped
}

// dropEmpty removes the collections at the front that have nothing to
// send (settled) and returns them.
func (mq *metricQueue) dropEmpty() (empty []*pendingMetrics) {
	for len(mq.q) > 0 && mq.q[0].n == 0 {
		mq.settled = max(mq.settled, mq.q[0].gen)
		empty = append(empty, mq.q[0])
		mq.q[0] = nil
		mq.q = mq.q[1:]
	}
	return empty
}

// pop removes and returns the collection at the front.
func (mq *metricQueue) pop() *pendingMetrics {
	pm := mq.q[0]
	mq.q[0] = nil
	mq.q = mq.q[1:]
	return pm
}

// unsent takes the metric data the final flush could not send, to be
// spilled with the spans and log records: the replayed collections still
// queued, and this process's unsent collections (with delta temporality
// each one holds only what is new; a cumulative one is superseded by a
// fresh collection, which carries the totals). Nothing of this process's
// is taken when everything up to the last event was sent: a cumulative
// collection after a successful export would repeat every stream. empty
// are queued collections with nothing to send, or, when metrics are off
// (on false), every queued collection.
func (mq *metricQueue) unsent(res *resource.Resource, on bool) (out, empty []*pendingMetrics) {
	if !on {
		empty, mq.q = mq.q, nil
		return nil, empty
	}
	own := false
	for _, pm := range mq.q {
		switch {
		case pm.n == 0:
			empty = append(empty, pm)
		case pm.origin != nil:
			out = append(out, pm)
		case !mq.cumulative:
			out = append(out, pm)
			own = true
		default:
			own = true
		}
	}
	mq.q = nil
	if !mq.failed && !own && (!mq.dirty || mq.cumulative) {
		return out, empty
	}
	rm := &metricdata.ResourceMetrics{}
	if err := mq.reader.Collect(context.Background(), rm); err == nil && metriccodec.DataPoints(rm) > 0 {
		rm.Resource = orEmpty(res)
		if mq.cumulative {
			mq.starts.apply(rm)
		}
		out = append(out, &pendingMetrics{rm: rm, n: metriccodec.DataPoints(rm)})
	}
	mq.dirty, mq.failed = false, false
	return out, empty
}
