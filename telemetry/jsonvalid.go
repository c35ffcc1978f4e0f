package telemetry

// validJSON reports whether b is one JSON value (RFC 8259) with optional
// surrounding whitespace: the same answer as encoding/json's Valid,
// nesting limit included, in a single pass without a function call per
// byte. Telemetry API bodies are mostly string content (log lines),
// which it skips a byte at a time through a table.
//
// It stays only while it pays: BenchmarkValidJSON (jsonvalid_test.go)
// measures it beside json.Valid, and FuzzValidJSON holds the two answers
// equal.
func validJSON(b []byte) bool {
	_, ok := validCount(b)
	return ok
}

// validCount is validJSON that also returns, when b is an array, the
// number of its elements (0 for any other value), so that DecodeBatch
// needs no pass of its own to count the events.
func validCount(b []byte) (elems int, ok bool) {
	// stack holds '{' or '[' per open container; the first levels need no
	// allocation.
	var buf [32]byte
	stack := buf[:0]
	i := skipWS(b, 0)
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return 0, false
		}
		switch c := b[i]; {
		case c == '{':
			if len(stack) == maxNestingDepth {
				return 0, false
			}
			stack = append(stack, '{')
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == '}' {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			var ok bool
			if i, ok = validMember(b, i); !ok {
				return 0, false
			}
			continue
		case c == '[':
			if len(stack) == maxNestingDepth {
				return 0, false
			}
			stack = append(stack, '[')
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == ']' {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			continue
		case c == '"':
			var ok bool
			if i, ok = validString(b, i); !ok {
				return 0, false
			}
		case c == 't':
			if !hasLiteral(b, i, "true") {
				return 0, false
			}
			i += 4
		case c == 'f':
			if !hasLiteral(b, i, "false") {
				return 0, false
			}
			i += 5
		case c == 'n':
			if !hasLiteral(b, i, "null") {
				return 0, false
			}
			i += 4
		case c == '-' || '0' <= c && c <= '9':
			var ok bool
			if i, ok = validNumber(b, i); !ok {
				return 0, false
			}
		default:
			return 0, false
		}
		// A value ended at b[i]: close containers until one continues.
		for {
			if len(stack) == 1 && stack[0] == '[' {
				elems++ // an element of the top-level array
			}
			i = skipWS(b, i)
			if len(stack) == 0 {
				return elems, i == len(b)
			}
			if i >= len(b) {
				return 0, false
			}
			top, c := stack[len(stack)-1], b[i]
			if c == ',' {
				i = skipWS(b, i+1)
				if top == '{' {
					var ok bool
					if i, ok = validMember(b, i); !ok {
						return 0, false
					}
				}
				break
			}
			if top == '{' && c == '}' || top == '[' && c == ']' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			return 0, false
		}
	}
}

// maxNestingDepth is encoding/json's limit on nested containers.
const maxNestingDepth = 10000

// validMember checks `"key" :` at b[i] and returns the index of the value
// after the colon and any whitespace.
func validMember(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	i, ok := validString(b, i)
	if !ok {
		return i, false
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return skipWS(b, i+1), true
}

// plainString marks the bytes a JSON string holds as they are: every byte
// but the quote, the backslash and the control characters below 0x20.
// Bytes of 0x80 and above are not checked as UTF-8, as json.Valid does
// not check them.
var plainString = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// validString checks the string whose opening quote is at b[i] and
// returns the index just past its closing quote.
func validString(b []byte, i int) (int, bool) {
	i++
	for {
		for i < len(b) && plainString[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return i, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		default: // a control character
			return i, false
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// validNumber checks the number at b[i] (-?int frac? exp?) and returns the
// index just past it.
func validNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
