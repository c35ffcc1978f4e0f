package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Indexes of sender.flights.
const (
	flTraces = iota
	flLogs
	flMetrics
	// the function's lanes follow (fnFlight)
	flLanes = flMetrics + 1 + len(fnSignals)
)

func flightIndex(sig signal) int {
	switch sig {
	case sigTraces:
		return flTraces
	case sigLogs:
		return flLogs
	}
	return flMetrics
}

// flight is one export request running on its sender goroutine. The
// sender keeps it until the result comes back, or until the worker
// abandons the request (SHUTDOWN's cut, Close) and takes its items back.
type flight struct {
	sig    signal
	items  []*item         // traces, logs
	minSeq uint64          // lowest qseq of items
	rm     *pendingMetrics // metrics
	fn     bool            // items are the function's own data: its lane (laneOf)
	cancel context.CancelCauseFunc

	// What the hang watch knows (worker only, see sender.watch): the
	// request's observations, its progress when last seen, the INVOKEs
	// since then and when that progress was made; stage is set when it is
	// canceled as hung.
	a          *attempt
	seen       uint64
	quiet      int
	quietSince time.Time
	stage      string
}

// sendResult is what a sender goroutine hands back to the worker.
type sendResult struct {
	f          *flight
	v          verdict
	retryAfter time.Duration
	res        attemptResult
	err        error
	end        time.Time
	// hang says why the request was canceled as hung ("" when it was
	// not); stage is where it was stuck when its awake time ran out.
	hang, stage string
}

// sender runs export requests: at most one in flight per signal, each on
// a goroutine of its own whose result comes back over results; it keeps
// the retry schedule and the circuit breaker, and bounds every attempt by
// awake time and by the INVOKEs it lives through (watch). Its methods run
// on the worker goroutine; only the breaker and hg are also read by Invoke.
type sender struct {
	exp       *exporters
	br        *breaker
	hg        *hangs // endpoints whose request hung
	bo        backoff
	now       func() time.Time
	awakeTick time.Duration
	hangQuiet time.Duration // see watch
	inst      *selfMetrics

	results chan sendResult
	flights [flLanes]*flight
	// live counts the sender goroutines not yet reaped (abandoned ones
	// included): the worker does not return before it is zero.
	live     int
	retryAt  time.Time // no send before this (backoff / Retry-After)
	attempts int       // consecutive failed attempts
}

// busy reports whether a request of sig is in flight.
func (s *sender) busy(sig signal) bool { return s.flights[flightIndex(sig)] != nil }

// idle reports whether no request at all is in flight.
func (s *sender) idle() bool { return s.flights == [flLanes]*flight{} }

// gate is when the next send may start: the retry backoff or the end of
// the breaker's open period, whichever is later (zero when none).
func (s *sender) gate() time.Time {
	g := s.retryAt
	if t := s.br.retryAt(); t.After(g) {
		g = t
	}
	return g
}

// open reports whether the retry backoff lets a send start now (the
// breaker is asked per request, by allow).
func (s *sender) open(now time.Time) bool { return !now.Before(s.retryAt) }

// allow asks the breaker for one request.
func (s *sender) allow(now time.Time) bool { return s.br.allow(now) }

// start runs one export attempt of f on a goroutine of its own; its
// result comes back through results.
func (s *sender) start(f *flight, timeout time.Duration, call func(context.Context) error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	f.cancel, f.a, f.quietSince = cancel, &attempt{now: s.now}, s.now()
	s.flights[laneOf(f)] = f
	s.live++
	a := f.a
	go func() {
		r := s.attempt(ctx, a, f.sig, timeout, call)
		r.f, r.end = f, s.now()
		s.results <- r
	}()
}

// take claims the result r for the worker: false when its flight was
// abandoned (its items were taken back).
func (s *sender) take(r sendResult) bool {
	s.live--
	i := laneOf(r.f)
	if s.flights[i] != r.f {
		return false
	}
	s.flights[i] = nil
	r.f.cancel(context.Canceled)
	s.noteHang(r)
	return true
}

// noteHang tells hg whether the request's endpoint hung or answered.
func (s *sender) noteHang(r sendResult) {
	ep := s.exp.endpoint(r.f.sig)
	switch {
	case r.hang != "":
		stage := r.f.stage // where watch found it stuck
		if stage == "" {
			stage = r.stage // its awake time ran out
		}
		s.hg.hung(ep, r.f.sig, stage, r.hang)
	case r.v != verdictRetry || r.res.status != 0:
		s.hg.answered(ep)
	}
}

// abandon cancels the requests in flight and returns them: their results,
// when they come, are ignored.
func (s *sender) abandon() []*flight {
	var out []*flight
	for i, f := range s.flights {
		if f != nil {
			f.cancel(context.Canceled)
			s.flights[i] = nil
			out = append(out, f)
		}
	}
	return out
}

// cancelAll cancels the requests in flight; their results still come.
func (s *sender) cancelAll() {
	for _, f := range s.flights {
		if f != nil {
			f.cancel(context.Canceled)
		}
	}
}

// succeeded records a request the backend answered.
func (s *sender) succeeded() {
	s.br.success()
	s.attempts = 0
	s.retryAt = time.Time{}
}

// failed records a failed request and schedules the retry.
func (s *sender) failed(now time.Time, retryAfter time.Duration) {
	s.br.failure(now)
	s.attempts++
	s.retryAt = s.bo.next(now, s.attempts, retryAfter)
}

// attempt runs one export call, recording what it observes in a, bounded
// by timeout of awake time (and by the worker's hang watch, which cancels
// ctx with errHung), and returns its verdict.
func (s *sender) attempt(ctx context.Context, a *attempt, sig signal, timeout time.Duration, call func(context.Context) error) sendResult {
	actx, stop := s.awakeContext(withAttempt(ctx, a), timeout)
	start := s.now()
	err := call(actx)
	cause := context.Cause(actx)
	jumped := stop()
	res := a.snapshot()
	end := s.now()
	v, retryAfter := classify(err, res, end)
	s.inst.duration(ctx, sig, v.String(), end.Sub(start))
	r := sendResult{v: v, retryAfter: retryAfter, res: res, err: err}
	if why, ok := hangCause(cause); ok && v == verdictRetry && res.status == 0 {
		r.hang, r.stage = why, a.hungStage()
	}
	if res.netErr || r.hang != "" || jumped && v != verdictSent {
		// A connection frozen mid-request, or one that hangs, may be
		// dead: retry on a fresh one.
		s.exp.closeIdle()
	}
	return r
}

var errAwakeTimeout = errors.New("export attempt exceeded its awake-time timeout")

// awakeContext derives a context canceled after d of AWAKE time: it ticks
// every awakeTick and ignores any step of the clock longer than three
// ticks (a freeze of the execution environment), so a request frozen
// mid-flight gets its full timeout after thaw. stop cancels it and
// reports whether a freeze was seen.
func (s *sender) awakeContext(parent context.Context, d time.Duration) (context.Context, func() (jumped bool)) {
	ctx, cancel := context.WithCancelCause(parent)
	var froze atomic.Bool
	done := make(chan struct{})
	tick := s.awakeTick
	go func() {
		defer close(done)
		t := time.NewTicker(tick)
		defer t.Stop()
		last := s.now()
		var awake time.Duration
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n := s.now()
				el := n.Sub(last)
				last = n
				if el < 0 || el > 3*tick {
					froze.Store(true)
					continue
				}
				awake += el
				if awake >= d {
					cancel(errAwakeTimeout)
					return
				}
			}
		}
	}()
	return ctx, func() bool {
		cancel(context.Canceled)
		<-done
		return froze.Load()
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// failureText is what the summary line says of a failed request.
func failureText(err error, res attemptResult) string {
	if res.status != 0 {
		return fmt.Sprintf("HTTP %d", res.status)
	}
	return errText(err)
}
