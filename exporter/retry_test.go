package exporter

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"seconds are read as a delay", "7", 7 * time.Second, true},
		{"an HTTP date is read as a point in time", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"a date in the past means now", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"empty is no value", "", 0, false},
		{"negative seconds are invalid", "-3", 0, false},
		{"garbage is invalid", "soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{Initial: 100 * time.Millisecond, Max: time.Second, Rand: func() float64 { return 0.999999 }}
	t.Run("grows exponentially with jitter below the nominal delay", func(t *testing.T) {
		prev := time.Duration(0)
		for attempt := 1; attempt <= 4; attempt++ {
			d := b.delay(attempt, 0)
			nominal := 100 * time.Millisecond << (attempt - 1)
			if d < nominal/2 || d >= nominal || d <= prev {
				t.Errorf("attempt %d: delay %v, want in [%v, %v)", attempt, d, nominal/2, nominal)
			}
			prev = d
		}
	})
	t.Run("is capped at Max", func(t *testing.T) {
		if d := b.delay(30, 0); d > time.Second {
			t.Errorf("delay %v beyond max", d)
		}
	})
	t.Run("a Retry-After wins", func(t *testing.T) {
		if d := b.delay(1, 10*time.Second); d != 10*time.Second {
			t.Errorf("delay %v, want 10s", d)
		}
	})
	t.Run("the next retry is the delay from now", func(t *testing.T) {
		now := time.Now()
		if at := b.next(now, 1, 3*time.Second); !at.Equal(now.Add(3 * time.Second)) {
			t.Errorf("retry at now%+v, want now+3s (Retry-After)", at.Sub(now))
		}
		if at := b.next(now, 1, 0); !at.After(now) {
			t.Errorf("first retry at now%+v, want later than now", at.Sub(now))
		}
	})
}

func TestClassify(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		err   error
		res   attemptResult
		want  verdict
		delay time.Duration
	}{
		{"2xx is sent", nil, attemptResult{status: 200}, verdictSent, 0},
		{"partial success is sent", errors.New("partial"), attemptResult{status: 200}, verdictSent, 0},
		{"429 with Retry-After is retried after it", errors.New("x"), attemptResult{status: 429, retryAfter: "5"}, verdictRetry, 5 * time.Second},
		{"503 is retried", errors.New("x"), attemptResult{status: 503}, verdictRetry, 0},
		{"401 is an auth failure", errors.New("x"), attemptResult{status: 401}, verdictAuth, 0},
		{"403 is an auth failure", errors.New("x"), attemptResult{status: 403}, verdictAuth, 0},
		{"400 is rejected", errors.New("x"), attemptResult{status: 400}, verdictPermanent, 0},
		{"no response is retried", errors.New("refused"), attemptResult{netErr: true}, verdictRetry, 0},
		{"gRPC Unavailable with RetryInfo is retried", errors.New("x"), attemptResult{hasGRPC: true, grpcCode: codes.Unavailable, grpcDelay: time.Second}, verdictRetry, time.Second},
		{"gRPC Unauthenticated is an auth failure", errors.New("x"), attemptResult{hasGRPC: true, grpcCode: codes.Unauthenticated}, verdictAuth, 0},
		{"gRPC ResourceExhausted without RetryInfo is rejected", errors.New("x"), attemptResult{hasGRPC: true, grpcCode: codes.ResourceExhausted}, verdictPermanent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, d := classify(tt.err, tt.res, now)
			if v != tt.want || d != tt.delay {
				t.Errorf("classify = %v, %v; want %v, %v", v, d, tt.want, tt.delay)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(3, time.Second, 4*time.Second)
		now := time.Now
		for i := range 2 {
			b.failure(now())
			if !b.allow(now()) {
				t.Fatalf("open after %d failures, threshold 3", i+1)
			}
		}
		b.failure(now())
		if b.allow(now()) || !b.blocking(now()) || b.current() != breakerOpen {
			t.Fatal("not open after 3 consecutive failures")
		}
		time.Sleep(time.Second)
		if !b.allow(now()) {
			t.Fatal("no probe after the backoff")
		}
		if b.allow(now()) {
			t.Fatal("a second request admitted while the probe is in flight")
		}
		b.failure(now()) // probe failed: open for twice as long
		time.Sleep(time.Second)
		if b.allow(now()) {
			t.Fatal("probe admitted before the doubled backoff")
		}
		time.Sleep(time.Second)
		if !b.allow(now()) {
			t.Fatal("no probe after the doubled backoff")
		}
		b.success()
		if b.current() != breakerClosed || !b.allow(now()) {
			t.Fatal("not closed after a successful probe")
		}
		// A success resets the count of consecutive failures.
		b.failure(now())
		b.failure(now())
		b.success()
		b.failure(now())
		if !b.allow(now()) {
			t.Fatal("failures were not consecutive but the breaker opened")
		}
	})
}
