// Package backends holds end-to-end tests that end at real OpenTelemetry
// backends instead of the built-in sink: the real agent and the example
// function run in the local emulator and export to Jaeger (traces),
// Prometheus (metrics, through its OTLP receiver) and an OpenTelemetry
// Collector writing OTLP JSON to a file (logs); each test reads the data
// back through the backend's own query interface.
//
// The tests carry the build tag e2e and run with `make e2e`. The backends
// are pinned programs built into ./.tools by `make tools` (from the tools
// module, never from the agent's go.mod); a test skips, naming the
// missing program, when it is not there. Every backend and every
// environment listens on 127.0.0.1 only, on ports picked per test, and is
// started and stopped by the test itself.
package backends
