// Package exporter delivers the telemetry of a Lambda execution environment
// to an OTLP backend without slowing the function: it takes decoded
// Telemetry API events from the listener, has them mapped into spans, log
// records and metrics (package exporter/signals, plugged in through
// Options.NewMapper, by default SignalsMapper(nil)), buffers the outputs in one bounded queue and sends
// them with the official OpenTelemetry Go OTLP exporters under the flush
// policy of SLIPSTREAM_FLUSH.
//
// It follows the Lambda Extensions and Telemetry API documentation
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html,
// https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html), the
// OTLP specification's retry and throttling rules
// (https://opentelemetry.io/docs/specs/otlp/#failures) and the OTLP
// exporter configuration (https://opentelemetry.io/docs/specs/otel/protocol/exporter/).
//
// # Concurrency
//
// One worker goroutine, Run, owns the mapper, the queue, the retry and
// breaker policy and every decision to send; Enqueue, Invoke, Shutdown and
// Close only hand it requests under a mutex and wake it (Invoke under its
// own, so that the extension loop never waits behind intake work before
// its next /event/next), and the ones that
// wait (Invoke in end mode, Shutdown, Close) carry a context and a reply
// channel, like sdk/log's BatchProcessor. The worker never waits on the
// network: each request runs on a sender goroutine it starts (at most one
// in flight per signal, so traces, logs and metrics go out concurrently)
// and whose result comes back over a channel, so mapping and intake
// draining go on while requests are in flight; Run reaps every sender
// before it returns. Enqueue waits only while the worker holds the intake
// back for a request in flight (see "When it is full"). Each export attempt runs a
// small timer goroutine that is stopped and waited for before the attempt
// returns.
//
// # Transport
//
// Exporters are built only from config.Config with explicit options:
// otlptracehttp/otlpmetrichttp/otlploghttp for http/protobuf (http/json for
// traces only), otlp*grpc for grpc. The exporters would read
// OTEL_EXPORTER_OTLP_* from the process environment by themselves, which
// the function shares; explicit options override that environment, so
// every setting (endpoint, headers even when empty, compression, TLS) is
// always passed. Our own http.Client is passed with WithHTTPClient (which
// makes the exporter ignore WithTLSClientConfig, WithTimeout and
// WithProxy), so TLS and proxy live on our http.Transport. The exporters'
// built-in retry is off; a RoundTripper wrapper (HTTP) or unary
// interceptor (gRPC) records status codes, Retry-After and RetryInfo for
// our retry. Header values are never logged.
//
// # When it is full
//
// The intake between the listener and the worker is bounded
// (Options.IntakeMaxBytes), and so is the output queue
// (SLIPSTREAM_BUFFER_MAX_BYTES, the batches in flight included; a queued
// record is charged its text plus the fixed size of its structures). While
// a span or log request is in flight, the worker maps an event only when
// its output cannot overflow the queue, and otherwise leaves the rest in
// the intake until the request ends; Enqueue then waits for the intake
// (Stats.IntakeWaits), and the listener answers Lambda from its spool
// meanwhile: a flood waits rather than being dropped, within fixed memory.
// Without a request in flight (dead backend, backoff, open breaker), the
// worker maps everything: when the queue is full, log records are evicted
// before spans; before Run and after SHUTDOWN's flush, Enqueue drops
// function and extension log events first (incoming, then queued, oldest
// first) and platform events last. Each drop is counted (Stats,
// slipstream.exporter.items{outcome=dropped}). Metrics are never queued
// nor dropped for space: they are aggregated state in the MeterProvider,
// collected at each flush.
//
// # Flush policy and budget
//
// async: Invoke returns at once; the worker sends while the environment is
// awake (when a batch is full or BatchDelay old, every MetricInterval for
// metrics, at SHUTDOWN). Batch age and the metric interval are awake time,
// not wall time: a freeze between invocations does not make a batch due
// at thaw (which would send a small request nearly every thaw). The worker
// counts the steps of the wall clock between its readings that are no
// longer than Options.FreezeGap and that do not end at an INVOKE (the
// environment may have been frozen until then), a lower bound of the time
// awake. The only bound on data age in wall time is adaptive's
// SLIPSTREAM_MAX_DATA_AGE: besides flushing the invocation after a longer
// gap as in end mode, adaptive sends queued data and metrics that old at
// the worker's first look while awake. end: Invoke waits until the invocation's
// platform.runtimeDone has been mapped and sends what is known then (the
// invocation span, closed at runtimeDone, its logs and counters); the
// invocation's platform.report cannot be known before the next
// /event/next, so its figures leave with the next flush. adaptive: end for
// the first invocation and after a gap longer than SLIPSTREAM_MAX_DATA_AGE
// (Invocation.EndFlush tells the mapper to close that span at runtimeDone),
// async otherwise. periodic,<d>: every d while awake. The wait for
// runtimeDone is bounded by the invocation's deadline minus a margin (the
// function is running meanwhile, so it costs nothing); the export after it
// by SLIPSTREAM_FLUSH_TIMEOUT, counted from the moment Enqueue sees the
// runtimeDone; the requests themselves are not cut when the invocation
// stops waiting (that would send them twice). No invocation waits while the circuit
// breaker is open, and end/adaptive run as async when platform events are
// not subscribed (no runtimeDone would ever come).
//
// A request is bounded by awake time, not wall time: a freeze of the
// environment mid-request does not use up its timeout (jumps of the clock
// longer than three ticks are ignored). A request that fails after a
// freeze is retried on a fresh connection; when its body had been written,
// its items are counted as duplicate_suspected once delivered.
//
// # Spill
//
// SHUTDOWN's flush ends, whatever the backend does, at its deadline minus
// twice the margin: the requests still in flight are canceled, their items
// taken back, and the spill is written in the last margin; nothing is sent
// after that (Close spills what arrives later).
//
// The exporters expose no payload, so what cannot be sent at SHUTDOWN (or
// Close) is spilled as our own data: the decoded Telemetry API events, after
// the pre-queue filter, that the unsent spans and log records were mapped
// from, plus the SHUTDOWN reason and, for the resource, the latest
// initStart (replayed as context only: an init span already delivered is
// not sent again). Files are 0600 in a 0700 SLIPSTREAM_SPILL_DIR,
// bounded by SLIPSTREAM_SPILL_MAX_BYTES and SLIPSTREAM_SPILL_TTL, each with
// an ID. Run replays them through a fresh mapper (metrics are not
// recounted) and deletes each file once all of its outputs got a 2xx: a
// process killed between the 2xx and the delete sends that batch once more.
// Metrics are aggregated state, not events: the collections the final flush
// could not send (with delta temporality every unsent one, with cumulative
// a fresh one that carries the totals) go into the same file in our own
// encoding of the SDK's metricdata (metricspill.go), and a replay sends
// them as they were collected, beside this process's own collections (a
// cumulative collection never supersedes a replayed one).
package exporter
