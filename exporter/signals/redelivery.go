package signals

import (
	"github.com/slipstream-otel/slipstream/telemetry"
)

// Lambda resends a batch whose POST was not answered 2xx: events already
// consumed are recognised and ignored.

// reported reports whether requestID is among the recently finished.
func (m *Mapper) reported(requestID string) bool {
	_, ok := m.done[requestID]
	return ok
}

// duplicate reports whether ev was consumed already: Lambda resends a
// batch whose POST was not answered 2xx, so the same platform events can
// arrive twice. Counting them again would double the invocation, cold
// start and cost metrics, and a late copy of a finished invocation's
// events would open a phantom invocation that SHUTDOWN closes as an error.
// Log lines are not de-duplicated: two equal lines are legitimate.
func (m *Mapper) duplicate(ev telemetry.Event) bool {
	switch r := ev.Record.(type) {
	case *telemetry.Start:
		if inv, ok := m.open[r.RequestID]; ok {
			return inv.started && inv.start.Equal(ev.Time)
		}
		d, ok := m.done[r.RequestID]
		return ok && d.start.Equal(ev.Time)
	case *telemetry.RuntimeDone:
		if inv, ok := m.open[r.RequestID]; ok {
			return inv.rd != nil
		}
		// A finished invocation gets no other runtimeDone (a retried
		// asynchronous invocation, same request ID, starts again first),
		// except one SHUTDOWN closed before its runtimeDone came.
		d, ok := m.done[r.RequestID]
		return ok && (d.rd || !d.report.IsZero())
	case *telemetry.Report:
		if _, ok := m.open[r.RequestID]; ok {
			return false
		}
		d, ok := m.done[r.RequestID]
		return ok && d.report.Equal(ev.Time)
	case *telemetry.InitStart, *telemetry.InitRuntimeDone, *telemetry.InitReport,
		*telemetry.RestoreStart, *telemetry.RestoreRuntimeDone, *telemetry.RestoreReport:
		return m.seenRecently(recentEvent{typ: ev.Type, t: ev.Time})
	case *telemetry.LogsDropped:
		return m.seenRecently(recentEvent{typ: ev.Type, t: ev.Time, n1: r.DroppedRecords, n2: r.DroppedBytes})
	case *telemetry.Extension:
		return m.seenRecently(recentEvent{typ: ev.Type, t: ev.Time, name: r.Name})
	}
	return false
}

// seenRecently reports whether e is among the recent events, remembering
// it when it is not.
func (m *Mapper) seenRecently(e recentEvent) bool {
	for i := range m.recent {
		r := &m.recent[i]
		if r.typ == e.typ && r.t.Equal(e.t) && r.n1 == e.n1 && r.n2 == e.n2 && r.name == e.name {
			return true
		}
	}
	m.recent[m.recentNext] = e
	m.recentNext = (m.recentNext + 1) % recentRing
	return false
}
