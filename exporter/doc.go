// Package exporter delivers the telemetry of a Lambda execution environment
// to an OTLP backend without slowing the function: [Pipeline.Enqueue] takes
// decoded Telemetry API events, a [Mapper] (package exporter/signals) turns
// them into spans, log records and metrics, one bounded queue holds them,
// and the official OpenTelemetry Go OTLP exporters send them under the
// flush policy of SLIPSTREAM_FLUSH; what cannot be sent by SHUTDOWN is
// spilled to disk and replayed by the next process. [Pipeline.AcceptOTLP]
// takes the function's own OTLP data (package receiver) into the same queue.
//
// It follows the Lambda Extensions and Telemetry API pages
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html,
// https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html) and the
// OTLP specification's failure and throttling rules
// (https://opentelemetry.io/docs/specs/otlp/#failures).
//
// Concurrency: one worker goroutine, [Pipeline.Run], owns the mapper, the
// queue and every decision to send; [Pipeline.Enqueue], [Pipeline.Invoke],
// [Pipeline.Shutdown] and [Pipeline.Close] only leave requests for it under
// two locks and wake it. Each request runs on a sender goroutine of its own
// (at most one per signal) and its result comes back to the worker, which
// reaps every one before Run returns. DESIGN.md maps the types to their jobs.
package exporter
