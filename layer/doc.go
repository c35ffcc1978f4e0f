// Command layer packages the built agent as AWS Lambda layer zips: for each
// architecture it reads dist/<arch>/slipstream and writes
// dist/slipstream-<arch>.zip holding extensions/slipstream (mode 0755),
// the layout Lambda expects for an external extension
// (https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html and
// https://docs.aws.amazon.com/lambda/latest/dg/lambda-extensions.html).
// It needs no zip tool, and the zips are reproducible: entries carry a
// fixed timestamp.
//
// Usage (from the repository root, after make build):
//
//	go run ./layer [-dist dist] [-arch "amd64 arm64"]
//
// Concurrency: none; one goroutine writes one zip after the other. Each zip
// is written to a temporary file and renamed into place, so a reader never
// sees half a zip. It runs at build time only and is not part of the agent.
package main
