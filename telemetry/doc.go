// Package telemetry subscribes to the AWS Lambda Telemetry API
// ([Subscribe]), receives its batches on a local HTTP [Listener], decodes
// them into typed events ([DecodeBatch], [Event]) and hands them to a
// [Sink] (the exporter's bounded intake), in arrival order.
//
// It follows the Telemetry API guide
// (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html), its
// reference (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-api-reference.html)
// and the event schema reference
// (https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html),
// schema versions 2025-01-29 and 2022-12-13.
//
// Concurrency: net/http runs each POST on its own goroutine, which only
// reads, classifies and queues the body (answering before decoding, since
// Lambda allows one delivery in flight); one decode goroutine owns the
// pending fragment, decodes and calls [Sink.Enqueue], which may block for a
// bounded time while bodies behind it go to a disk spool. The Listener owns
// both goroutines and [Listener.Close] waits for them. DESIGN.md explains
// the fragment, spool and burst rules.
package telemetry
