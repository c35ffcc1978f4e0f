package sink

import (
	"net/http"
	"time"
)

// Fault changes how the sink answers matching requests, to test an exporter's retries,
// throttling and deadlines. A request takes the first active fault that matches its signal.
//
// A fault first holds the request (Delay, then Stall), then answers Status or hangs up; with
// neither, the request is then accepted normally, which makes a slow collector. A held request
// is released early when its client goes away, and answered 503 when the sink closes.
type Fault struct {
	// Signal restricts the fault to one signal; "" matches all three.
	Signal Signal
	// Status is answered instead of accepting the request, e.g. 503 or 429; 0 accepts it.
	Status int
	// RetryAfter is sent as the Retry-After header, in whole seconds rounded up, when > 0.
	RetryAfter time.Duration
	// Hangup closes the connection without answering (wins over Status).
	Hangup bool
	// Delay holds the request this long before answering.
	Delay time.Duration
	// Stall holds the request until the channel is closed.
	Stall <-chan struct{}
	// Times is the number of requests the fault applies to; 0 means no limit.
	Times int
	// For is how long after InjectFault the fault applies (by Options.Now); 0 means no limit.
	For time.Duration
}

// activeFault is an injected Fault and what is left of it.
type activeFault struct {
	Fault
	left    int       // requests left when Times > 0
	expires time.Time // zero when For == 0
}

// InjectFault adds a fault after those already injected.
func (s *Sink) InjectFault(f Fault) {
	a := &activeFault{Fault: f, left: f.Times}
	if f.For > 0 {
		a.expires = s.now().Add(f.For)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, a)
}

// ClearFaults removes every injected fault; requests already held stay held until released.
func (s *Sink) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the fault the request for sig must suffer, if any, and uses it up.
func (s *Sink) takeFault(sig Signal) (Fault, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.faults[:0]
	var (
		found Fault
		ok    bool
	)
	for _, a := range s.faults {
		if !a.expires.IsZero() && !now.Before(a.expires) {
			continue // expired: drop
		}
		if !ok && (a.Signal == "" || a.Signal == sig) {
			found, ok = a.Fault, true
			if a.Times > 0 {
				a.left--
				if a.left == 0 {
					continue // used up: drop
				}
			}
		}
		kept = append(kept, a)
	}
	clear(s.faults[len(kept):])
	s.faults = kept
	return found, ok
}

// applyFault holds the request and answers as f says. It reports whether the request is done;
// if not, the caller accepts it normally.
func (s *Sink) applyFault(w http.ResponseWriter, r *http.Request, sig Signal, f Fault) (done bool) {
	if f.Delay > 0 || f.Stall != nil {
		s.count(sig, func(c *RequestCount) { c.Held++ })
		released := s.hold(r, f)
		s.count(sig, func(c *RequestCount) { c.Held-- })
		switch released {
		case releaseClientGone:
			s.count(sig, func(c *RequestCount) { c.Faulted++ })
			return true
		case releaseClosing:
			s.count(sig, func(c *RequestCount) { c.Faulted++ })
			writeStatus(w, requestMediaType(r), http.StatusServiceUnavailable, codeUnavailable, "sink closing", 0)
			return true
		}
	}
	switch {
	case f.Hangup:
		s.count(sig, func(c *RequestCount) { c.Faulted++ })
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
			return true
		}
		// Hijacking is not supported (HTTP/2): abort the handler instead, which resets the stream.
		panic(http.ErrAbortHandler)
	case f.Status != 0:
		s.count(sig, func(c *RequestCount) { c.Faulted++ })
		retry := int64(0)
		if f.RetryAfter > 0 {
			retry = int64((f.RetryAfter + time.Second - 1) / time.Second)
		}
		writeStatus(w, requestMediaType(r), f.Status, grpcCode(f.Status), "injected fault", retry)
		return true
	}
	return false
}

type release int

const (
	releaseDone release = iota
	releaseClientGone
	releaseClosing
)

// hold waits for f's Delay and then its Stall, or until the client goes or the sink closes.
func (s *Sink) hold(r *http.Request, f Fault) release {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return releaseClientGone
		case <-s.closing:
			return releaseClosing
		}
	}
	if f.Stall != nil {
		select {
		case <-f.Stall:
		case <-r.Context().Done():
			return releaseClientGone
		case <-s.closing:
			return releaseClosing
		}
	}
	return releaseDone
}

// requestMediaType is the encoding to answer an error in: JSON for JSON requests, else protobuf.
func requestMediaType(r *http.Request) string {
	if ct := r.Header.Get("Content-Type"); len(ct) >= len(contentTypeJSON) && ct[:len(contentTypeJSON)] == contentTypeJSON {
		return contentTypeJSON
	}
	return contentTypeProto
}
