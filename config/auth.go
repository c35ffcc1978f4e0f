package config

import (
	"net"
	"net/url"
	"strings"
)

// Signal authentication (SLIPSTREAM_OTLP_AUTH, SLIPSTREAM_OTLP_<SIGNAL>_AUTH).
const (
	AuthNone  = "none"
	AuthSigV4 = "sigv4"
)

// auth reads the SigV4 settings, after otlp: only SLIPSTREAM_* names
// (the OpenTelemetry specification has no such setting). Auth decides who
// may read the data, so an unusable value switches off the signals it
// applies to.
func (l *loader) auth() {
	o := &l.cfg.OTLP
	base := l.authValue("SLIPSTREAM_OTLP_AUTH")
	baseService := l.get("SLIPSTREAM_OTLP_SIGV4_SERVICE")
	region := l.get("SLIPSTREAM_OTLP_SIGV4_REGION")
	sigs := []*Signal{&o.Traces, &o.Metrics, &o.Logs}
	for i, sig := range signalNames {
		s, lsig := sigs[i], strings.ToLower(sig)
		name := "SLIPSTREAM_OTLP_" + sig + "_AUTH"
		a := l.authValue(name)
		svcVar := "SLIPSTREAM_OTLP_" + sig + "_SIGV4_SERVICE"
		service := l.get(svcVar) // read always: LoadEnviron learns the names on an empty environment
		if a.value == "" {
			a = base
		}
		if a.bad {
			l.problem(a.name, a.raw, "none|sigv4", lsig+" export off")
			l.switchOff(s, lsig, a.name)
			continue
		}
		if a.value != AuthSigV4 {
			continue
		}
		if !s.Enabled() {
			continue
		}
		if s.Protocol == ProtocolGRPC {
			l.problemLine(a.name + "=sigv4: SigV4 signs HTTP requests; with the grpc protocol " + lsig + " export off (use http/protobuf)")
			l.switchOff(s, lsig, a.name)
			continue
		}
		if service == "" {
			service = baseService
		}
		hostService, hostRegion := awsHost(s.Endpoint)
		if service == "" {
			service = hostService
		}
		r := region
		if r == "" {
			r = hostRegion
		}
		if r == "" {
			r = l.cfg.Region
		}
		if service == "" || r == "" {
			l.problemLine(a.name + "=sigv4: the signing service and region cannot be told from the " + lsig + " endpoint (not <service>.<region>.amazonaws.com): set " + svcVar + " and SLIPSTREAM_OTLP_SIGV4_REGION; " + lsig + " export off")
			l.switchOff(s, lsig, a.name)
			continue
		}
		s.Auth, s.SigV4Service, s.SigV4Region = AuthSigV4, service, r
	}
}

type authSetting struct {
	name, raw, value string
	bad              bool
}

func (l *loader) authValue(name string) authSetting {
	v := l.get(name)
	a := authSetting{name: name, raw: v}
	switch lv := strings.ToLower(v); lv {
	case "":
	case AuthNone, AuthSigV4:
		a.value = lv
	default:
		a.value, a.bad = "bad", true
	}
	return a
}

// awsHost returns the service and region of an AWS endpoint host,
// <service>.<region>.amazonaws.com (or .amazonaws.com.cn):
// xray.us-east-1.amazonaws.com gives xray and us-east-1, logs.<region>
// logs, monitoring.<region> monitoring; a -fips suffix is not part of
// the service.
func awsHost(endpoint string) (service, region string) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", ""
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return "", ""
	}
	rest, ok := strings.CutSuffix(host, ".amazonaws.com")
	if !ok {
		if rest, ok = strings.CutSuffix(host, ".amazonaws.com.cn"); !ok {
			return "", ""
		}
	}
	labels := strings.Split(rest, ".")
	if len(labels) != 2 || labels[0] == "" || labels[1] == "" {
		return "", ""
	}
	return strings.TrimSuffix(labels[0], "-fips"), labels[1]
}
