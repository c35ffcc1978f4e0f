package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SandboxHost is the host name Lambda delivers telemetry to.
const SandboxHost = "sandbox.localdomain"

// DefaultFragmentTTL is how long a body that does not parse is kept
// waiting for the rest of a split record.
const DefaultFragmentTTL = 2 * time.Second

// bodySlack is the metadata allowance on top of 2 × maxBytes.
const bodySlack = 64 << 10

// Sink receives decoded events. Enqueue must not block: it is the
// exporter's bounded queue, which drops and counts when full. Enqueue
// takes ownership of the slice.
type Sink interface {
	Enqueue(events []Event)
}

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	// Port to listen on; 0 lets the OS choose (tests).
	Port int
	// MaxBytes is the subscription's buffering maxBytes. Bodies up to
	// 2 × MaxBytes + 64 KiB are accepted. Zero means MaxBufferBytes.
	MaxBytes int
	// Logger receives debug lines for odd batches; nil discards.
	Logger *slog.Logger
	// Now is the clock used for fragment expiry; nil means time.Now.
	Now func() time.Time
	// FragmentTTL bounds how long a fragment waits for the rest of its
	// record; zero means DefaultFragmentTTL.
	FragmentTTL time.Duration
	// Host, when set, is bound instead of SandboxHost and no name is
	// looked up (tests, AWS_SAM_LOCAL).
	Host string
	// LookupHost resolves SandboxHost; nil means HostsLookup, which reads
	// /etc/hosts and sends no DNS query (no network call may precede the
	// first /event/next). When the name does not resolve the listener
	// binds all interfaces.
	LookupHost func(ctx context.Context, host string) ([]string, error)
}

// ListenerStats are the listener's counters since it was created.
type ListenerStats struct {
	Batches           uint64 // bodies decoded into a batch (a joined pair counts once)
	Events            uint64 // events handed to the sink
	BadEvents         uint64 // events kept raw because they did not decode
	UnknownEvents     uint64 // events of an unknown type, kept raw
	Bytes             uint64 // body bytes received
	Rejected4xx       uint64 // requests answered 4xx (wrong method, oversize, not an array, unreadable)
	Oversize          uint64 // bodies over the limit (answered 413; also in Rejected4xx)
	FragmentsKept     uint64 // bodies that did not parse, kept to join with the next one
	FragmentsJoined   uint64 // fragments joined with the next body into a batch
	FragmentsUnjoined uint64 // fragments that expired, never joined, or were pending at Close
}

type counters struct {
	batches, events, bad, unknown, bytes, rejected, oversize atomic.Uint64
	kept, joined, unjoined                                   atomic.Uint64
}

// Listener receives Telemetry API batches over HTTP and hands them to a
// Sink. Create it with NewListener, then Start, then Close.
type Listener struct {
	sink   Sink
	log    *slog.Logger
	now    func() time.Time
	lookup func(ctx context.Context, host string) ([]string, error)
	host   string
	port   int
	limit  int64
	ttl    time.Duration
	stats  counters

	// fragMu guards frag and fragAt: the one pending body that did not
	// parse, and when it arrived.
	fragMu sync.Mutex
	frag   []byte
	fragAt time.Time

	// closingCh is closed when Close begins (observed by tests).
	closingCh chan struct{}
	closeOnce sync.Once

	// lifeMu guards srv, ln, done and closed.
	lifeMu sync.Mutex
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
	closed bool
}

// NewListener returns a Listener that will hand batches to sink.
func NewListener(cfg ListenerConfig, sink Sink) *Listener {
	l := &Listener{
		sink:   sink,
		log:    cfg.Logger,
		now:    cfg.Now,
		lookup: cfg.LookupHost,
		host:   cfg.Host,
		port:   cfg.Port,
		ttl:    cfg.FragmentTTL,

		closingCh: make(chan struct{}),
	}
	maxBytes := cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = MaxBufferBytes
	}
	l.limit = 2*int64(maxBytes) + bodySlack
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.lookup == nil {
		l.lookup = HostsLookup
	}
	if l.ttl <= 0 {
		l.ttl = DefaultFragmentTTL
	}
	if l.sink == nil {
		l.sink = discardSink{}
	}
	return l
}

type discardSink struct{}

func (discardSink) Enqueue([]Event) {}

// BodyLimit is the largest body the listener accepts, in bytes.
func (l *Listener) BodyLimit() int64 { return l.limit }

// Start binds SandboxHost:Port (all interfaces when the name does not
// resolve) and serves in the background until Close. It returns the URI
// to subscribe with, http://sandbox.localdomain:<port>, with the port
// actually bound.
func (l *Listener) Start() (uri string, err error) {
	l.lifeMu.Lock()
	defer l.lifeMu.Unlock()
	if l.closed {
		return "", errors.New("start telemetry listener: closed")
	}
	if l.srv != nil {
		return "", errors.New("start telemetry listener: already started")
	}
	ln, err := l.listen()
	if err != nil {
		return "", fmt.Errorf("start telemetry listener: %w", err)
	}
	srv := &http.Server{
		Handler:           l,
		ReadHeaderTimeout: 30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("telemetry listener stopped", "error", err)
		}
	}()
	l.srv, l.ln, l.done = srv, ln, done
	port := ln.Addr().(*net.TCPAddr).Port
	return "http://" + net.JoinHostPort(SandboxHost, strconv.Itoa(port)), nil
}

func (l *Listener) listen() (net.Listener, error) {
	port := strconv.Itoa(l.port)
	if l.host != "" {
		return net.Listen("tcp", net.JoinHostPort(l.host, port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	addrs, err := l.lookup(ctx, SandboxHost)
	cancel()
	if err == nil && len(addrs) > 0 {
		ip := addrs[0]
		for _, a := range addrs {
			if p := net.ParseIP(a); p != nil && p.To4() != nil {
				ip = a
				break
			}
		}
		ln, lerr := net.Listen("tcp", net.JoinHostPort(ip, port))
		if lerr == nil {
			return ln, nil
		}
		l.log.Debug("telemetry listener: cannot bind sandbox address, binding all interfaces", "address", ip, "error", lerr)
	} else {
		l.log.Debug("telemetry listener: sandbox host does not resolve, binding all interfaces", "host", SandboxHost)
	}
	return net.Listen("tcp", ":"+port)
}

// errNoDNS is what HostsLookup's resolver answers instead of dialling a
// name server.
var errNoDNS = errors.New("DNS disabled: only /etc/hosts is consulted before the first /event/next")

// HostsLookup resolves host from the hosts file (/etc/hosts) only. It is
// the pure Go resolver with a Dial that refuses every connection, so a
// name missing from the hosts file fails at once instead of sending a DNS
// query: Slipstream makes no network call other than register and
// subscribe before its first /event/next, and Lambda lists
// sandbox.localdomain in /etc/hosts.
func HostsLookup(ctx context.Context, host string) ([]string, error) {
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errNoDNS
		},
	}
	return r.LookupHost(ctx, host)
}

// Addr is the bound address, nil before Start.
func (l *Listener) Addr() net.Addr {
	l.lifeMu.Lock()
	defer l.lifeMu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Close stops accepting, waits for in-flight requests until ctx ends, and
// counts a pending fragment as unjoined. If ctx ends first, connections
// are closed and the error is returned. Close may be called more than once.
func (l *Listener) Close(ctx context.Context) error {
	l.lifeMu.Lock()
	srv, done := l.srv, l.done
	l.closed = true
	l.lifeMu.Unlock()
	l.closeOnce.Do(func() { close(l.closingCh) })

	var err error
	if srv != nil {
		if serr := srv.Shutdown(ctx); serr != nil {
			err = fmt.Errorf("close telemetry listener: %w", serr)
			if cerr := srv.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close telemetry listener: %w", cerr))
			}
		}
		<-done
	}
	l.fragMu.Lock()
	if l.frag != nil {
		l.frag = nil
		l.stats.unjoined.Add(1)
	}
	l.fragMu.Unlock()
	return err
}

func (l *Listener) closing() <-chan struct{} { return l.closingCh }

// Stats returns a snapshot of the counters.
func (l *Listener) Stats() ListenerStats {
	c := &l.stats
	return ListenerStats{
		Batches:           c.batches.Load(),
		Events:            c.events.Load(),
		BadEvents:         c.bad.Load(),
		UnknownEvents:     c.unknown.Load(),
		Bytes:             c.bytes.Load(),
		Rejected4xx:       c.rejected.Load(),
		Oversize:          c.oversize.Load(),
		FragmentsKept:     c.kept.Load(),
		FragmentsJoined:   c.joined.Load(),
		FragmentsUnjoined: c.unjoined.Load(),
	}
}

// ServeHTTP handles one Telemetry API POST: read, decode, enqueue,
// answer. It never waits on the sink.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		l.reject(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if r.ContentLength > l.limit {
		l.stats.oversize.Add(1)
		l.reject(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	body, err := readBody(w, r, l.limit)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			l.stats.oversize.Add(1)
			l.reject(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		l.reject(w, http.StatusBadRequest, "cannot read body")
		return
	}
	l.stats.bytes.Add(uint64(len(body)))
	w.WriteHeader(l.accept(body))
}

func (l *Listener) reject(w http.ResponseWriter, code int, msg string) {
	l.stats.rejected.Add(1)
	l.log.Debug("telemetry body rejected", "status", code, "reason", msg)
	http.Error(w, msg, code)
}

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

// accept decodes body, joining it with a pending fragment when needed,
// and returns the status to answer.
func (l *Listener) accept(body []byte) int {
	events, st, err := DecodeBatch(body)
	switch {
	case err == nil:
		l.dropFragment()
		l.deliver(events, st, false)
		return http.StatusOK
	case errors.Is(err, ErrNotArray) || len(bytes.TrimSpace(body)) == 0:
		l.dropFragment()
		l.stats.rejected.Add(1)
		l.log.Debug("telemetry body rejected", "status", http.StatusBadRequest, "reason", err.Error())
		return http.StatusBadRequest
	}

	// Not JSON: maybe one half of a record split across two POSTs.
	now := l.now()
	l.fragMu.Lock()
	prev, prevAt := l.frag, l.fragAt
	l.frag = nil
	l.fragMu.Unlock()
	if prev != nil {
		if now.Sub(prevAt) <= l.ttl {
			joined := make([]byte, 0, len(prev)+len(body))
			joined = append(append(joined, prev...), body...)
			if events, st, err := DecodeBatch(joined); err == nil {
				l.stats.joined.Add(1)
				l.deliver(events, st, true)
				return http.StatusOK
			}
		}
		l.stats.unjoined.Add(1)
	}
	l.stats.kept.Add(1)
	l.fragMu.Lock()
	if l.frag != nil { // another fragment arrived meanwhile: keep one only
		l.stats.unjoined.Add(1)
	}
	l.frag, l.fragAt = body, now
	l.fragMu.Unlock()
	l.log.Debug("telemetry body kept as fragment", "bytes", len(body), "replaced", prev != nil)
	return http.StatusAccepted
}

// dropFragment discards a pending fragment, counting it as unjoined.
func (l *Listener) dropFragment() {
	l.fragMu.Lock()
	had := l.frag != nil
	l.frag = nil
	l.fragMu.Unlock()
	if had {
		l.stats.unjoined.Add(1)
		l.log.Debug("telemetry fragment dropped: a complete batch arrived instead")
	}
}

func (l *Listener) deliver(events []Event, st BatchStats, joined bool) {
	c := &l.stats
	c.batches.Add(1)
	c.events.Add(uint64(len(events)))
	c.bad.Add(uint64(st.Bad))
	c.unknown.Add(uint64(st.Unknown))
	if len(events) > 0 {
		l.sink.Enqueue(events)
	}
	// Only odd batches are logged: a line per batch would itself become an
	// "extension" event and feed a loop.
	if st.Bad > 0 || st.Unknown > 0 || joined {
		l.log.Debug("telemetry batch", "events", st.Events, "bad", st.Bad, "unknown", st.Unknown, "joined", joined)
	}
}
