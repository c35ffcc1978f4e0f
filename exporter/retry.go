package exporter

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// verdict is what an export attempt's outcome means for the data.
type verdict int

const (
	verdictSent      verdict = iota // 2xx / OK
	verdictRetry                    // 429, 502, 503, 504, no response, gRPC Unavailable...
	verdictAuth                     // 401, 403, Unauthenticated, PermissionDenied: not retried
	verdictPermanent                // any other rejection: not retried, dropped
)

func (v verdict) String() string {
	switch v {
	case verdictSent:
		return "sent"
	case verdictRetry:
		return "retry"
	case verdictAuth:
		return "auth"
	default:
		return "rejected"
	}
}

// classify turns an exporter error and what the wire showed into a verdict
// and the delay the server asked for (zero when none).
func classify(err error, r attemptResult, now time.Time) (verdict, time.Duration) {
	if r.hasGRPC {
		delay := r.grpcDelay
		switch r.grpcCode {
		case codes.OK:
			return verdictSent, 0
		case codes.Unauthenticated, codes.PermissionDenied:
			return verdictAuth, 0
		case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange,
			codes.Unavailable, codes.DataLoss:
			return verdictRetry, delay
		case codes.ResourceExhausted:
			if delay > 0 { // retryable only when the server says when
				return verdictRetry, delay
			}
			return verdictPermanent, 0
		default:
			return verdictPermanent, 0
		}
	}
	if r.status != 0 {
		switch {
		case r.status >= 200 && r.status <= 299:
			// A partial success is still a 2xx: the server has the request.
			return verdictSent, 0
		case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
			return verdictAuth, 0
		case r.status == http.StatusTooManyRequests, r.status == http.StatusBadGateway,
			r.status == http.StatusServiceUnavailable, r.status == http.StatusGatewayTimeout:
			d, _ := parseRetryAfter(r.retryAfter, now)
			return verdictRetry, d
		default:
			return verdictPermanent, 0
		}
	}
	if err == nil {
		return verdictSent, 0
	}
	// No response at all: refused, reset, timed out (awake time), canceled.
	return verdictRetry, 0
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (RFC 9110, section 10.2.3). ok is false when v is empty or invalid.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		const maxSeconds = int64(1<<63-1) / int64(time.Second)
		if n > maxSeconds {
			n = maxSeconds
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

// backoff is the retry schedule: jittered exponential backoff, replaced by
// the server's Retry-After when it gave one. It is a pure function of its
// inputs (time and randomness are passed in) so it is tested without clocks.
type backoff struct {
	Initial time.Duration // first delay (default 100ms)
	Max     time.Duration // cap of the exponential delay (default 30s)
	// Rand returns a number in [0, 1); it spreads each delay over
	// [delay/2, delay) so that many environments do not retry in step.
	Rand func() float64
}

// delay returns how long to wait before retry number attempt (1 for the
// first retry). A server-given retryAfter wins over the computed delay.
func (b backoff) delay(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	initial, maxDelay := b.Initial, b.Max
	if initial <= 0 {
		initial = 100 * time.Millisecond
	}
	if maxDelay <= 0 {
		maxDelay = 30 * time.Second
	}
	d := initial
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	f := 0.5
	if b.Rand != nil {
		f = b.Rand()
	}
	return d/2 + time.Duration(f*float64(d/2))
}

// next returns when retry number attempt may run.
func (b backoff) next(now time.Time, attempt int, retryAfter time.Duration) time.Time {
	return now.Add(b.delay(attempt, retryAfter))
}
