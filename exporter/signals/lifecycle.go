package signals

import (
	"context"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// The init and SnapStart restore phases: their events, whether they
// delayed an invocation (cold start) or ran ahead of demand (prewarm),
// and their failures. DESIGN.md (Semantics) gives the rules.

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
	// suppressed init, restore); it waits for that invocation's span.
	hold bool
	// decided: whether the phase delayed an invocation is known: cold, or
	// not and why (prewarm).
	decided, cold bool
	prewarm       string
	// errCounted: the phase's failure was counted in metricInitErrors.
	errCounted bool
	// extErr is the error.type of an extension that failed during the phase.
	extErr string
}

// key is the phase p belongs to.
func (p *phase) key() Phase {
	if p.kind == spanInit {
		return Phase{Kind: PhaseInit}
	}
	return Phase{Kind: PhaseRestore}
}

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
	typ := r.InitializationType
	if typ == "" {
		typ = telemetry.InitType(m.cfg.InitType)
	}
	hold := typ == telemetry.InitOnDemand || typ == "" || r.Phase == telemetry.PhaseInvoke
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
	m.countPhaseError(p, r.Status, r.ErrorType)
}

func (m *Mapper) consumeInitReport(ev telemetry.Event, r *telemetry.InitReport) {
	p := m.initPhase(ev.Time)
	p.report(ev.Time, r.Status, r.ErrorType, r.Metrics.DurationMs, r.Spans)
	m.countPhaseError(p, r.Status, r.ErrorType)
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
	m.countPhaseError(p, r.Status, r.ErrorType)
}

func (m *Mapper) consumeRestoreReport(ev telemetry.Event, r *telemetry.RestoreReport) {
	p := m.restorePhase(ev.Time)
	p.report(ev.Time, r.Status, r.ErrorType, r.Metrics.DurationMs, r.Spans)
	m.countPhaseError(p, r.Status, r.ErrorType)
	m.inst.restoreDuration.Record(context.Background(), r.Metrics.DurationMs/1000)
	m.restDurDone = true
	m.completePhase(&m.restore, &m.heldRestore)
}

// completePhase ends a phase: a phase that may have delayed an invocation
// is held for it; any other gets its own trace now and is linked from the
// next invocation span. An init of a provisioned-concurrency environment
// delays no invocation: it is marked and counted as such.
func (m *Mapper) completePhase(cur, held **phase) {
	p := *cur
	if p == nil {
		return
	}
	*cur = nil
	if p.hold {
		if *held != nil {
			// Superseded (an init that failed, re-run): it delayed nothing.
			m.addLink(m.emitOwn(*held))
		}
		*held = p
		return
	}
	if p.kind == spanInit && (p.initType == telemetry.InitProvisionedConcurrency ||
		p.initType == "" && m.initType == telemetry.InitProvisionedConcurrency) {
		m.markPrewarm(p, prewarmProvisioned)
	}
	m.addLink(m.emitOwn(p))
}

// maxLinks bounds the phase spans linked from one invocation span.
const maxLinks = 4

func (m *Mapper) addLink(sc trace.SpanContext) {
	if len(m.linkTo) < maxLinks {
		m.linkTo = append(m.linkTo, sc)
	}
}

// markPrewarm marks an init that ran ahead of demand (not a cold start)
// and counts it.
func (m *Mapper) markPrewarm(p *phase, reason string) {
	p.decided, p.cold, p.prewarm = true, false, reason
	m.inst.countPrewarm(reason)
}

// proactive reports whether the on-demand init or restore the first
// invocation would wait for ended longer than the proactive threshold
// before t (that invocation's platform.start, or SHUTDOWN when none came):
// Lambda initialised the environment ahead of demand, and the invocation
// did not wait for it. Such phases are marked, counted and sent in their
// own trace, linked from the next invocation span.
func (m *Mapper) proactive(t time.Time) bool {
	var end time.Time
	for _, p := range [...]*phase{m.heldInit, m.heldRestore} {
		if p != nil && p.phase != telemetry.PhaseInvoke && p.end.After(end) {
			end = p.end
		}
	}
	if end.IsZero() || t.Sub(end) <= m.threshold {
		return false
	}
	for _, h := range [...]**phase{&m.heldInit, &m.heldRestore} {
		if p := *h; p != nil && p.phase != telemetry.PhaseInvoke {
			*h = nil
			m.markPrewarm(p, prewarmProactive)
			m.addLink(m.emitOwn(p))
		}
	}
	return true
}

// countPhaseError counts an init or restore whose status is not success,
// once per phase.
func (m *Mapper) countPhaseError(p *phase, st telemetry.Status, errorType string) {
	if st == "" || st == telemetry.StatusSuccess || p.errCounted {
		return
	}
	p.errCounted = true
	what := failedRestore
	if p.kind == spanInit {
		what = string(telemetry.PhaseInit)
		if p.phase != "" {
			what = string(p.phase)
		}
	}
	m.inst.countInitError(what, errorTypeOf(st, errorType))
}

// consumeExtension counts an extension that failed (state Failed, or an
// errorType), and marks the init it ran in as failed.
func (m *Mapper) consumeExtension(r *telemetry.Extension) {
	if r.ErrorType == "" && !strings.EqualFold(r.State, "failed") {
		return
	}
	et := r.ErrorType
	if et == "" {
		et = r.State
	}
	m.inst.countInitError(failedExtension, et)
	p := m.init
	if p == nil {
		p = m.heldInit
	}
	if p != nil && p.extErr == "" {
		p.extErr = et
	}
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

// flushPhases emits every phase still pending or held, at SHUTDOWN (at):
// an on-demand init or a restore no invocation followed is proactive when
// it ended longer than the threshold before SHUTDOWN.
func (m *Mapper) flushPhases(at time.Time) {
	m.finishPhaseAtStart()
	if m.awaitFirst {
		m.proactive(at)
	}
	for _, h := range []**phase{&m.heldInit, &m.heldRestore} {
		if *h != nil {
			m.emitOwn(*h)
			*h = nil
		}
	}
	m.awaitFirst, m.awaitSuppressed = false, false
}
