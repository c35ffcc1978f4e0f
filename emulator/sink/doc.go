// Package sink is a small OTLP/HTTP receiver for Slipstream's demo and tests.
//
// It implements the receiving side of the OTLP/HTTP protocol
// (https://opentelemetry.io/docs/specs/otlp/#otlphttp): POST /v1/traces, /v1/metrics and
// /v1/logs with binary protobuf (application/x-protobuf) or JSON (application/json) bodies,
// optionally gzip-compressed, decoded with the OpenTelemetry Collector's pdata packages. It
// answers like a collector: 200 with an empty Export*ServiceResponse in the request's encoding,
// 400 with a google.rpc.Status for a body that does not decode, 415 for an unknown content type
// or encoding. Everything received is kept, both as pdata and as flat views (SpanView, LogView,
// MetricPoint, Invocation) that tests assert on and that Table prints one row per invocation;
// every request's arrival (signal, time, headers) is logged too. Serve it on a socket with Start,
// or in memory with Transport, an http.RoundTripper for tests inside testing/synctest bubbles.
// Faults (a status with Retry-After, a delay, a stall, a hang-up) can be injected for the next
// N requests or for a duration, to test an exporter's retry and deadline handling.
//
// Concurrency: every request is decoded on its own net/http goroutine (through Transport, on the
// caller's), outside any lock, and then appended under one mutex to append-only slices; Snapshot
// copies the slice headers, so a Snapshot is immutable and safe to read from any goroutine. Every
// change closes a broadcast channel, on which WaitFor blocks until its condition holds or its
// context ends (no polling).
// Start serves in one goroutine that Close waits for; Close first releases stalled requests.
//
// The sink is test and demo tooling: the agent never imports it.
package sink
