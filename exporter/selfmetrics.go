package exporter

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// selfMetrics are the pipeline's own instruments, recorded through the same
// MeterProvider as the function's metrics (so they leave with them):
//
//	slipstream.exporter.items{signal, outcome, source[, reason]}  counter:
//	    items by outcome (sent|dropped|retried|duplicate_suspected|spilled);
//	    signal is traces|logs|metrics, or platform_events for intake drops;
//	    source is platform (mapped from the Telemetry API) or function (the
//	    function's own data, from the receiver); a dropped item carries why
//	    in reason (see dropReason)
//	slipstream.queue.size                       gauge: estimated bytes queued or in flight
//	slipstream.export.duration{signal, result}  histogram (s) per request
//	slipstream.breaker.state                    gauge: 0 closed, 1 half-open, 2 open
//	slipstream.agent.memory.peak                gauge (By): the agent's peak
//	    resident memory (VmHWM), part of Lambda's maxMemoryUsed
type selfMetrics struct {
	itemsC metric.Int64Counter
	durH   metric.Float64Histogram
	// The attribute sets are few and fixed: built once, so that recording
	// does not allocate. Read-only after newSelfMetrics (safe for
	// concurrent use).
	itemOpts map[itemKey]metric.AddOption
	durOpts  map[[2]string]metric.RecordOption
}

type itemKey struct {
	src    source
	sig    signal
	out    outcome
	reason dropReason
}

// source is where items came from (the "source" attribute).
type source string

const (
	srcPlatform source = "platform"
	srcFunction source = "function"
)

// Attribute values of the self-metrics (the Delivery table of docs/internals.md).
var (
	selfOutcomes = []outcome{outSent, outDropped, outRetried, outDup, outSpilled}
	selfResults  = []string{verdictSent.String(), verdictRetry.String(), verdictAuth.String(), verdictPermanent.String()}
)

// newSelfMetrics registers the instruments on mp; queueBytes and br feed
// the gauges.
func newSelfMetrics(mp metric.MeterProvider, queueBytes *atomic.Int64, br *breaker) (*selfMetrics, error) {
	m := mp.Meter("github.com/slipstream-otel/slipstream/exporter")
	s := &selfMetrics{itemOpts: map[itemKey]metric.AddOption{}, durOpts: map[[2]string]metric.RecordOption{}}
	for _, sig := range tallySignals {
		for _, src := range []source{srcPlatform, srcFunction} {
			if src == srcFunction && sig == sigPlatform {
				continue
			}
			for _, o := range selfOutcomes {
				s.itemOpts[itemKey{src, sig, o, ""}] = metric.WithAttributeSet(attribute.NewSet(
					attribute.String("signal", string(sig)), attribute.String("outcome", string(o)),
					attribute.String("source", string(src))))
			}
			for _, r := range dropReasons {
				s.itemOpts[itemKey{src, sig, outDropped, r}] = metric.WithAttributeSet(attribute.NewSet(
					attribute.String("signal", string(sig)), attribute.String("outcome", string(outDropped)),
					attribute.String("reason", string(r)), attribute.String("source", string(src))))
			}
		}
		for _, r := range selfResults {
			s.durOpts[[2]string{string(sig), r}] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("signal", string(sig)), attribute.String("result", r)))
		}
	}
	var err error
	if s.itemsC, err = m.Int64Counter("slipstream.exporter.items",
		metric.WithDescription("Telemetry items handled by the exporter, by signal and outcome."),
		metric.WithUnit("{item}")); err != nil {
		return nil, err
	}
	if s.durH, err = m.Float64Histogram("slipstream.export.duration",
		metric.WithDescription("Duration of OTLP export requests."), metric.WithUnit("s")); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge("slipstream.queue.size",
		metric.WithDescription("Estimated bytes of mapped telemetry in the export queue, requests in flight included."),
		metric.WithUnit("By"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(queueBytes.Load())
			return nil
		})); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge("slipstream.breaker.state",
		metric.WithDescription("Circuit breaker state: 0 closed, 1 half-open, 2 open."),
		metric.WithUnit("{state}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(br.current()))
			return nil
		})); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge("slipstream.agent.memory.peak",
		metric.WithDescription("Peak resident memory of the Slipstream process (VmHWM): its share of the environment's max memory used."),
		metric.WithUnit("By"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			if b, err := os.ReadFile("/proc/self/status"); err == nil {
				if n, ok := peakRSS(b); ok {
					o.Observe(n)
				}
			}
			return nil // no /proc (not Linux): nothing to observe
		})); err != nil {
		return nil, err
	}
	return s, nil
}

// peakRSS reads the VmHWM line of /proc/self/status ("VmHWM:   12345 kB"),
// the process's peak resident set size, in bytes
// (https://man7.org/linux/man-pages/man5/proc_pid_status.5.html).
func peakRSS(status []byte) (int64, bool) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}

// items records n items; every combination is built in newSelfMetrics.
func (s *selfMetrics) items(ctx context.Context, sig signal, o outcome, reason dropReason, n int64) {
	if n == 0 {
		return
	}
	s.itemsFrom(ctx, srcPlatform, sig, o, reason, n)
}

// itemsFrom records n items of src.
func (s *selfMetrics) itemsFrom(ctx context.Context, src source, sig signal, o outcome, reason dropReason, n int64) {
	if n == 0 {
		return
	}
	s.itemsC.Add(ctx, n, s.itemOpts[itemKey{src, sig, o, reason}])
}

func (s *selfMetrics) duration(ctx context.Context, sig signal, result string, d time.Duration) {
	opt, ok := s.durOpts[[2]string{string(sig), result}]
	if !ok {
		opt = metric.WithAttributes(attribute.String("signal", string(sig)), attribute.String("result", result))
	}
	s.durH.Record(ctx, d.Seconds(), opt)
}
