package extension

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Paths of the Extensions API as the fake serves them.
const (
	pathRegister  = "/2020-01-01/extension/register"
	pathNext      = "/2020-01-01/extension/event/next"
	pathInitError = "/2020-01-01/extension/init/error"
	pathExitError = "/2020-01-01/extension/exit/error"
)

// request is one call the fake Lambda API received.
type request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// fakeLambda is a hand-written Extensions API. Each endpoint is a function
// field; a nil field answers 404. It records every request.
type fakeLambda struct {
	register  http.HandlerFunc
	next      http.HandlerFunc
	initError http.HandlerFunc
	exitError http.HandlerFunc

	// mu guards requests.
	mu       sync.Mutex
	requests []request
}

func (f *fakeLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The bodies are tiny JSON documents; a read error leaves body short,
	// which the assertions on it then report.
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	f.requests = append(f.requests, request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	f.mu.Unlock()

	var h http.HandlerFunc
	switch r.Method + " " + r.URL.Path {
	case "POST " + pathRegister:
		h = f.register
	case "GET " + pathNext:
		h = f.next
	case "POST " + pathInitError:
		h = f.initError
	case "POST " + pathExitError:
		h = f.exitError
	}
	if h == nil {
		answer(http.StatusNotFound, `{"errorType":"Fake.NotFound","errorMessage":"no such endpoint"}`)(w, r)
		return
	}
	h(w, r)
}

// calls returns the requests received for path, in order.
func (f *fakeLambda) calls(path string) []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []request
	for _, r := range f.requests {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// start serves f on a loopback httptest server and returns its host:port and
// a transport for it (closed at the end of the test).
func (f *fakeLambda) start(t *testing.T) (addr string, tr *http.Transport) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	tr = srv.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return srv.Listener.Addr().String(), tr
}

// serve starts f and returns a client for it plus the client's transport.
func (f *fakeLambda) serve(t *testing.T) (*Client, *http.Transport) {
	t.Helper()
	addr, tr := f.start(t)
	return NewClient(addr, &http.Client{Transport: tr, Timeout: DefaultTimeout}), tr
}

// registerOK answers a registration with identifier id and the documented body.
func registerOK(t *testing.T, id string) http.HandlerFunc {
	body := fixture(t, "extensions.register.response.json")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Lambda-Extension-Identifier", id)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// answer replies with status and body.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// serveEvents answers each /event/next with the next body received from
// events, or gives up when the request ends. contentType is sent as is:
// the emulator labels SHUTDOWN text/plain.
func serveEvents(events <-chan string, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case ev := <-events:
			w.Header().Set("Content-Type", contentType)
			io.WriteString(w, ev)
		case <-r.Context().Done():
		}
	}
}

// fixture reads a file of the shared Lambda API fixtures.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

// handlerTransport serves requests in memory with h, for tests inside a
// synctest bubble, where real sockets never count as durably blocked.
type handlerTransport struct{ h http.Handler }

func (tr handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	req := r.Clone(r.Context())
	if req.Body == nil {
		req.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.h.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
		return rec.Result(), nil
	case <-r.Context().Done():
		// The fake's handlers watch the same context and return soon.
		<-done
		return nil, r.Context().Err()
	}
}

// recorder is a Handler that records what Run hands it. The optional
// function fields run inside Invoke and Shutdown.
type recorder struct {
	onInvoke   func(ctx context.Context, ev Event)
	onShutdown func(ctx context.Context, plan ShutdownPlan) error

	// mu guards invokes and shutdowns.
	mu        sync.Mutex
	invokes   []Event
	shutdowns []ShutdownPlan
}

func (h *recorder) Invoke(ctx context.Context, ev Event) {
	h.mu.Lock()
	h.invokes = append(h.invokes, ev)
	h.mu.Unlock()
	if h.onInvoke != nil {
		h.onInvoke(ctx, ev)
	}
}

func (h *recorder) Shutdown(ctx context.Context, plan ShutdownPlan) error {
	h.mu.Lock()
	h.shutdowns = append(h.shutdowns, plan)
	h.mu.Unlock()
	if h.onShutdown != nil {
		return h.onShutdown(ctx, plan)
	}
	return nil
}
