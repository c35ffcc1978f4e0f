package exporter

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpproxy"
	"google.golang.org/grpc"

	"github.com/slipstream-otel/slipstream/config"
)

// proxyFor returns the Proxy function of our HTTP transports:
// SLIPSTREAM_HTTPS_PROXY and SLIPSTREAM_NO_PROXY win over std (the
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY the function shares; nil reads the
// process environment), none disables proxying, and loopback and
// link-local destinations (a local collector, the container credentials
// endpoint 169.254.170.2, the instance metadata service) are never
// proxied.
func proxyFor(o config.OTLP, std *httpproxy.Config) func(*http.Request) (*url.URL, error) {
	if o.HTTPSProxy == config.ProxyNone {
		return nil
	}
	var c httpproxy.Config
	if std != nil {
		c = *std
	} else {
		c = *httpproxy.FromEnvironment()
	}
	if o.HTTPSProxy != "" {
		c.HTTPSProxy, c.HTTPProxy = o.HTTPSProxy, o.HTTPSProxy
	}
	if o.NoProxy != "" {
		c.NoProxy = o.NoProxy
	}
	pick := c.ProxyFunc()
	return func(req *http.Request) (*url.URL, error) {
		if neverProxied(req.URL.Hostname()) {
			return nil, nil
		}
		return pick(req.URL)
	}
}

// neverProxied reports whether host is loopback or link-local (by name:
// localhost; by address: 127/8, ::1, 169.254/16, fe80::/10).
func neverProxied(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsLinkLocalUnicast())
}

// grpcProxy returns the dial options that carry SLIPSTREAM_HTTPS_PROXY=none
// to the gRPC exporters (which otherwise read the standard variables).
func grpcProxy(o config.OTLP) []grpc.DialOption {
	if o.HTTPSProxy == config.ProxyNone {
		return []grpc.DialOption{grpc.WithNoProxy()}
	}
	return nil
}
