package telemetry

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The helpers below walk JSON that json.Valid has already accepted. They
// return subslices of their input instead of copying, which keeps
// DecodeBatch to a handful of allocations per event. They must never be
// called on unvalidated input: they do not check syntax.
//
// They stay only while they pay: BenchmarkDecodeBatchEncodingJSON
// (jsonscan_test.go) decodes the same batches with encoding/json alone,
// beside BenchmarkDecodeBatch.

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the JSON string whose opening
// quote is at b[i].
func stringEnd(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		q := i + j
		// The quote is escaped when preceded by an odd number of
		// backslashes. The opening quote stops the walk back.
		n := 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// arrayIter yields the elements of a validated JSON array.
type arrayIter struct {
	b []byte
	i int
}

// newArrayIter starts after the '[' at b[open].
func newArrayIter(b []byte, open int) arrayIter { return arrayIter{b: b, i: open + 1} }

func (it *arrayIter) next() ([]byte, bool) {
	it.i = skipWS(it.b, it.i)
	if it.i < len(it.b) && it.b[it.i] == ',' {
		it.i = skipWS(it.b, it.i+1)
	}
	if it.i >= len(it.b) || it.b[it.i] == ']' {
		return nil, false
	}
	start := it.i
	it.i = valueEnd(it.b, start)
	return it.b[start:it.i], true
}

// objectIter yields the members of a validated JSON object: the key
// without its quotes (escapes not resolved) and the raw value.
type objectIter struct {
	b []byte
	i int
}

// newObjectIter starts after the '{' at b[0].
func newObjectIter(b []byte) objectIter { return objectIter{b: b, i: 1} }

func (it *objectIter) next() (key, val []byte, ok bool) {
	it.i = skipWS(it.b, it.i)
	if it.i < len(it.b) && it.b[it.i] == ',' {
		it.i = skipWS(it.b, it.i+1)
	}
	if it.i >= len(it.b) || it.b[it.i] != '"' {
		return nil, nil, false
	}
	ks := it.i
	ke := stringEnd(it.b, ks)
	it.i = skipWS(it.b, ke) + 1 // past ':'
	vs := skipWS(it.b, it.i)
	it.i = valueEnd(it.b, vs)
	return it.b[ks+1 : ke-1], it.b[vs:it.i], true
}

// keyIs reports whether the raw key (no quotes) equals name.
func keyIs(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key) == name
	}
	return unescapeKey(key) == name
}

// unescapeKey resolves escapes in a raw key; rare path.
func unescapeKey(key []byte) string {
	if bytes.IndexByte(key, '\\') < 0 && utf8.Valid(key) {
		return string(key)
	}
	q := make([]byte, 0, len(key)+2)
	q = append(append(append(q, '"'), key...), '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return string(key)
	}
	return s
}

// decodeString decodes a raw JSON string value (with quotes). Invalid
// UTF-8 is replaced with U+FFFD, as encoding/json does.
func decodeString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	return unquote(inner), true
}

// unquote resolves the escapes of a validated JSON string's contents in
// one allocation. Invalid UTF-8 and lone surrogates become U+FFFD, as in
// encoding/json.
func unquote(in []byte) string {
	var sb strings.Builder
	sb.Grow(len(in))
	for i := 0; i < len(in); {
		j := i
		for j < len(in) && in[j] != '\\' && in[j] < utf8.RuneSelf {
			j++
		}
		sb.Write(in[i:j])
		if i = j; i >= len(in) {
			break
		}
		if c := in[i]; c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				sb.WriteRune(utf8.RuneError)
			} else {
				sb.Write(in[i : i+size])
			}
			i += size
			continue
		}
		if i+1 >= len(in) { // cannot happen in valid JSON
			break
		}
		switch e := in[i+1]; e {
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r := hex4(in[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+1 < len(in) && in[i] == '\\' && in[i+1] == 'u' {
					r2 = hex4(in[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			sb.WriteRune(r)
			continue
		default: // '"', '\\', '/'
			sb.WriteByte(e)
		}
		i += 2
	}
	return sb.String()
}

// hex4 decodes the four hex digits at the start of b, -1 if invalid.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// parseTimeValue parses a raw JSON string value holding a timestamp.
func parseTimeValue(raw []byte) (time.Time, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return time.Time{}, false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		s, ok := decodeString(raw)
		if !ok {
			return time.Time{}, false
		}
		inner = []byte(s)
	}
	return parseTime(inner)
}

// parseTime parses an RFC 3339 timestamp (what Lambda sends:
// 2022-10-21T14:05:03.165Z), leniently: the fraction may follow a ':' or
// ',' instead of '.', as in the malformed 2022-08-02T12:01:23:521Z of old
// AWS examples, and the date and time may be separated by 't' or ' '.
// The result is in UTC. It allocates nothing.
func parseTime(b []byte) (time.Time, bool) {
	if len(b) < 20 {
		return time.Time{}, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' ||
		(b[10] != 'T' && b[10] != 't' && b[10] != ' ') {
		return time.Time{}, false
	}
	i := 19
	nsec := 0
	if b[i] == '.' || b[i] == ':' || b[i] == ',' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if i-start < 9 {
				nsec = nsec*10 + int(b[i]-'0')
			}
			i++
		}
		n := i - start
		if n == 0 {
			return time.Time{}, false
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	if i >= len(b) {
		return time.Time{}, false
	}
	offset := 0
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b) < i+6 || b[i+3] != ':' {
			return time.Time{}, false
		}
		oh, okh := digits(b[i+1 : i+3])
		om, okm := digits(b[i+4 : i+6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return time.Time{}, false
	}
	if i != len(b) || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // e.g. February 30th, normalised by time.Date
		return time.Time{}, false
	}
	if offset != 0 {
		t = t.Add(-time.Duration(offset) * time.Second)
	}
	return t, true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
