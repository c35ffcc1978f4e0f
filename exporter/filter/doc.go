// Package filter decides what leaves the function: the pipeline's
// pre-queue step, applied to each Telemetry API batch before anything is
// queued, spilled or sent, and to the OTLP records the function sends
// itself. It drops log lines below SLIPSTREAM_LOGS_MIN_SEVERITY, keeps or
// drops an invocation's spans and logs together (SLIPSTREAM_TRACE_SAMPLE_RATIO,
// decided from the trace ID as OpenTelemetry's TraceIdRatioBased sampler:
// https://opentelemetry.io/docs/specs/otel/trace/sdk/#traceidratiobased),
// redacts secrets (a built-in set and SLIPSTREAM_REDACT_PATTERNS) in log
// bodies, JSON log fields and exception text, and applies the JSON field
// allow and deny lists.
//
// Concurrency: a [Filter] is safe for concurrent use. [Filter.Events] holds
// one lock for a batch (the text streams' state: continuation lines,
// private key blocks); the sampling decisions have a lock of their own,
// held briefly, so that [Filter.Invoke] on the invocation's path never
// waits behind a batch.
package filter
