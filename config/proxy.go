package config

import (
	"net/url"
	"strings"
)

// ProxyNone is the SLIPSTREAM_HTTPS_PROXY value that disables proxying.
const ProxyNone = "none"

// proxy reads SLIPSTREAM_HTTPS_PROXY and SLIPSTREAM_NO_PROXY, which win
// over the HTTPS_PROXY, HTTP_PROXY and NO_PROXY the function shares. A
// proxy decides where data goes: an unusable URL switches every signal
// off (falling back to a direct connection could go around a required
// egress proxy, or through the function's own one).
func (l *loader) proxy() {
	o := &l.cfg.OTLP
	o.NoProxy = l.get("SLIPSTREAM_NO_PROXY")
	name := "SLIPSTREAM_HTTPS_PROXY"
	v := l.get(name)
	if v == "" {
		return
	}
	if strings.EqualFold(v, ProxyNone) {
		o.HTTPSProxy = ProxyNone
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") || u.Host == "" {
		shown := `"` + clip(v) + `"`
		if strings.Contains(v, "@") {
			shown = "(value not shown: it may hold credentials)"
		}
		l.problemLine(name + "=" + shown + ": accepted an http://, https:// or socks5:// URL with a host, or none; traces, metrics and logs export off")
		l.switchOff(&o.Traces, "traces", name)
		l.switchOff(&o.Metrics, "metrics", name)
		l.switchOff(&o.Logs, "logs", name)
		return
	}
	o.HTTPSProxy = v
}
