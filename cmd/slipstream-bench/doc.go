// Command slipstream-bench is the whole-process benchmark of `make bench`:
// it builds the real stripped agent (./cmd/slipstream) and the floor
// extension (./cmd/slipstream-floor: stdlib only, same
// subscription, discards everything) for linux/amd64 and linux/arm64, runs
// each with the example function in the local Lambda emulator (package
// emulator, which follows the AWS Extensions and Telemetry API pages)
// exporting to the OTLP sink, and prints one table of measured costs beside
// the floor's, with their targets. docs/benchmarks.md holds a measured table and explains every row.
//
// It reports numbers only: a missed target is printed as MISS and never
// fails the process (the size budget is checked by `make size`). The process
// fails only when it cannot measure (a build or the emulator fails).
//
// Usage:
//
//	go run ./cmd/slipstream-bench [-quick] [-only steps] [-tags tags] [-agent-log file] [-agent-bin file] [-agent-env K=V,...]
//
// Concurrency: the steps run one after another on the main goroutine, one
// execution environment at a time, so that runs do not compete with each
// other for the CPU. Each backend serves on its own goroutine and is closed
// (waiting for requests in flight) before its counters are read. While an
// extension shuts down, one sampler goroutine reads its /proc files until it
// exits and hands the last sample back over a channel.
package main
