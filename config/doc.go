// Package config builds Slipstream's one Config from the environment the
// agent shares with the function: SLIPSTREAM_* product settings, the
// exporter settings (SLIPSTREAM_OTLP_* when any is set, else the standard
// OTEL_EXPORTER_OTLP_* with the OpenTelemetry specification's semantics,
// https://opentelemetry.io/docs/specs/otel/protocol/exporter/), the
// resource variables OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/)
// and the facts Lambda sets for extensions
// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
//
// Load never fails and never makes the function fail: an invalid
// SLIPSTREAM_* setting becomes one line in Config.Problems naming the
// variable, its value, the accepted values and the consequence. A tuning
// setting falls back to its default; an endpoint, headers, protocol or
// client certificate that cannot be used switches off only the signals it
// applies to (Signal.Off). OTEL_* values follow the same rules with lines
// in Config.Warnings. LoadEnviron also warns about unknown SLIPSTREAM_*
// names, and Config.LogValue is the one start-up line. README.md lists
// every variable, and a test keeps that table and Load in agreement.
//
// Concurrency: Load reads only through the getenv function it is given and
// touches no package state, so calls may run in parallel. The Config it
// returns is built once at start and read-only afterwards, safe to share
// between goroutines. ApplyRuntime changes process-wide GC settings and is
// meant to be called once, by main, before other goroutines start.
package config
