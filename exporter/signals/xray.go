package signals

import (
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Sampled is the X-Ray Sampled decision.
type sampled uint8

const (
	sampledAbsent   sampled = iota // no Sampled key
	sampledYes                     // Sampled=1
	sampledNo                      // Sampled=0
	sampledDeferred                // Sampled=? (downstream decides)
)

// xrayHeader is a parsed X-Amzn-Trace-Id value.
type xrayHeader struct {
	TraceID   trace.TraceID
	Parent    trace.SpanID
	HasTrace  bool
	HasParent bool
	Sampled   sampled
}

// parseXRay parses an X-Amzn-Trace-Id header value such as
// "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".
// Keys are ';'-separated key=value pairs in any order; unknown keys
// (Lineage, Self, ...) are ignored. An invalid Root or Parent is treated as
// absent. It does not allocate.
func parseXRay(v string) xrayHeader {
	var h xrayHeader
	for len(v) > 0 {
		var part string
		if i := strings.IndexByte(v, ';'); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, ""
		}
		part = strings.TrimSpace(part)
		eq := strings.IndexByte(part, '=')
		if eq < 0 {
			continue
		}
		key, val := part[:eq], part[eq+1:]
		switch key {
		case "Root":
			// 1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy
			if len(val) != 35 || val[0] != '1' || val[1] != '-' || val[10] != '-' {
				continue
			}
			var id trace.TraceID
			if !decodeHex(id[:4], val[2:10]) || !decodeHex(id[4:], val[11:35]) || !id.IsValid() {
				continue
			}
			h.TraceID, h.HasTrace = id, true
		case "Parent":
			var id trace.SpanID
			if len(val) != 16 || !decodeHex(id[:], val) || !id.IsValid() {
				continue
			}
			h.Parent, h.HasParent = id, true
		case "Sampled":
			switch val {
			case "1":
				h.Sampled = sampledYes
			case "0":
				h.Sampled = sampledNo
			case "?":
				h.Sampled = sampledDeferred
			}
		}
	}
	return h
}

// parseSpanID parses a 16-hex span ID (telemetry's tracing.spanId).
func parseSpanID(s string) (trace.SpanID, bool) {
	var id trace.SpanID
	if len(s) != 16 || !decodeHex(id[:], s) || !id.IsValid() {
		return id, false
	}
	return id, true
}

func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
