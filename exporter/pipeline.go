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
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/exporter/filter"
	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/extension"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// Mapper turns Telemetry API events into spans, log records and metrics
// (package exporter/signals). Every method is called from the worker
// goroutine only.
type Mapper interface {
	Consume(ev telemetry.Event)
	// ConsumeContext takes the resource from an initStart/restoreStart
	// without mapping its phase (a spill replay's context event).
	ConsumeContext(ev telemetry.Event)
	Invoke(inv signals.Invocation)
	Shutdown(reason string, at time.Time)
	// FlushLogs emits the multi-line log records it holds, before a flush
	// that must carry everything known.
	FlushLogs()
	OpenInvocations() int
	RuntimeDone(requestID string) bool
	Resource() *resource.Resource
}

// Options are what the agent tells the pipeline beyond the configuration.
type Options struct {
	// AccountID from the Extensions API register response (may be "").
	AccountID string
	// Version is telemetry.distro.version (default signals.DefaultVersion).
	Version string
	// Filter is the pre-queue step applied to every batch in Enqueue
	// before it is queued (and therefore before anything is spilled).
	// Default: the configuration's filter.Filter (severity, redaction,
	// field lists, sampling); it must not block and must not keep the
	// slice.
	Filter func([]telemetry.Event) []telemetry.Event
	// LocalInputs: a local receiver feeds AcceptOTLP, so SHUTDOWN's final
	// flush starts no earlier than the plan's Drain (the function's SIGTERM
	// handler may still send).
	LocalInputs bool
}

// knobs are the collaborators and tuning the tests replace; New uses the
// defaults documented on each field.
type knobs struct {
	// HTTPClient, when set, supplies the base RoundTripper (its Transport)
	// instead of the transports built from the configuration.
	HTTPClient *http.Client
	Now        func() time.Time                            // default time.Now
	NewMapper  func(signals.MapperOptions) (Mapper, error) // default signals.NewMapper
	Rand       io.Reader                                   // random IDs; default crypto/rand
	Jitter     func() float64                              // retry jitter in [0,1); default math/rand/v2
	// IntakeMaxBytes bounds the decoded events waiting for the worker
	// (default BufferMaxBytes/8, at least 256 KiB); a batch larger than
	// the bound is taken whole when the intake is empty.
	IntakeMaxBytes int64
	// BatchMaxBytes is the largest export batch (default BufferMaxBytes/4,
	// within 64 KiB..1 MiB); a full batch is sent at once.
	BatchMaxBytes int64
	// BatchDelay: queued data is sent at this awake age (default 200ms).
	BatchDelay time.Duration
	// MetricInterval: metrics are collected this often while data flows
	// (default 10s); every forced flush also sends them.
	MetricInterval time.Duration
	// Margin is kept before an invocation's deadline (default 100ms).
	Margin time.Duration
	// AwakeTick is the resolution of the awake-time clock that bounds a
	// request (default 100ms).
	AwakeTick time.Duration
	// FreezeGap: a step of the wall clock longer than this between two of
	// the worker's readings is a freeze (default 25ms).
	FreezeGap time.Duration
	// HangQuiet: the least wall time without progress before a request
	// that lived through hangInvokes INVOKEs is canceled as hung
	// (default defaultHangQuiet).
	HangQuiet time.Duration
	// Breaker: open after BreakerThreshold consecutive failures (default
	// 3), for BreakerMinOpen (default 5s) doubling to BreakerMaxOpen
	// (default 5m) while probes fail.
	BreakerThreshold int
	BreakerMinOpen   time.Duration
	BreakerMaxOpen   time.Duration
	// RetryInitial and RetryMax shape the backoff (defaults 100ms and 30s)
	// used when the server gives no Retry-After.
	RetryInitial, RetryMax time.Duration
	// SecretsEndpoint, when set, replaces the Secrets Manager and SSM
	// endpoints (tests only).
	SecretsEndpoint func(service, region string) string
	// BeforeSpillDelete, when set, runs before a delivered spill file is
	// deleted; false skips the delete, as if the process were killed
	// between the 2xx and the delete.
	BeforeSpillDelete func(id string) bool
}

func (k *knobs) defaults(buf int64) {
	if k.Now == nil {
		k.Now = time.Now
	}
	if k.NewMapper == nil {
		k.NewMapper = func(o signals.MapperOptions) (Mapper, error) { return signals.NewMapper(o) }
	}
	if k.Rand == nil {
		k.Rand = rand.Reader
	}
	if k.Jitter == nil {
		k.Jitter = mrand.Float64
	}
	if k.IntakeMaxBytes <= 0 {
		k.IntakeMaxBytes = max(buf/8, 256<<10)
	}
	if k.BatchMaxBytes <= 0 {
		k.BatchMaxBytes = min(max(buf/4, 64<<10), 1<<20)
	}
	k.BatchDelay = orDefault(k.BatchDelay, 200*time.Millisecond)
	k.MetricInterval = orDefault(k.MetricInterval, 10*time.Second)
	k.Margin = orDefault(k.Margin, 100*time.Millisecond)
	k.AwakeTick = orDefault(k.AwakeTick, 100*time.Millisecond)
	k.FreezeGap = orDefault(k.FreezeGap, 25*time.Millisecond)
	k.HangQuiet = orDefault(k.HangQuiet, defaultHangQuiet)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Pipeline receives decoded telemetry (Enqueue) and the lifecycle
// (Invoke, Shutdown), and hands both to its worker (Run), which maps,
// buffers and exports. It is the package's front door; see doc.go.
type Pipeline struct {
	cfg    *config.Config
	log    *slog.Logger
	now    func() time.Time
	filter func([]telemetry.Event) []telemetry.Event
	// ctl is the default filter (nil when Options.Filter replaced it): it
	// hears of INVOKEs and samples the mapper's spans.
	ctl      *filter.Filter
	mode     config.FlushMode
	margin   time.Duration
	disabled bool
	// platform: platform events are subscribed. Without them no
	// invocation ever starts or ends, so INVOKEs are not tracked.
	platform bool

	h   *handoff
	c   *counters
	br  *breaker // read by Invoke: no invocation waits while it is open
	hg  *hangs   // read by Invoke: no invocation waits while an endpoint hangs
	exp *exporters
	fnc *fnClients // the function's own data (otlpraw.go)
	mp  *sdkmetric.MeterProvider
	// w is owned by the goroutine running Run (or by Close when Run never
	// ran or has returned).
	w *worker

	// closeOnce shuts the exporters down once; spillOnce spills what the
	// worker left when it is not running.
	closeOnce, spillOnce sync.Once
	closeErr, spillErr   error
}

// New builds a pipeline from cfg. It makes no network call: exporters
// connect lazily, and nothing is sent before the first Invoke or Shutdown.
// Spill files left by a previous process are replayed when Run starts.
func New(cfg *config.Config, log *slog.Logger, opts Options) (*Pipeline, error) {
	return newPipeline(cfg, log, opts, knobs{})
}

func newPipeline(cfg *config.Config, log *slog.Logger, opts Options, k knobs) (*Pipeline, error) {
	if cfg == nil {
		return nil, errors.New("exporter: nil config")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	buf := cfg.BufferMaxBytes
	if buf <= 0 {
		buf = 4 << 20
	}
	k.defaults(buf)
	var ctl *filter.Filter
	if opts.Filter == nil {
		f, err := filter.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("exporter: %w", err)
		}
		ctl, opts.Filter = f, f.Events
	}
	p := &Pipeline{
		cfg: cfg, log: log, now: k.Now, filter: opts.Filter, ctl: ctl, mode: cfg.Flush, margin: k.Margin,
		disabled: !cfg.ExportEnabled,
		h:        &handoff{wake: make(chan struct{}, 1), done: make(chan struct{})},
		c:        &counters{},
		br:       newBreaker(k.BreakerThreshold, k.BreakerMinOpen, k.BreakerMaxOpen),
		hg:       &hangs{log: log},
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
	p.h.in.max = k.IntakeMaxBytes

	var base http.RoundTripper
	if k.HTTPClient != nil {
		base = k.HTTPClient.Transport
		if base == nil {
			base = http.DefaultTransport
		}
	}
	p.exp = &exporters{}
	p.fnc = &fnClients{}
	if !p.disabled {
		exp, err := newExporters(context.Background(), cfg.OTLP, base, exporterEnv{log: log, endpoint: k.SecretsEndpoint})
		if err != nil {
			return nil, fmt.Errorf("exporter: %w", err)
		}
		p.exp = exp
		if p.fnc, err = newFnClients(cfg.OTLP, base, exp); err != nil {
			return nil, fmt.Errorf("exporter: %w", err)
		}
	}
	p.h.fn.max = buf

	sel, cumulative := temporality(cfg.Temporality)
	reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(sel))
	p.mp = sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.Empty()),
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter),
	)
	inst, err := newSelfMetrics(p.mp, &p.c.queueBytes, p.br)
	if err != nil {
		return nil, fmt.Errorf("exporter: self metrics: %w", err)
	}
	p.c.inst = inst

	w := &worker{
		cfg: cfg, log: log, now: k.Now, h: p.h, c: p.c, exp: p.exp, fnc: p.fnc,
		pol: newPolicy(cfg, p.mode, policy{batchDelay: k.BatchDelay, batchMaxBytes: k.BatchMaxBytes,
			metricInterval: k.MetricInterval, freezeGap: k.FreezeGap}),
		snd:        &sender{exp: p.exp, br: p.br, bo: backoff{Initial: k.RetryInitial, Max: k.RetryMax, Rand: k.Jitter}, now: k.Now, awakeTick: k.AwakeTick, inst: inst, results: make(chan sendResult, 4)},
		mq:         metricQueue{reader: reader, cumulative: cumulative},
		live:       newLineage(nil),
		drainLocal: opts.LocalInputs || cfg.ReceiverHTTPPort != 0 || cfg.ReceiverGRPCPort != 0,
	}
	w.q.max = buf
	w.newMapper = func(mp metric.MeterProvider, lin *lineage) (Mapper, error) {
		// A signal switched off (SLIPSTREAM_*_EXPORTER=none, or a bad
		// destination setting) is not even mapped.
		mo := signals.MapperOptions{Config: cfg, AccountID: opts.AccountID, Version: opts.Version, Now: k.Now, Rand: k.Rand}
		if cfg.OTLP.Traces.Enabled() {
			mo.Spans = func(ph signals.Phase, spans []sdktrace.ReadOnlySpan) { w.onSpans(lin, ph, spans) }
		}
		if cfg.OTLP.Logs.Enabled() {
			mo.Logs = logProcessor{w: w, lin: lin}
		}
		if cfg.OTLP.Metrics.Enabled() {
			mo.Meter = mp
		}
		if ctl != nil {
			mo.Sampler = ctl
		}
		return k.NewMapper(mo)
	}
	if w.m, err = w.newMapper(p.mp, w.live); err != nil {
		return nil, fmt.Errorf("exporter: mapper: %w", err)
	}
	w.replayMapper = func(lin *lineage) (Mapper, error) { return w.newMapper(noop.NewMeterProvider(), lin) }
	if cfg.SpillMaxBytes > 0 && cfg.SpillDir != "" && !p.disabled && spillDirUsable(cfg.SpillDir, log) {
		w.sp = &spill{
			dir: cfg.SpillDir, max: cfg.SpillMaxBytes, ttl: cfg.SpillTTL,
			env: cfg.Region + "/" + cfg.FunctionName + "/" + cfg.FunctionVersion,
			now: k.Now, rand: k.Rand, beforeDelete: k.BeforeSpillDelete,
		}
	}
	w.snd.hg, w.snd.hangQuiet = p.hg, k.HangQuiet
	p.w = w
	return p, nil
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

// Enqueue hands decoded events to the pipeline (telemetry.Sink): they go
// through the pre-queue filter into the bounded intake. When the intake is
// full while the worker runs, Enqueue waits until the worker takes it or
// ctx ends (backpressure: the worker always takes it again, at the latest
// when the requests in flight end, so the wait is bounded by the export
// timeout). Before Run and once SHUTDOWN's flush is over it never waits:
// when the intake is full, function/extension log events are dropped first
// and platform events last. Once Close has spilled, every event is dropped.
// Every drop is counted.
func (p *Pipeline) Enqueue(ctx context.Context, events []telemetry.Event) {
	if p.disabled || len(events) == 0 {
		return
	}
	events = p.filter(events)
	if len(events) == 0 {
		return
	}
	need := batchBytes(events)
	h := p.h
	h.mu.Lock()
	if len(h.waiting) > 0 {
		h.noteArrivals(events)
	}
	for waited := false; !h.admits(need) && ctx.Err() == nil; waited = true {
		if h.room == nil {
			h.room = make(chan struct{})
		}
		room := h.room
		h.mu.Unlock()
		if !waited {
			p.c.intakeWaits.Add(1)
		}
		h.signal()
		select {
		case <-room:
		case <-ctx.Done():
		}
		h.mu.Lock()
	}
	reason, dl, dp := dropIntakeFull, 0, 0
	if h.closing || h.stopped {
		// The worker is gone and Close's spill has taken the intake:
		// nothing would ever take these events.
		reason = dropClosed
		dl, dp = countKinds(events)
	} else {
		dl, dp = h.in.addSized(events, need)
	}
	h.mu.Unlock()
	p.c.drop(sigLogs, reason, int64(dl))
	p.c.drop(sigPlatform, reason, int64(dp))
	h.signal()
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

// Invoke handles an INVOKE (extension.Handler). In async and periodic mode,
// and in adaptive mode for a busy function, it returns at once. In end
// mode, and in adaptive mode for the first invocation and after a gap
// longer than MaxDataAge, it waits until the invocation's runtimeDone has
// been mapped and what is known has been sent, but never longer than
// FlushTimeout from runtimeDone's arrival nor past the invocation deadline
// minus the margin; it does not wait at all while the circuit breaker is
// open, nor while an endpoint hangs (from the first request canceled as
// hung until one is answered).
func (p *Pipeline) Invoke(ctx context.Context, ev extension.Event) {
	now := p.now()
	inv := signals.Invocation{RequestID: ev.RequestID, Deadline: ev.Deadline(), InvokedARN: ev.InvokedFunctionARN}
	if ev.Tracing != nil {
		inv.TraceHeader = ev.Tracing.Value
	}
	if p.ctl != nil {
		p.ctl.Invoke(inv.RequestID, inv.TraceHeader)
	}
	// The first /event/next has been sent: secret references may now be
	// fetched (on the resolver's goroutine; once).
	p.exp.secrets.Start(context.WithoutCancel(ctx))
	h := p.h
	h.invMu.Lock()
	first := h.invoked == 0
	gap := !first && now.Sub(h.lastInvoke) > p.cfg.MaxDataAge
	h.invoked++
	h.lastInvoke = now
	h.lastRequestID = ev.RequestID
	h.thawAt = now
	if p.disabled {
		h.invMu.Unlock()
		return
	}
	wait := p.mode == config.FlushEnd || p.mode == config.FlushAdaptive && (first || gap)
	// Waiting for runtimeDone costs nothing while the function runs, so it
	// is bounded by the invocation's deadline; the export after it is
	// bounded by FlushTimeout (and the deadline).
	budget := p.flushTimeout()
	if !inv.Deadline.IsZero() {
		budget = inv.Deadline.Add(-p.margin).Sub(now)
	}
	wait = wait && budget > 0 && !p.br.blocking(now) && !p.hg.blocking()
	// The mapper closes every invocation span at its runtimeDone, so a
	// waited invocation's span leaves with this flush.
	if p.platform {
		// Without platform events the invocation would stay open until
		// SHUTDOWN closed it as an error.
		h.invokes = append(h.invokes, inv)
	}
	h.invMu.Unlock()
	if !wait {
		h.signal()
		return
	}
	wctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	w := &waiter{requestID: inv.RequestID, ctx: wctx, flush: p.flushTimeout(),
		flushing: make(chan struct{}), done: make(chan struct{}), arrived: make(chan struct{})}
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.newWaiters = append(h.newWaiters, w)
	if h.waiting == nil {
		h.waiting = make(map[string]*waiter)
	}
	h.waiting[inv.RequestID] = w
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if h.waiting[inv.RequestID] == w {
			delete(h.waiting, inv.RequestID)
		}
		h.mu.Unlock()
	}()
	h.signal()
	select {
	case <-w.done:
		return
	case <-wctx.Done():
		return
	case <-h.done:
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
	case <-h.done:
	case <-t.C:
	}
}

func (p *Pipeline) flushTimeout() time.Duration {
	if p.cfg.FlushTimeout > 0 {
		return p.cfg.FlushTimeout
	}
	return 500 * time.Millisecond
}

// Shutdown handles SHUTDOWN (extension.Handler) following plan: it waits
// (until plan.Reports) for the open invocations' platform.report, closes
// what is still open, sends everything until plan.Flush, then cancels the
// requests still in flight and spills what was not sent. The listener
// must stay open until Shutdown returns.
func (p *Pipeline) Shutdown(ctx context.Context, plan extension.ShutdownPlan) error {
	if p.disabled {
		return nil
	}
	p.exp.secrets.Start(context.WithoutCancel(ctx)) // Managed Instances: the first event may be SHUTDOWN
	req := &shutdownReq{ctx: ctx, plan: plan, reply: make(chan error, 1)}
	h := p.h
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return errors.New("exporter: shutdown: worker stopped")
	}
	h.shutdownReq = req
	h.mu.Unlock()
	h.signal()
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("exporter: shutdown: %w", ctx.Err())
	case <-h.done:
		return errors.New("exporter: shutdown: worker stopped")
	}
}

// Run is the worker: it maps events, exports, retries and replays spill
// files. It returns nil after Close, or when ctx is canceled (what is
// left is then spilled by Close).
func (p *Pipeline) Run(ctx context.Context) error {
	h := p.h
	h.mu.Lock()
	if h.running || h.stopped {
		h.mu.Unlock()
		return errors.New("exporter: Run called twice")
	}
	h.running = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.running, h.stopped = false, true
		h.openRoom()
		h.mu.Unlock()
		close(h.done)
	}()
	if !p.disabled {
		p.w.replay()
	}
	return p.w.run(ctx)
}

// Close stops the worker and spills what is still queued (nothing is sent
// any more), shuts the exporters down, and logs the totals.
func (p *Pipeline) Close(ctx context.Context) error {
	var errs []error
	incomplete := false // the worker may still be spilling
	h := p.h
	h.mu.Lock()
	if h.running {
		req := &closeReq{reply: make(chan error, 1)}
		h.closeReq = req
		h.mu.Unlock()
		h.signal()
		select {
		case err := <-req.reply:
			errs = append(errs, err)
		case <-h.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("exporter: close: %w", ctx.Err()))
			incomplete = true
		}
	} else {
		stopped := h.stopped
		h.stopped = true
		h.openRoom()
		h.mu.Unlock()
		if stopped {
			// Run has returned, or an earlier Close stopped a worker that
			// never ran: the worker state is ours once done is closed.
			<-h.done
		}
		if !p.disabled {
			p.spillOnce.Do(func() { p.spillErr = p.w.spillAll() })
			errs = append(errs, p.spillErr)
		}
		if !stopped {
			// Run never ran and now never will (it refuses to start once
			// stopped): release everything that waits for the worker.
			close(h.done)
		}
	}
	p.closeOnce.Do(func() {
		p.closeErr = errors.Join(p.exp.shutdown(ctx), p.fnc.close(), p.mp.Shutdown(ctx))
		if !p.disabled {
			p.c.totals(p.log, incomplete)
			if p.ctl != nil {
				if t := p.ctl.Totals(); t != (filter.Totals{}) {
					p.log.Info("filter totals", "below_severity", t.BelowSeverity, "unsampled", t.Unsampled, "redacted", t.Redacted)
				}
			}
		}
	})
	errs = append(errs, p.closeErr)
	return errors.Join(errs...)
}

// tally returns a snapshot of the counters.
func (p *Pipeline) tally() tally {
	t := p.c.snapshot()
	p.h.mu.Lock()
	t.IntakeBytes = p.h.in.bytes
	p.h.mu.Unlock()
	t.Breaker = p.br.current().String()
	return t
}

// logProcessor is the sdklog.Processor the mapper's LoggerProvider emits
// into: records go to the worker's queue (on the worker goroutine).
type logProcessor struct {
	w   *worker
	lin *lineage
}

func (l logProcessor) OnEmit(_ context.Context, r *sdklog.Record) error {
	l.w.onLog(l.lin, r.Clone())
	return nil
}
func (logProcessor) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (logProcessor) Shutdown(context.Context) error                         { return nil }
func (logProcessor) ForceFlush(context.Context) error                       { return nil }
