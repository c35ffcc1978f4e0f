// Package signals maps Lambda Telemetry API events to OpenTelemetry
// spans, metrics and log records: the "what" of Slipstream's export,
// kept apart from the "when" and "how" (package exporter: queue, flush
// policy, transport).
//
// It follows the AWS guide "Converting Telemetry API events to
// OpenTelemetry spans" (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-otel-spans.html),
// the Telemetry API schema reference, and the OpenTelemetry semantic
// conventions for FaaS and AWS Lambda (resource, span and metrics). The
// names, units and attributes it emits are listed in the README's Signals section, which a
// test compares both ways with the golden output.
//
// Invocations are modelled by request ID from the first sighting (INVOKE
// or platform.start) to platform.report, so overlapping invocations of
// Lambda Managed Instances are handled like sequential ones. Every
// invocation span runs from platform.start to platform.runtimeDone, in
// every flush mode; the report's figures follow on a postRuntime span
// beside it (same trace, same parent). Cold starts are decided from the
// lifecycle: the first start after an on-demand init or a restore that
// ended within the proactive threshold, or one a suppressed init (phase
// "invoke", after a reset) ran for; the init or restore span then goes
// beside that invocation span, otherwise into a trace of its own, linked
// from the next invocation. The rules and their reasons are in DESIGN.md
// (Semantics).
//
// Lambda resends a batch whose POST was not answered 2xx, so platform
// events may arrive twice: a start, runtimeDone or report already consumed
// (same request ID and time; recently finished invocations are
// remembered) and an init, restore or logsDropped event seen recently are
// ignored, so nothing is counted twice. A retried asynchronous invocation
// reuses its request ID with new times and counts again. A runtimeDone or
// report that arrives after SHUTDOWN closed its invocation adds its
// figures and settles the out-of-memory guess, nothing else.
//
// Spans are built as tracetest.SpanStub{...}.Snapshot() rather than
// through an SDK TracerProvider: every ID and timestamp comes from the
// platform's events (trace and parent from the X-Ray header, span ID from
// tracing.spanId, times from the events, often after the fact), and the
// SDK's parent-based sampler would drop every span whose X-Ray parent says
// Sampled=0, which Slipstream exports by default. A snapshot carries
// exactly what we set and is accepted by every SpanExporter. Metrics are
// recorded into the caller's SDK MeterProvider so the reader's temporality
// applies; log records are emitted through a LoggerProvider the Mapper
// builds with the resource, so records get the resource and scope, and
// the invocation's span context from the context.
//
// Text log lines are held one line back: a line that continues the
// previous one (indented, "goroutine N", "Caused by:", a Go stack frame
// after a panic, ...) is appended to it, so a stack trace split across
// lines and batches becomes one record. The pending record is emitted on
// the next line that does not continue it, on platform.report, on
// FlushLogs and on Shutdown.
//
// Concurrency: a Mapper is owned by one goroutine, the pipeline worker,
// which calls every method; it has no locks. The callbacks it is given
// (Spans, the log Processor, the MeterProvider) are called synchronously
// on that goroutine. Nothing in the package starts a goroutine.
package signals
