// Package receiver is the local OTLP receiver: it takes the OpenTelemetry
// data the function's own SDK exports to localhost (OTLP/HTTP on
// 127.0.0.1:4318, OTLP/gRPC on 127.0.0.1:4317) and hands each request to a
// [Sink], the exporter's queue, so the function's export costs a loopback
// round trip instead of a request to a remote backend. It follows the OTLP
// specification (https://opentelemetry.io/docs/specs/otlp/): protobuf and
// JSON bodies (JSON trace and span IDs are hex strings), gzip, and
// partial_success for what is not accepted. It never answers a retryable
// status: a full queue is a 200 with every item rejected.
//
// Concurrency: [Receiver.Listen] binds the sockets on the caller's
// goroutine (before the extension registers), [Receiver.Serve] starts one
// serving goroutine per protocol, and each request runs on the server's
// goroutine, at most [Config.MaxConcurrent] at a time. [Receiver.Close]
// stops accepting, waits for the requests in progress (bounded by its
// context) and for the serving goroutines.
package receiver
