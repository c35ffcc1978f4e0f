package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults and accepted ranges. README.md lists the same values.
const (
	defaultLogLevel       = "info"
	defaultMaxItems       = 1000
	minMaxItems           = 1000
	maxMaxItems           = 10000
	defaultMaxBytes       = 1048576
	minMaxBytes           = 262144
	maxMaxBytes           = 1048576
	defaultTimeoutMs      = 25
	minTimeoutMs          = 25
	maxTimeoutMs          = 30000
	defaultListenerPort   = 4243
	reservedPort          = 9001 // the Runtime API's port on Lambda
	defaultFaaSTrigger    = "other"
	defaultFlushTimeout   = 500 * time.Millisecond
	maxFlushTimeout       = 15 * time.Minute
	minFlushPeriod        = 100 * time.Millisecond
	maxFlushPeriod        = 24 * time.Hour
	defaultMaxDataAge     = 60 * time.Second
	minProactiveThreshold = time.Second
	maxProactiveThreshold = time.Hour
	defaultSpillMaxBytes  = 16 << 20
	maxSpillMaxBytes      = 10 << 30 // Lambda's largest ephemeral storage
	defaultSpoolMaxBytes  = 64 << 20
	defaultSpillDir       = "/tmp/slipstream"
	defaultSpillTTL       = 15 * time.Minute
	defaultGCPercent      = 400
	defaultMaxProcs       = 1
	maxMaxProcs           = 256
	maxGCPercent          = 10000
	minBufferMaxBytes     = 1 << 20
	maxBufferMaxBytes     = 1 << 30
	bufferMemoryDivisor   = 32
	maxDefaultBufferBytes = 16 << 20
	assumedMemorySizeMB   = 128
	minMemoryLimit        = 8 << 20
	maxMemoryLimit        = 64 << 30
	memoryLimitHeadroom   = 12 << 20
	initTypeManaged       = "lambda-managed-instances"
	unknownServiceName    = "unknown_service"
)

// DefaultProactiveInitThreshold is the default of
// SLIPSTREAM_PROACTIVE_INIT_THRESHOLD: the gap between the end of an
// on-demand init and the first invocation beyond which the init did not
// delay it. Datadog's extension and the OpenTelemetry JavaScript Lambda
// instrumentation use the same 10 s.
const DefaultProactiveInitThreshold = 10 * time.Second

var (
	logLevels      = []string{"debug", "info", "warn", "error"}
	telemetryTypes = []string{"platform", "function", "extension"}
	faasTriggers   = []string{"datasource", "http", "pubsub", "timer", "other"}
)

// Load builds the Config from getenv, which is a map lookup in tests; an
// empty value counts as unset. Load never fails: every invalid SLIPSTREAM_*
// setting adds one line to Problems and falls back to its default, except
// those that decide where data goes or who can read it (endpoint, headers,
// protocol, TLS), which switch off the signals they apply to; every OTEL_*
// value Slipstream cannot honour adds one line to Warnings. All valid
// settings are kept, so a single typo does not hide the rest.
func Load(getenv func(string) string) *Config {
	l := &loader{getenv: getenv, cfg: &Config{}, seen: map[string]bool{}}
	l.load()
	return l.cfg
}

// loader carries the state of one Load call.
type loader struct {
	getenv func(string) string
	cfg    *Config
	// seen deduplicates Problems and Warnings lines.
	seen map[string]bool
}

// get returns the trimmed value of name.
func (l *loader) get(name string) string {
	return strings.TrimSpace(l.getenv(name))
}

// problem records an invalid setting: one line naming the variable, its
// value, the accepted values and the consequence (such as "default 400
// used").
func (l *loader) problem(name, value, accepted, consequence string) {
	l.problemLine(fmt.Sprintf("%s=%q: accepted %s; %s", name, clip(value), accepted, consequence))
}

// fallback is the consequence of a tuning setting's invalid value.
func fallback(def any) string {
	return fmt.Sprintf("default %v used", def)
}

func (l *loader) problemLine(line string) {
	if !l.seen[line] {
		l.seen[line] = true
		l.cfg.Problems = append(l.cfg.Problems, line)
	}
}

func (l *loader) warnLine(line string) {
	if !l.seen[line] {
		l.seen[line] = true
		l.cfg.Warnings = append(l.cfg.Warnings, line)
	}
}

func (l *loader) noticeLine(line string) {
	if !l.seen[line] {
		l.seen[line] = true
		l.cfg.Notices = append(l.cfg.Notices, line)
	}
}

// clip shortens a value quoted in a message.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

func (l *loader) load() {
	c := l.cfg
	c.Disabled = l.disabled("SLIPSTREAM_DISABLED")
	c.LogLevel = l.oneOf("SLIPSTREAM_LOG_LEVEL", logLevels, defaultLogLevel)
	c.StrictConfig = l.boolean("SLIPSTREAM_STRICT_CONFIG", false)

	l.lambda()

	c.TelemetryTypes = l.telemetryTypes("SLIPSTREAM_TELEMETRY_TYPES")
	c.TelemetryMaxItems = l.intRange("SLIPSTREAM_TELEMETRY_MAX_ITEMS", minMaxItems, maxMaxItems, defaultMaxItems)
	c.TelemetryMaxBytes = l.intRange("SLIPSTREAM_TELEMETRY_MAX_BYTES", minMaxBytes, maxMaxBytes, defaultMaxBytes)
	c.TelemetryTimeoutMs = int(l.duration("SLIPSTREAM_TELEMETRY_TIMEOUT_MS", minTimeoutMs*time.Millisecond, maxTimeoutMs*time.Millisecond, defaultTimeoutMs*time.Millisecond) / time.Millisecond)
	c.ListenerPort = l.listenerPort("SLIPSTREAM_LISTENER_PORT")

	l.resource()
	l.otlp()
	l.control()
	l.receiver()

	c.TracesRespectSampled = l.boolean("SLIPSTREAM_TRACES_RESPECT_SAMPLED", false)
	c.FaaSTrigger = l.oneOf("SLIPSTREAM_FAAS_TRIGGER", faasTriggers, defaultFaaSTrigger)
	c.PlatformLogs = l.boolean("SLIPSTREAM_PLATFORM_LOGS", false)
	c.ProactiveInitThreshold = l.duration("SLIPSTREAM_PROACTIVE_INIT_THRESHOLD", minProactiveThreshold, maxProactiveThreshold, DefaultProactiveInitThreshold)
	c.PriceGBSecond = l.price("SLIPSTREAM_PRICE_GB_SECOND")
	c.PriceRequest = l.price("SLIPSTREAM_PRICE_REQUEST")

	c.Flush, c.FlushPeriod = l.flush("SLIPSTREAM_FLUSH")
	c.FlushTimeout = l.duration("SLIPSTREAM_FLUSH_TIMEOUT", 0, maxFlushTimeout, defaultFlushTimeout)
	c.MaxDataAge = l.duration("SLIPSTREAM_MAX_DATA_AGE", time.Second, 24*time.Hour, defaultMaxDataAge)
	c.BufferMaxBytes = l.byteSize("SLIPSTREAM_BUFFER_MAX_BYTES", minBufferMaxBytes, maxBufferMaxBytes, DefaultBufferMaxBytes(c.MemorySizeMB))
	c.SpillMaxBytes = l.byteSize("SLIPSTREAM_SPILL_MAX_BYTES", 0, maxSpillMaxBytes, defaultSpillMaxBytes)
	c.SpoolMaxBytes = l.byteSize("SLIPSTREAM_SPOOL_MAX_BYTES", 0, maxSpillMaxBytes, defaultSpoolMaxBytes)
	c.SpillDir = l.absPath("SLIPSTREAM_SPILL_DIR", defaultSpillDir)
	c.SpillTTL = l.duration("SLIPSTREAM_SPILL_TTL", time.Second, 24*time.Hour, defaultSpillTTL)

	c.MaxProcs = l.intRange("SLIPSTREAM_GOMAXPROCS", 1, maxMaxProcs, defaultMaxProcs)
	c.GCPercent = l.gcPercent("SLIPSTREAM_GOGC")
	c.MemoryLimit = l.byteSize("SLIPSTREAM_GOMEMLIMIT", minMemoryLimit, maxMemoryLimit, DefaultMemoryLimit(c.BufferMaxBytes))

	c.ExportEnabled = !c.Disabled && (c.OTLP.Traces.Enabled() || c.OTLP.Metrics.Enabled() || c.OTLP.Logs.Enabled())
}

// lambda reads the facts Lambda sets for every extension.
func (l *loader) lambda() {
	c := l.cfg
	c.RuntimeAPI = l.get("AWS_LAMBDA_RUNTIME_API")
	c.Region = l.get("AWS_REGION")
	if c.Region == "" {
		c.Region = l.get("AWS_DEFAULT_REGION")
	}
	c.FunctionName = l.get("AWS_LAMBDA_FUNCTION_NAME")
	c.FunctionVersion = l.get("AWS_LAMBDA_FUNCTION_VERSION")
	if v := l.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1<<20 {
			l.warnLine(fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%q: not a memory size in MiB; treated as unknown", clip(v)))
		} else {
			c.MemorySizeMB = n
		}
	}
	c.InitType = l.get("AWS_LAMBDA_INITIALIZATION_TYPE")
	c.ManagedInstances = c.InitType == initTypeManaged
}

// DefaultBufferMaxBytes is the SLIPSTREAM_BUFFER_MAX_BYTES default for a
// function of memorySizeMB MiB: memory/32, within 1 MiB..16 MiB; an unknown
// size (0) counts as 128 MiB, which gives 4 MiB.
func DefaultBufferMaxBytes(memorySizeMB int) int64 {
	if memorySizeMB <= 0 {
		memorySizeMB = assumedMemorySizeMB
	}
	b := int64(memorySizeMB) << 20 / bufferMemoryDivisor
	return min(max(b, minBufferMaxBytes), maxDefaultBufferBytes)
}

// DefaultMemoryLimit is the SLIPSTREAM_GOMEMLIMIT default: twice the
// buffer plus 12 MiB for the agent itself (the executable's own pages come
// on top: about 11.5 MiB resident).
func DefaultMemoryLimit(bufferMaxBytes int64) int64 {
	if bufferMaxBytes <= 0 {
		bufferMaxBytes = DefaultBufferMaxBytes(0)
	}
	return 2*bufferMaxBytes + memoryLimitHeadroom
}

// boolean parses true|false (also 1|0, any case).
func (l *loader) boolean(name string, def bool) bool {
	v := l.get(name)
	if v == "" {
		return def
	}
	b, ok := parseBool(v)
	if !ok {
		l.problem(name, v, "true|false", fallback(def))
		return def
	}
	return b
}

// disabled reads the kill switch: unlike other booleans, an invalid value
// counts as true, since whoever set it meant to keep data in.
func (l *loader) disabled(name string) bool {
	v := l.get(name)
	if v == "" {
		return false
	}
	b, ok := parseBool(v)
	if !ok {
		l.problem(name, v, "true|false", "counted as true: export off")
		return true
	}
	return b
}

func parseBool(v string) (value, ok bool) {
	switch strings.ToLower(v) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// oneOf accepts one of values, case-insensitively, and returns it lower-cased.
func (l *loader) oneOf(name string, values []string, def string) string {
	v := l.get(name)
	if v == "" {
		return def
	}
	lv := strings.ToLower(v)
	for _, ok := range values {
		if lv == ok {
			return ok
		}
	}
	l.problem(name, v, strings.Join(values, "|"), fallback(def))
	return def
}

// intRange accepts a decimal integer in lo..hi.
func (l *loader) intRange(name string, lo, hi, def int) int {
	v := l.get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		l.problem(name, v, fmt.Sprintf("%d..%d", lo, hi), fallback(def))
		return def
	}
	return n
}

func (l *loader) listenerPort(name string) int {
	v := l.get(name)
	if v == "" {
		return defaultListenerPort
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 || n == reservedPort {
		l.problem(name, v, fmt.Sprintf("0..65535 except %d (0: a free port)", reservedPort), fallback(defaultListenerPort))
		return defaultListenerPort
	}
	return n
}

// telemetryTypes accepts a comma list of platform, function, extension.
// A list with unknown items keeps the known ones, and platform when none
// is known: the user chose to leave streams out, and a typo must not add
// the function's own logs back.
func (l *loader) telemetryTypes(name string) []string {
	v := l.get(name)
	if v == "" {
		return append([]string(nil), telemetryTypes...)
	}
	want := map[string]bool{}
	bad := false
	for item := range strings.SplitSeq(v, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		switch {
		case item == "":
		case contains(telemetryTypes, item):
			want[item] = true
		default:
			bad = true
		}
	}
	if len(want) == 0 {
		want["platform"] = true
		bad = true
	}
	var out []string
	for _, t := range telemetryTypes { // canonical order
		if want[t] {
			out = append(out, t)
		}
	}
	if bad {
		l.problem(name, v, "a comma list of "+strings.Join(telemetryTypes, ","), strings.Join(out, ",")+" used")
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// price accepts a finite, non-negative decimal number of USD.
func (l *loader) price(name string) float64 {
	v := l.get(name)
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		l.problem(name, v, "a decimal number of USD >= 0", "the built-in price table used")
		return 0
	}
	return f
}

// duration accepts a Go duration or a bare integer of milliseconds, in lo..hi.
func (l *loader) duration(name string, lo, hi, def time.Duration) time.Duration {
	v := l.get(name)
	if v == "" {
		return def
	}
	d, ok := parseDuration(v)
	if !ok || d < lo || d > hi {
		l.problem(name, v, durationRange(lo, hi), fallback(fmtDuration(def)))
		return def
	}
	return d
}

// durationRange describes the accepted values of a SLIPSTREAM_* duration.
func durationRange(lo, hi time.Duration) string {
	return fmt.Sprintf("a duration from %s to %s (a Go duration such as 500ms or 2s, or integer milliseconds)", fmtDuration(lo), fmtDuration(hi))
}

// parseDuration reads a SLIPSTREAM_* duration: a Go duration
// (time.ParseDuration) or a bare decimal integer of milliseconds.
func parseDuration(v string) (time.Duration, bool) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms > math.MaxInt64/int64(time.Millisecond) || ms < math.MinInt64/int64(time.Millisecond) {
			return 0, false
		}
		return time.Duration(ms) * time.Millisecond, true
	}
	d, err := time.ParseDuration(v)
	return d, err == nil
}

// fmtDuration prints round durations without trailing zero units (15m, not 15m0s).
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// flush accepts adaptive, async, end or periodic,<duration>.
func (l *loader) flush(name string) (FlushMode, time.Duration) {
	v := l.get(name)
	if v == "" {
		return FlushAdaptive, 0
	}
	accepted := fmt.Sprintf("adaptive|async|end|periodic,<duration from %s to %s: a Go duration or integer milliseconds>", fmtDuration(minFlushPeriod), fmtDuration(maxFlushPeriod))
	mode, arg, hasArg := strings.Cut(v, ",")
	mode = strings.ToLower(strings.TrimSpace(mode))
	switch FlushMode(mode) {
	case FlushAdaptive, FlushAsync, FlushEnd:
		if !hasArg {
			return FlushMode(mode), 0
		}
	case FlushPeriodic:
		if d, ok := parseDuration(strings.TrimSpace(arg)); hasArg && ok && d >= minFlushPeriod && d <= maxFlushPeriod {
			return FlushPeriodic, d
		}
	}
	l.problem(name, v, accepted, fallback(FlushAdaptive))
	return FlushAdaptive, 0
}

// byteSize accepts a number of bytes with an optional B, KiB, MiB or GiB
// suffix (the GOMEMLIMIT syntax), in lo..hi.
func (l *loader) byteSize(name string, lo, hi, def int64) int64 {
	v := l.get(name)
	if v == "" {
		return def
	}
	n, ok := parseByteSize(v)
	if !ok || n < lo || n > hi {
		l.problem(name, v, fmt.Sprintf("bytes from %s to %s (suffix B, KiB, MiB or GiB allowed)", fmtBytes(lo), fmtBytes(hi)), fallback(fmtBytes(def)))
		return def
	}
	return n
}

func parseByteSize(v string) (int64, bool) {
	units := []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	var shift uint
	for _, u := range units {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			v, shift = s, u.shift
			break
		}
	}
	if v == "" || v[0] < '0' || v[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, false
	}
	return n << shift, true
}

func fmtBytes(n int64) string {
	switch {
	case n == 0:
		return "0"
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

// absPath accepts an absolute path.
func (l *loader) absPath(name, def string) string {
	v := l.get(name)
	if v == "" {
		return def
	}
	if !path.IsAbs(v) {
		l.problem(name, v, "an absolute path", fallback(def))
		return def
	}
	return path.Clean(v)
}

// gcPercent accepts an integer 1..10000 or off (-1, as GOGC=off).
func (l *loader) gcPercent(name string) int {
	v := l.get(name)
	if v == "" {
		return defaultGCPercent
	}
	if strings.EqualFold(v, "off") {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxGCPercent {
		l.problem(name, v, fmt.Sprintf("1..%d or off", maxGCPercent), fallback(defaultGCPercent))
		return defaultGCPercent
	}
	return n
}

// resource reads OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME and the log group.
func (l *loader) resource() {
	c := l.cfg
	c.ResourceAttributes = l.resourceAttributes("OTEL_RESOURCE_ATTRIBUTES")
	c.ServiceName = l.get("OTEL_SERVICE_NAME")
	if c.ServiceName == "" {
		c.ServiceName = c.ResourceAttributes["service.name"]
	}
	if c.ServiceName == "" {
		c.ServiceName = c.FunctionName
	}
	if c.ServiceName == "" {
		c.ServiceName = unknownServiceName
	}
	if v := l.get("SLIPSTREAM_LOG_GROUP"); v != "" {
		if validLogGroup(v) {
			c.LogGroup = v
		} else {
			l.problem("SLIPSTREAM_LOG_GROUP", v, "a CloudWatch log group name: 1..512 of A-Z a-z 0-9 _ - / . #", "default /aws/lambda/<function name> used")
		}
	}
	if c.LogGroup == "" && c.FunctionName != "" {
		c.LogGroup = "/aws/lambda/" + c.FunctionName
	}
}

// validLogGroup reports whether s is a CloudWatch Logs log group name.
func validLogGroup(s string) bool {
	if len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_-/.#", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// resourceAttributes parses key=value,... with percent-encoded values as
// the OpenTelemetry resource SDK specification says. A malformed pair is
// skipped with one warning; the others are kept, as the Go SDK does.
func (l *loader) resourceAttributes(name string) map[string]string {
	attrs := map[string]string{}
	v := l.get(name)
	if v == "" {
		return attrs
	}
	for i, pair := range strings.Split(v, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		decoded, err := percentDecode(strings.TrimSpace(val))
		if !ok || k == "" || err != nil {
			l.warnLine(fmt.Sprintf("%s: pair %d %q skipped: accepted key=value with a percent-encoded value", name, i+1, clip(strings.TrimSpace(pair))))
			continue
		}
		attrs[k] = decoded
	}
	return attrs
}

// percentDecode decodes %XX escapes (url.PathUnescape: unlike query
// decoding, + stays +) and requires the result to be UTF-8.
func percentDecode(s string) (string, error) {
	d, err := url.PathUnescape(s)
	if err != nil {
		return "", err
	}
	if !utf8.ValidString(d) {
		return "", errors.New("decoded value is not UTF-8")
	}
	return d, nil
}
