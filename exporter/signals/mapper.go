package signals

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"runtime"
	"sort"
	"strings"
	"time"

	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// ScopeName is the instrumentation scope of every span, metric and log
// record the mapper produces.
const ScopeName = "github.com/slipstream-otel/slipstream"

// DefaultVersion is telemetry.distro.version when MapperOptions.Version is empty.
const DefaultVersion = "0.0.0-dev"

// MapperOptions configures a Mapper. Only Config is required; a nil Spans,
// Logs or Meter switches that signal off.
type MapperOptions struct {
	Config    *config.Config
	AccountID string                               // from register (may be "")
	Spans     func(Phase, []sdktrace.ReadOnlySpan) // receives finished spans with the phase they belong to; called on the mapper goroutine; the slice is not reused
	Logs      sdklog.Processor                     // the mapper builds its own LoggerProvider with the resource and this processor
	Meter     metric.MeterProvider                 // instruments are recorded here (SDK MeterProvider with a reader)
	Now       func() time.Time                     // clock for observed timestamps and fallbacks; default time.Now
	Rand      io.Reader                            // source of trace and span IDs; default crypto/rand

	// Optional additions (zero values are the defaults).

	// Version is telemetry.distro.version (default DefaultVersion).
	Version string
	// Arch is runtime.GOARCH of the function (default runtime.GOARCH: an
	// extension runs on the function's architecture).
	Arch string
	// Proc samples CPU time and network bytes of the execution environment
	// (see ProcReader); nil disables faas.cpu_usage and faas.net_io.
	Proc ProcSampler
	// Sampler, when set, drops the spans of the invocations it does not
	// keep (their metrics are recorded all the same).
	Sampler Sampler
}

// Invocation is what the lifecycle's INVOKE event tells about an
// invocation (Lambda Managed Instances have none).
type Invocation struct {
	RequestID   string
	Deadline    time.Time
	InvokedARN  string
	TraceHeader string
	// EndFlush: the agent waits for this invocation's runtimeDone and
	// sends what is known then (end mode, adaptive's end branch): its span
	// is closed at runtimeDone, as in end mode.
	EndFlush bool
}

// Limits that keep memory bounded whatever the input.
const (
	maxOpenInvocations = 1024 // oldest dropped beyond this
	doneRing           = 64   // request IDs remembered after their report
	recentRing         = 16   // init/restore/logsDropped events remembered for de-duplication
)

// Mapper turns Telemetry API events into spans, metrics and log records.
//
// All methods must be called from one goroutine (the pipeline worker); the
// Mapper has no internal locking.
type Mapper struct {
	cfg   *config.Config
	spans func(Phase, []sdktrace.ReadOnlySpan)
	logs  sdklog.Processor
	now   func() time.Time
	rand  io.Reader
	proc  ProcSampler
	// sampler: MapperOptions.Sampler (may be nil).
	sampler Sampler

	ri       resourceInfo
	res      *resource.Resource
	logger   otellog.Logger // nil until the first record (lazily built with the resource)
	loggerOf *resource.Resource

	inst  instruments
	price price
	// priced is false when no price is known for the region/architecture.
	priced bool

	// Invocations by request ID, and the order they were seen.
	open    map[string]*invocation
	seq     uint64
	current *invocation // most recently started, not yet reported (non-concurrent mode only)
	lmi     bool        // Lambda Managed Instances: invocations overlap

	// Recently finished invocations, for RuntimeDone and to recognise
	// events delivered twice (Lambda resends a batch whose POST was not
	// answered 2xx): done maps a request ID to the times of its events;
	// doneIDs is the ring that bounds it.
	done     map[string]doneTimes
	doneIDs  [doneRing]string
	doneNext int
	// recent are the latest init, restore and logsDropped events, for the
	// same de-duplication.
	recent     [recentRing]recentEvent
	recentNext int

	// Init and SnapStart restore phases.
	init, restore *phase
	// held phases wait for the first invocation's report to learn whether
	// they delayed it (cold start).
	heldInit, heldRestore *phase
	// linkTo is a phase span in its own trace, linked from the next
	// invocation span.
	linkTo     trace.SpanContext
	awaitFirst bool // an on-demand init or a restore happened: the next start is cold by the lifecycle
	// awaitSuppressed: a suppressed init (phase invoke, after a reset) ran
	// before any invocation started: it delays the next one.
	awaitSuppressed bool
	initType        telemetry.InitType
	runtimeName     string // from initStart/restoreStart runtimeVersion, e.g. "python:3.12.v10"
	restored        bool   // a restore was seen (SnapStart)
	initDurDone     bool   // faas.init_duration recorded from initReport for the current init
	restDurDone     bool
	pendingLines    [2]pendingLog // function, extension

	idBuf [24]byte
	keys  []string
}

// doneTimes are the event times of a finished invocation. A resent event
// carries the same time; an asynchronous invocation retried by Lambda
// reuses the request ID with new times, and is a new invocation.
type doneTimes struct {
	start, report time.Time
	slot          int  // index in doneIDs
	oom           bool // counted as out of memory
}

// recentEvent identifies an init, restore or logsDropped event.
type recentEvent struct {
	typ    telemetry.Type
	t      time.Time
	n1, n2 int64 // logsDropped counts
}

// invocation is the state of one request ID between its first sighting
// and its report.
type invocation struct {
	id          string
	seq         uint64
	started     bool
	start       time.Time
	invokedAt   time.Time
	deadline    time.Time
	invokedARN  string
	functionARN string
	version     string
	traceHeader string

	sc       trace.SpanContext
	parent   trace.SpanContext
	scFrom   int // 0 none, 1 INVOKE header, 2 platform.start
	drop     bool
	logCtx   context.Context
	coldLife bool // first start after an on-demand init / restore
	// suppressed: a suppressed init (phase invoke) ran inside this
	// invocation after a reset. It is a cold start whatever the report
	// says, and the init span goes into its trace.
	suppressed bool

	rd      *telemetry.RuntimeDone
	rdTime  time.Time
	repTime time.Time // platform.report's time, once consumed

	counted    bool // outcome counters recorded
	oom        bool
	oomCounted bool
	spanSent   bool // span emitted at runtimeDone (end mode)
	endFlush   bool // Invocation.EndFlush: span at runtimeDone

	cpu0  ProcSample
	cpuOK bool
}

// NewMapper returns a Mapper for the options.
func NewMapper(o MapperOptions) (*Mapper, error) {
	if o.Config == nil {
		return nil, errors.New("new mapper: Config is nil")
	}
	m := &Mapper{
		cfg:     o.Config,
		spans:   o.Spans,
		logs:    o.Logs,
		now:     o.Now,
		rand:    o.Rand,
		proc:    o.Proc,
		sampler: o.Sampler,
		open:    make(map[string]*invocation),
		done:    make(map[string]doneTimes),
		lmi:     o.Config.ManagedInstances,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	arch := o.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	version := o.Version
	if version == "" {
		version = DefaultVersion
	}
	m.ri = resourceInfo{cfg: o.Config, accountID: o.AccountID, arch: hostArch(arch), version: version}
	m.res = m.ri.build()
	mp := o.Meter
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	if err := m.inst.init(mp.Meter(ScopeName, metric.WithInstrumentationVersion(version)), o.Proc != nil); err != nil {
		return nil, err
	}
	m.price, m.priced = lookupPrice(o.Config.Region, m.ri.arch, o.Config.PriceGBSecond, o.Config.PriceRequest)
	m.initType = telemetry.InitType(o.Config.InitType)
	return m, nil
}

// Resource returns the current resource. It gains faas.instance and
// aws.log.stream.names once platform.initStart (or restoreStart) is consumed.
func (m *Mapper) Resource() *resource.Resource { return m.res }

// OpenInvocations is the number of invocations started (or invoked) and not
// yet reported.
func (m *Mapper) OpenInvocations() int { return len(m.open) }

// RuntimeDone reports whether platform.runtimeDone (or platform.report) of
// requestID has been consumed. Recently reported request IDs are
// remembered; long-forgotten ones report false.
func (m *Mapper) RuntimeDone(requestID string) bool {
	if inv, ok := m.open[requestID]; ok {
		return inv.rd != nil
	}
	return m.reported(requestID)
}

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
		// A finished invocation gets no other runtimeDone: a retried
		// asynchronous invocation (same request ID) starts again first.
		_, ok := m.done[r.RequestID]
		return ok
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
	}
	return false
}

// seenRecently reports whether e is among the recent events, remembering
// it when it is not.
func (m *Mapper) seenRecently(e recentEvent) bool {
	for i := range m.recent {
		r := &m.recent[i]
		if r.typ == e.typ && r.t.Equal(e.t) && r.n1 == e.n1 && r.n2 == e.n2 {
			return true
		}
	}
	m.recent[m.recentNext] = e
	m.recentNext = (m.recentNext + 1) % recentRing
	return false
}

// Invoke records the lifecycle's INVOKE for an invocation: its deadline,
// invoked ARN and X-Ray header (used when platform.start carries none).
func (m *Mapper) Invoke(inv Invocation) {
	if inv.RequestID == "" || m.reported(inv.RequestID) {
		return // late INVOKE of an invocation already reported
	}
	in := m.get(inv.RequestID)
	if in.invokedAt.IsZero() {
		in.invokedAt = m.now()
	}
	in.deadline = inv.Deadline
	if inv.EndFlush {
		in.endFlush = true
	}
	if inv.InvokedARN != "" {
		in.invokedARN = inv.InvokedARN
	}
	if inv.TraceHeader != "" {
		in.traceHeader = inv.TraceHeader
		if in.scFrom < 2 {
			m.assignSpanContext(in, nil, inv.TraceHeader)
			in.scFrom = 1
		}
	}
}

// Consume maps one event. Events must be given in the order the Telemetry
// API delivered them.
func (m *Mapper) Consume(ev telemetry.Event) {
	if telemetry.NilRecord(ev.Record) {
		return // a typed nil pointer: nothing to map (the decoder never makes one)
	}
	if ev.Time.IsZero() {
		ev.Time = m.now() // never export year-1 timestamps
	}
	if m.duplicate(ev) {
		return
	}
	switch r := ev.Record.(type) {
	case *telemetry.Log:
		src := 0
		if ev.Type == telemetry.TypeExtensionLog {
			src = 1
		}
		m.consumeLog(ev, r, src)
		return
	}
	// Platform lines are emitted after a start event (so they carry the new
	// invocation's context or the updated resource) and before the others
	// (so they carry the context of the invocation they close).
	after := ev.Type == telemetry.TypeStart || ev.Type == telemetry.TypeInitStart || ev.Type == telemetry.TypeRestoreStart
	if m.cfg.PlatformLogs && ev.Record != nil && !after {
		m.platformLog(ev)
	}
	switch r := ev.Record.(type) {
	case *telemetry.Start:
		m.consumeStart(ev, r)
	case *telemetry.RuntimeDone:
		m.consumeRuntimeDone(ev, r)
	case *telemetry.Report:
		m.consumeReport(ev, r)
	case *telemetry.InitStart:
		m.consumeInitStart(ev, r)
	case *telemetry.InitRuntimeDone:
		m.consumeInitRuntimeDone(ev, r)
	case *telemetry.InitReport:
		m.consumeInitReport(ev, r)
	case *telemetry.RestoreStart:
		m.consumeRestoreStart(ev, r)
	case *telemetry.RestoreRuntimeDone:
		m.consumeRestoreRuntimeDone(ev, r)
	case *telemetry.RestoreReport:
		m.consumeRestoreReport(ev, r)
	case *telemetry.LogsDropped:
		m.inst.logsDropped(r)
	}
	if m.cfg.PlatformLogs && ev.Record != nil && after {
		m.platformLog(ev)
	}
}

// ConsumeContext takes from a platform.initStart or platform.restoreStart
// what describes the environment (resource, initialization type, runtime)
// without opening an init or restore phase: a spill replay uses it to
// rebuild the resource of data whose init span was already handled.
// Other events are ignored.
func (m *Mapper) ConsumeContext(ev telemetry.Event) {
	switch r := ev.Record.(type) {
	case *telemetry.InitStart:
		if r == nil {
			return
		}
		m.updateResource(r.InstanceID, r.FunctionName, r.FunctionVersion, r.InstanceMaxMemory)
		if r.InitializationType != "" {
			m.initType = r.InitializationType
		}
		if r.InitializationType == telemetry.InitLambdaManagedInstances {
			m.lmi = true
		}
		if r.RuntimeVersion != "" {
			m.runtimeName = r.RuntimeVersion
		}
	case *telemetry.RestoreStart:
		if r == nil {
			return
		}
		m.updateResource(r.InstanceID, r.FunctionName, r.FunctionVersion, r.InstanceMaxMemory)
		if r.RuntimeVersion != "" {
			m.runtimeName = r.RuntimeVersion
		}
		m.restored = true
	}
}

// Shutdown closes what is still open when the environment shuts down:
// pending multi-line log records are emitted; an invocation whose
// runtimeDone was seen is closed at that time with its status; any other
// open invocation is closed at `at` with status Error and error.type =
// reason, and counts as out of memory when reason is "failure". Held init
// and restore spans are emitted. Consume may still be called afterwards
// (late reports).
func (m *Mapper) Shutdown(reason string, at time.Time) {
	m.FlushLogs()
	invs := make([]*invocation, 0, len(m.open))
	for _, inv := range m.open {
		invs = append(invs, inv)
	}
	sort.Slice(invs, func(i, j int) bool { return invs[i].seq < invs[j].seq })
	failure := strings.EqualFold(reason, "failure")
	for _, inv := range invs {
		m.closeAtShutdown(inv, reason, failure, at)
	}
	m.flushPhases()
}

// FlushLogs emits the pending multi-line log records now (they are
// otherwise held until the next line that does not continue them, the next
// platform.report, or Shutdown). Call it before a flush that must carry
// everything seen so far.
func (m *Mapper) FlushLogs() {
	for i := range m.pendingLines {
		m.flushPending(&m.pendingLines[i])
	}
}

// get returns the invocation of a request ID, creating it.
func (m *Mapper) get(id string) *invocation {
	if inv, ok := m.open[id]; ok {
		return inv
	}
	if len(m.open) >= maxOpenInvocations {
		m.evictOldest()
	}
	m.seq++
	inv := &invocation{id: id, seq: m.seq}
	m.open[id] = inv
	return inv
}

func (m *Mapper) evictOldest() {
	var old *invocation
	for _, inv := range m.open {
		if old == nil || inv.seq < old.seq {
			old = inv
		}
	}
	if old != nil {
		// Dropped, not finished: its ID is not remembered, so a late
		// report still gets a span.
		delete(m.open, old.id)
		if m.current == old {
			m.current = nil
		}
	}
}

// forget removes a finished invocation, remembering its ID and event
// times for RuntimeDone and duplicate deliveries.
func (m *Mapper) forget(inv *invocation) {
	delete(m.open, inv.id)
	if m.current == inv {
		m.current = nil
	}
	if old := m.doneIDs[m.doneNext]; old != "" {
		if d, ok := m.done[old]; ok && d.slot == m.doneNext {
			delete(m.done, old)
		}
	}
	d := doneTimes{report: inv.repTime, slot: m.doneNext, oom: inv.oomCounted}
	if inv.started {
		d.start = inv.start
	}
	m.done[inv.id] = d
	m.doneIDs[m.doneNext] = inv.id
	m.doneNext = (m.doneNext + 1) % doneRing
}

// newTraceID and newSpanID draw valid IDs from the random source.
func (m *Mapper) newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		m.readRand(m.idBuf[:16])
		copy(id[:], m.idBuf[:16])
	}
	return id
}

func (m *Mapper) newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		m.readRand(m.idBuf[16:24])
		copy(id[:], m.idBuf[16:24])
	}
	return id
}

// readRand fills b from the ID source, falling back to crypto/rand (which
// does not fail) if a custom source does.
func (m *Mapper) readRand(b []byte) {
	if _, err := io.ReadFull(m.rand, b); err != nil {
		rand.Read(b) //nolint:errcheck // crypto/rand.Read never returns an error
	}
}

// assignSpanContext sets the invocation's span context and remote parent
// from the telemetry tracing (preferred) or the INVOKE header.
func (m *Mapper) assignSpanContext(inv *invocation, tr *telemetry.Tracing, header string) {
	value, spanID := header, ""
	if tr != nil && tr.Value != "" {
		value, spanID = tr.Value, tr.SpanID
	}
	h := parseXRay(value)
	var traceID trace.TraceID
	if h.HasTrace {
		traceID = h.TraceID
	} else {
		traceID = m.newTraceID()
	}
	sid, ok := parseSpanID(spanID)
	if !ok {
		if inv.sc.IsValid() && inv.sc.TraceID() == traceID {
			sid = inv.sc.SpanID() // keep the ID logs may already carry
		} else {
			sid = m.newSpanID()
		}
	}
	// Sampled=1, "?" (we are the downstream that decides) and absent mark
	// the span sampled; Sampled=0 does not, and drops the invocation's
	// spans when TracesRespectSampled is set.
	flags := trace.FlagsSampled
	if h.Sampled == sampledNo {
		flags = 0
	}
	inv.drop = h.Sampled == sampledNo && m.cfg.TracesRespectSampled ||
		m.sampler != nil && !m.sampler.KeepInvocation(h.TraceID, h.HasTrace, inv.id)
	inv.sc = trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: sid, TraceFlags: flags})
	inv.parent = trace.SpanContext{}
	if h.HasTrace && h.HasParent {
		inv.parent = trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: h.Parent, TraceFlags: flags, Remote: true})
	}
	inv.logCtx = nil
}

func (m *Mapper) ensureSpanContext(inv *invocation) {
	if !inv.sc.IsValid() {
		m.assignSpanContext(inv, nil, inv.traceHeader)
	}
}

func (m *Mapper) consumeStart(ev telemetry.Event, r *telemetry.Start) {
	inv := m.get(r.RequestID)
	inv.started = true
	inv.start = ev.Time
	inv.version = r.Version
	inv.functionARN = r.FunctionARN
	if r.Tracing != nil && r.Tracing.Value != "" {
		m.assignSpanContext(inv, r.Tracing, "")
		inv.scFrom = 2
	} else {
		m.ensureSpanContext(inv)
	}
	// A phase that is still pending finished before this start.
	m.finishPhaseAtStart()
	if m.awaitFirst {
		inv.coldLife = true
		m.awaitFirst = false
	}
	if m.awaitSuppressed {
		inv.suppressed = true
		m.awaitSuppressed = false
	}
	if !m.lmi {
		m.current = inv
	}
	if m.proc != nil {
		inv.cpu0, inv.cpuOK = m.proc.Sample()
	}
}

func (m *Mapper) consumeRuntimeDone(ev telemetry.Event, r *telemetry.RuntimeDone) {
	inv := m.get(r.RequestID)
	m.ensureSpanContext(inv)
	inv.rd = r
	inv.rdTime = ev.Time
	m.recordOutcome(inv, r.Status, r.ErrorType)
	if r.Metrics != nil {
		m.inst.invokeDuration.Record(context.Background(), r.Metrics.DurationMs/1000)
		if r.Metrics.ProducedBytes != nil {
			m.inst.producedBytes.Record(context.Background(), *r.Metrics.ProducedBytes)
		}
	}
	m.recordResponseSpans(r.Spans)
	if strings.Contains(r.ErrorType, "OutOfMemory") {
		m.markOOM(inv)
	}
	if m.proc != nil && inv.cpuOK {
		if s, ok := m.proc.Sample(); ok {
			m.inst.procDelta(inv.cpu0, s)
		}
		inv.cpuOK = false
	}
	if inv.endFlush && !inv.spanSent {
		// The agent waits for this invocation (end mode, adaptive's end
		// branch): its span leaves at runtimeDone; the report's figures
		// follow as metrics (and the post-runtime span) later.
		m.emitInvocation(inv, nil, time.Time{}, "", ev.Time)
		inv.spanSent = true
	}
}

func (m *Mapper) consumeReport(ev telemetry.Event, r *telemetry.Report) {
	m.FlushLogs()
	if _, open := m.open[r.RequestID]; !open {
		if d, ok := m.done[r.RequestID]; ok && d.report.IsZero() {
			// Closed at SHUTDOWN before its report came: the span and the
			// outcome are out; only the report's figures remain.
			m.recordReportFigures(r, nil)
			if isOOM(r) && !d.oom {
				m.inst.outOfMemory.Add(context.Background(), 1)
			}
			d.report, d.oom = ev.Time, true
			m.done[r.RequestID] = d
			return
		}
	}
	inv := m.get(r.RequestID)
	m.ensureSpanContext(inv)
	if !inv.counted {
		// No runtimeDone (Lambda Managed Instances, or it was lost).
		m.recordOutcome(inv, r.Status, r.ErrorType)
		m.inst.invokeDuration.Record(context.Background(), r.Metrics.DurationMs/1000)
		m.recordResponseSpans(r.Spans)
	}
	m.recordReportFigures(r, inv)
	if isOOM(r) {
		m.markOOM(inv)
	}
	if inv.spanSent {
		m.emitPostRuntime(inv, r)
	} else {
		m.emitInvocation(inv, r, ev.Time, "", ev.Time)
	}
	inv.repTime = ev.Time
	m.forget(inv)
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
		// Finished; only its report is missing.
		if !inv.spanSent {
			m.emitInvocation(inv, nil, time.Time{}, "", inv.rdTime)
		}
		m.forget(inv)
		return
	}
	if failure {
		m.markOOM(inv)
	}
	if !inv.counted {
		inv.counted = true
		m.inst.countError(reason)
	}
	m.emitInvocation(inv, nil, time.Time{}, reason, at)
	m.forget(inv)
}
