// Package metriccodec is the JSON encoding of a collected
// [metricdata.ResourceMetrics] that the exporter spills to disk when the
// SHUTDOWN's final flush cannot send it, so that the next process can
// replay it. The OTLP exporters take metricdata and expose no serialized
// payload, hence an encoding of our own (metricdata has no JSON form).
//
// [Encode] covers what the agent records, in the terms of the OpenTelemetry
// metrics data model (https://opentelemetry.io/docs/specs/otel/metrics/data-model/):
// int64 and float64 sums, int64 gauges and explicit-bucket histograms.
// Anything else is an error wrapping [errors.ErrUnsupported]; [Decode] is
// the inverse. The format has no version of its own: the spill file that
// holds it is versioned. Every function is pure and safe for concurrent use.
package metriccodec
