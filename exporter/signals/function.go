package signals

import "go.opentelemetry.io/otel/trace"

// The function's own OpenTelemetry data (package receiver) is placed in
// the invocation's trace by the exporter, which asks the mapper where an
// invocation's span is. Each answer pins the invocation's span ID: a
// platform.start mapped later (its tracing.spanId) no longer replaces it,
// so what was already nested under it stays nested.

// FunctionParent returns the invocation span of the invocation whose
// trace is traceID, and the remote parent it has from the X-Ray header
// (Parent): the function's spans whose parent is that segment are
// children of the Lambda invocation, and go under the invocation span.
// ok is false when no open or recently finished invocation has that trace.
func (m *Mapper) FunctionParent(traceID trace.TraceID) (span trace.SpanContext, xrayParent trace.SpanID, ok bool) {
	if !traceID.IsValid() {
		return span, xrayParent, false
	}
	var best *invocation
	for _, inv := range m.open {
		if inv.sc.IsValid() && inv.sc.TraceID() == traceID && (best == nil || inv.seq > best.seq) {
			best = inv
		}
	}
	if best != nil {
		best.pinned = true
		return best.sc, best.parent.SpanID(), true
	}
	for _, d := range m.done {
		if d.sc.IsValid() && d.sc.TraceID() == traceID {
			return d.sc, d.parent.SpanID(), true
		}
	}
	return span, xrayParent, false
}

// InvocationSpan returns the span context of the invocation requestID
// (open or recently finished): the function's log records without trace
// context that arrived during it are placed in its trace.
func (m *Mapper) InvocationSpan(requestID string) (trace.SpanContext, bool) {
	if requestID == "" {
		return trace.SpanContext{}, false
	}
	if inv, ok := m.open[requestID]; ok {
		m.ensureSpanContext(inv)
		inv.pinned = true
		return inv.sc, true
	}
	if d, ok := m.done[requestID]; ok && d.sc.IsValid() {
		return d.sc, true
	}
	return trace.SpanContext{}, false
}
