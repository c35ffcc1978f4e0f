package exporter

import (
	"context"
	"sync"
	"time"

	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/extension"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// handoff is where the front door (Enqueue, Invoke, Shutdown, Close)
// leaves work for the worker and the worker picks it up. Two locks: mu for
// the intake and the requests, invMu for the INVOKEs alone, so that
// handing an INVOKE over never waits behind Enqueue's intake work (a
// flood). The worker takes mu, then invMu.
type handoff struct {
	wake chan struct{} // capacity 1: "there is something to do"
	done chan struct{} // closed when the worker has stopped
	fn   fnFront       // the function lanes' reservations (atomic)

	// mu guards every field down to invMu.
	mu sync.Mutex
	in intake
	// room is closed by the worker when it takes the intake: an Enqueue
	// that found the intake full waits on it (created on demand).
	room chan struct{}
	// finished: SHUTDOWN's flush is over; what arrives now waits in the
	// intake for Close's spill. closing: Close's spill is done (or
	// running): nothing is taken any more at all.
	finished, closing bool
	newWaiters        []*waiter
	// waiting are the end/adaptive Invokes waiting, by request ID: Enqueue
	// tells them when their runtimeDone arrives.
	waiting          map[string]*waiter
	shutdownReq      *shutdownReq
	closeReq         *closeReq
	running, stopped bool
	// fnIn are the function's OTLP requests accepted (otlpraw.go).
	fnIn []*fnPayload

	// invMu guards the fields below.
	invMu   sync.Mutex
	invokes []signals.Invocation
	invoked int
	// lastRequestID is the latest INVOKE's: the function's data arriving
	// now belongs to it (not under Managed Instances).
	lastRequestID string
	lastInvoke    time.Time
	// thawAt is when the latest INVOKE not yet seen by the worker arrived:
	// the environment may have been frozen until then (see policy.tick).
	thawAt time.Time
}

// waiter is an end/adaptive Invoke waiting for its runtimeDone and flush.
type waiter struct {
	requestID string
	// ctx ends at the invocation's deadline minus the margin.
	ctx context.Context
	// flush bounds the export once runtimeDone has arrived (FlushTimeout).
	flush time.Duration
	// flushing is closed by the worker when runtimeDone has arrived and
	// the export starts; done when it has finished.
	flushing, done chan struct{}
	// arrived is closed by Enqueue when the invocation's runtimeDone (or
	// report) reaches the pipeline: the export budget runs from then, even
	// when the worker is still busy with an earlier request. arrivedClosed
	// is guarded by handoff.mu.
	arrived       chan struct{}
	arrivedClosed bool

	// Worker-only, once runtimeDone has been mapped: the flush covers the
	// items queued up to mark and a metrics collection of generation
	// mgen or later, and is given up at deadline.
	flushStarted bool
	mark, mgen   uint64
	deadline     time.Time
}

type shutdownReq struct {
	ctx   context.Context
	plan  extension.ShutdownPlan
	reply chan error
}

type closeReq struct {
	reply chan error
}

// pickup is what the worker takes from the handoff at each step.
type pickup struct {
	events   []telemetry.Event // borrowed: still counted in the intake
	waiters  []*waiter
	shutdown *shutdownReq
	close    *closeReq
	invokes  []signals.Invocation
	invoked  bool      // an INVOKE was ever handed over
	invokedN int       // INVOKEs handed over so far
	thaw     time.Time // arrival of the latest INVOKE not seen yet
	fn       []*fnPayload
}

func (h *handoff) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// pick takes everything handed over since the last step. The events stay
// counted in the intake while they are mapped (see giveBack), so that an
// Enqueue meanwhile finds it as full as it was.
func (h *handoff) pick() pickup {
	h.mu.Lock()
	pk := pickup{events: h.in.borrow(), waiters: h.newWaiters, shutdown: h.shutdownReq, close: h.closeReq}
	h.newWaiters, h.shutdownReq, h.closeReq = nil, nil, nil
	pk.fn, h.fnIn = h.fnIn, nil
	h.mu.Unlock()
	// After mu: an INVOKE handed over before the events just taken is
	// taken with them, and mapped first.
	h.invMu.Lock()
	pk.invokes, h.invokes = h.invokes, nil
	pk.invoked, pk.invokedN = h.invoked > 0, h.invoked
	pk.thaw, h.thawAt = h.thawAt, time.Time{}
	h.invMu.Unlock()
	return pk
}

// giveBack ends pick's borrow: mapped bytes were mapped, rest goes back to
// the front of the intake. closing marks Close's spill under way.
func (h *handoff) giveBack(rest []telemetry.Event, mapped int64, closing bool) {
	h.mu.Lock()
	h.in.giveBack(rest, mapped)
	if len(rest) == 0 {
		// Held back, the Enqueues waiting stay asleep until a request
		// ends (no busy loop); otherwise they find room now.
		h.openRoom()
	}
	if closing {
		h.closing = true // Enqueue counts what comes later as dropped
	}
	h.mu.Unlock()
}

// takeIntake empties the intake (for a spill) and wakes waiting Enqueues.
func (h *handoff) takeIntake() []telemetry.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	evs := h.in.take()
	h.openRoom()
	return evs
}

// finish records that SHUTDOWN's flush is over.
func (h *handoff) finish() {
	h.mu.Lock()
	h.finished = true
	h.openRoom()
	h.mu.Unlock()
}

// openRoom releases the Enqueues waiting for the intake. mu must be held.
func (h *handoff) openRoom() {
	if h.room != nil {
		close(h.room)
		h.room = nil
	}
}

// noteArrivals tells the waiting Invokes whose runtimeDone (or report) is
// among events that it has arrived. mu must be held.
func (h *handoff) noteArrivals(events []telemetry.Event) {
	for _, ev := range events {
		var id string
		switch r := ev.Record.(type) {
		case *telemetry.RuntimeDone:
			if r != nil {
				id = r.RequestID
			}
		case *telemetry.Report:
			if r != nil {
				id = r.RequestID
			}
		default:
			continue
		}
		if w, ok := h.waiting[id]; ok && !w.arrivedClosed {
			w.arrivedClosed = true
			close(w.arrived)
		}
	}
}

// admits reports whether Enqueue may add a batch of need bytes now: the
// intake has room, or nothing will take it while Enqueue waits (the
// worker is not running, or is done). mu must be held.
func (h *handoff) admits(need int64) bool {
	full := h.in.bytes+need > h.in.max && h.in.bytes > 0
	return !full || !h.running || h.finished || h.closeReq != nil || h.closing
}
