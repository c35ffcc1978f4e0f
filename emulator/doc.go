// Package emulator is a local AWS Lambda execution environment for tests and
// demos: it runs a real function bootstrap and real extension binaries as
// child processes on loopback and serves them the Runtime API (2018-06-01),
// the Extensions API (2020-01-01) and the Telemetry API (2022-07-01), plus an
// invoke endpoint compatible with AWS's runtime interface emulator.
//
// It follows these public pages, cited by name in the code:
//   - Extensions API: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html
//   - Lambda lifecycle: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
//   - Telemetry API: https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html
//   - Telemetry schema: https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html
//   - RIE_NOTES.md (in emulator/e2e): how AWS's runtime interface emulator,
//     https://github.com/aws/aws-lambda-runtime-interface-emulator, behaves.
//
// Concurrency: one mutex (Emulator.mu) guards the whole environment state and a
// broadcast channel wakes every waiter (HTTP long polls and the lifecycle
// goroutine) after each change, so each wait is a predicate re-checked under the
// lock. Invocations, init and shutdown are serialised by a second mutex, as a
// Lambda execution environment runs one invocation at a time. Each Telemetry
// API subscriber owns one delivery goroutine (one POST in flight at a time);
// every goroutine is started by the Emulator and waited for by Shutdown.
package emulator
