package exporter

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// A backend that hangs (it accepts connections and never answers, or its
// SYNs are dropped, as in a VPC without a route out) is not caught by the
// awake-time timeout alone: a function invoked once a second is awake a few
// milliseconds each time, so a 10 s timeout of awake time takes thousands of
// invocations. A request is therefore also bounded by the INVOKEs it lives
// through: one that makes no progress on the network (see attempt.progress)
// while hangInvokes INVOKEs arrive, over at least hangQuiet of wall time,
// is canceled as hung. Either bound counts as a failed request (retry on a
// fresh connection, breaker), is named in one WARN line per endpoint, and
// stops waited invocations from waiting until the endpoint answers again.

// hangInvokes is how many INVOKEs a request may live through without
// progress before it is canceled as hung. A request cut by freezes
// advances at each thaw (a round trip per thaw at worst), so it is not
// mistaken for a hung one; three leaves one thaw to spare.
const hangInvokes = 3

// defaultHangQuiet is the least wall time without progress before a
// request is canceled as hung (knobs.HangQuiet): a function invoked many
// times a second must not take a slow backend for a hung one.
const defaultHangQuiet = 2 * time.Second

var errHung = fmt.Errorf("export request made no progress while %d invocations arrived (hung)", hangInvokes)

// hangCause reports why a request was canceled as hung, if it was: it made
// no progress across hangInvokes INVOKEs, or it ran out of awake time.
func hangCause(err error) (string, bool) {
	switch {
	case errors.Is(err, errHung):
		return fmt.Sprintf("%d invocations without progress", hangInvokes), true
	case errors.Is(err, errAwakeTimeout):
		return "awake-time timeout", true
	}
	return "", false
}

// hangs tracks the endpoints whose latest request hung. The worker updates
// it; Invoke reads blocking, so that no invocation waits for a flush that
// would hang.
type hangs struct {
	log *slog.Logger
	// down are the endpoints whose latest request hung (worker only).
	down map[string]bool
	// any is len(down) > 0.
	any atomic.Bool
}

// blocking reports whether some endpoint hangs: waited invocations do not
// wait.
func (h *hangs) blocking() bool { return h.any.Load() }

// hung records a request to endpoint that hung at stage; the first one
// until the endpoint answers again is logged.
func (h *hangs) hung(endpoint string, sig signal, stage, cause string) {
	if h.down[endpoint] {
		return
	}
	if h.down == nil {
		h.down = map[string]bool{}
	}
	h.down[endpoint] = true
	h.any.Store(true)
	h.log.Warn("OTLP endpoint does not answer: export request hung and was canceled; it is retried on a fresh connection, and invocations no longer wait for a flush until the endpoint answers",
		slog.String("endpoint", endpoint), slog.String("signal", string(sig)),
		slog.String("stage", stage), slog.String("detected_by", cause))
}

// answered records that endpoint answered a request.
func (h *hangs) answered(endpoint string) {
	if !h.down[endpoint] {
		return
	}
	delete(h.down, endpoint)
	h.any.Store(len(h.down) > 0)
	h.log.Info("OTLP endpoint answers again", slog.String("endpoint", endpoint))
}

// watch counts, for every request in flight, the INVOKEs it has lived
// through since its last progress, and cancels as hung the ones that
// reached hangInvokes over at least hangQuiet of wall time. It runs on the
// worker at each pickup that brought n INVOKEs.
func (s *sender) watch(n int, now time.Time) {
	for _, f := range s.flights {
		if f == nil || f.stage != "" {
			continue
		}
		if p := f.a.progress.Load(); p != f.seen {
			f.seen, f.quiet, f.quietSince = p, 0, time.Unix(0, f.a.progressAt.Load())
		}
		f.quiet += n
		if f.quiet >= hangInvokes && now.Sub(f.quietSince) >= s.hangQuiet {
			f.stage = f.a.hungStage()
			f.cancel(errHung)
		}
	}
}
