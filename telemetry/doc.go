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
// The Listener answers first and decodes after: Lambda allows one
// telemetry POST in flight per subscriber and drops records
// (platform.logsDropped) while its buffer fills behind it. It accepts
// bodies of up to 2 × maxBytes + 64 KiB (413 above). A body whose first
// and last non-space bytes are '[' and ']' is answered 200 as soon as it
// is handed to the decode goroutine, which decodes each event on its own
// with DecodeBatch (an odd event is kept raw and counted, the rest is
// used) and hands the batch to the Sink, in arrival order. Only a body
// that is empty or valid JSON but not an array is refused (400), decided
// before answering. Any other body is not JSON and may be the first half
// of a record larger than maxBytes, split across two POSTs: it is
// answered 202 and, on the decode goroutine, kept (one at a time, for
// FragmentTTL from its arrival) and joined with the next body, which is
// answered before the join is tried (202 as well when it is not JSON on
// its own); what never joins is counted (FragmentsUnjoined). A body in brackets that turns out
// not to be JSON (a split record's first half ending in ']') was answered
// 200 already; it goes through the same fragment logic and is counted the
// same way. A 4xx for a fragment would only make Lambda resend it while
// blocking its single in-flight delivery.
//
// The handoff to the decode goroutine is bounded by bytes in memory
// (HandoffBytes: by default one full batch, MaxBytes + 64 KiB, with a
// spool, 2 × the body limit without). A body that finds it full is written to the spool
// (SpoolDir, bounded by SpoolBytes: unlinked files, at most two of about
// SpoolBytes on disk) and answered at once, so that a log flood waits on disk rather
// than in Lambda's buffer, which would drop it. A burst body (spooled, or
// at least MaxBytes/4, which Lambda sends only when its batch is full) is
// decoded once POSTs have paused for SpoolQuiet (or after 10 × SpoolQuiet): during a flood the
// listener only receives, leaving the CPU to the function and to Lambda's
// delivery. Only when the spool is off, full or failing does a POST wait
// for room before it is answered (counted in Waited), up to the end of its
// request: the buffering then moves to Lambda, which drops on its side and
// says so with platform.logsDropped (exported and counted). A POST whose
// request ends while waiting is answered 503 and counted (Abandoned).
// Memory held: the handoff bound, the body read back from the spool, one
// fragment and, briefly, the joined copy.
//
// The sink may block (the exporter's backpressure while its queue is full
// and a request is in flight); the bodies that arrive meanwhile go to the
// spool. When the sink drops, it counts; the listener has answered 200
// already, because Lambda's retry would only resend the batch and hold up
// the next one. The listener logs at most one debug line per odd batch,
// never per event: its own log lines come back as "extension" events, and
// a line per batch would feed a loop.
//
// Start binds sandbox.localdomain, resolved from /etc/hosts only
// (HostsLookup: no DNS query may precede the first /event/next), or all
// interfaces when the name is not listed there.
//
// Concurrency: net/http runs each POST on its own goroutine, which only
// reads, classifies and queues the body (atomic counters, a mutex-guarded
// FIFO with a byte-weighted semaphore); one decode goroutine owns the
// pending fragment, runs DecodeBatch and calls Sink.Enqueue, which may
// block for a bounded time. With SpoolDir and SpoolBytes, a body that finds the FIFO full
// is appended, under a mutex, to an unlinked spool file and queued as a
// reference, answered at once; the decode goroutine reads it back in queue
// order into a new buffer, so memory stays within HandoffBytes plus the
// body read back, and a spool that cannot be created or written is turned
// off with one warning (POSTs wait for room again). Start launches the
// serving and decode goroutines, which the Listener owns and Close waits
// for. Close stops accepting and waits for in-flight handlers
// (http.Server.Shutdown), then for the decode goroutine to drain every
// accepted body, spooled ones too, into the sink, all until its context
// ends; the decode goroutine closes the spool file when it is done.
package telemetry
