package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors returned by DecodeBatch for bodies that are not a batch at all.
var (
	// ErrInvalidJSON: the body is not valid JSON. The listener treats such a
	// body as a possible fragment of a record split across two POSTs.
	ErrInvalidJSON = errors.New("telemetry batch is not valid JSON")
	// ErrNotArray: the body is valid JSON but not an array.
	ErrNotArray = errors.New("telemetry batch is not a JSON array")
)

// errBadRecord marks a record whose shape does not fit its type.
var errBadRecord = errors.New("record has the wrong JSON type")

// BatchStats counts what DecodeBatch found in one batch.
type BatchStats struct {
	// Events is the number of events returned (every element of the array).
	Events int
	// Bad counts events that did not decode (not an object, missing or
	// unparsable time, missing type or record, record of the wrong shape):
	// kept with Record nil and Raw set.
	Bad int
	// Unknown counts events of a type this package does not know: kept
	// with Record nil and Raw set.
	Unknown int
}

// DecodeBatch decodes the body of one Telemetry API POST: a JSON array of
// events. Each event is decoded on its own, so one odd event does not
// spoil the batch: an event that fails to decode is returned with Record
// nil and Raw set and counted in BatchStats.Bad; an event of an unknown
// type likewise, counted in BatchStats.Unknown.
//
// Raw is the record as received when the event's envelope could be read,
// otherwise the whole event. Size is the length of the event as received.
//
// The only errors are ErrInvalidJSON and ErrNotArray (wrapped): the body
// as a whole is not a batch. The returned events do not retain body.
// DecodeBatch is safe for concurrent use.
func DecodeBatch(body []byte) ([]Event, BatchStats, error) {
	n, ok := validCount(body)
	if !ok {
		return nil, BatchStats{}, ErrInvalidJSON
	}
	open := skipWS(body, 0)
	if body[open] != '[' {
		return nil, BatchStats{}, fmt.Errorf("%w: got %s", ErrNotArray, jsonKind(body[open]))
	}

	events := make([]Event, n)
	var st BatchStats
	it := newArrayIter(body, open)
	for i := range events {
		raw, _ := it.next()
		switch decodeEvent(&events[i], raw) {
		case resultBad:
			st.Bad++
		case resultUnknown:
			st.Unknown++
		}
	}
	st.Events = n
	return events, st, nil
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

type result int

const (
	resultOK result = iota
	resultBad
	resultUnknown
)

// decodeEvent fills ev from one raw event of a validated array.
func decodeEvent(ev *Event, raw []byte) result {
	ev.Size = len(raw)
	if raw[0] != '{' {
		ev.Raw = bytes.Clone(raw)
		return resultBad
	}
	var timeRaw, typeRaw, rec []byte
	for it := newObjectIter(raw); ; {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch {
		case keyIs(k, "time"):
			timeRaw = v
		case keyIs(k, "type"):
			typeRaw = v
		case keyIs(k, "record"):
			rec = v
		}
	}

	known := false
	if len(typeRaw) >= 2 && typeRaw[0] == '"' {
		ev.Type, known = knownType(typeRaw[1 : len(typeRaw)-1])
		if !known {
			s, _ := decodeString(typeRaw)
			ev.Type, known = knownType([]byte(s))
		}
	}
	t, timeOK := parseTimeValue(timeRaw)
	ev.Time = t

	switch {
	case !timeOK || ev.Type == "":
		ev.Raw = rawOf(rec, raw)
		return resultBad
	case !known:
		ev.Raw = rawOf(rec, raw)
		return resultUnknown
	case rec == nil:
		ev.Raw = bytes.Clone(raw)
		return resultBad
	}
	r, err := decodeRecord(ev.Type, rec)
	if err != nil {
		ev.Raw = bytes.Clone(rec)
		return resultBad
	}
	ev.Record = r
	return resultOK
}

// rawOf copies the record when there is one, else the whole event.
func rawOf(rec, event []byte) json.RawMessage {
	if rec != nil {
		return bytes.Clone(rec)
	}
	return bytes.Clone(event)
}

// knownType maps a type name to its constant. For an unknown name it
// returns the name as a Type and false.
func knownType(b []byte) (Type, bool) {
	switch string(b) { // no allocation: the compiler compares in place
	case string(TypeInitStart):
		return TypeInitStart, true
	case string(TypeInitRuntimeDone):
		return TypeInitRuntimeDone, true
	case string(TypeInitReport):
		return TypeInitReport, true
	case string(TypeStart):
		return TypeStart, true
	case string(TypeRuntimeDone):
		return TypeRuntimeDone, true
	case string(TypeReport):
		return TypeReport, true
	case string(TypeRestoreStart):
		return TypeRestoreStart, true
	case string(TypeRestoreRuntimeDone):
		return TypeRestoreRuntimeDone, true
	case string(TypeRestoreReport):
		return TypeRestoreReport, true
	case string(TypeExtension):
		return TypeExtension, true
	case string(TypeTelemetrySubscription):
		return TypeTelemetrySubscription, true
	case string(TypeLogsDropped):
		return TypeLogsDropped, true
	case string(TypeFunction):
		return TypeFunction, true
	case string(TypeExtensionLog):
		return TypeExtensionLog, true
	}
	return Type(b), false
}

// decodeRecord decodes the record of a known type into its struct.
func decodeRecord(t Type, rec []byte) (any, error) {
	switch t {
	case TypeFunction, TypeExtensionLog:
		return decodeLog(rec)
	case TypeInitStart:
		return decodeObject[InitStart](rec)
	case TypeInitRuntimeDone:
		return decodeObject[InitRuntimeDone](rec)
	case TypeInitReport:
		return decodeObject[InitReport](rec)
	case TypeStart:
		if r, ok := decodeStart(rec); ok {
			return r, nil
		}
		return decodeObject[Start](rec)
	case TypeRuntimeDone:
		if r, ok := decodeRuntimeDone(rec); ok {
			return r, nil
		}
		return decodeObject[RuntimeDone](rec)
	case TypeReport:
		if r, ok := decodeReport(rec); ok {
			return r, nil
		}
		return decodeObject[Report](rec)
	case TypeRestoreStart:
		return decodeObject[RestoreStart](rec)
	case TypeRestoreRuntimeDone:
		return decodeObject[RestoreRuntimeDone](rec)
	case TypeRestoreReport:
		return decodeObject[RestoreReport](rec)
	case TypeExtension:
		return decodeObject[Extension](rec)
	case TypeTelemetrySubscription:
		return decodeObject[TelemetrySubscription](rec)
	case TypeLogsDropped:
		return decodeObject[LogsDropped](rec)
	}
	return nil, errBadRecord
}

// decodeObject decodes a platform record, which must be a JSON object.
func decodeObject[T any](rec []byte) (*T, error) {
	if rec[0] != '{' {
		return nil, errBadRecord
	}
	v := new(T)
	if err := json.Unmarshal(rec, v); err != nil {
		return nil, err
	}
	return v, nil
}

// decodeLog decodes a function or extension record: a JSON string (one
// line, parsed as an object too when it holds one) or a JSON object.
func decodeLog(rec []byte) (*Log, error) {
	switch rec[0] {
	case '"':
		s, ok := decodeString(rec)
		if !ok {
			return nil, errBadRecord
		}
		l := &Log{Text: s}
		if t := strings.TrimSpace(s); len(t) >= 2 && t[0] == '{' && t[len(t)-1] == '}' {
			if b := []byte(t); validJSON(b) {
				l.JSON = true
				parseLogObject(l, b, true)
			}
		}
		return l, nil
	case '{':
		l := &Log{JSON: true}
		parseLogObject(l, rec, false)
		return l, nil
	}
	return nil, errBadRecord
}

// parseLogObject reads the well-known keys of AWS's JSON log format into
// l and every other key into l.Fields. A well-known key whose value is
// not a string, or a timestamp that does not parse, goes to Fields too,
// so nothing is lost. owned tells whether obj may be retained; if not,
// it is copied once, on the first value that goes to Fields.
func parseLogObject(l *Log, obj []byte, owned bool) {
	base := obj
	for it := newObjectIter(obj); ; {
		k, v, ok := it.next()
		if !ok {
			return
		}
		if v[0] == '"' {
			switch {
			case keyIs(k, "timestamp"):
				if t, ok := parseTimeValue(v); ok {
					l.Timestamp = t
					continue
				}
			case keyIs(k, "level"):
				l.Level = level(v)
				continue
			case keyIs(k, "requestId"):
				l.RequestID, _ = decodeString(v)
				continue
			case keyIs(k, "message"):
				l.Message, _ = decodeString(v)
				continue
			}
		}
		if !owned {
			base, owned = bytes.Clone(obj), true
		}
		if l.Fields == nil {
			l.Fields = make(map[string]json.RawMessage, 4)
		}
		// v is a subslice of obj; take the same range of base.
		off := it.i - len(v)
		val := base[off : off+len(v) : off+len(v)]
		if !utf8.Valid(val) {
			// Invalid UTF-8 inside a string (json.Valid lets it pass)
			// would make every OTLP request that carries the field fail
			// to encode, and so hold back the records queued after it.
			val = bytes.ToValidUTF8(val, []byte("\uFFFD"))
		}
		l.Fields[unescapeKey(k)] = json.RawMessage(val)
	}
}

// level decodes a raw JSON string holding a log level, without allocating
// for the usual ones.
func level(raw []byte) string {
	switch string(raw) {
	case `"INFO"`:
		return "INFO"
	case `"ERROR"`:
		return "ERROR"
	case `"WARN"`:
		return "WARN"
	case `"DEBUG"`:
		return "DEBUG"
	case `"TRACE"`:
		return "TRACE"
	case `"FATAL"`:
		return "FATAL"
	}
	s, _ := decodeString(raw)
	return s
}
