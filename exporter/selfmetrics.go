package exporter

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// selfMetrics are the pipeline's own instruments, recorded through the same
// MeterProvider as the function's metrics (so they leave with them):
//
//	slipstream.exporter.items{signal, outcome}  counter: items by outcome
//	    (sent|dropped|retried|duplicate_suspected|spilled); signal is
//	    traces|logs|metrics, or platform_events for intake drops
//	slipstream.queue.bytes                      gauge: estimated bytes queued or in flight
//	slipstream.export.duration{signal, result}  histogram (s) per request
//	slipstream.breaker.state                    gauge: 0 closed, 1 half-open, 2 open
type selfMetrics struct {
	itemsC metric.Int64Counter
	durH   metric.Float64Histogram
	// The attribute sets are few and fixed: built once, so that recording
	// does not allocate. Read-only after newSelfMetrics (safe for
	// concurrent use).
	itemOpts map[[2]string]metric.AddOption
	durOpts  map[[2]string]metric.RecordOption
}

// Attribute values of the self-metrics (the README's Delivery table).
var (
	selfSignals  = []string{string(sigTraces), string(sigLogs), string(sigMetrics), "platform_events"}
	selfOutcomes = []string{"sent", "dropped", "retried", "duplicate_suspected", "spilled"}
	selfResults  = []string{verdictSent.String(), verdictRetry.String(), verdictAuth.String(), verdictPermanent.String()}
)

func newSelfMetrics(mp metric.MeterProvider, p *Pipeline) (*selfMetrics, error) {
	m := mp.Meter("github.com/slipstream-otel/slipstream/exporter")
	s := &selfMetrics{itemOpts: map[[2]string]metric.AddOption{}, durOpts: map[[2]string]metric.RecordOption{}}
	for _, sig := range selfSignals {
		for _, o := range selfOutcomes {
			s.itemOpts[[2]string{sig, o}] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("signal", sig), attribute.String("outcome", o)))
		}
		for _, r := range selfResults {
			s.durOpts[[2]string{sig, r}] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("signal", sig), attribute.String("result", r)))
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
	if _, err = m.Int64ObservableGauge("slipstream.queue.bytes",
		metric.WithDescription("Estimated bytes of mapped telemetry in the export queue, requests in flight included."),
		metric.WithUnit("By"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(p.queueBytes.Load())
			return nil
		})); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge("slipstream.breaker.state",
		metric.WithDescription("Circuit breaker state: 0 closed, 1 half-open, 2 open."),
		metric.WithUnit("{state}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(p.br.current()))
			return nil
		})); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *selfMetrics) items(ctx context.Context, sig, outcome string, n int64) {
	if n == 0 {
		return
	}
	opt, ok := s.itemOpts[[2]string{sig, outcome}]
	if !ok {
		opt = metric.WithAttributes(attribute.String("signal", sig), attribute.String("outcome", outcome))
	}
	s.itemsC.Add(ctx, n, opt)
}

func (s *selfMetrics) duration(ctx context.Context, sig, result string, d time.Duration) {
	opt, ok := s.durOpts[[2]string{sig, result}]
	if !ok {
		opt = metric.WithAttributes(attribute.String("signal", sig), attribute.String("result", result))
	}
	s.durH.Record(ctx, d.Seconds(), opt)
}
