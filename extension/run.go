package extension

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Handler receives the lifecycle events. exporter.Pipeline implements it.
type Handler interface {
	// Invoke is called for each INVOKE on Run's goroutine and must return
	// at once: Run calls /event/next only after it returns, and until then
	// the invocation is billed. Slow work belongs to the handler's own
	// goroutines.
	Invoke(ctx context.Context, ev Event)
	// Shutdown is called once, for SHUTDOWN, with the event's plan and a
	// context derived from Run's that ends at the plan's Close.
	Shutdown(ctx context.Context, plan ShutdownPlan) error
}

// Poller is the part of [Client] that Run uses.
type Poller interface {
	Next(ctx context.Context) (Event, error)
}

// Run drives the extension lifecycle until SHUTDOWN. It calls Next in a
// loop; for each INVOKE it calls h.Invoke and then goes straight back to
// Next, waiting for nothing else. On SHUTDOWN it calls h.Shutdown with
// the event's [ShutdownPlan] and a context that ends at the plan's Close,
// and returns the SHUTDOWN event with the handler's error, if any.
//
// When ctx ends Run returns ctx.Err() unwrapped, so errors.Is(err,
// context.Canceled) tells a requested stop from a failure. Any other Next
// failure is returned wrapped (an *APIError for a platform error status);
// the caller should then report it with ExitError and exit. A nil log
// discards Run's few log lines (one per SHUTDOWN or unexpected event type).
func Run(ctx context.Context, p Poller, h Handler, log *slog.Logger) (Event, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		ev, err := p.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return Event{}, ctx.Err()
			}
			return Event{}, fmt.Errorf("extension lifecycle: %w", err)
		}
		switch ev.Type {
		case Invoke:
			h.Invoke(ctx, ev)
		case Shutdown:
			return ev, shutdown(ctx, h, ev, log)
		default:
			// Not registered for, so not expected; the loop must go on.
			log.LogAttrs(ctx, slog.LevelWarn, "unknown extension event ignored",
				slog.String("event_type", string(ev.Type)))
		}
	}
}

func shutdown(ctx context.Context, h Handler, ev Event, log *slog.Logger) error {
	plan := PlanShutdown(ev, time.Now())
	log.LogAttrs(ctx, slog.LevelInfo, "shutdown",
		slog.String("shutdown_reason", ev.ShutdownReason),
		slog.Int64("budget_ms", time.Until(plan.Deadline).Milliseconds()))
	sctx, cancel := context.WithDeadline(ctx, plan.Close)
	defer cancel()
	if err := h.Shutdown(sctx, plan); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
