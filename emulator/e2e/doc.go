// Package e2e holds the end-to-end tests of Slipstream: the real agent
// (./cmd/slipstream) and the example function (./examples/function), built
// as static binaries, run in the local emulator (package emulator) against
// the in-process OTLP sink (package emulator/sink), and, when `make tools`
// has installed it, in AWS's runtime interface emulator
// (https://github.com/aws/aws-lambda-runtime-interface-emulator).
//
// The tests run real processes on the wall clock, so they carry the build
// tag e2e and run under `make e2e`, not `make test`:
//
//	go test -race -tags e2e ./emulator/e2e
//
// Each test starts its own emulator, sink and processes and stops them
// before it returns; the binaries are built once per test run and removed
// by TestMain.
package e2e
