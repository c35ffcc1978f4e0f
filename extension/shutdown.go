package extension

import "time"

// The SHUTDOWN budget. The platform gives external extensions about 2 s
// after SHUTDOWN (deadlineMs) and kills what is still running then
// (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-shutdown).
// Every margin of that budget is here, and nowhere else.
const (
	// reportWait bounds the wait for the last invocations' platform.report,
	// which Lambda emits only after every extension called /event/next.
	reportWait = time.Second
	// runtimeShare is the runtime's part of the budget: the function's
	// SIGTERM handler (where an OpenTelemetry SDK flushes) runs in it.
	runtimeShare = 300 * time.Millisecond
	// minFlush is what the final flush keeps, however long the waits before it.
	minFlush = 600 * time.Millisecond
	// spillMargin is kept for writing what the flush could not send.
	spillMargin = 100 * time.Millisecond
	// closeMargin is kept for closing the inputs and spilling what arrived
	// during the flush.
	closeMargin = 100 * time.Millisecond
	// exitMargin is kept for returning, logging and exiting.
	exitMargin = 100 * time.Millisecond
	// MinShutdownBudget is what the handler gets when the deadline has
	// already passed (a late thaw, a skewed clock).
	MinShutdownBudget = 10 * time.Millisecond
	// fallbackBudget applies when SHUTDOWN carries no deadlineMs.
	fallbackBudget = 2*time.Second - runtimeShare
)

// ShutdownPlan is the schedule of the SHUTDOWN budget, computed once from
// the event's deadlineMs by [PlanShutdown]. Each field is when a phase
// ends:
//
//   - Drain: local inputs (the function's own OpenTelemetry data, which an
//     SDK flushes from its SIGTERM handler in the runtime's share of the
//     budget) are awaited until then; never after Reports;
//   - Reports: the wait for the platform.report of invocations still open
//     (the Telemetry API listener stays open);
//   - Flush: everything is sent; requests still in flight are then cut;
//   - Spill: what was not sent is written to the spill file;
//   - Close: the inputs are closed and what arrived meanwhile is spilled
//     (the handler's context ends here);
//   - Deadline: the process is killed; the time after Close is for
//     returning, logging and exiting.
type ShutdownPlan struct {
	Reason   string    // the event's shutdownReason, as sent
	Received time.Time // when SHUTDOWN arrived
	Deadline time.Time // deadlineMs: the process is killed then
	Reports  time.Time
	Drain    time.Time
	Flush    time.Time
	Spill    time.Time
	Close    time.Time
}

// PlanShutdown returns the plan of a SHUTDOWN event received at now. When
// the deadline leaves less than the margins, every phase ends at least
// MinShutdownBudget from now, in order.
func PlanShutdown(ev Event, now time.Time) ShutdownPlan {
	dl := ev.Deadline()
	if dl.IsZero() {
		dl = now.Add(fallbackBudget)
	}
	p := ShutdownPlan{Reason: ev.ShutdownReason, Received: now, Deadline: dl}
	floor := now.Add(MinShutdownBudget)
	at := func(t time.Time) time.Time {
		if t.Before(floor) {
			return floor
		}
		return t
	}
	p.Close = at(dl.Add(-exitMargin))
	p.Spill = at(p.Close.Add(-closeMargin))
	p.Flush = at(p.Spill.Add(-spillMargin))
	p.Reports = at(minTime(now.Add(reportWait), p.Flush.Add(-minFlush)))
	p.Drain = at(minTime(now.Add(runtimeShare), p.Reports))
	return p
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
