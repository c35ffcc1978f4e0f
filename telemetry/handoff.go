package telemetry

import (
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// The bounded hand-off between the POST handlers and the decode goroutine.

// item is one body handed to the decode goroutine.
type item struct {
	body    []byte
	at      time.Time     // when it was received (fragment expiry)
	refused bool          // answered 400: only drops a pending fragment
	weight  int64         // room it holds in the handoff
	recv    time.Duration // when it was received, since the listener's start (monotonic)
	spooled bool          // the body is in the spool, size bytes at off in seg; body is nil
	seg     *spoolSeg
	off     int64
	size    int64
}

// handoff is the FIFO between the handlers and the decode goroutine,
// bounded by bytes: a handler takes room before pushing, the decode
// goroutine gives it back once the body reached the sink.
type handoff struct {
	bound int64
	room  *semaphore.Weighted // FIFO: waiting POSTs are served in order
	wake  chan struct{}       // capacity 1: an item was pushed or the handoff closed

	// mu guards items and closed.
	mu     sync.Mutex
	items  []item
	closed bool
}

func newHandoff(bound int64) *handoff {
	return &handoff{bound: bound, room: semaphore.NewWeighted(bound), wake: make(chan struct{}, 1)}
}

// push queues it; false once the handoff is closed.
func (h *handoff) push(it item, weight int64) bool {
	it.weight = weight
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	h.items = append(h.items, it)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return true
}

// pop waits for the next item; false once the handoff is closed and empty.
func (h *handoff) pop() (item, bool) {
	for {
		h.mu.Lock()
		if len(h.items) > 0 {
			it := h.items[0]
			h.items[0] = item{}
			h.items = h.items[1:]
			h.mu.Unlock()
			return it, true
		}
		closed := h.closed
		h.mu.Unlock()
		if closed {
			return item{}, false
		}
		<-h.wake
	}
}

// close refuses further pushes; pop returns what is queued, then false.
func (h *handoff) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}
