package signals

import (
	"context"
	"strings"
	"time"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// How an invocation ended: the outcome counters, out of memory (with the
// SHUTDOWN guess and its retraction by late events) and the report's
// figures.

// lateRuntimeDone maps the runtimeDone of an invocation SHUTDOWN closed
// before it came: the outcome was counted then; the runtime duration is
// recorded, an out-of-memory errorType confirms the guess (or counts), and
// a success or timeout status retracts a guess made at SHUTDOWN.
func (m *Mapper) lateRuntimeDone(r *telemetry.RuntimeDone, d doneTimes) {
	inv := d.inv
	d.rd = true
	if inv != nil {
		inv.rd = r
	}
	if r.Metrics != nil {
		m.inst.invokeDuration.Record(context.Background(), r.Metrics.DurationMs/1000)
		if r.Metrics.ProducedBytes != nil {
			m.inst.producedBytes.Record(context.Background(), *r.Metrics.ProducedBytes)
		}
	}
	m.recordResponseSpans(r.Spans)
	switch {
	case strings.Contains(r.ErrorType, "OutOfMemory"):
		d = m.confirmOOM(d)
	case r.Status == telemetry.StatusSuccess || r.Status == telemetry.StatusTimeout:
		d = m.retractOOM(d)
	}
	m.done[r.RequestID] = d
}

// lateReport maps the report of an invocation SHUTDOWN closed before the
// report came: the span and the outcome are out; the report's figures are
// recorded and sent on a postRuntime span in the invocation's trace, and
// the out-of-memory verdict is settled by the report.
func (m *Mapper) lateReport(ev telemetry.Event, r *telemetry.Report, d doneTimes) {
	m.recordReportFigures(r, d.inv)
	if isOOM(r) {
		d = m.confirmOOM(d)
	} else {
		d = m.retractOOM(d)
	}
	d.report = ev.Time
	m.done[r.RequestID] = d
	if inv := d.inv; inv != nil {
		inv.oom = d.oom
		m.emitPostRuntime(inv, r)
	}
}

// confirmOOM counts a finished invocation out of memory if it was not.
func (m *Mapper) confirmOOM(d doneTimes) doneTimes {
	if !d.oom {
		m.inst.outOfMemory.Add(context.Background(), 1)
		d.oom = true
	}
	d.guessed = false
	return d
}

// retractOOM counts the retraction of an out-of-memory guess made at
// SHUTDOWN that a later event contradicts: a cumulative counter cannot be
// decreased, so the correction is a counter of its own.
func (m *Mapper) retractOOM(d doneTimes) doneTimes {
	if d.guessed {
		m.inst.oomRetracted.Add(context.Background(), 1)
		d.oom, d.guessed = false, false
	}
	return d
}

// recordReportFigures records the metrics that only platform.report
// carries; inv (nil for a report that came after its invocation was
// closed) gives the runtimeDone for the post-runtime duration.
func (m *Mapper) recordReportFigures(r *telemetry.Report, inv *invocation) {
	met := &r.Metrics
	if met.BilledDurationMs != nil {
		m.inst.billedDuration.Record(context.Background(), float64(*met.BilledDurationMs)/1000)
	}
	if met.MaxMemoryUsedMB != nil {
		m.inst.memUsage.Record(context.Background(), *met.MaxMemoryUsedMB<<20)
		if met.MemorySizeMB != nil && *met.MemorySizeMB > 0 {
			m.inst.memUtilization.Record(context.Background(), float64(*met.MaxMemoryUsedMB)/float64(*met.MemorySizeMB))
		}
	}
	if met.MemorySizeMB != nil && *met.MemorySizeMB > 0 {
		m.inst.memorySize.Record(context.Background(), *met.MemorySizeMB<<20)
	}
	if limit := timeLimit(inv); limit > 0 {
		m.inst.timeLimit.Record(context.Background(), limit.Seconds())
		m.inst.timeoutUtilization.Record(context.Background(), met.DurationMs/1000/limit.Seconds())
	}
	if inv != nil && inv.rd != nil && inv.rd.Metrics != nil {
		if d := met.DurationMs - inv.rd.Metrics.DurationMs; d >= 0 {
			m.inst.postRuntime.Record(context.Background(), d/1000)
		}
	}
	if met.InitDurationMs != nil && !m.initDurDone {
		m.inst.initDuration.Record(context.Background(), *met.InitDurationMs/1000)
	}
	if met.RestoreDurationMs != nil && !m.restDurDone {
		m.inst.restoreDuration.Record(context.Background(), *met.RestoreDurationMs/1000)
	}
	if c, ok := m.estimatedCost(r); ok {
		m.inst.estimatedCost.Add(context.Background(), c)
	}
}

// timeLimit is the time an invocation was given: the INVOKE event's
// deadline minus platform.start's time, the function's timeout (give or
// take the few milliseconds between the two). Zero when either is unknown
// (no INVOKE under Lambda Managed Instances, or an invocation the agent
// saw no start of).
func timeLimit(inv *invocation) time.Duration {
	if inv == nil || !inv.started || inv.deadline.IsZero() {
		return 0
	}
	return max(inv.deadline.Sub(inv.start), 0)
}

// isOOM applies the out-of-memory rule to a report: errorType names
// OutOfMemory, or the memory used reached the memory size with a
// non-success status.
func isOOM(r *telemetry.Report) bool {
	if strings.Contains(r.ErrorType, "OutOfMemory") {
		return true
	}
	met := &r.Metrics
	return r.Status != telemetry.StatusSuccess && r.Status != "" &&
		met.MaxMemoryUsedMB != nil && met.MemorySizeMB != nil && *met.MaxMemoryUsedMB >= *met.MemorySizeMB
}

func (m *Mapper) markOOM(inv *invocation) {
	inv.oom = true
	if !inv.oomCounted {
		inv.oomCounted = true
		m.inst.outOfMemory.Add(context.Background(), 1)
	}
}

// recordOutcome counts an invocation once: successful, error or timeout.
func (m *Mapper) recordOutcome(inv *invocation, st telemetry.Status, errorType string) {
	if inv.counted {
		return
	}
	inv.counted = true
	switch st {
	case telemetry.StatusSuccess, "":
		m.inst.invocations.Add(context.Background(), 1)
	case telemetry.StatusTimeout:
		m.inst.timeouts.Add(context.Background(), 1)
	default:
		m.inst.countError(errorTypeOf(st, errorType))
	}
}

func errorTypeOf(st telemetry.Status, errorType string) string {
	if errorType != "" {
		return errorType
	}
	return string(st)
}

func (m *Mapper) recordResponseSpans(spans []telemetry.Span) {
	for i := range spans {
		switch spans[i].Name {
		case "responseLatency":
			m.inst.responseLatency.Record(context.Background(), spans[i].DurationMs/1000)
		case "responseDuration":
			m.inst.responseDuration.Record(context.Background(), spans[i].DurationMs/1000)
		}
	}
}

// estimatedCost is the on-demand cost of the reported invocation, when the
// pricing model is the standard one.
func (m *Mapper) estimatedCost(r *telemetry.Report) (float64, bool) {
	met := &r.Metrics
	if !m.priced || m.lmi || met.BilledDurationMs == nil || met.MemorySizeMB == nil {
		return 0, false
	}
	if m.initType == telemetry.InitProvisionedConcurrency || m.initType == telemetry.InitLambdaManagedInstances {
		return 0, false
	}
	if (m.restored || met.RestoreDurationMs != nil) &&
		(strings.HasPrefix(m.runtimeName, "python") || strings.HasPrefix(m.runtimeName, "dotnet")) {
		return 0, false // SnapStart for Python and .NET bills caching and restore separately
	}
	return m.price.cost(*met.BilledDurationMs, *met.MemorySizeMB), true
}

// closeAtShutdown closes one invocation still open at SHUTDOWN.
func (m *Mapper) closeAtShutdown(inv *invocation, reason string, failure bool, at time.Time) {
	m.ensureSpanContext(inv)
	if inv.rd != nil {
		// Finished, its span is out; only its report is missing.
		if !inv.spanSent {
			m.emitInvocation(inv, nil, "", inv.rdTime)
		}
		m.forget(inv)
		return
	}
	if failure && !inv.oomCounted {
		m.markOOM(inv)
		inv.oomGuessed = true
	}
	if !inv.counted {
		inv.counted = true
		if strings.EqualFold(reason, string(telemetry.StatusTimeout)) {
			m.inst.timeouts.Add(context.Background(), 1)
		} else {
			m.inst.countError(reason)
		}
	}
	m.emitInvocation(inv, nil, reason, at)
	m.forget(inv)
}
