// Package telemetry subscribes to the AWS Lambda Telemetry API and
// receives its batches: it decodes them into typed events and hands them,
// without waiting, to a Sink (the exporter's bounded queue).
//
// It follows the Telemetry API guide
// (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html), its
// reference (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api-reference.html)
// and the event schema reference
// (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html),
// schema versions 2025-01-29 (required by Lambda Managed Instances) and
// 2022-12-13 as a fallback.
//
// Subscribe sends the PUT /2022-07-01/telemetry request during Init. A
// platform without the Telemetry API (202 Telemetry.NotSupported from
// local emulators, 403, 404) yields an error matching ErrNotSupported:
// the caller logs one warning and keeps the lifecycle.
//
// The Listener accepts POSTed batches of up to 2 × maxBytes + 64 KiB,
// decodes each event on its own with DecodeBatch (an odd event is kept
// raw and counted, the rest is used), hands the batch to the Sink and
// answers 200 at once. Only a body that is JSON but not an array is
// refused (400). A body that is not JSON may be the first half of a
// record larger than maxBytes, split across two POSTs: it is kept (one at
// a time, for FragmentTTL), answered 202, and joined with the next body;
// what never joins is counted (FragmentsUnjoined). Memory held: at most
// one fragment plus, briefly, the joined copy. A 4xx there would only make
// Lambda resend the same fragment while blocking its single in-flight
// delivery.
//
// When the sink is full, the sink drops and counts; the listener still
// answers 200, because Lambda's retry would only resend the batch and
// hold up the next one. The listener logs at most one debug line per odd
// batch, never per event: its own log lines come back as "extension"
// events, and a line per batch would feed a loop.
//
// Start binds sandbox.localdomain, resolved from /etc/hosts only
// (HostsLookup: no DNS query may precede the first /event/next), or all
// interfaces when the name is not listed there.
//
// Concurrency: net/http runs each POST on its own goroutine, so
// DecodeBatch is pure, the counters are atomic, the one pending fragment
// is guarded by a mutex, and Sink.Enqueue is called concurrently and must
// not block. Start launches the single serving goroutine, which the
// Listener owns and Close waits for. Close stops accepting and waits for
// in-flight handlers (http.Server.Shutdown) until its context ends.
package telemetry
