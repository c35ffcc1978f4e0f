package exporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// What an export attempt observed on the wire (status, Retry-After, how far
// it got), recorded by a RoundTripper wrapper or a gRPC interceptor, and
// the gzip step of the HTTP transports.

// attempt records what one export attempt observed on the wire. It travels
// in the context handed to the exporter's Export call; the RoundTripper
// wrapper (HTTP) or the unary interceptor (gRPC) fills it in.
type attempt struct {
	// progress counts the steps the request made on the network (HTTP:
	// connected, TLS handshake done, request written, first response
	// byte) and progressAt is when it made the last one (UnixNano of now);
	// the worker reads them to tell a slow request from a hung one.
	progress   atomic.Uint64
	progressAt atomic.Int64
	now        func() time.Time

	// mu guards every field below.
	mu         sync.Mutex
	status     int           // HTTP status; 0 when no response
	retryAfter string        // Retry-After header as received
	grpcCode   codes.Code    // gRPC status code when hasGRPC
	hasGRPC    bool          // a gRPC call completed (with or without error)
	grpcDelay  time.Duration // RetryInfo.retry_delay
	sent       bool          // the request body was written completely
	netErr     bool          // the round trip failed without a response
	at         stage         // how far the request got (HTTP)
	cc         *grpc.ClientConn
}

// stage is how far an HTTP request got, from the httptrace events of its
// round trip.
type stage int

const (
	stageNone      stage = iota
	stageDNS             // resolving the host
	stageConnect         // dialing
	stageConnected       // TCP connected
	stageTLS             // TLS handshake
	stageGotConn         // connection ready: writing the request
	stageWrote           // request written: waiting for the response
	stageResponse        // first response byte received
)

// hungStage names, for the log, the step a request that does not end is
// stuck at: "DNS lookup", "connect", "TLS handshake", "request" (writing
// it) or "response". A gRPC request is at "connect" while its channel is
// not ready (TCP and TLS are not told apart), else at "response".
func (a *attempt) hungStage() string {
	a.mu.Lock()
	at, cc := a.at, a.cc
	a.mu.Unlock()
	if cc != nil {
		if cc.GetState() == connectivity.Ready {
			return "response"
		}
		return "connect"
	}
	switch at {
	case stageDNS:
		return "DNS lookup"
	case stageNone, stageConnect:
		return "connect"
	case stageConnected, stageTLS:
		return "TLS handshake"
	case stageGotConn:
		return "request"
	}
	return "response"
}

// reach records that the request got to s (never backwards: a dial that
// goes on after the request was given up reports nothing new); done
// counts a step completed on the network.
func (a *attempt) reach(s stage, done bool) {
	a.mu.Lock()
	if s > a.at {
		a.at = s
	}
	a.mu.Unlock()
	if done {
		a.progressAt.Store(a.now().UnixNano())
		a.progress.Add(1)
	}
}

// trace returns the httptrace hooks that follow the request's progress.
func (a *attempt) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { a.reach(stageDNS, false) },
		DNSDone: func(i httptrace.DNSDoneInfo) {
			a.reach(stageConnect, i.Err == nil)
		},
		ConnectStart: func(string, string) { a.reach(stageConnect, false) },
		ConnectDone: func(_, _ string, err error) {
			a.reach(stageConnected, err == nil)
		},
		TLSHandshakeStart: func() { a.reach(stageTLS, false) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			a.reach(stageGotConn, err == nil)
		},
		GotConn:              func(httptrace.GotConnInfo) { a.reach(stageGotConn, false) },
		WroteRequest:         func(i httptrace.WroteRequestInfo) { a.reach(stageWrote, i.Err == nil) },
		GotFirstResponseByte: func() { a.reach(stageResponse, true) },
	}
}

type attemptKey struct{}

func withAttempt(ctx context.Context, a *attempt) context.Context {
	return context.WithValue(ctx, attemptKey{}, a)
}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// snapshot returns a copy of the observed fields.
func (a *attempt) snapshot() attemptResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return attemptResult{
		status: a.status, retryAfter: a.retryAfter, grpcCode: a.grpcCode, hasGRPC: a.hasGRPC,
		grpcDelay: a.grpcDelay, sent: a.sent, netErr: a.netErr,
	}
}

// attemptResult is the lock-free copy of an attempt.
type attemptResult struct {
	status     int
	retryAfter string
	grpcCode   codes.Code
	hasGRPC    bool
	grpcDelay  time.Duration
	sent       bool
	netErr     bool
}

// observingTransport wraps the real RoundTripper: it records the status
// code, Retry-After and whether the body was fully written into the
// attempt carried by the request's context. It never reads header values
// other than Retry-After, and logs nothing.
type observingTransport struct {
	base http.RoundTripper
}

func (t observingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attemptFrom(req.Context())
	if a == nil {
		return t.base.RoundTrip(req)
	}
	ctx := httptrace.WithClientTrace(req.Context(), a.trace())
	if req.Body != nil && req.Body != http.NoBody {
		r2 := req.Clone(ctx)
		r2.Body = &sentBody{ReadCloser: req.Body, a: a, want: req.ContentLength}
		req = r2
	} else {
		req = req.WithContext(ctx)
		a.mu.Lock()
		a.sent = true
		a.mu.Unlock()
	}
	resp, err := t.base.RoundTrip(req)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.netErr = true
		return resp, err
	}
	a.status = resp.StatusCode
	a.retryAfter = resp.Header.Get("Retry-After")
	return resp, nil
}

// gzipTransport gzips request bodies itself, for the HTTP exporters (built
// with compression off). The exporters keep their gzip writers in a
// sync.Pool that every GC cycle empties, so an export right after a GC
// allocated ~0.8 MB of compressor state per signal, often started a GC
// cycle of its own, and a freeze cut through both: at the thaw the
// goroutine reading the next INVOKE waited behind them (docs/benchmarks.md). One
// writer kept for the exporters' life, at BestSpeed, avoids that and costs
// less CPU per request. It sits outside observingTransport, so "the body
// was written" still means the compressed bytes on the wire.
type gzipTransport struct {
	base http.RoundTripper
	z    *gzipper
}

// gzipper is one gzip.Writer shared by the exporters' senders.
type gzipper struct {
	mu sync.Mutex // guards w
	w  *gzip.Writer
}

func (z *gzipper) compress(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(raw)/4 + 64)
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.w == nil {
		w, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if err != nil {
			return nil, err
		}
		z.w = w
	} else {
		z.w.Reset(&buf)
	}
	if _, err := z.w.Write(raw); err != nil {
		return nil, err
	}
	if err := z.w.Close(); err != nil {
		return nil, err
	}
	z.w.Reset(io.Discard) // do not keep the last body alive
	return buf.Bytes(), nil
}

func (t *gzipTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody || req.Header.Get("Content-Encoding") != "" {
		return t.base.RoundTrip(req)
	}
	raw, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	b, err := t.z.compress(raw)
	if err != nil {
		return nil, fmt.Errorf("gzip request body: %w", err)
	}
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r2.ContentLength = int64(len(b))
	r2.Header.Set("Content-Encoding", "gzip")
	return t.base.RoundTrip(r2)
}

// sentBody notes when the transport has read the whole request body: from
// then on the server may have received the request.
type sentBody struct {
	io.ReadCloser
	a    *attempt
	want int64
	n    int64
}

func (b *sentBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF || (b.want > 0 && b.n >= b.want) {
		b.a.mu.Lock()
		b.a.sent = true
		b.a.mu.Unlock()
	}
	return n, err
}

// grpcObserver is the unary client interceptor of the gRPC exporters: it
// records the status code and RetryInfo of each call.
func grpcObserver(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	a := attemptFrom(ctx)
	if a != nil {
		a.mu.Lock()
		a.cc = cc // its state tells where a call that does not end is stuck
		a.mu.Unlock()
	}
	err := invoker(ctx, method, req, reply, cc, opts...)
	if a == nil {
		return err
	}
	st := status.Convert(err)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hasGRPC = true
	a.sent = true
	a.grpcCode = st.Code()
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			a.grpcDelay = ri.GetRetryDelay().AsDuration()
		}
	}
	return err
}
