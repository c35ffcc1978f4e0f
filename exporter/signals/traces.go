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
	attrErrorType       = attribute.Key("error.type")
)

// phase is an init or SnapStart restore phase: one span from its start
// event to its report.
type phase struct {
	kind        string // spanInit or spanRestore
	start, end  time.Time
	status      telemetry.Status
	errorType   string
	initType    telemetry.InitType
	phase       telemetry.InitPhase
	durationMs  float64
	hasDuration bool
	spans       []telemetry.Span
	tracing     *telemetry.Tracing
	// hold: the phase may have delayed the next invocation (on-demand init,
	// suppressed init, restore); it waits for that invocation's report.
	hold bool
}

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

// childSpans appends one INTERNAL span per platform "spans" entry.
func (m *Mapper) childSpans(out []sdktrace.ReadOnlySpan, parent trace.SpanContext, spans ...[]telemetry.Span) []sdktrace.ReadOnlySpan {
	seen := 0
	for li, list := range spans {
		for i := range list {
			s := &list[i]
			dup := false
			for pj := 0; pj < li && !dup; pj++ {
				for k := range spans[pj] {
					if spans[pj][k].Name == s.Name {
						dup = true
						break
					}
				}
			}
			if dup {
				continue
			}
			seen++
			sc := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: parent.TraceID(), SpanID: m.newSpanID(), TraceFlags: parent.TraceFlags(),
			})
			end := s.Start.Add(msDuration(s.DurationMs))
			out = append(out, m.stub(s.Name, sc, parent, trace.SpanKindInternal, s.Start, end).Snapshot())
		}
	}
	return out
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
// settles the held init/restore phases. rep is nil when the span closes
// before the report (end mode, shutdown). reason is the shutdown reason of
// an invocation that never finished.
func (m *Mapper) emitInvocation(inv *invocation, rep *telemetry.Report, repTime time.Time, reason string, end time.Time) {
	out := make([]sdktrace.ReadOnlySpan, 0, 5)

	cold := inv.coldLife && rep == nil || inv.suppressed
	if rep != nil && (rep.Metrics.InitDurationMs != nil || rep.Metrics.RestoreDurationMs != nil) {
		cold = true
	}
	var links []sdktrace.Link
	settle := func(held **phase, claimed bool) {
		p := *held
		if p == nil {
			return
		}
		*held = nil
		if claimed && !inv.drop {
			m.sendSpans(p.key(), m.phaseSpans(nil, p, inv.sc))
			return
		}
		ps, sc := m.phaseOwnTrace(nil, p)
		m.sendSpans(p.key(), ps)
		links = append(links, sdktrace.Link{SpanContext: sc})
	}
	if rep != nil {
		settle(&m.heldInit, rep.Metrics.InitDurationMs != nil || inv.suppressed)
		settle(&m.heldRestore, rep.Metrics.RestoreDurationMs != nil)
	} else {
		settle(&m.heldInit, inv.coldLife || inv.suppressed)
		settle(&m.heldRestore, inv.coldLife)
	}
	if m.linkTo.IsValid() {
		links = append(links, sdktrace.Link{SpanContext: m.linkTo})
		m.linkTo = trace.SpanContext{}
	}
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
		attribute.Bool("faas.coldstart", cold),
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
	if rep != nil {
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
		out = m.childSpans(out, inv.sc, rdSpans, repSpans)
		if rep != nil {
			out = m.appendPostRuntime(out, inv, rep)
		}
	}
	m.sendSpans(InvocationPhase(inv.id), out)
}

// emitPostRuntime sends the post-runtime span of an invocation whose span
// already left at runtimeDone (end mode).
func (m *Mapper) emitPostRuntime(inv *invocation, rep *telemetry.Report) {
	if inv.drop {
		return
	}
	out := m.appendPostRuntime(nil, inv, rep)
	m.sendSpans(InvocationPhase(inv.id), out)
}

// appendPostRuntime adds the span of the extensions' time after the
// runtime finished: report durationMs - runtimeDone durationMs, when
// positive and the platform did not send its own extensionOverhead span.
func (m *Mapper) appendPostRuntime(out []sdktrace.ReadOnlySpan, inv *invocation, rep *telemetry.Report) []sdktrace.ReadOnlySpan {
	if inv.rd == nil || inv.rd.Metrics == nil {
		return out
	}
	d := rep.Metrics.DurationMs - inv.rd.Metrics.DurationMs
	if d <= 0 || hasSpan([][]telemetry.Span{inv.rd.Spans, rep.Spans}, "extensionOverhead") {
		return out
	}
	begin := m.invocationStart(inv, rep, time.Time{}).Add(msDuration(inv.rd.Metrics.DurationMs))
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: inv.sc.TraceID(), SpanID: m.newSpanID(), TraceFlags: inv.sc.TraceFlags(),
	})
	return append(out, m.stub(spanPostRuntime, sc, inv.sc, trace.SpanKindInternal, begin, begin.Add(msDuration(d))).Snapshot())
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

// phaseSpans appends the span of an init or restore phase (and its
// children) under parent.
func (m *Mapper) phaseSpans(out []sdktrace.ReadOnlySpan, p *phase, parent trace.SpanContext) []sdktrace.ReadOnlySpan {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: parent.TraceID(), SpanID: m.newSpanID(), TraceFlags: parent.TraceFlags(),
	})
	return m.appendPhase(out, p, sc, parent)
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

// key is the phase p belongs to.
func (p *phase) key() Phase {
	if p.kind == spanInit {
		return Phase{Kind: PhaseInit}
	}
	return Phase{Kind: PhaseRestore}
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
	if et != "" {
		attrs = append(attrs, attrErrorType.String(et))
	}
	start, end := p.start, p.end
	if start.IsZero() {
		start = end.Add(-msDuration(p.durationMs))
	}
	s := m.stub(p.kind, sc, parent, trace.SpanKindInternal, start, end)
	s.Attributes = attrs
	s.Status = st
	out = append(out, s.Snapshot())
	return m.childSpans(out, sc, p.spans)
}

// ---- init and restore events ----

func (m *Mapper) updateResource(instance, fn, version string, maxMem int64) {
	changed := false
	set := func(dst *string, v string) {
		if v != "" && *dst != v {
			*dst, changed = v, true
		}
	}
	set(&m.ri.instance, instance)
	set(&m.ri.functionName, fn)
	set(&m.ri.functionVersion, version)
	if maxMem > 0 && m.ri.instanceMaxMem != maxMem {
		m.ri.instanceMaxMem, changed = maxMem, true
	}
	if changed {
		m.res = m.ri.build()
	}
}

func (m *Mapper) consumeInitStart(ev telemetry.Event, r *telemetry.InitStart) {
	m.updateResource(r.InstanceID, r.FunctionName, r.FunctionVersion, r.InstanceMaxMemory)
	if r.InitializationType != "" {
		m.initType = r.InitializationType
	}
	if r.InitializationType == telemetry.InitLambdaManagedInstances {
		m.lmi = true
		m.current = nil
	}
	if r.RuntimeVersion != "" {
		m.runtimeName = r.RuntimeVersion
	}
	m.completePhase(&m.init, &m.heldInit)
	hold := r.InitializationType == telemetry.InitOnDemand || r.InitializationType == "" || r.Phase == telemetry.PhaseInvoke
	m.init = &phase{kind: spanInit, start: ev.Time, end: ev.Time, initType: r.InitializationType, phase: r.Phase, tracing: r.Tracing, hold: hold}
	m.initDurDone = false
	switch {
	case r.Phase == telemetry.PhaseInvoke:
		// A suppressed init, re-run after a reset (crash, timeout), delays
		// the invocation it runs in: the one started and still running
		// (Lambda may send initStart after platform.start), else the next
		// to start (the emulator's order). Its report need not carry
		// initDurationMs: the lifecycle decides.
		if cur := m.current; cur != nil && cur.started && cur.rd == nil {
			cur.suppressed = true
		} else {
			m.awaitSuppressed = true
		}
	case hold:
		m.awaitFirst = true
	}
}

func (m *Mapper) initPhase(t time.Time) *phase {
	if m.init == nil {
		m.init = &phase{kind: spanInit, end: t, initType: m.initType, hold: m.initType == telemetry.InitOnDemand}
	}
	return m.init
}

func (m *Mapper) consumeInitRuntimeDone(ev telemetry.Event, r *telemetry.InitRuntimeDone) {
	p := m.initPhase(ev.Time)
	p.status, p.errorType, p.end = r.Status, r.ErrorType, ev.Time
	p.spans = append(p.spans, r.Spans...)
	if p.phase == "" {
		p.phase = r.Phase
	}
}

func (m *Mapper) consumeInitReport(ev telemetry.Event, r *telemetry.InitReport) {
	m.initPhase(ev.Time).report(ev.Time, r.Status, r.ErrorType, r.Metrics.DurationMs, r.Spans)
	m.inst.initDuration.Record(context.Background(), r.Metrics.DurationMs/1000)
	m.initDurDone = true
	m.completePhase(&m.init, &m.heldInit)
}

// report applies an init or restore report to its phase: the end, the
// duration, a non-success status (or any status when none is known yet),
// and the platform's spans.
func (p *phase) report(at time.Time, status telemetry.Status, errorType string, durationMs float64, spans []telemetry.Span) {
	p.end = at
	p.durationMs, p.hasDuration = durationMs, true
	if status != "" && status != telemetry.StatusSuccess || p.status == "" {
		p.status, p.errorType = status, errorType
	}
	p.spans = append(p.spans, spans...)
}

func (m *Mapper) consumeRestoreStart(ev telemetry.Event, r *telemetry.RestoreStart) {
	m.updateResource(r.InstanceID, r.FunctionName, r.FunctionVersion, r.InstanceMaxMemory)
	if r.RuntimeVersion != "" {
		m.runtimeName = r.RuntimeVersion
	}
	m.restored = true
	m.completePhase(&m.restore, &m.heldRestore)
	m.restore = &phase{kind: spanRestore, start: ev.Time, end: ev.Time, tracing: r.Tracing, hold: true}
	m.restDurDone = false
	m.awaitFirst = true
}

func (m *Mapper) restorePhase(t time.Time) *phase {
	if m.restore == nil {
		m.restore = &phase{kind: spanRestore, end: t, hold: true}
	}
	return m.restore
}

func (m *Mapper) consumeRestoreRuntimeDone(ev telemetry.Event, r *telemetry.RestoreRuntimeDone) {
	p := m.restorePhase(ev.Time)
	p.status, p.errorType, p.end = r.Status, r.ErrorType, ev.Time
	p.spans = append(p.spans, r.Spans...)
}

func (m *Mapper) consumeRestoreReport(ev telemetry.Event, r *telemetry.RestoreReport) {
	m.restorePhase(ev.Time).report(ev.Time, r.Status, r.ErrorType, r.Metrics.DurationMs, r.Spans)
	m.inst.restoreDuration.Record(context.Background(), r.Metrics.DurationMs/1000)
	m.restDurDone = true
	m.completePhase(&m.restore, &m.heldRestore)
}

// completePhase ends a phase: a phase that may have delayed an invocation
// is held for it; any other gets its own trace now and is linked from the
// next invocation span.
func (m *Mapper) completePhase(cur, held **phase) {
	p := *cur
	if p == nil {
		return
	}
	*cur = nil
	if p.hold {
		if *held != nil {
			m.emitOwn(*held)
		}
		*held = p
		return
	}
	m.linkTo = m.emitOwn(p)
}

func (m *Mapper) emitOwn(p *phase) trace.SpanContext {
	out, sc := m.phaseOwnTrace(make([]sdktrace.ReadOnlySpan, 0, 1+len(p.spans)), p)
	m.sendSpans(p.key(), out)
	return sc
}

// finishPhaseAtStart completes a phase whose report never came: an
// invocation starting means it is over.
func (m *Mapper) finishPhaseAtStart() {
	m.completePhase(&m.init, &m.heldInit)
	m.completePhase(&m.restore, &m.heldRestore)
}

// flushPhases emits every phase still pending or held (at shutdown).
func (m *Mapper) flushPhases() {
	m.finishPhaseAtStart()
	for _, h := range []**phase{&m.heldInit, &m.heldRestore} {
		if *h != nil {
			m.emitOwn(*h)
			*h = nil
		}
	}
	m.awaitFirst, m.awaitSuppressed = false, false
}
