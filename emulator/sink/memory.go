package sink

import (
	"errors"
	"net/http"
	"net/http/httptest"
)

// errHungUp is what the in-memory transport returns for a request a Hangup fault answers: the
// connection was closed without a response.
var errHungUp = errors.New("sink: connection closed without a response (injected hang-up)")

// Transport returns an http.RoundTripper that serves every request with the sink's handler in
// memory, on the caller's goroutine, without a socket. It is for tests inside a testing/synctest
// bubble, where a goroutine blocked on a real socket does not count as durably blocked; the
// request's host is ignored. A request that a fault holds ends with its context's error when its
// context ends, and a Hangup fault ends it with an error, as a closed connection would. In a
// bubble, create the Sink and every Fault.Stall channel inside it: a goroutine waiting on a
// channel made outside does not count as durably blocked, and the bubble's clock stops.
func (s *Sink) Transport() http.RoundTripper { return memoryTransport{s: s} }

// memoryTransport serves requests with a Sink's handler and an httptest.ResponseRecorder.
type memoryTransport struct{ s *Sink }

func (t memoryTransport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	// What a server would hand its handler: a body that is never nil, a Host and a RequestURI.
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	defer in.Body.Close()
	if in.Host == "" {
		in.Host = in.URL.Host
	}
	in.RequestURI = in.URL.RequestURI()

	rec := httptest.NewRecorder()
	if hungUp := serveRecovering(t.s.handler, rec, in); hungUp {
		return nil, errHungUp
	}
	if err := req.Context().Err(); err != nil {
		return nil, err // the client went away while the request was held
	}
	resp = rec.Result()
	resp.Request = req
	return resp, nil
}

// serveRecovering serves r and reports whether the handler aborted (a Hangup fault: a
// ResponseRecorder cannot be hijacked, so the handler panics with http.ErrAbortHandler, as
// net/http's server expects from a handler that hangs up).
func serveRecovering(h http.Handler, w http.ResponseWriter, r *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				panic(v)
			}
			aborted = true
		}
	}()
	h.ServeHTTP(w, r)
	return false
}
