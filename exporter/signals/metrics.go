package signals

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// durationBuckets are the semantic conventions' advisory bucket boundaries
// for faas.invoke_duration and faas.init_duration (seconds).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// memoryBuckets are powers of two from 16 MiB to 16 GiB (bytes).
var memoryBuckets = []float64{1 << 24, 1 << 25, 1 << 26, 1 << 27, 1 << 28, 1 << 29, 1 << 30, 1 << 31, 1 << 32, 1 << 33, 1 << 34}

// sizeBuckets are response sizes from 1 KiB to the 200 MiB streaming limit (bytes).
var sizeBuckets = []float64{0, 1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 6 << 20, 1 << 25, 200 << 20}

// ratioBuckets are for the utilization histograms (memory used as a
// fraction of the memory size, duration as a fraction of the time limit):
// 0.1 steps up to 0.5, then 0.05 steps up to 1, so that a quantile near the
// top (the p99 a right-sizing or a timeout alert reads) is known to within
// 5 points of the limit. Above 1 is the overflow bucket.
var ratioBuckets = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1}

// Values of attrPrewarm: why an init was not a cold start.
const (
	prewarmProvisioned = "provisioned_concurrency" // initializationType provisioned-concurrency
	prewarmProactive   = "proactive"               // on-demand, ended long before the first invocation
)

// Values of attrInitPhase on metricInitErrors besides the init phases
// (init, invoke): what failed.
const (
	failedRestore   = "restore"
	failedExtension = "extension"
)

// Dropped-log reason classes (attribute slipstream.logs_dropped.reason).
const (
	dropSlowConsumer = "slow_consumer" // the subscriber did not keep up
	dropSendFailed   = "send_failed"   // a delivery POST failed
	dropBufferFull   = "buffer_full"   // the platform's buffer overflowed
	dropOther        = "other"
)

// dropReasonClass classifies the free-text logsDropped reason.
func dropReasonClass(reason string) string {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, "could not send"), strings.Contains(r, "failed to send"):
		return dropSendFailed
	case strings.Contains(r, "slower"), strings.Contains(r, "fallen behind"), strings.Contains(r, "not acknowledged"):
		return dropSlowConsumer
	case strings.Contains(r, "buffer"), strings.Contains(r, "memory"):
		return dropBufferFull
	}
	return dropOther
}

// Metric names Slipstream defines. The faas.* instruments are the semantic
// conventions' (https://opentelemetry.io/docs/specs/semconv/faas/faas-metrics/);
// everything else is in the slipstream.* namespace, in base units (s, By)
// with no unit in the name. A name shared with a span attribute
// (slipstream.billed_duration, slipstream.restore_duration,
// slipstream.response_size) means the same quantity in the same unit.
const (
	metricOutOfMemory      = "slipstream.out_of_memory_invocations"
	metricDroppedRecords   = "slipstream.logs_dropped.records"
	metricDroppedSize      = "slipstream.logs_dropped.size"
	metricEstimatedCost    = "slipstream.estimated_cost"
	metricBilledDuration   = "slipstream.billed_duration"
	metricPostRuntime      = "slipstream.post_runtime_duration"
	metricRestoreDuration  = "slipstream.restore_duration"
	metricResponseLatency  = "slipstream.response_latency"
	metricResponseDuration = "slipstream.response_duration"
	metricResponseSize     = "slipstream.response_size"
	metricMemUtilization   = "slipstream.memory_utilization"
	metricMemorySize       = "slipstream.memory_size"
	// metricTimeoutUtilization is each invocation's invoke phase (report
	// durationMs) as a fraction of its time limit, metricTimeLimit.
	metricTimeoutUtilization = "slipstream.timeout_utilization"
	// metricTimeLimit is the invocation's time limit: the INVOKE event's
	// deadline minus platform.start's time.
	metricTimeLimit = "slipstream.time_limit"
	// metricActiveInvocations is the number of invocations started and not
	// yet reported, under Lambda Managed Instances (where they overlap).
	metricActiveInvocations = "slipstream.active_invocations"
	// metricPrewarmInits counts inits that ran ahead of demand and are not
	// cold starts, by attrPrewarm.
	metricPrewarmInits = "slipstream.prewarm_inits"
	// metricInitErrors counts failed or timed-out inits and restores and
	// failed extensions, by attrInitPhase and error.type.
	metricInitErrors = "slipstream.init_errors"
	// metricOOMRetracted counts out-of-memory guesses made at SHUTDOWN that a
	// later runtimeDone or report contradicted, in metricOutOfMemory's unit.
	// Not slipstream.out_of_memory_invocations.retracted, which would make one
	// metric's name the namespace of another.
	metricOOMRetracted = "slipstream.out_of_memory_retractions"

	attrDropReason = "slipstream.logs_dropped.reason"
	attrTrigger    = "faas.trigger"
)

// faasCounter, faasHistogram and faasIntHistogram record a faas.* metric
// with the faas.trigger attribute the semantic conventions recommend on
// every one of them. The trigger is the environment's (a setting), so the
// attribute set is built once and recording does not allocate.
type faasCounter struct {
	c   metric.Int64Counter
	opt metric.AddOption
}

func (f faasCounter) Add(ctx context.Context, n int64) { f.c.Add(ctx, n, f.opt) }

type faasHistogram struct {
	h   metric.Float64Histogram
	opt metric.RecordOption
}

func (f faasHistogram) Record(ctx context.Context, v float64) { f.h.Record(ctx, v, f.opt) }

type faasIntHistogram struct {
	h   metric.Int64Histogram
	opt metric.RecordOption
}

func (f faasIntHistogram) Record(ctx context.Context, v int64) { f.h.Record(ctx, v, f.opt) }

// instruments are the mapper's metric instruments. Data points carry no
// per-invocation attributes: faas.trigger on the faas.* metrics, error.type
// on faas.errors, the reason on the prewarm and dropped-log counters, and
// the phase and error.type on the init error counter.
type instruments struct {
	invocations, timeouts, coldstarts      faasCounter
	invokeDuration, initDuration           faasHistogram
	memUsage                               faasIntHistogram
	errors                                 metric.Int64Counter // with error.type, see countError
	outOfMemory                            metric.Int64Counter
	prewarmInits, initErrors, oomRetracted metric.Int64Counter
	logsDroppedRecords, logsDroppedBytes   metric.Int64Counter
	estimatedCost                          metric.Float64Counter

	billedDuration, postRuntime, restoreDuration metric.Float64Histogram
	responseLatency, responseDuration            metric.Float64Histogram
	memUtilization, timeoutUtilization           metric.Float64Histogram
	producedBytes                                metric.Int64Histogram
	memorySize, activeInvocations                metric.Int64Gauge
	timeLimit                                    metric.Float64Gauge

	// trigger is the faas.trigger value; errOpts caches the attribute
	// option of each error.type seen, so counting an error does not
	// allocate.
	trigger     string
	errOpts     map[string]metric.AddOption
	dropOpts    map[string]metric.AddOption
	prewarmOpts map[string]metric.AddOption
	initErrOpts map[initErrKey]metric.AddOption
}

// initErrKey is the attribute set of one metricInitErrors data point.
type initErrKey struct{ phase, errorType string }

// init creates the instruments on m; trigger is the faas.trigger value.
func (in *instruments) init(m metric.Meter, trigger string) error {
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	hist := func(name, unit, desc string, b []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(b...))
		errs = append(errs, err)
		return h
	}
	ihist := func(name, unit, desc string, b []float64) metric.Int64Histogram {
		h, err := m.Int64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(b...))
		errs = append(errs, err)
		return h
	}
	in.trigger = trigger
	trig := metric.WithAttributeSet(attribute.NewSet(attribute.String(attrTrigger, trigger)))
	in.invocations = faasCounter{counter("faas.invocations", "{invocation}", "Number of successful invocations."), trig}
	in.errors = counter("faas.errors", "{error}", "Number of invocation errors, by error.type.")
	in.timeouts = faasCounter{counter("faas.timeouts", "{timeout}", "Number of invocation timeouts."), trig}
	in.coldstarts = faasCounter{counter("faas.coldstarts", "{coldstart}", "Number of invocation cold starts."), trig}
	in.outOfMemory = counter(metricOutOfMemory, "{invocation}", "Number of invocations that ran out of memory.")
	in.prewarmInits = counter(metricPrewarmInits, "{init}", "Inits that ran ahead of demand and delayed no invocation (not cold starts), by reason.")
	in.initErrors = counter(metricInitErrors, "{error}", "Failed or timed-out inits and restores, and failed extensions, by phase and error.type.")
	in.oomRetracted = counter(metricOOMRetracted, "{invocation}", "Out-of-memory guesses made at SHUTDOWN that a later runtimeDone or report contradicted: subtract from "+metricOutOfMemory+".")
	in.logsDroppedRecords = counter(metricDroppedRecords, "{record}", "Telemetry records the platform dropped, by reason class.")
	in.logsDroppedBytes = counter(metricDroppedSize, "By", "Telemetry bytes the platform dropped, by reason class.")
	var err error
	in.estimatedCost, err = m.Float64Counter(metricEstimatedCost, metric.WithUnit("{USD}"),
		metric.WithDescription("Estimated on-demand charge (duration and request), from the built-in price table or SLIPSTREAM_PRICE_*."))
	errs = append(errs, err)
	in.invokeDuration = faasHistogram{hist("faas.invoke_duration", "s", "Duration of the function's logic execution (runtimeDone durationMs).", durationBuckets), trig}
	in.initDuration = faasHistogram{hist("faas.init_duration", "s", "Duration of the function's initialization.", durationBuckets), trig}
	in.billedDuration = hist(metricBilledDuration, "s", "Billed duration per invocation.", durationBuckets)
	in.postRuntime = hist(metricPostRuntime, "s", "Time extensions ran after the runtime finished (report minus runtimeDone duration).", durationBuckets)
	in.restoreDuration = hist(metricRestoreDuration, "s", "Duration of the SnapStart restore.", durationBuckets)
	in.responseLatency = hist(metricResponseLatency, "s", "Time from the invoke to the start of the response.", durationBuckets)
	in.responseDuration = hist(metricResponseDuration, "s", "Time to send the response.", durationBuckets)
	in.memUtilization = hist(metricMemUtilization, "1", "Max memory used as a fraction of the configured memory.", ratioBuckets)
	in.timeoutUtilization = hist(metricTimeoutUtilization, "1", "Duration of the invoke phase (report durationMs) as a fraction of the invocation's time limit.", ratioBuckets)
	in.timeLimit, err = m.Float64Gauge(metricTimeLimit, metric.WithUnit("s"),
		metric.WithDescription("Time limit of the latest invocation: its deadline minus its start (the function's timeout)."))
	errs = append(errs, err)
	in.memorySize, err = m.Int64Gauge(metricMemorySize, metric.WithUnit("By"),
		metric.WithDescription("Memory size of the function, from the latest report."))
	errs = append(errs, err)
	in.activeInvocations, err = m.Int64Gauge(metricActiveInvocations, metric.WithUnit("{invocation}"),
		metric.WithDescription("Invocations started and not yet reported, under Lambda Managed Instances."))
	errs = append(errs, err)
	in.memUsage = faasIntHistogram{ihist("faas.mem_usage", "By", "Max memory used per invocation.", memoryBuckets), trig}
	in.producedBytes = ihist(metricResponseSize, "By", "Response size per invocation.", sizeBuckets)
	for _, e := range errs {
		if e != nil {
			return fmt.Errorf("create instruments: %w", e)
		}
	}
	// The outcome counters whose attributes are known in advance start at
	// 0, so each is exported from the first collection on: its series
	// begins before the first timeout (or the cold start) it counts, and a
	// backend's rate() or increase() sees that first increment. A series
	// that appears with its first increment shows no increase without a
	// zero stored before it.
	for _, c := range []faasCounter{in.invocations, in.timeouts, in.coldstarts} {
		c.Add(context.Background(), 0)
	}
	in.errOpts = make(map[string]metric.AddOption)
	in.dropOpts = make(map[string]metric.AddOption)
	in.prewarmOpts = make(map[string]metric.AddOption)
	in.initErrOpts = make(map[initErrKey]metric.AddOption)
	return nil
}

// countPrewarm counts an init that ran ahead of demand.
func (in *instruments) countPrewarm(reason string) {
	opt, ok := in.prewarmOpts[reason]
	if !ok {
		opt = metric.WithAttributeSet(attribute.NewSet(attrPrewarm.String(reason)))
		in.prewarmOpts[reason] = opt
	}
	in.prewarmInits.Add(context.Background(), 1, opt)
}

// countInitError counts a failed init, restore or extension; error.type
// values are bounded as on faas.errors.
func (in *instruments) countInitError(phase, errorType string) {
	k := initErrKey{phase, errorType}
	opt, ok := in.initErrOpts[k]
	if !ok {
		if len(in.initErrOpts) >= maxErrorTypes {
			k.errorType = "_OTHER"
			opt, ok = in.initErrOpts[k]
		}
		if !ok {
			opt = metric.WithAttributeSet(attribute.NewSet(attrInitPhase.String(k.phase), attrErrorType.String(k.errorType)))
			in.initErrOpts[k] = opt
		}
	}
	in.initErrors.Add(context.Background(), 1, opt)
}

// maxErrorTypes bounds the distinct error.type values on faas.errors.
const maxErrorTypes = 64

func (in *instruments) countError(errorType string) {
	opt, ok := in.errOpts[errorType]
	if !ok {
		if len(in.errOpts) >= maxErrorTypes {
			errorType = "_OTHER"
			opt, ok = in.errOpts[errorType]
		}
		if !ok {
			opt = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("error.type", errorType), attribute.String(attrTrigger, in.trigger)))
			in.errOpts[errorType] = opt
		}
	}
	in.errors.Add(context.Background(), 1, opt)
}

func (in *instruments) logsDropped(r *telemetry.LogsDropped) {
	class := dropReasonClass(r.Reason)
	opt, ok := in.dropOpts[class]
	if !ok {
		opt = metric.WithAttributeSet(attribute.NewSet(attribute.String(attrDropReason, class)))
		in.dropOpts[class] = opt
	}
	in.logsDroppedRecords.Add(context.Background(), r.DroppedRecords, opt)
	in.logsDroppedBytes.Add(context.Background(), r.DroppedBytes, opt)
}
