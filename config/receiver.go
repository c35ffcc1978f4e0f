package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Receiver defaults: the OTLP ports an SDK exports to by default
// (https://opentelemetry.io/docs/specs/otel/protocol/exporter/).
const (
	defaultReceiverHTTPPort = 4318
	defaultReceiverGRPCPort = 4317
	// offValue switches a receiver off.
	offValue = "off"
	// LoopOff is Signal.Off for a signal whose export endpoint is the
	// receiver itself: no export endpoint was set.
	LoopOff = "no export endpoint set: SLIPSTREAM_OTLP_ENDPOINT"
)

// receiver reads the local OTLP receiver's settings.
func (l *loader) receiver() {
	c := l.cfg
	c.ReceiverHTTPPort = l.receiverPort("SLIPSTREAM_RECEIVER_HTTP_PORT", defaultReceiverHTTPPort, 0)
	c.ReceiverGRPCPort = l.receiverPort("SLIPSTREAM_RECEIVER_GRPC_PORT", defaultReceiverGRPCPort, c.ReceiverHTTPPort)
	c.ReceiverEnrich = l.boolean("SLIPSTREAM_RECEIVER_ENRICH", true)
}

// receiverPort reads a receiver port: 1..65535 except Lambda's 9001, the
// telemetry listener's port and other (the other receiver's port), or off
// (0).
func (l *loader) receiverPort(name string, def, other int) int {
	v := l.get(name)
	if v == "" {
		if def == l.cfg.ListenerPort || def == other {
			l.problemLine(fmt.Sprintf("%s: the default port %d is taken by another Slipstream port; this receiver is off (set %s)", name, def, name))
			return 0
		}
		return def
	}
	if strings.EqualFold(v, offValue) {
		return 0
	}
	n, err := strconv.Atoi(v)
	taken := n == reservedPort || n == l.cfg.ListenerPort || (other != 0 && n == other)
	if err != nil || n < 1 || n > 65535 || taken {
		accepted := fmt.Sprintf("1..65535 except %d, SLIPSTREAM_LISTENER_PORT's and the other receiver's port, or off", reservedPort)
		if def == l.cfg.ListenerPort || def == other {
			l.problem(name, v, accepted, "this receiver is off")
			return 0
		}
		l.problem(name, v, accepted, fallback(def))
		return def
	}
	return n
}

// RefuseReceiverLoop switches off each signal whose export endpoint is
// one of the receiver's own ports on this machine, where Slipstream would
// send the data it receives to itself, and returns the one ERROR line that
// says so ("" when there is no loop). With nothing set the export
// endpoint defaults to http://localhost:4318, the receiver; so does a
// function's OTEL_EXPORTER_OTLP_ENDPOINT that points its own SDK at the
// receiver, which Slipstream falls back to. Hosts are compared as written
// (localhost, 127.0.0.0/8, ::1, 0.0.0.0, ::) with the configured ports:
// no name is looked up before the first /event/next. Load leaves this to
// the caller, which knows whether the receiver runs at all; the line is
// not one of Problems (SLIPSTREAM_STRICT_CONFIG does not fail init for
// it).
func (c *Config) RefuseReceiverLoop() string {
	if c.ReceiverHTTPPort == 0 && c.ReceiverGRPCPort == 0 {
		return ""
	}
	var names []string
	var endpoint string
	sigs := []*Signal{&c.OTLP.Traces, &c.OTLP.Metrics, &c.OTLP.Logs}
	for i, s := range sigs {
		if !s.Enabled() {
			continue
		}
		port, ok := LoopbackPort(s.Endpoint)
		if !ok || (port != c.ReceiverHTTPPort && port != c.ReceiverGRPCPort) {
			continue
		}
		s.Off = LoopOff
		names = append(names, strings.ToLower(signalNames[i]))
		if endpoint == "" {
			endpoint = s.RedactedEndpoint()
		}
	}
	if len(names) == 0 {
		return ""
	}
	c.ExportEnabled = !c.Disabled && (c.OTLP.Traces.Enabled() || c.OTLP.Metrics.Enabled() || c.OTLP.Logs.Enabled())
	return fmt.Sprintf("SLIPSTREAM_OTLP_ENDPOINT: the export endpoint %s is Slipstream's own OTLP receiver (SLIPSTREAM_RECEIVER_HTTP_PORT=%s, SLIPSTREAM_RECEIVER_GRPC_PORT=%s): %s not exported; set SLIPSTREAM_OTLP_ENDPOINT to your backend's OTLP endpoint (the function's SDK keeps exporting to the receiver)",
		endpoint, portString(c.ReceiverHTTPPort), portString(c.ReceiverGRPCPort), strings.Join(names, ", "))
}

func portString(p int) string {
	if p == 0 {
		return offValue
	}
	return strconv.Itoa(p)
}

// LoopbackPort returns the port of endpoint (a URL, or host:port) when
// its host is written as this machine: localhost, an address of
// 127.0.0.0/8, ::1, 0.0.0.0 or ::. The port defaults to the scheme's.
func LoopbackPort(endpoint string) (int, bool) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		u, err = url.Parse("//" + endpoint)
		if err != nil {
			return 0, false
		}
	}
	host, portStr := u.Hostname(), u.Port()
	if portStr == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			portStr = "443"
		case "http":
			portStr = "80"
		default:
			return 0, false
		}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return 0, false
	}
	if !isLoopbackHost(host) {
		return 0, false
	}
	return port, true
}

func isLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback() || ip.IsUnspecified()
	}
	a, err := netip.ParseAddr(h)
	return err == nil && (a.IsLoopback() || a.IsUnspecified())
}
