//go:build linux

package exporter

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// The two ways a backend hangs, on real sockets (no synctest: real sockets
// do not count as blocked in a bubble): a listener that accepts and never
// answers, over plain TCP (stuck at "response") or TLS (stuck at "TLS
// handshake"), and a listener whose accept queue is full, which drops SYNs
// as a VPC without a route out does (stuck at "connect"). In each case the
// hang is found at the third INVOKE, named in one WARN line, and the data
// gets through once the backend answers.
func TestHangsOnRealSockets(t *testing.T) {
	tests := []struct {
		name, stage string
		backend     func(t *testing.T, h http.Handler) *netBackend
	}{
		{"a listener that accepts and never answers", "response", acceptingBackend(false)},
		{"a TLS listener that accepts TCP and never speaks TLS", "TLS handshake", acceptingBackend(true)},
		{"a listener whose accept queue is full", "connect", fullQueueBackend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := sink.New(sink.Options{})
			b := tt.backend(t, col.Handler())
			cfg := testConfig(t, b.url, config.FlushAsync)
			for _, s := range []*config.Signal{&cfg.OTLP.Traces, &cfg.OTLP.Logs, &cfg.OTLP.Metrics} {
				s.Timeout = time.Hour // only the INVOKEs detect the hang
			}
			logs := &syncBuffer{}
			msgs := make(chan string, 64)
			log := slog.New(notifyHandler{Handler: slog.NewJSONHandler(logs, nil), msgs: msgs})
			rt := stuckAt{base: b.transport, stage: tt.stage, inFlight: make(chan struct{}, 16)}
			p, err := newPipeline(cfg, log, Options{}, knobs{
				HTTPClient: &http.Client{Transport: rt}, NewMapper: newFakeMapper,
				BatchDelay: time.Millisecond, HangQuiet: time.Nanosecond,
				BreakerMinOpen: time.Millisecond, RetryInitial: time.Millisecond, RetryMax: 10 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			h := &harness{p: p, logs: logs}
			h.run(t)
			invoke := func(id string) {
				h.p.Invoke(context.Background(), invokeEvent(id, time.Now().Add(time.Minute)))
			}
			invoke("a")
			// One span, no log: one request in flight (metrics are not due).
			h.p.Enqueue(context.Background(), invocation("a", 0, time.Now()))
			<-rt.inFlight // a request got to where the backend leaves it
			for _, id := range []string{"b", "c", "d"} {
				invoke(id)
			}
			waitLog(t, msgs, hangWarn)
			warns := logs.logged(t, hangWarn)
			if len(warns) != 1 || warns[0]["stage"] != tt.stage || warns[0]["endpoint"] != b.url {
				t.Fatalf("hang WARN lines %v, want one naming %s and stage %q", warns, b.url, tt.stage)
			}

			b.answer()
			// A retry may be stuck already: three INVOKEs cancel it, and
			// the next one, on a fresh connection, is answered.
			for _, id := range []string{"e", "f", "g"} {
				invoke(id)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net, not a timing assertion
			defer cancel()
			if err := col.WaitFor(ctx, func(s *sink.Snapshot) bool { return spanCounts(s)["a"] > 0 }); err != nil {
				t.Fatalf("nothing delivered once the backend answers (%v); log:\n%s", err, logs)
			}
			waitLog(t, msgs, hangRecov)
			if st := h.p.tally(); st.Traces.Retried == 0 {
				t.Errorf("stats %+v: the hung request was not counted as failed", st)
			}
			if n := len(logs.logged(t, hangWarn)); n != 1 {
				t.Errorf("%d hang WARN lines, want 1 per endpoint", n)
			}
			if strings.Contains(logs.String(), "s3cr3t") {
				t.Error("a header value was logged")
			}
			h.close(t)
		})
	}
}

// netBackend is a real backend that hangs until answer is called.
type netBackend struct {
	url       string
	transport *http.Transport
	answer    func()
}

// stuckAt wraps a transport: inFlight receives once a request has reached
// the stage where the backend leaves it, after the pipeline's own
// httptrace hook has seen it (a signal from the server's side could come
// before the client's hook has run).
type stuckAt struct {
	base     http.RoundTripper
	stage    string
	inFlight chan struct{}
}

func (s stuckAt) RoundTrip(req *http.Request) (*http.Response, error) {
	ours := httptrace.ContextClientTrace(req.Context())
	if ours == nil {
		return s.base.RoundTrip(req)
	}
	notify := func() {
		select {
		case s.inFlight <- struct{}{}:
		default:
		}
	}
	// A composed hook runs before the one it is composed with: this one
	// runs ours first itself (which then runs a second time, harmlessly).
	tr := &httptrace.ClientTrace{}
	switch s.stage {
	case "connect":
		tr.ConnectStart = func(n, a string) { ours.ConnectStart(n, a); notify() }
	case "TLS handshake":
		tr.TLSHandshakeStart = func() { ours.TLSHandshakeStart(); notify() }
	default:
		tr.WroteRequest = func(i httptrace.WroteRequestInfo) { ours.WroteRequest(i); notify() }
	}
	return s.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), tr)))
}

// notifyHandler passes every record's message to msgs (without blocking)
// besides handling it.
type notifyHandler struct {
	slog.Handler
	msgs chan<- string
}

func (n notifyHandler) Handle(ctx context.Context, r slog.Record) error {
	err := n.Handler.Handle(ctx, r)
	select {
	case n.msgs <- r.Message:
	default:
	}
	return err
}

func (n notifyHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return notifyHandler{Handler: n.Handler.WithAttrs(as), msgs: n.msgs}
}

func (n notifyHandler) WithGroup(g string) slog.Handler {
	return notifyHandler{Handler: n.Handler.WithGroup(g), msgs: n.msgs}
}

// waitLog waits for a log record whose message starts with prefix.
func waitLog(t *testing.T, msgs <-chan string, prefix string) {
	t.Helper()
	safety := time.After(time.Minute) // a safety net, not a timing assertion
	for {
		select {
		case m := <-msgs:
			if strings.HasPrefix(m, prefix) {
				return
			}
		case <-safety:
			t.Fatalf("no %q log line", prefix)
		}
	}
}

// holdingListener accepts TCP connections and, while it hangs, holds them
// without reading or writing a byte; once answering, it hands new ones to
// the server.
type holdingListener struct {
	net.Listener
	accepted chan struct{} // optional: receives for each connection held
	// mu guards hanging and held.
	mu      sync.Mutex
	hanging bool
	held    []net.Conn
}

func (l *holdingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if !l.hanging {
			l.mu.Unlock()
			return c, nil
		}
		l.held = append(l.held, c)
		l.mu.Unlock()
		select {
		case l.accepted <- struct{}{}:
		default:
		}
	}
}

// answer hands new connections to the server, and closes the held ones
// (the clients then dial again).
func (l *holdingListener) answer() {
	l.mu.Lock()
	l.hanging = false
	for _, c := range l.held {
		c.Close()
	}
	l.held = nil
	l.mu.Unlock()
}

func (l *holdingListener) Close() error {
	l.mu.Lock()
	for _, c := range l.held {
		c.Close()
	}
	l.held = nil
	l.mu.Unlock()
	return l.Listener.Close()
}

// acceptingBackend is a server on 127.0.0.1 whose listener accepts and
// holds connections until it answers; with TLS, it never speaks TLS on
// them.
func acceptingBackend(useTLS bool) func(*testing.T, http.Handler) *netBackend {
	return func(t *testing.T, h http.Handler) *netBackend {
		srv := httptest.NewUnstartedServer(h)
		l := &holdingListener{Listener: srv.Listener, hanging: true}
		srv.Listener = l
		tr := &http.Transport{}
		if useTLS {
			srv.StartTLS()
			tr = srv.Client().Transport.(*http.Transport).Clone()
		} else {
			srv.Start()
		}
		t.Cleanup(srv.Close)
		t.Cleanup(tr.CloseIdleConnections)
		return &netBackend{url: srv.URL, transport: tr, answer: l.answer}
	}
}

// fullQueueBackend is a listener on 127.0.0.1 whose accept queue is full:
// listen(2) with a backlog of 0, and raw connections until a dial no
// longer completes. The kernel then drops further SYNs, so a dial hangs as
// it does towards a host without a route. The server starts accepting
// when it answers.
func fullQueueBackend(t *testing.T, h http.Handler) *netBackend {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close() // FileListener dups it
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	var fillers []net.Conn
	t.Cleanup(func() {
		for _, c := range fillers {
			c.Close()
		}
	})
	for tries := 0; ; tries++ {
		if tries > 64 {
			l.Close()
			t.Fatal("the accept queue never filled")
		}
		// A probe: a dial that does not complete at once means the queue
		// is full (on loopback a dial completes in microseconds). The
		// queue holds at least one connection.
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			if len(fillers) > 0 {
				break
			}
			continue
		}
		fillers = append(fillers, c)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	// Dials end with the test: the transport lets a dial go on after
	// its request is canceled (for a later request to use).
	testCtx := t.Context()
	d := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(testCtx, cancel)()
		return d.DialContext(ctx, network, a)
	}}
	var started bool
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if started {
			srv.Close()
		} else {
			l.Close()
		}
	})
	return &netBackend{url: "http://" + addr, transport: tr, answer: func() {
		started = true
		srv.Start()
	}}
}

// spanSink is an OTLP/gRPC trace service that closes got at the first
// spans it receives.
type spanSink struct {
	coltracepb.UnimplementedTraceServiceServer
	once sync.Once
	got  chan struct{}
}

func (s *spanSink) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if len(req.GetResourceSpans()) > 0 {
		s.once.Do(func() { close(s.got) })
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// Over gRPC the request's stage is the channel's state: a backend that
// accepts TCP and never sends its HTTP/2 preface leaves the channel
// connecting, and the hang is named "connect".
func TestAGRPCHangIsNamedByTheChannelState(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &holdingListener{Listener: inner, hanging: true, accepted: make(chan struct{}, 16)}
	sink := &spanSink{got: make(chan struct{})}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, sink)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})

	url := "http://" + inner.Addr().String()
	cfg := testConfig(t, url, config.FlushAsync)
	for _, s := range []*config.Signal{&cfg.OTLP.Traces, &cfg.OTLP.Logs, &cfg.OTLP.Metrics} {
		s.Protocol, s.Timeout = "grpc", time.Hour
	}
	cfg.OTLP.Protocol = "grpc"
	logs := &syncBuffer{}
	msgs := make(chan string, 64)
	log := slog.New(notifyHandler{Handler: slog.NewJSONHandler(logs, nil), msgs: msgs})
	p, err := newPipeline(cfg, log, Options{}, knobs{NewMapper: newFakeMapper, BatchDelay: time.Millisecond,
		HangQuiet: time.Nanosecond, BreakerMinOpen: time.Millisecond, RetryInitial: time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{p: p, logs: logs}
	h.run(t)
	invoke := func(id string) { h.p.Invoke(context.Background(), invokeEvent(id, time.Now().Add(time.Minute))) }
	invoke("a")
	h.p.Enqueue(context.Background(), invocation("a", 0, time.Now()))
	<-l.accepted // the channel is connecting to the backend
	for _, id := range []string{"b", "c", "d"} {
		invoke(id)
	}
	waitLog(t, msgs, hangWarn)
	if warns := logs.logged(t, hangWarn); len(warns) != 1 || warns[0]["stage"] != "connect" || warns[0]["endpoint"] != url {
		t.Fatalf("hang WARN lines %v, want one naming %s and stage connect", warns, url)
	}

	l.answer() // the held connections are closed: gRPC reconnects
	select {
	case <-sink.got:
	case <-time.After(time.Minute): // a safety net, not a timing assertion
		t.Fatalf("nothing delivered once the backend answers; log:\n%s", logs)
	}
	waitLog(t, msgs, hangRecov)
	h.close(t)
}
