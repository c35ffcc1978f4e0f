// Command layer packages the built agent as AWS Lambda layer zips: for each
// Go architecture it reads dist/<goarch>/slipstream and writes
// dist/slipstream-<arch>.zip, <arch> being Lambda's name for it (x86_64 or
// arm64), holding extensions/slipstream (mode 0755), the layout Lambda
// expects for an external extension
// (https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html and
// https://docs.aws.amazon.com/lambda/latest/dg/lambda-extensions.html).
// With -release VERSION it also writes dist/release: the zips named with
// the version, an SPDX 2.3 JSON bill of materials per architecture read from
// the binary's build information (what `go version -m` prints), and
// SHA256SUMS. It needs no zip tool, and the zips are reproducible: entries
// carry a fixed timestamp.
//
// Usage (from the repository root, after make build):
//
//	go run ./layer [-dist dist] [-arch "amd64 arm64"] [-release v1.2.3]
//
// Concurrency: none; one goroutine writes one file after the other. Each
// file is written to a temporary file and renamed into place, so a reader
// never sees half a zip. It runs at build time only and is not part of the
// agent.
package main
