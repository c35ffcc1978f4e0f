package extension

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestRun(t *testing.T) {
	t.Run("it hands N invokes to the handler, then shuts down and returns", func(t *testing.T) {
		const n = 5
		events := make(chan string, n+1)
		for i := range n {
			events <- fmt.Sprintf(`{"eventType":"INVOKE","deadlineMs":%d,"requestId":"req-%d","invokedFunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:f"}`,
				time.Now().Add(time.Minute).UnixMilli(), i)
		}
		deadline := time.Now().Add(time.Minute)
		events <- fmt.Sprintf(`{"eventType":"SHUTDOWN","deadlineMs":%d,"shutdownReason":"SPINDOWN"}`, deadline.UnixMilli())
		f := &fakeLambda{register: registerOK(t, "ext-1"), next: serveEvents(events, "application/json")}
		c, tr := f.serve(t)
		mustRegister(t, c)
		h := &recorder{}

		ev, err := Run(t.Context(), c, h, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if ev.Type != Shutdown || ev.Reason() != ReasonSpindown {
			t.Errorf("Run returned %+v, want the SHUTDOWN event", ev)
		}
		var ids []string
		for _, inv := range h.invokes {
			ids = append(ids, inv.RequestID)
		}
		if want := []string{"req-0", "req-1", "req-2", "req-3", "req-4"}; !slices.Equal(ids, want) {
			t.Errorf("invokes = %v, want %v", ids, want)
		}
		if len(h.shutdowns) != 1 {
			t.Errorf("Shutdown called %d times, want once", len(h.shutdowns))
		}
		if got := len(f.calls(pathNext)); got != n+1 {
			t.Errorf("/event/next called %d times, want %d", got, n+1)
		}
		tr.CloseIdleConnections()
		checkNoLeaks(t)
	})

	t.Run("it goes back to next without waiting for the handler's background work", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var order orderLog
			events := make(chan string)
			f := &fakeLambda{register: registerOK(t, "ext-1")}
			f.next = func(w http.ResponseWriter, r *http.Request) {
				order.add(fmt.Sprintf("next %d", len(f.calls(pathNext))))
				serveEvents(events, "application/json")(w, r)
			}
			c := NewClient("lambda.test:9001", &http.Client{Transport: handlerTransport{f}})
			mustRegister(t, c)

			proceed := make(chan struct{})
			var work sync.WaitGroup
			h := &recorder{
				onInvoke: func(ctx context.Context, ev Event) {
					order.add("invoke " + ev.RequestID)
					work.Go(func() {
						<-proceed
						order.add("work " + ev.RequestID + " done")
					})
				},
				onShutdown: func(ctx context.Context, _ ShutdownPlan) error {
					work.Wait()
					order.add("shutdown")
					return nil
				},
			}
			type result struct {
				ev  Event
				err error
			}
			done := make(chan result, 1)
			go func() {
				ev, err := Run(t.Context(), c, h, nil)
				done <- result{ev, err}
			}()

			events <- `{"eventType":"INVOKE","deadlineMs":1,"requestId":"a"}`
			// This send completes only once Run is back in /event/next
			// while the work for "a" still waits for proceed; had Run
			// waited for that work, the bubble would deadlock here.
			events <- `{"eventType":"SHUTDOWN","deadlineMs":1,"shutdownReason":"spindown"}`
			close(proceed)
			r := <-done
			if r.err != nil || r.ev.Type != Shutdown {
				t.Fatalf("Run = %+v, %v; want the SHUTDOWN event", r.ev, r.err)
			}
			want := []string{"next 1", "invoke a", "next 2", "work a done", "shutdown"}
			if got := order.get(); !slices.Equal(got, want) {
				t.Errorf("order = %q, want %q", got, want)
			}
		})
	})

	t.Run("an unknown event type is skipped and the loop goes on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := pollerOf(Event{Type: "RESTORE"}, Event{Type: Invoke, RequestID: "a"}, Event{Type: Shutdown})
			var logs bytes.Buffer
			h := &recorder{}
			ev, err := Run(t.Context(), p, h, slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil || ev.Type != Shutdown {
				t.Fatalf("Run = %+v, %v; want the SHUTDOWN event", ev, err)
			}
			if len(h.invokes) != 1 {
				t.Errorf("Invoke called %d times, want once", len(h.invokes))
			}
			if !strings.Contains(logs.String(), `"event_type":"RESTORE"`) {
				t.Errorf("log does not name the unknown event type: %s", logs.String())
			}
		})
	})
}

func TestRunShutdownDeadline(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // from now; 0: no deadlineMs
		want     time.Duration // expected handler deadline, from now
	}{
		{"the handler's deadline is the event's minus the exit margin", 2 * time.Second, 2*time.Second - exitMargin},
		{"a deadline inside the margin leaves a tiny budget", exitMargin / 2, MinShutdownBudget},
		{"a deadline already passed leaves a tiny budget", -time.Second, MinShutdownBudget},
		{"a SHUTDOWN without a deadline gets the fallback budget", 0, fallbackBudget - exitMargin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The fake clock starts on a whole second, so deadlineMs
				// loses nothing.
				now := time.Now()
				ev := Event{Type: Shutdown, ShutdownReason: "spindown"}
				if tt.deadline != 0 {
					ev.DeadlineMs = now.Add(tt.deadline).UnixMilli()
				}
				var got time.Time
				var hasDeadline bool
				h := &recorder{onShutdown: func(ctx context.Context, _ ShutdownPlan) error {
					got, hasDeadline = ctx.Deadline()
					return nil
				}}
				if _, err := Run(t.Context(), pollerOf(ev), h, nil); err != nil {
					t.Fatalf("Run: %v", err)
				}
				if !hasDeadline {
					t.Fatal("the Shutdown context has no deadline")
				}
				if want := now.Add(tt.want); !got.Equal(want) {
					t.Errorf("Shutdown deadline = now%+v, want now%+v", got.Sub(now), tt.want)
				}
				if tt.deadline > exitMargin && !got.Before(ev.Deadline()) {
					t.Errorf("Shutdown deadline %v is not before the event's %v", got, ev.Deadline())
				}
			})
		})
	}

	t.Run("the handler's context ends before the platform's deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ev := Event{Type: Shutdown, DeadlineMs: time.Now().Add(2 * time.Second).UnixMilli()}
			var endedAt time.Time
			h := &recorder{onShutdown: func(ctx context.Context, _ ShutdownPlan) error {
				<-ctx.Done() // a handler that waits as long as it may
				endedAt = time.Now()
				return ctx.Err()
			}}
			_, err := Run(t.Context(), pollerOf(ev), h, nil)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run = %v, want the handler's context.DeadlineExceeded", err)
			}
			if !endedAt.Before(ev.Deadline()) {
				t.Errorf("handler ran until %v, past the deadline %v", endedAt, ev.Deadline())
			}
		})
	})
}

func TestRunErrors(t *testing.T) {
	t.Run("a Next failure is returned wrapped", func(t *testing.T) {
		f := &fakeLambda{register: registerOK(t, "ext-1"),
			next: answer(http.StatusForbidden, `{"errorType":"Extension.InvalidExtensionIdentifier","errorMessage":"no"}`)}
		c, _ := f.serve(t)
		mustRegister(t, c)
		_, err := Run(t.Context(), c, &recorder{}, nil)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
			t.Fatalf("Run = %v, want a 403 *APIError", err)
		}
		if !strings.Contains(err.Error(), "Extension.InvalidExtensionIdentifier") {
			t.Errorf("error %q does not name the errorType", err)
		}
	})

	t.Run("a canceled context ends Run with context.Canceled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeLambda{register: registerOK(t, "ext-1"), next: serveEvents(nil, "application/json")}
			c := NewClient("lambda.test:9001", &http.Client{Transport: handlerTransport{f}})
			mustRegister(t, c)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, err := Run(ctx, c, &recorder{}, nil)
				done <- err
			}()
			synctest.Wait() // Run is parked in the long poll
			cancel()
			if err := <-done; err != context.Canceled {
				t.Errorf("Run = %v, want context.Canceled itself", err)
			}
		})
	})

	t.Run("the Shutdown handler's error is returned with the event", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			boom := errors.New("final flush failed")
			h := &recorder{onShutdown: func(context.Context, ShutdownPlan) error { return boom }}
			ev, err := Run(t.Context(), pollerOf(Event{Type: Shutdown, ShutdownReason: "timeout"}), h, nil)
			if !errors.Is(err, boom) {
				t.Errorf("Run error = %v, want %v", err, boom)
			}
			if ev.Reason() != ReasonTimeout {
				t.Errorf("Run event = %+v, want the SHUTDOWN event", ev)
			}
		})
	})
}

// pollerOf is a Poller that returns events in order, then blocks until the
// context ends.
func pollerOf(events ...Event) pollerFunc {
	return func(ctx context.Context) (Event, error) {
		if len(events) == 0 {
			<-ctx.Done()
			return Event{}, ctx.Err()
		}
		ev := events[0]
		events = events[1:]
		return ev, nil
	}
}

type pollerFunc func(ctx context.Context) (Event, error)

func (f pollerFunc) Next(ctx context.Context) (Event, error) { return f(ctx) }

// orderLog records what happened, in order, from several goroutines.
type orderLog struct {
	// mu guards entries.
	mu      sync.Mutex
	entries []string
}

func (o *orderLog) add(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.entries = append(o.entries, s)
}

func (o *orderLog) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.entries)
}

// checkNoLeaks fails when, after Run returned, a goroutine is still running
// code of this package or holds an HTTP connection to the fake. Connection
// goroutines end asynchronously once their connection is closed, so it
// yields a bounded number of times before it gives up.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	var stacks string
	for range 10000 {
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 2)
		stacks = b.String()
		if leaks := leaked(stacks); len(leaks) == 0 {
			return
		}
		runtime.Gosched()
	}
	t.Errorf("goroutines left behind after Run returned:\n%s", strings.Join(leaked(stacks), "\n\n"))
}

// leaked returns the goroutine stacks that belong to Run, the Client or a
// client connection.
func leaked(stacks string) []string {
	var out []string
	for g := range strings.SplitSeq(stacks, "\n\n") {
		if strings.Contains(g, "net/http.(*persistConn)") ||
			strings.Contains(g, "slipstream/extension.Run(") ||
			strings.Contains(g, "slipstream/extension.(*Client)") {
			out = append(out, g)
		}
	}
	return out
}
