// Package signals maps Lambda Telemetry API events to OpenTelemetry
// spans, metrics and log records ([Mapper]): the "what" of Slipstream's
// export, kept apart from the "when" and "how" (package exporter). Every
// span is handed over with the [Phase] it belongs to.
//
// It follows the AWS guide "Converting Telemetry API events to
// OpenTelemetry spans" (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-otel-spans.html),
// the Telemetry API schema reference, and the OpenTelemetry semantic
// conventions for FaaS and AWS Lambda. The names, units and attributes it
// emits are listed in the README's Signals section, which a test compares
// both ways with the golden output; DESIGN.md records the semantics
// (invocation spans, cold starts, failures) and why.
//
// Concurrency: a Mapper is owned by one goroutine, the exporter's worker,
// which calls every method; it has no locks. The callbacks it is given
// (Spans, the log Processor, the MeterProvider) are called synchronously
// on that goroutine. Nothing in the package starts a goroutine.
package signals
