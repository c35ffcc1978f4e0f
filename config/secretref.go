package config

import (
	"strings"

	"github.com/slipstream-otel/slipstream/secrets"
)

// secretRefs checks the secret references in header values
// (${secretsmanager:...}, ${ssm:...}; package secrets resolves them at
// run time). Only SLIPSTREAM_* values may hold one: an OTEL_* variable is
// often the function's own. A malformed reference switches off the
// signals whose headers hold it.
func (l *loader) secretRefs() {
	o := &l.cfg.OTLP
	sigs := []*Signal{&o.Traces, &o.Metrics, &o.Logs}
	for i, sig := range signalNames {
		s, lsig := sigs[i], strings.ToLower(sig)
		from := o.Source + "_" + sig + "_HEADERS"
		if l.get(from) == "" {
			from = o.Source + "_HEADERS"
		}
		if !s.Enabled() {
			continue
		}
		for name, v := range s.Headers {
			_, isRef, err := secrets.Parse(v)
			switch {
			case !isRef:
			case o.Source != SourceSlipstream:
				l.warnLine(from + ": header " + name + " holds a secret reference: references are resolved only in SLIPSTREAM_* values; sent as written")
			case err != nil:
				l.problemLine(from + ": header " + name + ": " + err.Error() + "; " + lsig + " export off")
				l.switchOff(s, lsig, from)
			default:
				s.HeadersFrom = from
			}
		}
	}
}
