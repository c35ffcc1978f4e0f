package config

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Sources of the exporter settings (OTLP.Source).
const (
	SourceSlipstream = "SLIPSTREAM_OTLP"
	SourceOTEL       = "OTEL_EXPORTER_OTLP"
)

// OTLP protocols (the OpenTelemetry specification's values).
const (
	ProtocolHTTPProtobuf = "http/protobuf"
	ProtocolHTTPJSON     = "http/json"
	ProtocolGRPC         = "grpc"
)

// Metrics temporality preferences.
const (
	TemporalityCumulative = "cumulative"
	TemporalityDelta      = "delta"
	TemporalityLowMemory  = "lowmemory"
)

// Exporter defaults. Compression defaults to gzip (the specification
// leaves it to the implementation; gzip shrinks OTLP several-fold, which
// matters on a frozen-and-thawed network path).
const (
	DefaultHTTPEndpoint = "http://localhost:4318"
	DefaultGRPCEndpoint = "http://localhost:4317"
	defaultCompression  = "gzip"
	defaultOTLPTimeout  = 10 * time.Second
	maxOTLPTimeoutMs    = 60000
)

// otlpSuffixes are the exporter variables, each read as <source>_<suffix>
// and <source>_<SIGNAL>_<suffix>.
var otlpSuffixes = []string{
	"ENDPOINT", "PROTOCOL", "HEADERS", "COMPRESSION", "TIMEOUT",
	"INSECURE", "CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY",
}

// signalNames are the per-signal infixes, in the order of OTLP's fields.
var signalNames = []string{"TRACES", "METRICS", "LOGS"}

const temporalitySuffix = "METRICS_TEMPORALITY_PREFERENCE"

// otlpNames lists every exporter variable of one source.
func otlpNames(source string) []string {
	var names []string
	for _, s := range otlpSuffixes {
		names = append(names, source+"_"+s)
		for _, sig := range signalNames {
			names = append(names, source+"_"+sig+"_"+s)
		}
	}
	return append(names, source+"_"+temporalitySuffix)
}

// Destination settings: those that decide where data goes and who can
// read it. An unusable one switches off the signals it applies to (so do
// an unusable _ENDPOINT and a client certificate without its key, checked
// in resolve); the other exporter settings fall back. An invalid
// _INSECURE falls back to false: TLS never widens who can read the data.
const (
	fieldProtocol = "PROTOCOL"
	fieldHeaders  = "HEADERS"
)

// otlpLevel is what one level (base or one signal) of one source sets;
// zero values mean unset (or invalid, already reported).
type otlpLevel struct {
	prefix                string
	protocol, protocolVar string
	// endpoint is the raw value: whether it is usable depends on the
	// signal's protocol (grpc also takes host:port), known in resolve.
	endpoint    string
	headers     map[string]string
	headersSet  bool
	compression string
	timeout     time.Duration
	insecure    *bool
	certificate string
	clientCert  string
	clientKey   string
	// bad maps a destination field to the variable holding an unusable value.
	bad map[string]string
}

// otlp reads the exporter settings: SLIPSTREAM_OTLP_* when any of them is
// set, else OTEL_EXPORTER_OTLP_*, never a mix.
func (l *loader) otlp() {
	o := &l.cfg.OTLP
	o.Source = SourceOTEL
	var set []string // the SLIPSTREAM_OTLP_* variables that are set
	for _, n := range otlpNames(SourceSlipstream) {
		if l.get(n) != "" {
			o.Source = SourceSlipstream
			set = append(set, n)
		}
	}
	ex := &exporterLoader{loader: l, fromSlipstream: o.Source == SourceSlipstream, conseq: map[string]*consequence{}}
	base := ex.level(o.Source + "_")
	o.Protocol = cmp.Or(base.protocol, ProtocolHTTPProtobuf)
	sigs := []*Signal{&o.Traces, &o.Metrics, &o.Logs}
	for i, sig := range signalNames {
		per := ex.level(o.Source + "_" + sig + "_")
		*sigs[i] = ex.resolve(sig, per, base)
	}
	ex.report()
	l.cfg.Temporality = TemporalityCumulative
	name := o.Source + "_" + temporalitySuffix
	if v := l.get(name); v != "" {
		switch lv := strings.ToLower(v); lv {
		case TemporalityCumulative, TemporalityDelta, TemporalityLowMemory:
			l.cfg.Temporality = lv
		default:
			ex.invalid(name, v, "cumulative|delta|lowmemory", fallback(TemporalityCumulative))
		}
	}
	if len(set) > 0 {
		l.otelEndpointIgnored(set)
	}
	l.exporters(len(set) > 0)
	for i, s := range sigs {
		if !s.Enabled() {
			s.forget(strings.ToLower(signalNames[i]))
		}
	}
}

// forget drops the destination of a signal that is off (endpoint back to
// the default, no headers, no client certificate): a consumer that does
// not look at Off still sends nothing to a half-configured destination.
func (s *Signal) forget(sig string) {
	s.Endpoint = DefaultHTTPEndpoint + "/v1/" + sig
	if s.Protocol == ProtocolGRPC {
		s.Endpoint = DefaultGRPCEndpoint
	}
	s.Headers = map[string]string{}
	s.ClientCertificate, s.ClientKey = "", ""
}

// otelEndpointIgnored says, in one line, that the OTEL_* endpoints set are
// ignored because SLIPSTREAM_OTLP_* variables are set: an INFO line when
// every signal has a SLIPSTREAM_OTLP_* endpoint, else a WARN line naming
// the signals left on the default endpoint.
func (l *loader) otelEndpointIgnored(set []string) {
	var otel []string
	for _, n := range otlpEndpointNames(SourceOTEL) {
		if l.get(n) != "" {
			otel = append(otel, n)
		}
	}
	if len(otel) == 0 {
		return
	}
	line := fmt.Sprintf("%s ignored: %s set, and then every OTEL_EXPORTER_OTLP_* variable is ignored",
		strings.Join(otel, ", "), strings.Join(set, ", "))
	var defaulted []string
	for _, sig := range signalNames {
		if l.get(SourceSlipstream+"_ENDPOINT") == "" && l.get(SourceSlipstream+"_"+sig+"_ENDPOINT") == "" {
			defaulted = append(defaulted, strings.ToLower(sig))
		}
	}
	if len(defaulted) == 0 {
		l.noticeLine(line)
		return
	}
	l.warnLine(fmt.Sprintf("%s; %s use the default endpoint (set %s_ENDPOINT)", line, joinSignals(defaulted), SourceSlipstream))
}

// otlpEndpointNames lists the base and per-signal endpoint variables of a source.
func otlpEndpointNames(source string) []string {
	names := []string{source + "_ENDPOINT"}
	for _, sig := range signalNames {
		names = append(names, source+"_"+sig+"_ENDPOINT")
	}
	return names
}

// Exporter selection values (SLIPSTREAM_<SIGNAL>_EXPORTER and the
// specification's OTEL_<SIGNAL>_EXPORTER).
const (
	exporterOTLP = "otlp"
	exporterNone = "none"
)

// exporters reads SLIPSTREAM_<SIGNAL>_EXPORTER, and the specification's
// OTEL_<SIGNAL>_EXPORTER when neither that variable nor any
// SLIPSTREAM_OTLP_* variable (slipstreamOTLP) is set: none switches the
// signal off. Another value is a Warning and otlp applies.
func (l *loader) exporters(slipstreamOTLP bool) {
	sigs := []*Signal{&l.cfg.OTLP.Traces, &l.cfg.OTLP.Metrics, &l.cfg.OTLP.Logs}
	for i, sig := range signalNames {
		name := "SLIPSTREAM_" + sig + "_EXPORTER"
		otel := "OTEL_" + sig + "_EXPORTER"
		v := l.get(name)
		if v == "" && !slipstreamOTLP {
			if v = l.get(otel); v != "" {
				name = otel
			}
		}
		if v == "" {
			continue
		}
		on, ok := true, false
		items := strings.Split(strings.ToLower(v), ",")
		for i := range items {
			items[i] = strings.TrimSpace(items[i])
		}
		switch {
		case len(items) == 1 && items[0] == exporterNone:
			on, ok = false, true
		case len(items) == 1 && items[0] == exporterOTLP:
			ok = true
		case name == otel && contains(items, exporterOTLP):
			// A list (otlp,console): the function's SDK may use the others.
			ok = true
		}
		if !ok {
			l.warnLine(fmt.Sprintf("%s=%q: accepted otlp|none; otlp used", name, clip(v)))
		}
		if !on && sigs[i].Off == "" {
			sigs[i].Off = name
		}
	}
}

// exporterLoader reports an unusable exporter value as a Problem when it
// came from SLIPSTREAM_OTLP_* (fromSlipstream) and as a Warning when it came from
// OTEL_EXPORTER_OTLP_*.
type exporterLoader struct {
	*loader
	fromSlipstream bool
	// conseq collects, per variable, the signals an unusable value
	// affects, reported once all signals are resolved; order keeps the
	// variables in the order they were found.
	conseq map[string]*consequence
	order  []string
}

// consequence is what one unusable exporter variable does to the signals.
type consequence struct {
	line    string   // variable, value and accepted values
	what    string   // "export off" or "use http/protobuf"
	signals []string // lower-case signal names affected
}

// record reports line as a Problem or a Warning.
func (ex *exporterLoader) record(line string) {
	if ex.fromSlipstream {
		ex.problemLine(line)
		return
	}
	ex.warnLine(line)
}

// invalid reports an unusable tuning value: the consequence is a fallback.
func (ex *exporterLoader) invalid(name, value, accepted, consequence string) {
	ex.record(fmt.Sprintf("%s=%q: accepted %s; %s", name, clip(value), accepted, consequence))
}

// affects notes that the unusable value of name (described by line) has
// consequence what for sig; "" for sig only registers the variable.
func (ex *exporterLoader) affects(name, line, what, sig string) {
	c := ex.conseq[name]
	if c == nil {
		c = &consequence{line: line, what: what}
		ex.conseq[name] = c
		ex.order = append(ex.order, name)
	}
	if sig != "" && !contains(c.signals, sig) {
		c.signals = append(c.signals, sig)
	}
}

// report records one line per unusable destination variable, naming the
// signals it switched off.
func (ex *exporterLoader) report() {
	for _, name := range ex.order {
		c := ex.conseq[name]
		if len(c.signals) == 0 {
			ex.record(c.line + "; not used: the per-signal variables apply")
			continue
		}
		ex.record(fmt.Sprintf("%s; %s %s", c.line, joinSignals(c.signals), c.what))
	}
}

// joinSignals writes traces, metrics and logs.
func joinSignals(sigs []string) string {
	switch len(sigs) {
	case 0:
		return ""
	case 1:
		return sigs[0]
	}
	return strings.Join(sigs[:len(sigs)-1], ", ") + " and " + sigs[len(sigs)-1]
}

const (
	exportOff = "export off"
	// endpointAccepted describes a usable endpoint.
	endpointAccepted = "an http:// or https:// URL with a host (grpc also takes host:port)"
)

// badDestination marks field of lv unusable because of name's value.
func (ex *exporterLoader) badDestination(lv *otlpLevel, field, name, line string) {
	if lv.bad == nil {
		lv.bad = map[string]string{}
	}
	lv.bad[field] = name
	ex.affects(name, line, exportOff, "")
}

// level reads the nine variables prefix+suffix.
func (ex *exporterLoader) level(prefix string) otlpLevel {
	lv := otlpLevel{prefix: prefix}
	if name := prefix + "PROTOCOL"; ex.get(name) != "" {
		v := ex.get(name)
		switch p := strings.ToLower(v); p {
		case ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC:
			lv.protocol, lv.protocolVar = p, name
		default:
			ex.badDestination(&lv, fieldProtocol, name, fmt.Sprintf("%s=%q: accepted http/protobuf|grpc|http/json (traces only)", name, clip(v)))
		}
	}
	lv.endpoint = ex.get(prefix + "ENDPOINT")
	lv.headers = ex.headers(&lv, prefix+"HEADERS")
	if name := prefix + "COMPRESSION"; ex.get(name) != "" {
		v := ex.get(name)
		switch c := strings.ToLower(v); c {
		case "gzip", "none":
			lv.compression = c
		default:
			ex.invalid(name, v, "gzip|none", ex.levelFallback(prefix, defaultCompression))
		}
	}
	if name := prefix + "TIMEOUT"; ex.get(name) != "" {
		v := ex.get(name)
		lv.timeout = ex.timeout(name, v, prefix)
	}
	if name := prefix + "INSECURE"; ex.get(name) != "" {
		v := ex.get(name)
		if b, ok := parseBool(v); ok {
			lv.insecure = &b
		} else {
			// Falling back to TLS never widens who can read the data.
			ex.invalid(name, v, "true|false", ex.levelFallback(prefix, false)+" (TLS on)")
		}
	}
	lv.certificate = ex.get(prefix + "CERTIFICATE")
	lv.clientCert = ex.get(prefix + "CLIENT_CERTIFICATE")
	lv.clientKey = ex.get(prefix + "CLIENT_KEY")
	return lv
}

// levelFallback is the consequence of an unusable tuning value at the
// level read with prefix: the default, or for a per-signal variable the
// base value or the default.
func (ex *exporterLoader) levelFallback(prefix string, def any) string {
	for _, sig := range signalNames {
		if strings.HasSuffix(prefix, "_"+sig+"_") {
			return fmt.Sprintf("the base value or the default %v used", def)
		}
	}
	return fallback(def)
}

// timeout reads an export timeout: integer milliseconds 1..60000, as the
// specification says for OTEL_EXPORTER_OTLP_*; SLIPSTREAM_OTLP_* also
// take a Go duration. Returns 0 when invalid (reported).
func (ex *exporterLoader) timeout(name, v, prefix string) time.Duration {
	lo, hi := time.Millisecond, maxOTLPTimeoutMs*time.Millisecond
	def := ex.levelFallback(prefix, defaultOTLPTimeout.Milliseconds())
	if ex.fromSlipstream {
		d, ok := parseDuration(v)
		if !ok || d < lo || d > hi {
			ex.invalid(name, v, durationRange(lo, hi), def)
			return 0
		}
		return d
	}
	ms, err := strconv.Atoi(v)
	if err != nil || ms < 1 || ms > maxOTLPTimeoutMs {
		ex.invalid(name, v, fmt.Sprintf("integer milliseconds 1..%d", maxOTLPTimeoutMs), def)
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// headers parses key=value,... with percent-encoded values (the W3C
// baggage format the specification uses). Values may be secrets: the one
// line for malformed pairs names the variable and the pairs' positions,
// never their content. A malformed pair makes the variable unusable: a
// header left out may be the one that routes or authorises the data.
func (ex *exporterLoader) headers(lv *otlpLevel, name string) map[string]string {
	v := ex.get(name)
	if v == "" {
		return nil
	}
	lv.headersSet = true
	h := map[string]string{}
	var bad []string
	for i, pair := range strings.Split(v, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		decoded, err := percentDecode(strings.TrimSpace(val))
		if !ok || !httpguts.ValidHeaderFieldName(k) || err != nil || !httpguts.ValidHeaderFieldValue(decoded) {
			bad = append(bad, strconv.Itoa(i+1))
			continue
		}
		h[k] = decoded
	}
	if len(bad) > 0 {
		what := "pair " + bad[0] + " is"
		if len(bad) > 1 {
			what = "pairs " + strings.Join(bad, ", ") + " are"
		}
		ex.badDestination(lv, fieldHeaders, name, fmt.Sprintf("%s: %s malformed (values not shown): accepted key=value,... with percent-encoded values", name, what))
	}
	return h
}

// endpoint checks a raw endpoint for protocol and returns the URL to use:
// an http:// or https:// URL with a host, or for grpc host:port without a
// scheme, which the specification allows: it becomes https://host:port,
// or http://host:port when insecure (the specification's _INSECURE
// applies only to such endpoints).
func endpoint(raw, protocol string, insecure bool) (*url.URL, bool) {
	if !strings.Contains(raw, "://") {
		if protocol != ProtocolGRPC {
			return nil, false
		}
		host, port, err := net.SplitHostPort(raw)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || !validHost(host) {
			return nil, false
		}
		scheme := "https"
		if insecure {
			scheme = "http"
		}
		return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}, true
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, false
	}
	return u, true
}

// validHost reports whether s is an IP address or a host name (letters,
// digits, '-', '_' and '.').
func validHost(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' {
			continue
		}
		return false
	}
	return true
}

// resolve applies per-signal > base > default for one signal and notes
// which unusable destination variables switch it off.
func (ex *exporterLoader) resolve(sig string, per, base otlpLevel) Signal {
	var s Signal
	lsig := strings.ToLower(sig)
	off := func(name string) {
		if s.Off == "" {
			s.Off = name
		}
		ex.affects(name, "", exportOff, lsig)
	}
	// decide returns the variable whose unusable value applies to this
	// signal for field: the per-signal one, else the base one unless a
	// usable per-signal value overrides it.
	decide := func(field string, perSet bool) string {
		if name, ok := per.bad[field]; ok {
			return name
		}
		if perSet {
			return ""
		}
		return base.bad[field]
	}

	if name := decide(fieldProtocol, per.protocol != ""); name != "" {
		off(name)
	}
	protoVar := per.protocolVar
	s.Protocol = per.protocol
	if s.Protocol == "" {
		s.Protocol, protoVar = base.protocol, base.protocolVar
	}
	if s.Protocol == "" {
		s.Protocol = ProtocolHTTPProtobuf
	}
	if s.Protocol == ProtocolHTTPJSON && sig != "TRACES" {
		ex.affects(protoVar, fmt.Sprintf("%s=%q: http/json is supported for traces only; metrics and logs accept http/protobuf|grpc", protoVar, ProtocolHTTPJSON), "use http/protobuf", lsig)
		s.Protocol = ProtocolHTTPProtobuf
	}

	if per.insecure != nil {
		s.Insecure = *per.insecure
	} else if base.insecure != nil {
		s.Insecure = *base.insecure
	}

	path := "/v1/" + lsig
	s.Endpoint = DefaultHTTPEndpoint + path
	if s.Protocol == ProtocolGRPC {
		s.Endpoint = DefaultGRPCEndpoint
	}
	lv := per
	if lv.endpoint == "" {
		lv = base
	}
	if lv.endpoint != "" {
		name := lv.prefix + "ENDPOINT"
		switch u, ok := endpoint(lv.endpoint, s.Protocol, s.Insecure); {
		case !ok:
			shown := fmt.Sprintf("%q", clip(lv.endpoint))
			if strings.Contains(lv.endpoint, "@") { // may hold user:password
				shown = "(value not shown: it may hold credentials)"
			}
			ex.affects(name, fmt.Sprintf("%s=%s: accepted %s", name, shown, endpointAccepted), exportOff, "")
			off(name)
		case lv.prefix == per.prefix, s.Protocol == ProtocolGRPC: // used as is
			s.Endpoint = u.String()
		default:
			s.Endpoint = appendPath(u, path)
		}
	}

	if name := decide(fieldHeaders, per.headersSet); name != "" {
		off(name)
	}
	s.Headers = per.headers
	if !per.headersSet {
		s.Headers = base.headers
	}
	if s.Headers == nil {
		s.Headers = map[string]string{}
	}
	s.Compression = cmp.Or(per.compression, base.compression, defaultCompression)
	s.Timeout = cmp.Or(per.timeout, base.timeout, defaultOTLPTimeout)
	s.Certificate = cmp.Or(per.certificate, base.certificate)
	certVar, keyVar := per.prefix+"CLIENT_CERTIFICATE", per.prefix+"CLIENT_KEY"
	s.ClientCertificate = per.clientCert
	if s.ClientCertificate == "" {
		s.ClientCertificate, certVar = base.clientCert, base.prefix+"CLIENT_CERTIFICATE"
	}
	s.ClientKey = per.clientKey
	if s.ClientKey == "" {
		s.ClientKey, keyVar = base.clientKey, base.prefix+"CLIENT_KEY"
	}
	if (s.ClientCertificate == "") != (s.ClientKey == "") {
		set, missing := certVar, strings.TrimSuffix(certVar, "CERTIFICATE")+"KEY"
		if s.ClientCertificate == "" {
			set, missing = keyVar, strings.TrimSuffix(keyVar, "KEY")+"CERTIFICATE"
		}
		ex.affects(set, fmt.Sprintf("%s: a client certificate is accepted only together with a client key (%s is not set)", set, missing), exportOff, "")
		off(set)
		s.ClientCertificate, s.ClientKey = "", ""
	}
	return s
}

// appendPath adds the signal path to a base endpoint: the specification's
// http://host:4318/base + /v1/traces = http://host:4318/base/v1/traces.
func appendPath(base *url.URL, p string) string {
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	if u.RawPath != "" {
		u.RawPath = strings.TrimSuffix(u.RawPath, "/") + p
	}
	return u.String()
}
