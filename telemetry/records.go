package telemetry

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// The three platform records of every invocation (platform.start,
// platform.runtimeDone, platform.report) are decoded by hand on the
// validated record: encoding/json's reflection cost more than the
// listener's whole scan of the batch. The hand decoders take only the
// plain shape Lambda sends; on anything else (a key differing only in
// case, an escaped key, a repeated key, a null, a value of another type)
// they report false and the record goes through json.Unmarshal, so the
// result is always what json.Unmarshal gives. FuzzRecordDecoders holds
// the two equal; BenchmarkDecodeBatch measures them.

// fields walks the members of the validated object obj: set is called
// with the index in names of each member whose key is one of names, at
// most once per name; members whose key is none of them, even ignoring
// case, are skipped. It reports false when set does, or when a key needs
// encoding/json's rules (an escape, another case, a repeat).
func fields(obj []byte, names []string, set func(i int, v []byte) bool) bool {
	if len(obj) == 0 || obj[0] != '{' {
		return false
	}
	var seen uint64
	for it := newObjectIter(obj); ; {
		k, v, ok := it.next()
		if !ok {
			return true
		}
		if bytes.IndexByte(k, '\\') >= 0 {
			return false
		}
		i := 0
		for i < len(names) && string(k) != names[i] {
			i++
		}
		if i == len(names) {
			for _, n := range names {
				if strings.EqualFold(string(k), n) {
					return false
				}
			}
			continue
		}
		if seen&(1<<i) != 0 || !set(i, v) {
			return false
		}
		seen |= 1 << i
	}
}

// str decodes a JSON string value into *dst (a string or a string type).
func str[S ~string](v []byte, dst *S) bool {
	if v[0] != '"' {
		return false
	}
	s, ok := decodeString(v)
	*dst = S(s)
	return ok
}

// float decodes a JSON number into *dst as encoding/json does.
func float(v []byte, dst *float64) bool {
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	*dst = f
	return err == nil
}

// intPtr decodes a JSON integer into a new *int64.
func intPtr(v []byte, dst **int64) bool {
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return false
	}
	*dst = &n
	return true
}

// floatPtr decodes a JSON number into a new *float64.
func floatPtr(v []byte, dst **float64) bool {
	var f float64
	if !float(v, &f) {
		return false
	}
	*dst = &f
	return true
}

var tracingNames = []string{"spanId", "type", "value"}

func tracing(v []byte, dst **Tracing) bool {
	t := new(Tracing)
	*dst = t
	return fields(v, tracingNames, func(i int, v []byte) bool {
		switch i {
		case 0:
			return str(v, &t.SpanID)
		case 1:
			return str(v, &t.Type)
		default:
			return str(v, &t.Value)
		}
	})
}

var spanNames = []string{"name", "start", "durationMs"}

func spans(v []byte, dst *[]Span) bool {
	if v[0] != '[' {
		return false
	}
	n := 0
	for it := newArrayIter(v, 0); ; n++ {
		if _, ok := it.next(); !ok {
			break
		}
	}
	s := make([]Span, n)
	it := newArrayIter(v, 0)
	for i := range s {
		el, _ := it.next()
		sp := &s[i]
		ok := fields(el, spanNames, func(i int, v []byte) bool {
			switch i {
			case 0:
				return str(v, &sp.Name)
			case 1:
				// As encoding/json does: time.Time decodes itself.
				return v[0] == '"' && sp.Start.UnmarshalJSON(v) == nil
			default:
				return float(v, &sp.DurationMs)
			}
		})
		if !ok {
			return false
		}
	}
	*dst = s
	return true
}

var startNames = []string{"requestId", "version", "functionArn", "tenantId", "tracing"}

// decodeStart decodes a platform.start record of the plain shape.
func decodeStart(rec []byte) (*Start, bool) {
	r := new(Start)
	return r, fields(rec, startNames, func(i int, v []byte) bool {
		switch i {
		case 0:
			return str(v, &r.RequestID)
		case 1:
			return str(v, &r.Version)
		case 2:
			return str(v, &r.FunctionARN)
		case 3:
			return str(v, &r.TenantID)
		default:
			return tracing(v, &r.Tracing)
		}
	})
}

var (
	runtimeDoneNames        = []string{"requestId", "status", "errorType", "metrics", "spans", "tenantId", "tracing"}
	runtimeDoneMetricsNames = []string{"durationMs", "producedBytes"}
)

// decodeRuntimeDone decodes a platform.runtimeDone record of the plain shape.
func decodeRuntimeDone(rec []byte) (*RuntimeDone, bool) {
	r := new(RuntimeDone)
	return r, fields(rec, runtimeDoneNames, func(i int, v []byte) bool {
		switch i {
		case 0:
			return str(v, &r.RequestID)
		case 1:
			return str(v, &r.Status)
		case 2:
			return str(v, &r.ErrorType)
		case 3:
			m := new(RuntimeDoneMetrics)
			r.Metrics = m
			return fields(v, runtimeDoneMetricsNames, func(i int, v []byte) bool {
				if i == 0 {
					return float(v, &m.DurationMs)
				}
				return intPtr(v, &m.ProducedBytes)
			})
		case 4:
			return spans(v, &r.Spans)
		case 5:
			return str(v, &r.TenantID)
		default:
			return tracing(v, &r.Tracing)
		}
	})
}

var (
	reportNames        = []string{"requestId", "status", "errorType", "metrics", "spans", "tenantId", "tracing"}
	reportMetricsNames = []string{"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs", "restoreDurationMs"}
)

// decodeReport decodes a platform.report record of the plain shape.
func decodeReport(rec []byte) (*Report, bool) {
	r := new(Report)
	return r, fields(rec, reportNames, func(i int, v []byte) bool {
		switch i {
		case 0:
			return str(v, &r.RequestID)
		case 1:
			return str(v, &r.Status)
		case 2:
			return str(v, &r.ErrorType)
		case 3:
			m := &r.Metrics
			return fields(v, reportMetricsNames, func(i int, v []byte) bool {
				switch i {
				case 0:
					return float(v, &m.DurationMs)
				case 1:
					return intPtr(v, &m.BilledDurationMs)
				case 2:
					return intPtr(v, &m.MemorySizeMB)
				case 3:
					return intPtr(v, &m.MaxMemoryUsedMB)
				case 4:
					return floatPtr(v, &m.InitDurationMs)
				default:
					return floatPtr(v, &m.RestoreDurationMs)
				}
			})
		case 4:
			return spans(v, &r.Spans)
		case 5:
			return str(v, &r.TenantID)
		default:
			return tracing(v, &r.Tracing)
		}
	})
}

// Compile-time check that time.Time still decodes itself from JSON, as
// the span decoder relies on.
var _ interface{ UnmarshalJSON([]byte) error } = (*time.Time)(nil)
