// Command slipstream-sink runs Slipstream's built-in OTLP/HTTP receiver (package
// emulator/sink) as a standalone process: point an agent, or any OTLP/HTTP exporter, at it and
// it prints one row per invocation span when it stops (SIGINT or SIGTERM), and every -every
// interval if set. It follows the OTLP/HTTP specification
// (https://opentelemetry.io/docs/specs/otlp/#otlphttp) and can refuse requests with a status
// and Retry-After to show an exporter's retries.
//
// Concurrency: main waits for a signal while the sink serves on its own goroutine; the optional
// ticker prints from main's goroutine; Close stops the sink before the final table is printed.
//
//	slipstream-sink -addr 127.0.0.1:4318 -every 5s
//	slipstream-sink -fail-status 503 -fail-times 3 -retry-after 2s
package main
