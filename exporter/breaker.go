package exporter

import (
	"sync"
	"time"
)

// breakerState is the state of the circuit breaker, also exported as the
// slipstream.breaker.state gauge (0 closed, 1 half-open, 2 open).
type breakerState int

const (
	breakerClosed breakerState = iota
	breakerHalfOpen
	breakerOpen
)

func (s breakerState) String() string {
	switch s {
	case breakerClosed:
		return "closed"
	case breakerHalfOpen:
		return "half_open"
	default:
		return "open"
	}
}

// breaker is a circuit breaker over the backend: closed until Threshold
// consecutive failures, then open for a backoff (doubling on every failed
// probe up to MaxOpen), then half-open: one probe decides. While it is open
// nothing is sent and end/adaptive invocations do not wait, so a dead
// backend costs invocations nothing. Time is passed in; it is safe for
// concurrent use (the worker updates it, Invoke reads it).
type breaker struct {
	threshold int
	minOpen   time.Duration
	maxOpen   time.Duration

	// mu guards every field below.
	mu       sync.Mutex
	state    breakerState
	failures int           // consecutive failures while closed
	openFor  time.Duration // current open period
	until    time.Time     // end of the open period
	probing  bool          // a half-open probe is in flight
}

func newBreaker(threshold int, minOpen, maxOpen time.Duration) *breaker {
	if threshold <= 0 {
		threshold = 3
	}
	if minOpen <= 0 {
		minOpen = 5 * time.Second
	}
	if maxOpen < minOpen {
		maxOpen = max(minOpen, 5*time.Minute)
	}
	return &breaker{threshold: threshold, minOpen: minOpen, maxOpen: maxOpen}
}

// allow reports whether a request may be sent now. In half-open state it
// admits a single probe until success or failure is reported.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerClosed:
		return true
	case breakerOpen:
		if now.Before(b.until) {
			return false
		}
		b.state = breakerHalfOpen
		b.probing = true
		return true
	default: // half-open
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
}

// blocking reports whether the breaker is open and its backoff has not
// expired: a caller should not wait for an export.
func (b *breaker) blocking(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == breakerOpen && now.Before(b.until) || b.state == breakerHalfOpen && b.probing
}

// retryAt returns when an open breaker admits a probe (zero when closed).
func (b *breaker) retryAt() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != breakerOpen {
		return time.Time{}
	}
	return b.until
}

func (b *breaker) current() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// success closes the breaker.
func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.failures, b.openFor, b.probing = breakerClosed, 0, 0, false
}

// failure counts a failed request; it opens the breaker after threshold
// consecutive failures, or at once when a half-open probe fails.
func (b *breaker) failure(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerClosed:
		b.failures++
		if b.failures < b.threshold {
			return
		}
		b.openFor = b.minOpen
	case breakerHalfOpen:
		b.openFor = min(2*b.openFor, b.maxOpen)
		if b.openFor <= 0 {
			b.openFor = b.minOpen
		}
	case breakerOpen:
		return // a request that started before opening
	}
	b.state, b.until, b.probing = breakerOpen, now.Add(b.openFor), false
}
