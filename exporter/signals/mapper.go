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
	// linkTo are phase spans in their own trace, linked from the next
	// invocation span.
	linkTo     []trace.SpanContext
	awaitFirst bool // an on-demand init or a restore happened: the next start is cold unless it comes after the proactive threshold
	// threshold is the proactive-initialization threshold: an on-demand
	// init or a restore that ended longer than this before the next
	// platform.start did not delay it.
	threshold time.Duration
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
	rd            bool // its runtimeDone was consumed
	oom           bool // counted as out of memory
	// guessed: counted as out of memory by the SHUTDOWN guess (reason
	// failure, neither runtimeDone nor report), which a late runtimeDone or
	// report may retract.
	guessed bool
	// inv is the finished invocation: a late runtimeDone or report after
	// SHUTDOWN closed it adds its figures in the same trace.
	inv *invocation
	// sc and parent are the invocation span's context and remote parent,
	// for the function's own data that arrives late (FunctionParent).
	sc, parent trace.SpanContext
}

// recentEvent identifies an init, restore, extension or logsDropped event.
type recentEvent struct {
	typ    telemetry.Type
	t      time.Time
	n1, n2 int64  // logsDropped counts
	name   string // extension name
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
	tenantID    string // tenantId of its platform events (tenant isolation mode)

	sc       trace.SpanContext
	parent   trace.SpanContext
	scFrom   int // 0 none, 1 INVOKE header, 2 platform.start
	drop     bool
	pinned   bool // the function's data was nested under sc: keep its span ID
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
	oomGuessed bool      // oomCounted by the SHUTDOWN guess
	spanSent   bool      // the invocation span was emitted
	spanEnd    time.Time // its end
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
	if err := m.inst.init(mp.Meter(ScopeName, metric.WithInstrumentationVersion(version)), m.trigger()); err != nil {
		return nil, err
	}
	m.price, m.priced = lookupPrice(o.Config.Region, m.ri.arch, o.Config.PriceGBSecond, o.Config.PriceRequest)
	m.initType = telemetry.InitType(o.Config.InitType)
	m.threshold = o.Config.ProactiveInitThreshold
	if m.threshold <= 0 {
		m.threshold = config.DefaultProactiveInitThreshold
	}
	return m, nil
}

// Resource returns the current resource. It gains service.instance.id,
// faas.instance and aws.log.stream.names once platform.initStart (or
// restoreStart) is consumed.
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
	case *telemetry.Extension:
		m.consumeExtension(r)
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
// runtimeDone was seen (its span is out) only waits no longer for its
// report; any other open invocation is closed at `at` with status Error
// and error.type = reason, counts as a timeout when reason is "timeout"
// (an error otherwise), and as out of memory when reason is "failure".
// Held init and restore spans are emitted. Consume may still be called
// afterwards: a late runtimeDone or report adds its figures, in a
// postRuntime span and the metrics, and retracts an out-of-memory guess it
// contradicts.
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
	if len(invs) > 0 {
		m.recordActive()
	}
	m.flushPhases(at)
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
	d := doneTimes{report: inv.repTime, slot: m.doneNext, rd: inv.rd != nil, oom: inv.oomCounted, guessed: inv.oomGuessed, inv: inv, sc: inv.sc, parent: inv.parent}
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
	if inv.pinned && inv.sc.IsValid() && inv.sc.TraceID() == traceID {
		// The function's data was already nested under this ID (see
		// FunctionParent): platform.start's spanId no longer replaces it.
		sid, ok = inv.sc.SpanID(), true
	}
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
	inv.setTenant(r.TenantID)
	if r.Tracing != nil && r.Tracing.Value != "" {
		m.assignSpanContext(inv, r.Tracing, "")
		inv.scFrom = 2
	} else {
		m.ensureSpanContext(inv)
	}
	// A phase that is still pending finished before this start.
	m.finishPhaseAtStart()
	if m.awaitFirst {
		m.awaitFirst = false
		if !m.proactive(ev.Time) {
			inv.coldLife = true
		}
	}
	if m.awaitSuppressed {
		inv.suppressed = true
		m.awaitSuppressed = false
	}
	if !m.lmi {
		m.current = inv
	}
	m.recordActive()
}

// recordActive records the invocations in flight under Lambda Managed
// Instances, where they overlap: started and not yet reported (they have
// no runtimeDone there). Elsewhere one runs at a time and nothing is
// recorded.
func (m *Mapper) recordActive() {
	if !m.lmi {
		return
	}
	n := int64(0)
	for _, inv := range m.open {
		if inv.started && inv.rd == nil && !inv.counted {
			n++
		}
	}
	m.inst.activeInvocations.Record(context.Background(), n)
}

// setTenant keeps the tenant ID of a platform event (empty outside tenant
// isolation mode).
func (inv *invocation) setTenant(id string) {
	if id != "" {
		inv.tenantID = id
	}
}

func (m *Mapper) consumeRuntimeDone(ev telemetry.Event, r *telemetry.RuntimeDone) {
	if _, open := m.open[r.RequestID]; !open {
		if d, ok := m.done[r.RequestID]; ok {
			m.lateRuntimeDone(r, d)
			return
		}
	}
	inv := m.get(r.RequestID)
	m.ensureSpanContext(inv)
	inv.rd = r
	inv.rdTime = ev.Time
	inv.setTenant(r.TenantID)
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
	if !inv.spanSent {
		// Every invocation span ends at runtimeDone, whatever the flush
		// mode: the report's figures follow on the postRuntime span.
		m.emitInvocation(inv, nil, "", ev.Time)
	}
}

func (m *Mapper) consumeReport(ev telemetry.Event, r *telemetry.Report) {
	m.FlushLogs()
	if _, open := m.open[r.RequestID]; !open {
		if d, ok := m.done[r.RequestID]; ok && d.report.IsZero() {
			m.lateReport(ev, r, d)
			return
		}
	}
	inv := m.get(r.RequestID)
	m.ensureSpanContext(inv)
	inv.setTenant(r.TenantID)
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
		// No runtimeDone (Lambda Managed Instances send none): the span
		// ends at the report and carries its figures.
		m.emitInvocation(inv, r, "", ev.Time)
	}
	inv.repTime = ev.Time
	m.forget(inv)
	m.recordActive()
}
