package telemetry

import (
	"io"
	"net/http"
)

// Reading and classifying a POST's body before it is answered.

// readBody reads at most limit bytes, in one allocation when the length is known.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n >= 0 {
		buf := make([]byte, n)
		_, err := io.ReadFull(rd, buf)
		return buf, err
	}
	return io.ReadAll(rd)
}

type bodyKind int

const (
	bodyArray    bodyKind = iota // '[' … ']': answered 200, decoded after
	bodyFragment                 // cannot be JSON: answered 202, fragment logic after
	bodyNotArray                 // empty, or valid JSON that is not an array: 400
)

// classify looks at a body's first and last non-space bytes, and runs
// validJSON only on a body that could be a JSON value other than an
// array. A '[' … ']' body is not validated here: if it is not JSON after
// all (a split record's first half ending in ']'), the decode goroutine
// treats it as a fragment.
func classify(body []byte) bodyKind {
	first := skipWS(body, 0)
	if first == len(body) {
		return bodyNotArray
	}
	last := len(body) - 1
	for last > first && isSpace(body[last]) {
		last--
	}
	switch c := body[first]; {
	case c == '[':
		if body[last] == ']' {
			return bodyArray
		}
		return bodyFragment
	case c == '{' || c == '"' || c == '-' || c == 't' || c == 'f' || c == 'n' || ('0' <= c && c <= '9'):
		if validJSON(body) {
			return bodyNotArray
		}
	}
	return bodyFragment
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
