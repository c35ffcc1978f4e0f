package signals

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// Span names chosen by Slipstream (child spans from the platform's "spans"
// lists keep the platform's names, e.g. responseLatency).
const (
	spanInit        = "init"
	spanRestore     = "restore"
	spanPostRuntime = "postRuntime"
)

// Span attribute keys: the semantic conventions' (aws.lambda.invoked_arn,
// error.type; faas.* and cloud.* are written where they are set), and
// Slipstream's own in the slipstream.* namespace, in base units (s, By).
const (
	attrInvokedARN      = attribute.Key("aws.lambda.invoked_arn")
	attrDuration        = attribute.Key("slipstream.duration")
	attrRuntimeDuration = attribute.Key("slipstream.runtime_duration")
	attrBilledDuration  = attribute.Key("slipstream.billed_duration")
	attrMaxMemoryUsed   = attribute.Key("slipstream.max_memory_used")
	attrMemorySize      = attribute.Key("slipstream.memory_size")
	attrInitDuration    = attribute.Key("slipstream.init_duration")
	attrRestoreDuration = attribute.Key("slipstream.restore_duration")
	attrResponseSize    = attribute.Key("slipstream.response_size")
	attrOutOfMemory     = attribute.Key("slipstream.out_of_memory")
	attrInitType        = attribute.Key("slipstream.initialization_type")
	attrInitPhase       = attribute.Key("slipstream.init_phase")
	// attrPrewarm marks an init that was not a cold start (with
	// faas.coldstart=false) and says why: prewarmProvisioned or
	// prewarmProactive. Also the attribute of metricPrewarmInits.
	attrPrewarm = attribute.Key("slipstream.prewarm")
	// attrTenantID is the tenantId of the invocation's platform events, on
	// functions in tenant isolation mode
	// (https://docs.aws.amazon.com/lambda/latest/dg/tenant-isolation.html);
	// on the invocation and postRuntime spans and the invocation's log
	// records. The semantic conventions define no tenant attribute.
	attrTenantID  = attribute.Key("slipstream.tenant_id")
	attrErrorType = attribute.Key("error.type")
	attrColdstart = attribute.Key("faas.coldstart")
)

func (m *Mapper) scope() instrumentation.Scope {
	return instrumentation.Scope{Name: ScopeName, Version: m.ri.version}
}

// stub fills the fields every span shares.
func (m *Mapper) stub(name string, sc, parent trace.SpanContext, kind trace.SpanKind, start, end time.Time) tracetest.SpanStub {
	if end.Before(start) {
		end = start
	}
	return tracetest.SpanStub{
		Name:                 name,
		SpanContext:          sc,
		Parent:               parent,
		SpanKind:             kind,
		StartTime:            start,
		EndTime:              end,
		Resource:             m.res,
		InstrumentationScope: m.scope(),
	}
}

func statusOf(st telemetry.Status, errorType string) (sdktrace.Status, string) {
	switch st {
	case telemetry.StatusSuccess, "":
		return sdktrace.Status{Code: codes.Unset}, ""
	}
	et := errorTypeOf(st, errorType)
	return sdktrace.Status{Code: codes.Error, Description: et}, et
}

// childSpans appends one INTERNAL span per platform "spans" entry (a
// name already given by an earlier list is skipped), held inside the
// parent's interval [ps, pe]: no child starts before its parent or ends
// after it.
func (m *Mapper) childSpans(out []sdktrace.ReadOnlySpan, parent trace.SpanContext, ps, pe time.Time, spans ...[]telemetry.Span) []sdktrace.ReadOnlySpan {
	for li, list := range spans {
		for i := range list {
			sp := &list[i]
			if hasSpan(spans[:li], sp.Name) {
				continue
			}
			sc := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: parent.TraceID(), SpanID: m.newSpanID(), TraceFlags: parent.TraceFlags(),
			})
			start, end := sp.Start, sp.Start.Add(msDuration(sp.DurationMs))
			start, end = clamp(start, ps, pe), clamp(end, ps, pe)
			out = append(out, m.stub(sp.Name, sc, parent, trace.SpanKindInternal, start, end).Snapshot())
		}
	}
	return out
}

// clamp returns t held within [lo, hi] (hi before lo counts as lo).
func clamp(t, lo, hi time.Time) time.Time {
	if t.After(hi) {
		t = hi
	}
	if t.Before(lo) {
		t = lo
	}
	return t
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

func hasSpan(lists [][]telemetry.Span, name string) bool {
	for _, l := range lists {
		for i := range l {
			if l[i].Name == name {
				return true
			}
		}
	}
	return false
}

// emitInvocation builds the invocation's SERVER span and its children and
// settles the held init/restore phases. Every invocation span ends at its
// runtimeDone; rep is set only for an invocation that had none (Lambda
// Managed Instances): its span ends at the report and carries the report's
// figures. reason is the shutdown reason of an invocation that never
// finished (its span ends at SHUTDOWN).
func (m *Mapper) emitInvocation(inv *invocation, rep *telemetry.Report, reason string, end time.Time) {
	m.ensureSpanContext(inv)
	inv.spanSent, inv.spanEnd = true, end
	out := make([]sdktrace.ReadOnlySpan, 0, 5)

	// A cold start is decided from the lifecycle, the same way whatever
	// the flush mode: the first invocation after an on-demand init or a
	// restore that ended within the proactive threshold before its
	// platform.start (consumeStart), or one a suppressed init ran for.
	cold := inv.coldLife || inv.suppressed
	var links []sdktrace.Link
	settle := func(held **phase, claimed bool) {
		p := *held
		if p == nil {
			return
		}
		*held = nil
		if claimed {
			// The init delayed the invocation: it goes into the
			// invocation's trace, beside the invocation span (same
			// parent), because it ran before the invocation started.
			p.decided, p.cold = true, true
			if !inv.drop {
				m.sendSpans(p.key(), m.appendPhase(nil, p, m.siblingOf(inv), inv.parent))
			}
			return
		}
		ps, sc := m.phaseOwnTrace(nil, p)
		m.sendSpans(p.key(), ps)
		links = append(links, sdktrace.Link{SpanContext: sc})
	}
	settle(&m.heldInit, inv.coldLife || inv.suppressed)
	settle(&m.heldRestore, inv.coldLife)
	for _, sc := range m.linkTo {
		links = append(links, sdktrace.Link{SpanContext: sc})
	}
	m.linkTo = m.linkTo[:0]
	if cold {
		m.inst.coldstarts.Add(context.Background(), 1)
	}

	start := m.invocationStart(inv, rep, end)
	st, et := sdktrace.Status{}, ""
	switch {
	case rep != nil:
		st, et = statusOf(rep.Status, rep.ErrorType)
	case inv.rd != nil:
		st, et = statusOf(inv.rd.Status, inv.rd.ErrorType)
	case reason != "":
		st, et = sdktrace.Status{Code: codes.Error, Description: reason}, reason
	}

	attrs := make([]attribute.KeyValue, 0, 18)
	attrs = append(attrs,
		attribute.String("faas.invocation_id", inv.id),
		attrColdstart.Bool(cold),
		attribute.String("faas.trigger", m.trigger()),
	)
	if m.ri.accountID != "" {
		attrs = append(attrs, attribute.String("cloud.account.id", m.ri.accountID))
	}
	if inv.invokedARN != "" {
		attrs = append(attrs, attrInvokedARN.String(inv.invokedARN))
	}
	if id := m.resourceID(inv); id != "" {
		attrs = append(attrs, attribute.String("cloud.resource_id", id))
	}
	if inv.tenantID != "" {
		attrs = append(attrs, attrTenantID.String(inv.tenantID))
	}
	if rep != nil {
		attrs = reportAttrs(attrs, rep)
	}
	if inv.rd != nil && inv.rd.Metrics != nil {
		attrs = append(attrs, attrRuntimeDuration.Float64(inv.rd.Metrics.DurationMs/1000))
		if inv.rd.Metrics.ProducedBytes != nil {
			attrs = append(attrs, attrResponseSize.Int64(*inv.rd.Metrics.ProducedBytes))
		}
	}
	if et != "" {
		attrs = append(attrs, attrErrorType.String(et))
	}
	if inv.oom {
		attrs = append(attrs, attrOutOfMemory.Bool(true))
	}

	if !inv.drop {
		s := m.stub(m.ri.fnName(), inv.sc, inv.parent, trace.SpanKindServer, start, end)
		s.Attributes = attrs
		s.Status = st
		s.Links = links
		out = append(out, s.Snapshot())
		var rdSpans, repSpans []telemetry.Span
		if inv.rd != nil {
			rdSpans = inv.rd.Spans
		}
		if rep != nil {
			repSpans = rep.Spans
		}
		out = m.childSpans(out, inv.sc, start, s.EndTime, rdSpans, repSpans)
	}
	m.sendSpans(InvocationPhase(inv.id), out)
}

// reportAttrs appends the report's figures, in seconds and bytes.
func reportAttrs(attrs []attribute.KeyValue, rep *telemetry.Report) []attribute.KeyValue {
	met := &rep.Metrics
	attrs = append(attrs, attrDuration.Float64(met.DurationMs/1000))
	if met.BilledDurationMs != nil {
		attrs = append(attrs, attrBilledDuration.Float64(float64(*met.BilledDurationMs)/1000))
	}
	if met.MaxMemoryUsedMB != nil {
		attrs = append(attrs, attrMaxMemoryUsed.Int64(*met.MaxMemoryUsedMB<<20))
	}
	if met.MemorySizeMB != nil {
		attrs = append(attrs, attrMemorySize.Int64(*met.MemorySizeMB<<20))
	}
	if met.InitDurationMs != nil {
		attrs = append(attrs, attrInitDuration.Float64(*met.InitDurationMs/1000))
	}
	if met.RestoreDurationMs != nil {
		attrs = append(attrs, attrRestoreDuration.Float64(*met.RestoreDurationMs/1000))
	}
	return attrs
}

// siblingOf returns a new span context in the invocation's trace, for a
// span that shares the invocation span's parent.
func (m *Mapper) siblingOf(inv *invocation) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: inv.sc.TraceID(), SpanID: m.newSpanID(), TraceFlags: inv.sc.TraceFlags(),
	})
}

// emitPostRuntime sends the report's follow-up to an invocation span that
// is already out (it closed at runtimeDone, or at SHUTDOWN): a postRuntime
// span beside the invocation span (same trace, same parent) from the
// runtime's end to the end of the invoke phase (report durationMs after
// the start: the extensions' time), carrying the report's figures, its
// status and the final out-of-memory verdict. The report's own "spans"
// entries not already under the invocation span are its children.
func (m *Mapper) emitPostRuntime(inv *invocation, rep *telemetry.Report) {
	if inv.drop || !inv.sc.IsValid() {
		return
	}
	begin := inv.spanEnd
	invStart := m.invocationStart(inv, nil, time.Time{})
	if !invStart.IsZero() && inv.rd != nil && inv.rd.Metrics != nil {
		begin = invStart.Add(msDuration(inv.rd.Metrics.DurationMs))
	}
	end := begin
	if !invStart.IsZero() {
		if e := invStart.Add(msDuration(rep.Metrics.DurationMs)); e.After(end) {
			end = e
		}
	}
	st, et := statusOf(rep.Status, rep.ErrorType)
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs, attribute.String("faas.invocation_id", inv.id))
	if inv.tenantID != "" {
		attrs = append(attrs, attrTenantID.String(inv.tenantID))
	}
	attrs = reportAttrs(attrs, rep)
	if et != "" {
		attrs = append(attrs, attrErrorType.String(et))
	}
	if inv.oom {
		attrs = append(attrs, attrOutOfMemory.Bool(true))
	}
	sc := m.siblingOf(inv)
	s := m.stub(spanPostRuntime, sc, inv.parent, trace.SpanKindInternal, begin, end)
	s.Attributes = attrs
	s.Status = st
	out := []sdktrace.ReadOnlySpan{s.Snapshot()}
	var rdSpans []telemetry.Span
	if inv.rd != nil {
		rdSpans = inv.rd.Spans
	}
	var own []telemetry.Span
	for _, sp := range rep.Spans {
		if !hasSpan([][]telemetry.Span{rdSpans}, sp.Name) {
			own = append(own, sp)
		}
	}
	out = m.childSpans(out, sc, s.StartTime, s.EndTime, own)
	m.sendSpans(InvocationPhase(inv.id), out)
}

func (m *Mapper) sendSpans(ph Phase, out []sdktrace.ReadOnlySpan) {
	if len(out) > 0 && m.spans != nil {
		m.spans(ph, out)
	}
}

// invocationStart is platform.start's time, else the INVOKE's arrival,
// else the end minus the reported duration.
func (m *Mapper) invocationStart(inv *invocation, rep *telemetry.Report, end time.Time) time.Time {
	switch {
	case inv.started:
		return inv.start
	case !inv.invokedAt.IsZero():
		return inv.invokedAt
	case rep != nil && !end.IsZero():
		return end.Add(-msDuration(rep.Metrics.DurationMs))
	case inv.rd != nil && inv.rd.Metrics != nil:
		return inv.rdTime.Add(-msDuration(inv.rd.Metrics.DurationMs))
	}
	return end
}

func (m *Mapper) trigger() string {
	if m.cfg.FaaSTrigger != "" {
		return m.cfg.FaaSTrigger
	}
	return "other"
}

// resourceID is cloud.resource_id: the function ARN with the alias
// replaced by the version that ran (unqualified for $LATEST).
func (m *Mapper) resourceID(inv *invocation) string {
	arn := inv.invokedARN
	if arn == "" {
		arn = inv.functionARN
	}
	var base string
	if arn != "" {
		// arn:aws:lambda:region:account:function:name[:qualifier]
		n, i := 0, 0
		for ; i < len(arn); i++ {
			if arn[i] == ':' {
				n++
				if n == 7 {
					break
				}
			}
		}
		base = arn[:i]
	} else if m.cfg.Region != "" && m.ri.accountID != "" && m.ri.fnName() != "" {
		base = "arn:aws:lambda:" + m.cfg.Region + ":" + m.ri.accountID + ":function:" + m.ri.fnName()
	}
	if base == "" {
		return ""
	}
	if v := inv.version; v != "" && v != "$LATEST" {
		return base + ":" + v
	}
	return base
}

// phaseOwnTrace appends the span of a phase that delayed no invocation, in
// a trace of its own (the X-Ray context of its start event if any).
func (m *Mapper) phaseOwnTrace(out []sdktrace.ReadOnlySpan, p *phase) ([]sdktrace.ReadOnlySpan, trace.SpanContext) {
	var parent trace.SpanContext
	traceID := trace.TraceID{}
	if p.tracing != nil {
		h := parseXRay(p.tracing.Value)
		if h.HasTrace {
			traceID = h.TraceID
			if h.HasParent {
				parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: h.Parent, TraceFlags: trace.FlagsSampled, Remote: true})
			}
		}
	}
	if !traceID.IsValid() {
		traceID = m.newTraceID()
	}
	sid, ok := trace.SpanID{}, false
	if p.tracing != nil {
		sid, ok = parseSpanID(p.tracing.SpanID)
	}
	if !ok {
		sid = m.newSpanID()
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return m.appendPhase(out, p, sc, parent), sc
}

func (m *Mapper) appendPhase(out []sdktrace.ReadOnlySpan, p *phase, sc, parent trace.SpanContext) []sdktrace.ReadOnlySpan {
	st, et := statusOf(p.status, p.errorType)
	attrs := make([]attribute.KeyValue, 0, 4)
	if p.kind == spanInit {
		if p.initType != "" {
			attrs = append(attrs, attrInitType.String(string(p.initType)))
		}
		if p.phase != "" {
			attrs = append(attrs, attrInitPhase.String(string(p.phase)))
		}
		if p.hasDuration {
			attrs = append(attrs, attrInitDuration.Float64(p.durationMs/1000))
		}
	} else if p.hasDuration {
		attrs = append(attrs, attrRestoreDuration.Float64(p.durationMs/1000))
	}
	if et == "" && p.extErr != "" {
		// An extension failed during the phase: the init failed with it.
		st, et = sdktrace.Status{Code: codes.Error, Description: p.extErr}, p.extErr
	}
	if et != "" {
		attrs = append(attrs, attrErrorType.String(et))
	}
	if p.decided {
		attrs = append(attrs, attrColdstart.Bool(p.cold))
	}
	if p.prewarm != "" {
		attrs = append(attrs, attrPrewarm.String(p.prewarm))
	}
	start, end := p.start, p.end
	if start.IsZero() {
		start = end.Add(-msDuration(p.durationMs))
	}
	s := m.stub(p.kind, sc, parent, trace.SpanKindInternal, start, end)
	s.Attributes = attrs
	s.Status = st
	out = append(out, s.Snapshot())
	return m.childSpans(out, sc, s.StartTime, s.EndTime, p.spans)
}
