// Package extension is Slipstream's side of the Lambda Extensions API
// (version 2020-01-01): it registers the agent, long-polls for INVOKE and
// SHUTDOWN events, reports init and exit errors, and drives the lifecycle
// loop that hands those events to a [Handler].
//
// It follows https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html
// and, for Lambda Managed Instances (which allow SHUTDOWN only), the Managed
// Instances execution environment page
// (https://docs.aws.amazon.com/lambda/latest/dg/lambda-managed-instances-execution-environment.html).
//
// Concurrency: a [Client] is safe for concurrent use, but the Extensions API
// expects one caller of [Client.Next] at a time, which is [Run]'s job. [Run]
// is a single loop on the caller's goroutine that starts no goroutines of its
// own: it hands each INVOKE to [Handler.Invoke] and goes straight back to
// /event/next, so anything slow in the handler must run on goroutines the
// handler owns. Every call takes a context; /event/next has no client timeout
// (the environment may be frozen while it waits) and ends only on a response
// or cancellation, while every other call is bounded by the client's Timeout.
package extension
