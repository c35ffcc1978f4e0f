package sink_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// The official exporter, given the sink's in-memory transport, delivers inside a synctest
// bubble; the request is logged with its headers and its arrival time.
func TestTheInMemoryTransportDeliversInsideASynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := sink.New(sink.Options{})
		ctx := context.Background()
		exp, err := otlptracehttp.New(ctx,
			otlptracehttp.WithEndpointURL("http://sink.invalid/v1/traces"),
			otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
			otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer t"}),
			otlptracehttp.WithHTTPClient(&http.Client{Transport: s.Transport()}))
		if err != nil {
			t.Fatal(err)
		}
		defer exp.Shutdown(ctx)
		sent := time.Now()
		if err := exp.ExportSpans(ctx, tracetest.SpanStubs{invocationStub()}.Snapshots()); err != nil {
			t.Fatalf("export: %v", err)
		}
		snap := s.Snapshot()
		if got := snap.Spans(); len(got) != 1 || got[0].Attributes["faas.invocation_id"] != "req-1" {
			t.Errorf("spans = %+v, want req-1's", got)
		}
		arr := snap.Arrivals()
		if len(arr) != 1 {
			t.Fatalf("%d arrivals, want 1", len(arr))
		}
		if a := arr[0]; a.Signal != sink.SignalTraces || !a.Time.Equal(sent) ||
			a.Header.Get("Content-Encoding") != "gzip" || a.Header.Get("Authorization") != "Bearer t" {
			t.Errorf("arrival = %+v", a)
		}
	})
}

// Faults act in memory as over a socket, in the bubble's time.
func TestFaultsThroughTheInMemoryTransport(t *testing.T) {
	tests := []struct {
		name  string
		fault sink.Fault
		// stall holds the request on a channel made in the bubble (one made outside would
		// not count as durably blocking) and never closed.
		stall bool
		// timeout is the client's; 0 means none.
		timeout time.Duration
		// close closes the sink once the request is held.
		close      bool
		wantStatus int   // 0: an error, not an answer
		wantErrIs  error // what that error wraps, when it matters
		wantAfter  time.Duration
		wantRetry  string
		want       sink.RequestCount
	}{
		{name: "a throttle is answered with its Retry-After",
			fault:      sink.Fault{Status: http.StatusServiceUnavailable, RetryAfter: 3 * time.Second},
			wantStatus: http.StatusServiceUnavailable, wantRetry: "3",
			want: sink.RequestCount{Received: 1, Faulted: 1}},
		{name: "a delayed request is accepted after its delay",
			fault:      sink.Fault{Delay: 600 * time.Millisecond},
			wantStatus: http.StatusOK, wantAfter: 600 * time.Millisecond,
			want: sink.RequestCount{Received: 1, Accepted: 1}},
		{name: "a stalled request ends with its client's context",
			stall: true, timeout: 2 * time.Second,
			wantErrIs: context.DeadlineExceeded, wantAfter: 2 * time.Second,
			want: sink.RequestCount{Received: 1, Faulted: 1}},
		{name: "closing the sink answers a stalled request 503",
			stall: true, close: true,
			wantStatus: http.StatusServiceUnavailable,
			want:       sink.RequestCount{Received: 1, Faulted: 1}},
		{name: "a hang-up is an error, not an answer",
			fault: sink.Fault{Hangup: true},
			want:  sink.RequestCount{Received: 1, Faulted: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := tt.fault
				if tt.stall {
					f.Stall = make(chan struct{})
				}
				s := sink.New(sink.Options{Faults: []sink.Fault{f}})
				ctx := context.Background()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sink.invalid/v1/traces", bytes.NewReader(emptyTraces))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if tt.close {
					go func() {
						synctest.Wait() // the request is held
						if err := s.Close(context.Background()); err != nil {
							t.Error(err)
						}
					}()
				}
				t0 := time.Now()
				resp, err := (&http.Client{Transport: s.Transport()}).Do(req)
				switch {
				case tt.wantStatus == 0:
					if err == nil {
						resp.Body.Close()
						t.Fatalf("got status %d, want an error", resp.StatusCode)
					}
					if tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs) {
						t.Errorf("error = %v, want %v", err, tt.wantErrIs)
					}
				case err != nil:
					t.Fatal(err)
				default:
					resp.Body.Close()
					if resp.StatusCode != tt.wantStatus || resp.Header.Get("Retry-After") != tt.wantRetry {
						t.Errorf("answer %d Retry-After %q, want %d %q", resp.StatusCode, resp.Header.Get("Retry-After"), tt.wantStatus, tt.wantRetry)
					}
				}
				if d := time.Since(t0); d != tt.wantAfter {
					t.Errorf("answered after %v, want %v", d, tt.wantAfter)
				}
				if got := s.Requests()[sink.SignalTraces]; got != tt.want {
					t.Errorf("requests = %+v, want %+v", got, tt.want)
				}
			})
		})
	}
}
