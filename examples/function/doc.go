// Command function is an example AWS Lambda function, built with github.com/aws/aws-lambda-go,
// whose behaviour is chosen by its JSON payload: succeed, write text or JSON log lines, return an
// error, panic, exceed its timeout, allocate memory, flood its logs, sleep or exit. Slipstream's
// emulator, demo and end-to-end tests invoke it to produce every kind of Telemetry API event
// (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html) the agent must turn into
// OTLP. It is an example only: the agent never imports it.
//
// Payload actions (fields other than "action" are optional):
//
//	{"action":"succeed"}                       return a small JSON response (also for {} and "")
//	{"action":"log","lines":5}                 text lines on stdout, cycling "[INFO] ", "", "[ERROR] ", "[WARN] " prefixes
//	{"action":"json-log","lines":3}            JSON lines {"level","message","requestId","line"} on stdout
//	{"action":"error","message":"m"}           return a *RequestedError (Lambda errorType "RequestedError")
//	{"action":"panic","message":"m"}           panic on a new goroutine: the Go runtime prints a multi-line
//	                                           stack trace on stderr and the process exits with status 2
//	{"action":"handler-panic","message":"m"}   panic in the handler: aws-lambda-go recovers it, reports the
//	                                           error with its stack frames, logs one JSON line and exits
//	{"action":"timeout"}                       sleep until the invocation deadline + 1 s
//	{"action":"alloc","mb":64}                 allocate and touch that many MiB (past the memory size: OOM)
//	{"action":"flood","lines":20000,"bytes":N} write many short lines; every 100th is N bytes long
//	{"action":"sleep","ms":N}                  sleep N ms (ends early, with an error, at the deadline)
//	{"action":"exit","code":1}                 exit the process at once (Runtime.ExitError)
//
// Concurrency: aws-lambda-go calls the handler once per invocation (or concurrently under Lambda
// Managed Instances); the handler keeps no state but an atomic invocation counter. The only
// goroutine it starts is the one that panics for the "panic" action. Output goes to the writers
// the function was built with, os.Stdout and os.Stderr in main.
package main
