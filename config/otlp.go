package config

import (
	"cmp"
	"fmt"
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

// otlpLevel is what one level (base or one signal) of one source sets;
// zero values mean unset (or invalid, already reported).
type otlpLevel struct {
	protocol, protocolVar string
	endpoint              *url.URL
	headers               map[string]string
	compression           string
	timeout               time.Duration
	insecure              *bool
	certificate           string
	clientCert, certVar   string
	clientKey, keyVar     string
}

// otlp reads the exporter settings: SLIPSTREAM_OTLP_* when any of them is
// set, else OTEL_EXPORTER_OTLP_*, never a mix.
func (l *loader) otlp() {
	o := &l.cfg.OTLP
	o.Source = SourceOTEL
	for _, n := range otlpNames(SourceSlipstream) {
		if l.get(n) != "" {
			o.Source = SourceSlipstream
			break
		}
	}
	ex := exporterLoader{loader: l, strict: o.Source == SourceSlipstream}
	base := ex.level(o.Source + "_")
	o.Protocol = base.protocol
	if o.Protocol == "" {
		o.Protocol = ProtocolHTTPProtobuf
	}
	sigs := []*Signal{&o.Traces, &o.Metrics, &o.Logs}
	for i, sig := range signalNames {
		per := ex.level(o.Source + "_" + sig + "_")
		*sigs[i] = ex.resolve(sig, per, base)
	}
	l.cfg.Temporality = TemporalityCumulative
	name := o.Source + "_" + temporalitySuffix
	if v := l.get(name); v != "" {
		switch lv := strings.ToLower(v); lv {
		case TemporalityCumulative, TemporalityDelta, TemporalityLowMemory:
			l.cfg.Temporality = lv
		default:
			ex.invalid(name, v, "cumulative|delta|lowmemory")
		}
	}
}

// exporterLoader reports an unusable exporter value as a Problem when it
// came from SLIPSTREAM_OTLP_* (strict) and as a Warning, the value being
// ignored, when it came from OTEL_EXPORTER_OTLP_*.
type exporterLoader struct {
	*loader
	strict bool
}

func (ex exporterLoader) invalid(name, value, accepted string) {
	ex.invalidLine(fmt.Sprintf("%s=%q: accepted %s", name, clip(value), accepted), "ignored")
}

// invalidLine records line as a Problem or, with "; "+fallback appended, as a Warning.
func (ex exporterLoader) invalidLine(line, fallback string) {
	if ex.strict {
		ex.problemLine(line)
		return
	}
	ex.warnLine(line + "; " + fallback)
}

// level reads the nine variables prefix+suffix.
func (ex exporterLoader) level(prefix string) otlpLevel {
	var lv otlpLevel
	if name := prefix + "PROTOCOL"; ex.get(name) != "" {
		v := ex.get(name)
		switch p := strings.ToLower(v); p {
		case ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC:
			lv.protocol, lv.protocolVar = p, name
		default:
			ex.invalid(name, v, "http/protobuf|grpc|http/json (traces only)")
		}
	}
	if name := prefix + "ENDPOINT"; ex.get(name) != "" {
		v := ex.get(name)
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
			shown := v
			if strings.Contains(v, "@") { // may hold user:password
				shown = "(value not shown: it may hold credentials)"
			}
			ex.invalid(name, shown, "an http:// or https:// URL with a host")
		} else {
			lv.endpoint = u
		}
	}
	lv.headers = ex.headers(prefix + "HEADERS")
	if name := prefix + "COMPRESSION"; ex.get(name) != "" {
		v := ex.get(name)
		switch c := strings.ToLower(v); c {
		case "gzip", "none":
			lv.compression = c
		default:
			ex.invalid(name, v, "gzip|none")
		}
	}
	if name := prefix + "TIMEOUT"; ex.get(name) != "" {
		v := ex.get(name)
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 1 || ms > maxOTLPTimeoutMs {
			ex.invalid(name, v, fmt.Sprintf("milliseconds 1..%d", maxOTLPTimeoutMs))
		} else {
			lv.timeout = time.Duration(ms) * time.Millisecond
		}
	}
	if name := prefix + "INSECURE"; ex.get(name) != "" {
		v := ex.get(name)
		if b, ok := parseBool(v); ok {
			lv.insecure = &b
		} else {
			ex.invalid(name, v, "true|false")
		}
	}
	lv.certificate = ex.get(prefix + "CERTIFICATE")
	lv.certVar, lv.clientCert = prefix+"CLIENT_CERTIFICATE", ex.get(prefix+"CLIENT_CERTIFICATE")
	lv.keyVar, lv.clientKey = prefix+"CLIENT_KEY", ex.get(prefix+"CLIENT_KEY")
	return lv
}

// headers parses key=value,... with percent-encoded values (the W3C
// baggage format the specification uses). Values may be secrets: messages
// name the variable and the pair's position, never its content. Returns
// nil when the variable is unset or holds no valid pair.
func (ex exporterLoader) headers(name string) map[string]string {
	v := ex.get(name)
	if v == "" {
		return nil
	}
	var h map[string]string
	for i, pair := range strings.Split(v, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		decoded, err := percentDecode(strings.TrimSpace(val))
		if !ok || !httpguts.ValidHeaderFieldName(k) || err != nil || !httpguts.ValidHeaderFieldValue(decoded) {
			ex.invalidLine(fmt.Sprintf("%s: pair %d is malformed (value not shown): accepted key=value,... with percent-encoded values", name, i+1), "pair ignored")
			continue
		}
		if h == nil {
			h = map[string]string{}
		}
		h[k] = decoded
	}
	return h
}

// resolve applies per-signal > base > default for one signal.
func (ex exporterLoader) resolve(sig string, per, base otlpLevel) Signal {
	var s Signal
	protoVar := per.protocolVar
	s.Protocol = per.protocol
	if s.Protocol == "" {
		s.Protocol, protoVar = base.protocol, base.protocolVar
	}
	if s.Protocol == "" {
		s.Protocol = ProtocolHTTPProtobuf
	}
	if s.Protocol == ProtocolHTTPJSON && sig != "TRACES" {
		ex.invalidLine(fmt.Sprintf("%s=%q: http/json is supported for traces only; metrics and logs accept http/protobuf|grpc", protoVar, ProtocolHTTPJSON), "metrics and logs use http/protobuf")
		s.Protocol = ProtocolHTTPProtobuf
	}

	path := "/v1/" + strings.ToLower(sig)
	switch {
	case per.endpoint != nil: // per-signal: used as is
		s.Endpoint = per.endpoint.String()
	case base.endpoint != nil && s.Protocol == ProtocolGRPC:
		s.Endpoint = base.endpoint.String()
	case base.endpoint != nil:
		s.Endpoint = appendPath(base.endpoint, path)
	case s.Protocol == ProtocolGRPC:
		s.Endpoint = DefaultGRPCEndpoint
	default:
		s.Endpoint = DefaultHTTPEndpoint + path
	}

	s.Headers = per.headers
	if s.Headers == nil {
		s.Headers = base.headers
	}
	if s.Headers == nil {
		s.Headers = map[string]string{}
	}
	s.Compression = cmp.Or(per.compression, base.compression, defaultCompression)
	s.Timeout = cmp.Or(per.timeout, base.timeout, defaultOTLPTimeout)
	if per.insecure != nil {
		s.Insecure = *per.insecure
	} else if base.insecure != nil {
		s.Insecure = *base.insecure
	}
	s.Certificate = cmp.Or(per.certificate, base.certificate)
	certVar, keyVar := per.certVar, per.keyVar
	s.ClientCertificate = per.clientCert
	if s.ClientCertificate == "" {
		s.ClientCertificate, certVar = base.clientCert, base.certVar
	}
	s.ClientKey = per.clientKey
	if s.ClientKey == "" {
		s.ClientKey, keyVar = base.clientKey, base.keyVar
	}
	if (s.ClientCertificate == "") != (s.ClientKey == "") {
		set := certVar
		if s.ClientCertificate == "" {
			set = keyVar
		}
		ex.invalidLine(fmt.Sprintf("%s: a client certificate is accepted only together with a client key (_CLIENT_CERTIFICATE and _CLIENT_KEY)", set), "no client certificate is used")
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
