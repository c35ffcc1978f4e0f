package exporter

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/extension"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// Invocation is what the mapper learns from an INVOKE event. It mirrors
// signals.Invocation field by field (a plain conversion turns one into the
// other).
type Invocation struct {
	RequestID   string
	Deadline    time.Time
	InvokedARN  string
	TraceHeader string
	// EndFlush: Invoke waits for this invocation's runtimeDone and sends
	// what is known then (end mode, adaptive's end branch).
	EndFlush bool
}

// Mapper is what the pipeline needs from the mapping (package
// exporter/signals). Every method is called from the worker goroutine only.
type Mapper interface {
	Consume(ev telemetry.Event)
	Invoke(inv Invocation)
	Shutdown(reason string, at time.Time)
	OpenInvocations() int
	RuntimeDone(requestID string) bool
	Resource() *resource.Resource
}

// SignalsMapper returns an Options.NewMapper that builds the
// exporter/signals mapper; extra, when not nil, sets its optional fields
// (Version, Arch, Proc).
func SignalsMapper(extra func(*signals.MapperOptions)) func(MapperOptions) (Mapper, error) {
	return func(o MapperOptions) (Mapper, error) {
		so := signals.MapperOptions{Config: o.Config, AccountID: o.AccountID, Spans: o.Spans,
			Logs: o.Logs, Meter: o.Meter, Now: o.Now, Rand: o.Rand}
		if extra != nil {
			extra(&so)
		}
		m, err := signals.NewMapper(so)
		if err != nil {
			return nil, err
		}
		return signalsMapper{m}, nil
	}
}

// signalsMapper adapts *signals.Mapper to Mapper (its Invoke takes
// signals.Invocation, a field-for-field twin of Invocation).
type signalsMapper struct{ *signals.Mapper }

func (m signalsMapper) Invoke(inv Invocation) { m.Mapper.Invoke(signals.Invocation(inv)) }

// contextConsumer is implemented by mappers that can take the resource
// from an initStart/restoreStart without mapping its phase (a spill
// replay's context event).
type contextConsumer interface{ ConsumeContext(ev telemetry.Event) }

// logFlusher is implemented by mappers that hold multi-line log records:
// FlushLogs emits them before a flush that must carry everything known.
type logFlusher interface{ FlushLogs() }

// MapperOptions mirrors signals.MapperOptions: what the pipeline hands the
// mapper it builds through Options.NewMapper.
type MapperOptions struct {
	Config    *config.Config
	AccountID string
	// Spans receives finished spans (the pipeline's queue); called on the
	// worker goroutine during Consume/Shutdown.
	Spans func([]sdktrace.ReadOnlySpan)
	// Logs is the pipeline's log processor; the mapper builds its own
	// LoggerProvider with its resource and this processor.
	Logs sdklog.Processor
	// Meter is the pipeline's SDK MeterProvider (ManualReader with the
	// configured temporality). Replays get a no-op provider.
	Meter metric.MeterProvider
	Now   func() time.Time
	Rand  io.Reader
}

// Options are the pipeline's collaborators and tuning knobs; zero values
// take the defaults documented on each field.
type Options struct {
	// HTTPClient, when set, supplies the base RoundTripper (its Transport)
	// instead of the transports built from the configuration (TLS, proxy
	// and dial timeouts are then the caller's). Tests pass an in-memory one.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// AccountID from the Extensions API register response (may be "").
	AccountID string
	// NewMapper builds a mapper (default SignalsMapper(nil), the
	// exporter/signals mapping). It is called once in New and once per
	// replayed spill file.
	NewMapper func(MapperOptions) (Mapper, error)
	// Filter is the pre-queue filter step applied to every batch in Enqueue
	// before it is queued (and therefore before anything is spilled).
	// Default: identity. It must not block and must not keep the slice.
	Filter func([]telemetry.Event) []telemetry.Event
	// Rand is the source of random IDs (default crypto/rand).
	Rand io.Reader
	// Jitter returns numbers in [0,1) for retry jitter (default math/rand/v2).
	Jitter func() float64

	// IntakeMaxBytes bounds the decoded events waiting for the worker
	// (default BufferMaxBytes/8, at least 256 KiB); a batch larger than
	// the bound is taken whole when the intake is empty.
	IntakeMaxBytes int64
	// BatchMaxBytes is the largest export batch (default BufferMaxBytes/4,
	// within 64 KiB..1 MiB); a full batch is sent at once.
	BatchMaxBytes int64
	// BatchDelay is the age at which queued data is sent although the
	// batch is not full (default 200ms).
	BatchDelay time.Duration
	// MetricInterval is how often metrics are collected and sent while
	// data flows (default 10s); every forced flush also sends them.
	MetricInterval time.Duration
	// Margin is kept before invocation and shutdown deadlines (default 100ms).
	Margin time.Duration
	// AwakeTick is the resolution of the awake-time clock that bounds a
	// request (default 100ms).
	AwakeTick time.Duration
	// FreezeGap is the resolution of the worker's awake-time clock, on
	// which batch age and the metric interval are measured (default
	// 25ms): a step of the wall clock longer than FreezeGap between two
	// of the worker's readings is a freeze of the environment and does
	// not count; while it waits for awake time, the worker reads the
	// clock every FreezeGap/2.
	FreezeGap time.Duration
	// Breaker: open after BreakerThreshold consecutive failures (default
	// 3), for BreakerMinOpen (default 5s) doubling to BreakerMaxOpen
	// (default 5m) while probes fail.
	BreakerThreshold int
	BreakerMinOpen   time.Duration
	BreakerMaxOpen   time.Duration
	// RetryInitial and RetryMax shape the exponential backoff (defaults
	// 100ms and 30s) used when the server gives no Retry-After.
	RetryInitial time.Duration
	RetryMax     time.Duration
}

// Pipeline receives decoded telemetry, maps it on one worker goroutine,
// buffers the outputs in one bounded queue and exports them with the OTLP
// exporters under the configured flush policy. See doc.go.
type Pipeline struct {
	cfg      *config.Config
	log      *slog.Logger
	now      func() time.Time
	o        Options
	mode     config.FlushMode
	disabled bool
	// platform: platform events are subscribed. Without them no
	// invocation ever starts or ends, so INVOKEs are not tracked.
	platform bool

	exp        *exporters
	mp         *sdkmetric.MeterProvider
	reader     *sdkmetric.ManualReader
	cumulative bool
	inst       *selfMetrics
	br         *breaker
	bo         backoff
	sp         *spill // nil when spill is disabled

	wake chan struct{} // capacity 1: "there is something to do"
	done chan struct{} // closed when Run returns
	// results carries the outcome of each export request from its sender
	// goroutine back to the worker, which reaps every sender it started.
	results chan sendResult

	// invMu guards invokes, invoked, lastInvoke and thawAt: Invoke's own
	// lock, so that handing an INVOKE over never waits behind Enqueue's
	// intake work (a flood) under mu. The worker takes mu, then invMu.
	invMu      sync.Mutex
	invokes    []Invocation
	invoked    int
	lastInvoke time.Time
	// thawAt is when the latest INVOKE not yet seen by the worker arrived:
	// the environment may have been frozen until then (see tickAwake).
	thawAt time.Time

	// mu guards in, room, finished, closing, newWaiters, waiting,
	// shutdownReq, closeReq, running, stopped and intakeDrops.
	mu sync.Mutex
	in intake
	// room is closed by the worker when it takes the intake: an Enqueue
	// that found the intake full waits on it (created on demand).
	room chan struct{}
	// finished mirrors w.finished for Enqueue: nothing is taken any more
	// but by Close's spill. closing: Close's spill is done (or running):
	// nothing is taken any more at all.
	finished   bool
	closing    bool
	newWaiters []*waiter
	// waiting are the end/adaptive Invokes waiting, by request ID: Enqueue
	// tells them when their runtimeDone arrives.
	waiting     map[string]*waiter
	shutdownReq *shutdownReq
	closeReq    *closeReq
	running     bool
	stopped     bool
	intakeDrops [2]int64 // logs, platform

	// closeMu serializes the spill of Close calls made after the worker
	// stopped; closeOnce shuts the exporters down once, with closeErr.
	closeMu   sync.Mutex
	closeOnce sync.Once
	closeErr  error

	// statsMu guards stats.
	statsMu sync.Mutex
	stats   Stats

	queueBytes atomic.Int64 // mirror of w.q.total() for Stats and the gauge

	// w is owned by the goroutine running Run (or by Close when Run never ran).
	w worker
}

// waiter is an end/adaptive Invoke waiting for its runtimeDone and flush.
type waiter struct {
	requestID string
	// ctx ends at the invocation's deadline minus the margin.
	ctx context.Context
	// flush bounds the export once runtimeDone has arrived (FlushTimeout).
	flush time.Duration
	// flushing is closed by the worker when runtimeDone has arrived and
	// the export starts; done when it has finished.
	flushing, done chan struct{}
	// arrived is closed by Enqueue when the invocation's runtimeDone (or
	// report) reaches the pipeline: the export budget runs from then, even
	// when the worker is still busy with an earlier request. arrivedClosed
	// is guarded by Pipeline.mu.
	arrived       chan struct{}
	arrivedClosed bool

	// Worker-only, once runtimeDone has been mapped: the flush covers the
	// items queued up to mark and a metrics collection of generation
	// mgen or later, and is given up at deadline.
	flushStarted bool
	mark, mgen   uint64
	deadline     time.Time
}

type shutdownReq struct {
	ctx      context.Context
	reason   string
	at       time.Time // when SHUTDOWN arrived
	deadline time.Time // SHUTDOWN deadline minus the margin
	reply    chan error
}

type closeReq struct {
	reply chan error
}

// New builds a pipeline from cfg. It makes no network call: exporters
// connect lazily, and nothing is sent before the first Invoke or Shutdown.
// Spill files left by a previous process are replayed when Run starts.
func New(cfg *config.Config, log *slog.Logger, opts Options) (*Pipeline, error) {
	if cfg == nil {
		return nil, errors.New("exporter: nil config")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := opts
	if o.NewMapper == nil {
		o.NewMapper = SignalsMapper(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Filter == nil {
		o.Filter = func(evs []telemetry.Event) []telemetry.Event { return evs }
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Jitter == nil {
		o.Jitter = mrand.Float64
	}
	buf := cfg.BufferMaxBytes
	if buf <= 0 {
		buf = 4 << 20
	}
	if o.IntakeMaxBytes <= 0 {
		o.IntakeMaxBytes = max(buf/8, 256<<10)
	}
	if o.BatchMaxBytes <= 0 {
		o.BatchMaxBytes = min(max(buf/4, 64<<10), 1<<20)
	}
	if o.BatchDelay <= 0 {
		o.BatchDelay = 200 * time.Millisecond
	}
	if o.MetricInterval <= 0 {
		o.MetricInterval = 10 * time.Second
	}
	if o.Margin <= 0 {
		o.Margin = 100 * time.Millisecond
	}
	if o.AwakeTick <= 0 {
		o.AwakeTick = 100 * time.Millisecond
	}
	if o.FreezeGap <= 0 {
		o.FreezeGap = 25 * time.Millisecond
	}
	p := &Pipeline{
		cfg:      cfg,
		log:      log,
		now:      o.Now,
		o:        o,
		mode:     cfg.Flush,
		disabled: !cfg.ExportEnabled,
		br:       newBreaker(o.BreakerThreshold, o.BreakerMinOpen, o.BreakerMaxOpen),
		bo:       backoff{Initial: o.RetryInitial, Max: o.RetryMax, Rand: o.Jitter},
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		results:  make(chan sendResult, 4),
	}
	if p.mode == "" {
		p.mode = config.FlushAdaptive
	}
	p.platform = slices.Contains(cfg.TelemetryTypes, "platform")
	if !p.platform && (p.mode == config.FlushEnd || p.mode == config.FlushAdaptive) {
		// Without platform events no runtimeDone ever arrives: waiting for
		// it would hold every invocation until its deadline.
		log.Warn("SLIPSTREAM_TELEMETRY_TYPES has no platform events: SLIPSTREAM_FLUSH=" + string(p.mode) + " runs as async")
		p.mode = config.FlushAsync
	}
	p.in.max = o.IntakeMaxBytes
	p.w.q.max = buf

	var base http.RoundTripper
	if o.HTTPClient != nil {
		base = o.HTTPClient.Transport
		if base == nil {
			base = http.DefaultTransport
		}
	}
	p.exp = &exporters{}
	if !p.disabled {
		exp, err := newExporters(context.Background(), cfg.OTLP, base)
		if err != nil {
			return nil, fmt.Errorf("exporter: %w", err)
		}
		p.exp = exp
	}

	sel, cumulative := temporality(cfg.Temporality)
	p.cumulative = cumulative
	p.reader = sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(sel))
	p.mp = sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(p.reader),
		sdkmetric.WithResource(resource.Empty()),
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter),
	)
	var err error
	if p.inst, err = newSelfMetrics(p.mp, p); err != nil {
		return nil, fmt.Errorf("exporter: self metrics: %w", err)
	}

	p.w.tr = newTracker()
	m, err := o.NewMapper(p.mapperOptions(p.mp))
	if err != nil {
		return nil, fmt.Errorf("exporter: mapper: %w", err)
	}
	p.w.m = m

	if cfg.SpillMaxBytes > 0 && cfg.SpillDir != "" {
		p.sp = &spill{
			dir: cfg.SpillDir, max: cfg.SpillMaxBytes, ttl: cfg.SpillTTL,
			env: cfg.Region + "/" + cfg.FunctionName + "/" + cfg.FunctionVersion,
			now: o.Now, rand: o.Rand,
		}
	}
	return p, nil
}

func (p *Pipeline) mapperOptions(mp metric.MeterProvider) MapperOptions {
	return MapperOptions{
		Config:    p.cfg,
		AccountID: p.o.AccountID,
		Spans:     p.onSpans,
		Logs:      logProcessor{p: p},
		Meter:     mp,
		Now:       p.o.Now,
		Rand:      p.o.Rand,
	}
}

// temporality returns the reader's selector for the configured preference
// (OpenTelemetry specification, OTLP exporter:
// OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE).
func temporality(pref string) (sdkmetric.TemporalitySelector, bool) {
	switch pref {
	case "delta":
		return func(k sdkmetric.InstrumentKind) metricdata.Temporality {
			switch k {
			case sdkmetric.InstrumentKindUpDownCounter, sdkmetric.InstrumentKindObservableUpDownCounter:
				return metricdata.CumulativeTemporality
			}
			return metricdata.DeltaTemporality
		}, false
	case "lowmemory":
		return func(k sdkmetric.InstrumentKind) metricdata.Temporality {
			switch k {
			case sdkmetric.InstrumentKindCounter, sdkmetric.InstrumentKindHistogram:
				return metricdata.DeltaTemporality
			}
			return metricdata.CumulativeTemporality
		}, false
	}
	return sdkmetric.DefaultTemporalitySelector, true
}

func (p *Pipeline) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Enqueue hands decoded events to the pipeline (telemetry.Sink): they go
// through the pre-queue filter into the bounded intake. When the intake is
// full while the worker runs, Enqueue waits until the worker takes it
// (backpressure: the worker always takes it again, at the latest when the
// requests in flight end, so the wait is bounded by the export timeout).
// Before Run and once SHUTDOWN's flush is over it never blocks: when the
// intake is full, function/extension log events are dropped first and
// platform events last. Once the worker has stopped (or Close's spill has
// taken the intake), every event is dropped. Every drop is counted.
func (p *Pipeline) Enqueue(events []telemetry.Event) {
	if p.disabled || len(events) == 0 {
		return
	}
	events = p.o.Filter(events)
	if len(events) == 0 {
		return
	}
	p.mu.Lock()
	if len(p.waiting) > 0 {
		p.noteArrivals(events)
	}
	need := batchBytes(events)
	for waited := false; p.in.bytes+need > p.in.max && p.in.bytes > 0 && p.running && !p.finished && p.closeReq == nil && !p.closing; waited = true {
		if p.room == nil {
			p.room = make(chan struct{})
		}
		room := p.room
		p.mu.Unlock()
		if !waited {
			p.bump(func(s *Stats) { s.IntakeWaits++ })
		}
		p.signal()
		<-room
		p.mu.Lock()
	}
	var dl, dp int
	if p.closing || p.stopped {
		// The worker is gone and Close's spill has taken the intake:
		// nothing would ever take these events.
		dl, dp = countKinds(events)
	} else {
		dl, dp = p.in.addSized(events, need)
	}
	p.intakeDrops[0] += int64(dl)
	p.intakeDrops[1] += int64(dp)
	p.mu.Unlock()
	if dl+dp > 0 {
		p.inst.items(context.Background(), "logs", "dropped", int64(dl))
		p.inst.items(context.Background(), "platform_events", "dropped", int64(dp))
	}
	p.signal()
}

// countKinds returns the number of log and of platform events in evs.
func countKinds(evs []telemetry.Event) (logs, platform int) {
	for _, ev := range evs {
		if isLogEvent(ev) {
			logs++
		} else {
			platform++
		}
	}
	return logs, platform
}

// openRoom releases the Enqueues waiting for the intake. p.mu must be held.
func (p *Pipeline) openRoom() {
	if p.room != nil {
		close(p.room)
		p.room = nil
	}
}

// noteArrivals tells the waiting Invokes whose runtimeDone (or report) is
// among events that it has arrived. p.mu must be held.
func (p *Pipeline) noteArrivals(events []telemetry.Event) {
	for _, ev := range events {
		var id string
		switch r := ev.Record.(type) {
		case *telemetry.RuntimeDone:
			if r != nil {
				id = r.RequestID
			}
		case *telemetry.Report:
			if r != nil {
				id = r.RequestID
			}
		default:
			continue
		}
		if w, ok := p.waiting[id]; ok && !w.arrivedClosed {
			w.arrivedClosed = true
			close(w.arrived)
		}
	}
}

// Invoke handles an INVOKE (extension.Handler). In async and periodic mode,
// and in adaptive mode for a busy function, it returns at once. In end
// mode, and in adaptive mode for the first invocation and after a gap
// longer than MaxDataAge, it waits until the invocation's runtimeDone has
// been mapped and what is known has been sent, but never longer than
// FlushTimeout nor past the invocation deadline minus the margin; it does
// not wait at all while the circuit breaker is open.
func (p *Pipeline) Invoke(ctx context.Context, ev extension.Event) {
	now := p.now()
	inv := Invocation{RequestID: ev.RequestID, Deadline: ev.Deadline(), InvokedARN: ev.InvokedFunctionARN}
	if ev.Tracing != nil {
		inv.TraceHeader = ev.Tracing.Value
	}
	p.invMu.Lock()
	first := p.invoked == 0
	gap := !first && now.Sub(p.lastInvoke) > p.cfg.MaxDataAge
	p.invoked++
	p.lastInvoke = now
	p.thawAt = now
	if p.disabled {
		p.invMu.Unlock()
		return
	}
	wait := p.mode == config.FlushEnd || p.mode == config.FlushAdaptive && (first || gap)
	// Waiting for runtimeDone costs nothing while the function runs, so it
	// is bounded by the invocation's deadline; the export after it is
	// bounded by FlushTimeout (and the deadline).
	budget := p.flushTimeout()
	if !inv.Deadline.IsZero() {
		budget = inv.Deadline.Add(-p.o.Margin).Sub(now)
	}
	wait = wait && budget > 0 && !p.br.blocking(now)
	// The mapper closes the span of an invocation that is waited for at
	// its runtimeDone, so that it leaves with this flush.
	inv.EndFlush = wait
	if p.platform {
		// Without platform events the invocation would stay open until
		// SHUTDOWN closed it as an error.
		p.invokes = append(p.invokes, inv)
	}
	p.invMu.Unlock()
	if !wait {
		p.signal()
		return
	}
	wctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	w := &waiter{requestID: inv.RequestID, ctx: wctx, flush: p.flushTimeout(),
		flushing: make(chan struct{}), done: make(chan struct{}), arrived: make(chan struct{})}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.newWaiters = append(p.newWaiters, w)
	if p.waiting == nil {
		p.waiting = make(map[string]*waiter)
	}
	p.waiting[inv.RequestID] = w
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.waiting[inv.RequestID] == w {
			delete(p.waiting, inv.RequestID)
		}
		p.mu.Unlock()
	}()
	p.signal()
	select {
	case <-w.done:
		return
	case <-wctx.Done():
		return
	case <-p.done:
		return
	case <-w.flushing:
	case <-w.arrived:
	}
	// runtimeDone has arrived: a slow backend, or a worker still busy with
	// an earlier request, holds the invocation no longer than FlushTimeout
	// from then. The request itself is not cut (cutting it would send it
	// twice).
	t := time.NewTimer(w.flush)
	defer t.Stop()
	select {
	case <-w.done:
	case <-wctx.Done():
	case <-p.done:
	case <-t.C:
	}
}

func (p *Pipeline) flushTimeout() time.Duration {
	if p.cfg.FlushTimeout > 0 {
		return p.cfg.FlushTimeout
	}
	return 500 * time.Millisecond
}

// Shutdown handles SHUTDOWN (extension.Handler): it waits (bounded) for the
// open invocations' platform.report, closes what is still open, sends
// everything until the deadline minus twice the margin, then cancels the
// requests still in flight and spills what was not sent, so that it
// returns by the deadline minus the margin whatever the backend does.
// The listener must stay open until Shutdown returns.
func (p *Pipeline) Shutdown(ctx context.Context, ev extension.Event) error {
	if p.disabled {
		return nil
	}
	now := p.now()
	dl := ev.Deadline()
	if d, ok := ctx.Deadline(); ok && (dl.IsZero() || d.Before(dl)) {
		dl = d
	}
	if dl.IsZero() {
		dl = now.Add(2 * time.Second)
	}
	req := &shutdownReq{
		ctx: ctx, reason: ev.ShutdownReason, at: now,
		deadline: dl.Add(-p.o.Margin), reply: make(chan error, 1),
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return errors.New("exporter: shutdown: worker stopped")
	}
	p.shutdownReq = req
	p.mu.Unlock()
	p.signal()
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("exporter: shutdown: %w", ctx.Err())
	case <-p.done:
		return errors.New("exporter: shutdown: worker stopped")
	}
}

// Run is the worker: it maps events, exports, retries and replays spill
// files. It returns nil after Close, or when ctx is canceled (what is
// left is then spilled by Close).
func (p *Pipeline) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running || p.stopped {
		p.mu.Unlock()
		return errors.New("exporter: Run called twice")
	}
	p.running = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.running, p.stopped = false, true
		p.openRoom()
		p.mu.Unlock()
		close(p.done)
	}()
	if !p.disabled {
		p.replay()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, stop := p.step()
		if stop {
			p.stopSenders()
			return nil
		}
		timer.Stop()
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(max(next.Sub(p.now()), 0))
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			p.stopSenders()
			return nil
		case <-p.wake:
		case r := <-p.results:
			p.onResult(r)
		case <-tc:
		}
	}
}

// Close stops the worker and spills what is still queued (nothing is sent
// any more), then shuts the exporters down.
func (p *Pipeline) Close(ctx context.Context) error {
	var errs []error
	p.mu.Lock()
	running := p.running
	if running {
		req := &closeReq{reply: make(chan error, 1)}
		p.closeReq = req
		p.mu.Unlock()
		p.signal()
		select {
		case err := <-req.reply:
			errs = append(errs, err)
		case <-p.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("exporter: close: %w", ctx.Err()))
		}
	} else {
		stopped := p.stopped
		p.stopped = true
		p.openRoom()
		p.mu.Unlock()
		if stopped {
			// Run has returned, or an earlier Close stopped a worker that
			// never ran: the worker state is ours once done is closed.
			<-p.done
		}
		if !p.disabled {
			p.closeMu.Lock()
			errs = append(errs, p.spillAll())
			p.closeMu.Unlock()
		}
		if !stopped {
			// Run never ran and now never will (it refuses to start once
			// stopped): release everything that waits for the worker.
			close(p.done)
		}
	}
	p.closeOnce.Do(func() { p.closeErr = errors.Join(p.exp.shutdown(ctx), p.mp.Shutdown(ctx)) })
	errs = append(errs, p.closeErr)
	return errors.Join(errs...)
}

// Stats are the pipeline's counters since New.
type Stats struct {
	Traces, Logs, Metrics SignalStats
	// IntakeDroppedLogs and IntakeDroppedPlatform count events dropped by
	// Enqueue because the intake was full.
	IntakeDroppedLogs, IntakeDroppedPlatform int64
	// IntakeWaits counts the times Enqueue waited for the worker to take
	// a full intake (backpressure instead of a drop).
	IntakeWaits        int64
	QueueBytes         int64
	IntakeBytes        int64
	Breaker            string
	AuthFailures       int64
	SpillFilesWritten  int64
	SpillFilesReplayed int64
	SpillFilesDeleted  int64
	SpillFilesExpired  int64
	SpillErrors        int64
}

// SignalStats counts items (spans, log records, metric data points) by outcome.
type SignalStats struct {
	Sent, Dropped, Retried, DuplicateSuspected, Spilled int64
}

// Stats returns a snapshot of the counters.
func (p *Pipeline) Stats() Stats {
	p.statsMu.Lock()
	s := p.stats
	p.statsMu.Unlock()
	p.mu.Lock()
	s.IntakeDroppedLogs, s.IntakeDroppedPlatform = p.intakeDrops[0], p.intakeDrops[1]
	s.IntakeBytes = p.in.bytes
	p.mu.Unlock()
	s.QueueBytes = p.queueBytes.Load()
	s.Breaker = p.br.current().String()
	return s
}

func (p *Pipeline) count(sig signal, outcome string, n int64) {
	if n == 0 {
		return
	}
	p.statsMu.Lock()
	var s *SignalStats
	switch sig {
	case sigTraces:
		s = &p.stats.Traces
	case sigLogs:
		s = &p.stats.Logs
	default:
		s = &p.stats.Metrics
	}
	switch outcome {
	case "sent":
		s.Sent += n
	case "dropped":
		s.Dropped += n
	case "retried":
		s.Retried += n
	case "duplicate_suspected":
		s.DuplicateSuspected += n
	case "spilled":
		s.Spilled += n
	}
	p.statsMu.Unlock()
	p.inst.items(context.Background(), string(sig), outcome, n)
}

func (p *Pipeline) bump(f func(*Stats)) {
	p.statsMu.Lock()
	f(&p.stats)
	p.statsMu.Unlock()
}

// logProcessor is the sdklog.Processor the mapper's LoggerProvider emits
// into: records go to the pipeline's queue (on the worker goroutine).
type logProcessor struct{ p *Pipeline }

func (l logProcessor) OnEmit(_ context.Context, r *sdklog.Record) error {
	l.p.onLog(r.Clone())
	return nil
}
func (logProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (logProcessor) Shutdown(context.Context) error                         { return nil }
func (logProcessor) ForceFlush(context.Context) error                       { return nil }

// consumeCtx says which event the mapper is consuming, so that outputs
// can be tied to their source events.
type consumeCtx struct {
	se     *srcEvent
	key    string
	used   bool // se became the source of a log record
	tr     *tracker
	origin *spillFile
}

// onSpans queues finished spans with their source events.
func (p *Pipeline) onSpans(spans []sdktrace.ReadOnlySpan) {
	w := &p.w
	cur := w.cur
	for _, s := range spans {
		var src []*srcEvent
		if cur.tr != nil {
			key := invocationKey(s)
			if key == "" {
				key = cur.key
			}
			if key != "" {
				src = cur.tr.events(key)
			}
			switch {
			case s.Name() == "init" || s.Name() == "restore":
				// A phase span (exporter/signals' names) may be emitted at an
				// invocation's report (cold start, or its own trace): it is
				// re-mapped from its own phase's events.
				src = append(src, cur.tr.events(s.Name())...)
			case key == "" || key[0] != 'r':
				src = append(src, cur.tr.events("init")...)
				src = append(src, cur.tr.events("restore")...)
			}
		}
		if len(src) == 0 && cur.se != nil {
			src = []*srcEvent{cur.se}
		}
		p.push(sigTraces, &item{span: s, bytes: spanBytes(s) + srcBytes(src), at: w.awake, src: src, origin: cur.origin})
	}
}

func invocationKey(s sdktrace.ReadOnlySpan) string {
	for _, kv := range s.Attributes() {
		if kv.Key == "faas.invocation_id" && kv.Value.Type() == attribute.STRING {
			return "req:" + kv.Value.AsString()
		}
	}
	return ""
}

// onLog queues a log record with its source events: the log events the
// mapper was holding (multi-line records) or the event being consumed.
func (p *Pipeline) onLog(r sdklog.Record) {
	w := &p.w
	cur := &w.cur
	var src []*srcEvent
	if tr := cur.tr; tr != nil {
		if cur.se != nil && isLogEvent(cur.se.ev) {
			s := stream(cur.se.ev)
			switch {
			case len(tr.pending[s]) > 0:
				src, tr.pending[s] = tr.pending[s], nil
			default:
				src = []*srcEvent{cur.se}
				cur.used = true
			}
		} else {
			for s := range tr.pending {
				if len(tr.pending[s]) > 0 {
					src, tr.pending[s] = tr.pending[s], nil
					break
				}
			}
			if src == nil && cur.se != nil {
				src = []*srcEvent{cur.se}
			}
		}
	}
	p.push(sigLogs, &item{rec: r, bytes: logBytes(&r) + srcBytes(src) - sharedBytes(&r, src), at: w.awake, src: src, origin: cur.origin})
}

// sharedBytes is what a log record's body shares with its one source
// event: a plain-text line is the same string in both (the comparison
// returns at once when the two point at the same bytes), and must not be
// charged twice against the queue's bound.
func sharedBytes(r *sdklog.Record, src []*srcEvent) int64 {
	if len(src) != 1 {
		return 0
	}
	l, ok := src[0].ev.Record.(*telemetry.Log)
	if !ok || l == nil || len(l.Text) < 1024 {
		return 0
	}
	if b := r.Body(); b.Type() != attribute.STRING || b.AsString() != l.Text {
		return 0
	}
	return int64(len(l.Text))
}

func stream(ev telemetry.Event) int {
	if ev.Type == telemetry.TypeExtensionLog {
		return 1
	}
	return 0
}

func (p *Pipeline) push(sig signal, it *item) {
	if it.origin != nil {
		it.origin.pending++
	}
	p.w.qseq++
	it.qseq = p.w.qseq
	if it.queued = p.w.awakeAt; it.queued.IsZero() {
		it.queued = p.now()
	}
	for _, d := range p.w.q.push(sig, it) {
		p.dropItems(signalOf(d), "queue_full", []*item{d})
	}
	p.noteQueue()
}

func (p *Pipeline) noteQueue() { p.queueBytes.Store(p.w.q.total()) }

func signalOf(it *item) signal {
	if it.span != nil {
		return sigTraces
	}
	return sigLogs
}

func spanBytes(s sdktrace.ReadOnlySpan) int64 {
	n := int64(256 + len(s.Name()))
	for _, kv := range s.Attributes() {
		n += 32 + int64(len(kv.Key)+len(kv.Value.String()))
	}
	n += 64 * int64(len(s.Events())+len(s.Links()))
	return n
}

// Fixed costs of a queued output and of each of its source events, in
// bytes of memory: a log record is a large struct (inline attributes)
// held by value in its item, and a source event is a telemetry.Event with
// its decoded record. They matter for short log lines, where they are
// several times the text.
const (
	logItemOverhead = int64(unsafe.Sizeof(item{}) + unsafe.Sizeof(srcEvent{}))
	srcOverhead     = int64(unsafe.Sizeof(srcEvent{}) + unsafe.Sizeof(telemetry.Log{}) + 8)
)

func logBytes(r *sdklog.Record) int64 {
	n := logItemOverhead + int64(32*r.AttributesLen())
	if b := r.Body(); b.Type() == attribute.STRING {
		return n + int64(len(b.AsString()))
	}
	return n + int64(len(r.Body().String()))
}

func srcBytes(src []*srcEvent) int64 {
	var n int64
	for _, s := range src {
		n += srcOverhead + eventSize(s.ev)
	}
	return n
}
