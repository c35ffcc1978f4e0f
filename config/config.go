package config

import (
	"time"
)

// Config is every setting of the agent, loaded once from the environment
// by Load. Each field's comment names the variable it comes from, its
// default and its effect; README.md lists the same and a test keeps the
// two in agreement.
type Config struct {
	// Disabled: SLIPSTREAM_DISABLED (bool, default false). When true the
	// agent registers and follows the lifecycle but neither subscribes to
	// telemetry nor exports. An invalid value counts as true (with a
	// Problem): this switch decides whether data leaves at all.
	Disabled bool
	// ExportEnabled is false when Disabled is set or when every signal is
	// off (see Signal.Off): the agent then keeps the lifecycle, exports
	// nothing. Derived, not read from a variable.
	ExportEnabled bool
	// LogLevel: SLIPSTREAM_LOG_LEVEL (debug|info|warn|error, default info).
	LogLevel string
	// StrictConfig: SLIPSTREAM_STRICT_CONFIG (bool, default false). When
	// true an invalid setting fails init through /extension/init/error:
	// Load only records it, main fails init when StrictConfig is set and
	// Problems is non-empty. Bool variables accept true|false (also 1|0),
	// in any case.
	StrictConfig bool

	// Lambda environment (read-only facts, not settings; never Problems).
	RuntimeAPI      string // AWS_LAMBDA_RUNTIME_API (host:port)
	Region          string // AWS_REGION, else AWS_DEFAULT_REGION
	FunctionName    string // AWS_LAMBDA_FUNCTION_NAME
	FunctionVersion string // AWS_LAMBDA_FUNCTION_VERSION
	// MemorySizeMB: AWS_LAMBDA_FUNCTION_MEMORY_SIZE (MiB); 0 when unset, or
	// when not a number (with a Warning).
	MemorySizeMB int
	// InitType: AWS_LAMBDA_INITIALIZATION_TYPE (on-demand,
	// provisioned-concurrency, snap-start, lambda-managed-instances).
	InitType string
	// ManagedInstances is true when InitType is lambda-managed-instances:
	// the agent then registers for SHUTDOWN only.
	ManagedInstances bool

	// Telemetry API subscription.
	// TelemetryTypes: SLIPSTREAM_TELEMETRY_TYPES (comma list of
	// platform,function,extension; default all three). A list with unknown
	// items keeps its known ones (platform when none is known): a typo
	// never widens what is exported.
	TelemetryTypes []string
	// TelemetryMaxItems: SLIPSTREAM_TELEMETRY_MAX_ITEMS (1000..10000, default 1000).
	TelemetryMaxItems int
	// TelemetryMaxBytes: SLIPSTREAM_TELEMETRY_MAX_BYTES (262144..1048576, default
	// 1048576: fewer, larger deliveries keep up with a log flood).
	TelemetryMaxBytes int
	// TelemetryTimeoutMs: SLIPSTREAM_TELEMETRY_TIMEOUT_MS (duration 25ms..30s,
	// default 25: a bare integer is milliseconds), in milliseconds.
	TelemetryTimeoutMs int
	// ListenerPort: SLIPSTREAM_LISTENER_PORT (0..65535 except 9001, default
	// 4243). 0 binds a free port chosen by the system; the subscription
	// names the port actually bound.
	ListenerPort int

	// Resource.
	// ServiceName: OTEL_SERVICE_NAME (default: service.name from
	// OTEL_RESOURCE_ATTRIBUTES, else the function name, else unknown_service).
	ServiceName string
	// ResourceAttributes: OTEL_RESOURCE_ATTRIBUTES (key=value,... with
	// percent-encoded values, decoded; a malformed pair is skipped with a
	// Warning). Never nil.
	ResourceAttributes map[string]string
	// LogGroup: SLIPSTREAM_LOG_GROUP (a log group name, 1..512 of
	// A-Z a-z 0-9 _ - / . #; default /aws/lambda/<function name>, empty
	// when the function name is unknown). Extensions do not receive
	// AWS_LAMBDA_LOG_GROUP_NAME, so a custom log group must be given here.
	LogGroup string

	// Exporter (SLIPSTREAM_OTLP_* when any is set, else OTEL_EXPORTER_OTLP_*).
	OTLP OTLP

	// Local OTLP receiver (package receiver): the function's own SDK
	// exports to it on 127.0.0.1.
	// ReceiverHTTPPort: SLIPSTREAM_RECEIVER_HTTP_PORT (1..65535 or off,
	// default 4318; 0 when off): OTLP/HTTP.
	ReceiverHTTPPort int
	// ReceiverGRPCPort: SLIPSTREAM_RECEIVER_GRPC_PORT (1..65535 or off,
	// default 4317; 0 when off): OTLP/gRPC.
	ReceiverGRPCPort int
	// ReceiverEnrich: SLIPSTREAM_RECEIVER_ENRICH (bool, default true): the
	// function's resources get the cloud.*, faas.* and service.instance.id
	// attributes they lack from Slipstream's resource.
	ReceiverEnrich bool

	// Signals.
	// TracesRespectSampled: SLIPSTREAM_TRACES_RESPECT_SAMPLED (bool, default
	// false). When true, invocations whose X-Ray header says Sampled=0 export no spans.
	TracesRespectSampled bool
	// FaaSTrigger: SLIPSTREAM_FAAS_TRIGGER (datasource|http|pubsub|timer|other, default other).
	FaaSTrigger string
	// PlatformLogs: SLIPSTREAM_PLATFORM_LOGS (bool, default false): platform
	// events also become log records.
	PlatformLogs bool
	// ProactiveInitThreshold: SLIPSTREAM_PROACTIVE_INIT_THRESHOLD (duration
	// 1s..1h, default DefaultProactiveInitThreshold, 10s). An on-demand
	// init (or a restore) whose end comes longer than this before the first
	// platform.start did not delay that invocation: Lambda initialised the
	// environment ahead of demand (proactive initialization), so the
	// invocation is not a cold start.
	ProactiveInitThreshold time.Duration
	// Temporality: OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, or
	// SLIPSTREAM_OTLP_METRICS_TEMPORALITY_PREFERENCE when OTLP.Source is
	// SLIPSTREAM_OTLP (cumulative|delta|lowmemory, default cumulative).
	Temporality string
	// Prices: SLIPSTREAM_PRICE_GB_SECOND and SLIPSTREAM_PRICE_REQUEST (USD,
	// decimal >= 0) override the built-in price table; zero means "use the table".
	PriceGBSecond float64
	PriceRequest  float64

	// What leaves the function (package exporter/filter, applied before
	// anything is queued or spilled). An unusable value switches off the
	// signals it applies to with a Problem: it never falls back to
	// exporting more.
	// LogsMinSeverity: SLIPSTREAM_LOGS_MIN_SEVERITY
	// (trace|debug|info|warn|error|fatal, default "" = every log line):
	// function and extension log lines below it are dropped; a line whose
	// severity cannot be told is kept.
	LogsMinSeverity string
	// RedactDefaults: SLIPSTREAM_REDACT_DEFAULTS (bool, default true): the
	// built-in redaction set (AWS keys, secrets after a key name,
	// authorization values, URL passwords, private keys, JWTs) is applied.
	RedactDefaults bool
	// RedactPatterns: SLIPSTREAM_REDACT_PATTERNS (a Go regular expression,
	// or a JSON array of up to 32; default none): matches are replaced by
	// [REDACTED]; a group named value limits the replacement to that group.
	RedactPatterns []string
	// LogFieldsAllow and LogFieldsDeny: SLIPSTREAM_LOG_FIELDS_ALLOW and
	// SLIPSTREAM_LOG_FIELDS_DENY (comma lists of JSON log field names, *
	// and ? allowed; default none): only allowed fields are kept (when the
	// allow list is set), then denied fields are removed.
	LogFieldsAllow []string
	LogFieldsDeny  []string
	// TraceSampleRatio: SLIPSTREAM_TRACE_SAMPLE_RATIO (0..1, default nil =
	// 1, everything): the share of invocations whose spans and logs are
	// exported, decided from the trace ID as OpenTelemetry's
	// TraceIdRatioBased sampler does. Metrics are never sampled.
	TraceSampleRatio *float64

	// Delivery.
	// Durations are Go durations (time.ParseDuration: 500ms, 2s, 15m) or
	// bare integers meaning milliseconds (500). Byte sizes are integers with an optional B, KiB, MiB or GiB suffix.
	// Flush: SLIPSTREAM_FLUSH (adaptive|async|end|periodic,<duration>,
	// duration 100ms..24h, default adaptive).
	Flush FlushMode
	// FlushPeriod is the duration of periodic,<duration>; 0 otherwise.
	FlushPeriod time.Duration
	// FlushTimeout: SLIPSTREAM_FLUSH_TIMEOUT (duration 0s..15m, default
	// 500ms): the longest an invocation waits for export in end/adaptive mode.
	FlushTimeout time.Duration
	// MaxDataAge: SLIPSTREAM_MAX_DATA_AGE (duration 1s..24h, default 60s):
	// in adaptive mode, an invocation after a longer gap flushes as in end mode.
	MaxDataAge time.Duration
	// BufferMaxBytes: SLIPSTREAM_BUFFER_MAX_BYTES (byte size 1MiB..1GiB,
	// default DefaultBufferMaxBytes(MemorySizeMB): memory/32 within
	// 1 MiB..16 MiB, 4 MiB when the memory size is unknown).
	BufferMaxBytes int64
	// SpillMaxBytes: SLIPSTREAM_SPILL_MAX_BYTES (byte size 0..10GiB,
	// default 16 MiB; 0 disables spill).
	SpillMaxBytes int64
	// SpoolMaxBytes: SLIPSTREAM_SPOOL_MAX_BYTES (byte size 0..10GiB,
	// default 64 MiB; 0 disables): bound of the telemetry batches waiting
	// in the spool, unlinked files in SpillDir (about twice the bound on
	// disk at most), received while the pipeline is behind (a log flood),
	// so that Lambda's delivery is answered at once.
	SpoolMaxBytes int64
	// SpillDir: SLIPSTREAM_SPILL_DIR (absolute path, default /tmp/slipstream).
	SpillDir string
	// SpillTTL: SLIPSTREAM_SPILL_TTL (duration 1s..24h, default 15m).
	SpillTTL time.Duration

	// Go runtime: the agent's own scheduler and GC settings, applied at
	// start over any GOMAXPROCS/GOGC/GOMEMLIMIT the function set for itself.
	// MaxProcs: SLIPSTREAM_GOMAXPROCS (1..256, default 1; the agent's
	// goroutines hand each telemetry batch to one another, and with one P
	// they do so without waking a second thread: about a quarter fewer
	// system calls per invocation, a third fewer futex calls).
	MaxProcs int
	// GCPercent: SLIPSTREAM_GOGC (1..10000 or off = -1, default 400; the
	// memory limit bounds the heap, and fewer collections means fewer cut
	// by a freeze and resumed at thaw, beside the next invocation).
	GCPercent int
	// MemoryLimit: SLIPSTREAM_GOMEMLIMIT (byte size 8MiB..64GiB, default
	// DefaultMemoryLimit(BufferMaxBytes) = 2 × BufferMaxBytes + 12 MiB,
	// filled in by Load).
	MemoryLimit int64

	// Problems lists every invalid SLIPSTREAM_* setting found (logged at
	// ERROR), one line each naming the variable, its value, the accepted
	// values and the consequence: a tuning setting falls back to its
	// default; a setting that decides where data goes or who can read it
	// (endpoint, headers, protocol, TLS) switches off the signals it
	// applies to; an invalid SLIPSTREAM_DISABLED switches export off.
	Problems []string
	// Warnings lists what Slipstream cannot honour or suspects (logged at
	// WARN), one line each naming the variable: OTEL_* values (ignored, or
	// the signal off for an unusable endpoint, headers or TLS setting),
	// malformed OTEL_RESOURCE_ATTRIBUTES pairs, an unreadable Lambda memory
	// size, an unknown _EXPORTER value, an unknown SLIPSTREAM_* name
	// (LoadEnviron), an OTEL_* endpoint ignored because SLIPSTREAM_OTLP_*
	// variables are set while some signal keeps the default endpoint.
	Warnings []string
	// Notices lists facts worth one INFO line: an OTEL_* endpoint ignored
	// because the SLIPSTREAM_OTLP_* variables give every signal its own.
	Notices []string
}

// FlushMode is the SLIPSTREAM_FLUSH policy.
type FlushMode string

// Flush modes.
const (
	FlushAdaptive FlushMode = "adaptive"
	FlushAsync    FlushMode = "async"
	FlushEnd      FlushMode = "end"
	FlushPeriodic FlushMode = "periodic"
)

// OTLP holds the exporter settings. Per-signal values fall back to the
// base ones as the OpenTelemetry specification says. Every setting is read
// as <Source>_<SUFFIX> (base) and <Source>_<TRACES|METRICS|LOGS>_<SUFFIX>
// (per signal); the suffixes are named on the fields below.
type OTLP struct {
	// Source is SourceSlipstream ("SLIPSTREAM_OTLP") when any
	// SLIPSTREAM_OTLP_* variable is set, else SourceOTEL
	// ("OTEL_EXPORTER_OTLP"): the prefix the settings were read from (never
	// a mix). Unusable values are Problems from SLIPSTREAM_OTLP_*, Warnings
	// (value ignored) from OTEL_EXPORTER_OTLP_*.
	Source string
	// Protocol: base _PROTOCOL (http/protobuf|grpc; http/json for traces
	// only; default http/protobuf). Each Signal holds its resolved protocol.
	Protocol string
	Traces   Signal
	Metrics  Signal
	Logs     Signal
	// HTTPSProxy: SLIPSTREAM_HTTPS_PROXY (an http://, https:// or
	// socks5:// URL, or none; default "": the standard HTTPS_PROXY and
	// HTTP_PROXY apply). Used for every exporter request instead of the
	// standard variables the function shares; none disables proxying. May
	// hold user info: never log it. Loopback and link-local destinations
	// are never proxied.
	HTTPSProxy string
	// NoProxy: SLIPSTREAM_NO_PROXY (NO_PROXY syntax; default "": NO_PROXY
	// applies): hosts reached without the proxy.
	NoProxy string
}

// Signal is the exporter setting of one signal after applying the
// per-signal > base > default precedence.
type Signal struct {
	// Off names the variable that switched this signal's export off, empty
	// when the signal is exported (the zero Signal is exported). Set by
	// SLIPSTREAM_TRACES_EXPORTER, SLIPSTREAM_METRICS_EXPORTER,
	// SLIPSTREAM_LOGS_EXPORTER (otlp|none, default otlp; another value
	// gives a Warning and otlp), else, when neither that variable nor any
	// SLIPSTREAM_OTLP_* variable is set, by the specification's
	// OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_LOGS_EXPORTER
	// (none switches off; a list holding otlp keeps it on); or by an
	// unusable _ENDPOINT, _HEADERS, _PROTOCOL, _INSECURE or client
	// certificate setting that applies to this signal. See Enabled. A
	// signal that is off keeps no destination (default Endpoint, no
	// Headers, no client certificate): a consumer that does not look at
	// Off still sends nothing to a half-configured destination.
	Off string
	// Protocol: _PROTOCOL, http/protobuf, http/json (traces only) or grpc.
	Protocol string
	// Endpoint: _ENDPOINT, an http:// or https:// URL; for grpc also
	// host:port without a scheme, as the specification allows, turned into
	// https://host:port (http://host:port when _INSECURE is true). The full
	// URL: a per-signal endpoint is used as is; for http the base endpoint
	// gets /v1/traces, /v1/metrics or /v1/logs appended; for grpc it is
	// used as is (scheme://host:port). Default
	// http://localhost:4318/v1/<signal> (http) or http://localhost:4317
	// (grpc). It may hold user info (credentials): never log it whole
	// (RedactedEndpoint).
	Endpoint string
	// Headers: _HEADERS (W3C baggage-style key=value list, percent-decoded;
	// a per-signal list replaces the base one). Never nil. Values may be
	// secrets: never log them.
	Headers map[string]string
	// Compression: _COMPRESSION (gzip|none, default gzip: Slipstream's
	// choice, the specification leaves the default to the implementation).
	Compression string
	// Timeout: _TIMEOUT (milliseconds 1..60000, default 10000; the
	// SLIPSTREAM_OTLP_ names also take a Go duration such as 10s).
	Timeout time.Duration
	// Insecure: _INSECURE (bool, default false; grpc only: no TLS. An
	// http:// endpoint means no TLS anyway, https:// means TLS).
	Insecure bool
	// Certificate, ClientCertificate, ClientKey: _CERTIFICATE,
	// _CLIENT_CERTIFICATE, _CLIENT_KEY: PEM file paths for TLS (trusted CA;
	// client certificate and key, accepted only together). Load does not
	// read the files.
	Certificate       string
	ClientCertificate string
	ClientKey         string
	// Auth: SLIPSTREAM_OTLP_AUTH and SLIPSTREAM_OTLP_<SIGNAL>_AUTH (none|
	// sigv4, default none; a per-signal value wins). sigv4 signs every
	// request with AWS Signature Version 4 for AWS's own OTLP endpoints;
	// with the grpc protocol, or an unusable value, the signal is off.
	Auth string
	// HeadersFrom names the variable Headers came from (the per-signal
	// one when set, else the base one) when a value is a secret reference,
	// for the messages about it; empty otherwise.
	// A SLIPSTREAM_* header value may be a secret reference,
	// ${secretsmanager:<ARN or name>[#<JSON key>]} or ${ssm:<parameter>}:
	// Headers then holds the reference, resolved by package secrets.
	HeadersFrom string
	// SigV4Service and SigV4Region: the signing scope when Auth is sigv4.
	// SLIPSTREAM_OTLP_SIGV4_SERVICE and SLIPSTREAM_OTLP_<SIGNAL>_SIGV4_SERVICE
	// (default: the endpoint host's first label, xray.<region>.amazonaws.com
	// gives xray); SLIPSTREAM_OTLP_SIGV4_REGION (default: the host's
	// region, else AWS_REGION).
	SigV4Service string
	SigV4Region  string
}

// Enabled reports whether the signal is exported: Off is empty.
func (s Signal) Enabled() bool { return s.Off == "" }
