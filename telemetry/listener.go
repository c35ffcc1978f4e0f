package telemetry

import (
	"context"
	"errors"
	"fmt"
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

// DefaultSpoolQuiet is how long POSTs must have paused before a spooled
// body is read back (ListenerConfig.SpoolQuiet).
const DefaultSpoolQuiet = 25 * time.Millisecond

// maxDeferQuiets bounds how long a burst body waits for a pause, in
// SpoolQuiet periods.
const maxDeferQuiets = 10

// bodySlack is the metadata allowance on top of 2 × maxBytes.
const bodySlack = 64 << 10

// Sink receives decoded events: the exporter's bounded intake. Enqueue
// may block for a bounded time (backpressure while the exporter's queue is
// full and a request is in flight) and drops and counts otherwise; the
// bodies that arrive meanwhile go to the spool. The Listener calls it from
// its one decode goroutine, in arrival order, after the POST was answered.
// Enqueue takes ownership of the slice; its context ends when Close gives
// up draining.
type Sink interface {
	Enqueue(ctx context.Context, events []Event)
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
	// HandoffBytes bounds the bodies answered but not yet decoded that
	// are held in memory, in bytes; zero means 2 × the body limit (Lambda
	// has one POST in flight: one body decoding and one queued), or
	// MaxBytes + 64 KiB when the spool is on (a full batch decoding; the
	// rest of a burst waits on disk rather than in the function's memory;
	// a larger body still fits in an empty handoff). When it
	// is reached, a POST goes to the spool (SpoolDir) if it has room, and
	// otherwise waits for room before it is answered (backpressure).
	HandoffBytes int
	// SpoolDir, when set with SpoolBytes > 0, is a directory for bodies
	// that do not fit in the handoff: such a POST is written to a spool
	// file there and answered at once instead of waiting for room.
	SpoolDir string
	// SpoolBytes bounds the bytes in the spool (bodies answered, not yet
	// decoded); beyond it a POST waits for room as without a spool.
	SpoolBytes int64
	// SpoolQuiet: a burst body (spooled, or of at least MaxBytes/4: a
	// batch Lambda flushed because it was full) is decoded only once no
	// POST has arrived for SpoolQuiet, or once it has waited 10 ×
	// SpoolQuiet (zero means DefaultSpoolQuiet; negative, at once). During a flood the listener then only receives
	// (to memory, then to the spool), which leaves the CPU to the function
	// and to Lambda's delivery, whose buffer overflows otherwise.
	SpoolQuiet time.Duration
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
	Waited            uint64 // POSTs that waited for room in the handoff before being answered
	Spooled           uint64 // bodies written to the spool (SpoolDir) and answered without waiting for room
	SpooledBytes      uint64 // bytes of the bodies counted in Spooled
	Abandoned         uint64 // bodies read but never decoded: the request ended while waiting (503) or Close gave up
}

type counters struct {
	batches, events, bad, unknown, bytes, rejected, oversize atomic.Uint64
	kept, joined, unjoined, waited, abandoned                atomic.Uint64
	spooled, spooledBytes                                    atomic.Uint64
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

	// queue hands accepted bodies to the decode goroutine.
	queue *handoff
	// spool holds the bodies that found no room in queue; nil without
	// SpoolDir or SpoolBytes.
	spool *spool
	// abort tells the decode goroutine to discard what is left: Close's
	// context ended.
	abort atomic.Bool
	// frag and fragAt are the one pending body that did not parse and
	// when it arrived; only the decode goroutine touches them.
	frag   []byte
	fragAt time.Time
	// quiet is SpoolQuiet, burst the size from which a body waits for
	// it; lastPost is when the latest POST arrived, as a duration since
	// start (monotonic clock).
	quiet    time.Duration
	burst    int
	start    time.Time
	lastPost atomic.Int64
	// readWarned is set once a spooled body could not be read back; only
	// the decode goroutine touches it.
	readWarned bool

	// waitHook, when set, runs when a POST starts waiting for room (tests).
	waitHook func()

	// closingCh is closed when Close begins (observed by tests).
	closingCh chan struct{}
	// sinkCtx is handed to the sink; sinkCancel ends it when Close gives
	// up draining, so that a sink waiting for room returns.
	sinkCtx    context.Context
	sinkCancel context.CancelFunc
	closeOnce  sync.Once

	// lifeMu guards srv, ln, done, decoded and closed.
	lifeMu  sync.Mutex
	srv     *http.Server
	ln      net.Listener
	done    chan struct{} // closed when the serving goroutine returns
	decoded chan struct{} // closed when the decode goroutine returns
	closed  bool
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
		start:     time.Now(),
	}
	l.sinkCtx, l.sinkCancel = context.WithCancel(context.Background())
	maxBytes := cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = MaxBufferBytes
	}
	l.limit = 2*int64(maxBytes) + bodySlack
	l.burst = maxBytes / 4
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.spool = newSpool(cfg.SpoolDir, cfg.SpoolBytes, l.log)
	bound := int64(cfg.HandoffBytes)
	switch {
	case bound > 0:
	case l.spool != nil:
		bound = int64(maxBytes) + bodySlack
	default:
		bound = 2 * l.limit
	}
	l.queue = newHandoff(bound)
	if l.now == nil {
		l.now = time.Now
	}
	if l.lookup == nil {
		l.lookup = HostsLookup
	}
	if l.ttl <= 0 {
		l.ttl = DefaultFragmentTTL
	}
	if l.quiet = cfg.SpoolQuiet; l.quiet == 0 {
		l.quiet = DefaultSpoolQuiet
	}
	if l.sink == nil {
		l.sink = discardSink{}
	}
	return l
}

type discardSink struct{}

func (discardSink) Enqueue(context.Context, []Event) {}

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
	done, decoded := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(decoded)
		l.decodeLoop()
	}()
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("telemetry listener stopped", "error", err)
		}
	}()
	l.srv, l.ln, l.done, l.decoded = srv, ln, done, decoded
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

// Close stops accepting (http.Server.Shutdown waits for the requests in
// flight), then waits until the decode goroutine has handed every
// accepted body to the sink; a pending fragment is counted as unjoined.
// If ctx ends first, connections are closed, the bodies not yet decoded
// are discarded (counted in Abandoned) and the error is returned; the
// decode goroutine exits once the sink returns. Close may be called more
// than once.
func (l *Listener) Close(ctx context.Context) error {
	l.lifeMu.Lock()
	srv, done, decoded := l.srv, l.done, l.decoded
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
	l.queue.close()
	if decoded == nil && l.spool != nil { // never started: no decode goroutine closes it
		if cerr := l.spool.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close telemetry listener: %w", cerr))
		}
	}
	if decoded != nil {
		select {
		case <-decoded:
		case <-ctx.Done():
			l.abort.Store(true)
			l.sinkCancel()
			select {
			case <-decoded: // it finished meanwhile
			default:
				if err == nil {
					err = fmt.Errorf("close telemetry listener: drain: %w", ctx.Err())
				}
			}
		}
	}
	l.sinkCancel() // the sink is not called any more, or is given up
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
		Waited:            c.waited.Load(),
		Abandoned:         c.abandoned.Load(),
		Spooled:           c.spooled.Load(),
		SpooledBytes:      c.spooledBytes.Load(),
	}
}

// ServeHTTP handles one Telemetry API POST: read, classify, hand over,
// answer. A body that looks like a complete array ('[' … ']') is answered
// 200 as soon as the decode goroutine has it; decoding and Sink.Enqueue
// happen after the answer, so Lambda's one delivery in flight is released
// at once. ServeHTTP waits only for room in the handoff, and only when the
// spool (SpoolDir) is off, full or failing: a body that does not fit in
// memory is written there and answered at once.
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
	at := l.now()
	recv := time.Since(l.start) // monotonic, as awaitQuiet's timer
	l.lastPost.Store(int64(recv))

	status := http.StatusOK
	switch classify(body) {
	case bodyNotArray:
		// Refused; the decode goroutine still learns of it, in order, so
		// that a pending fragment is dropped as before. The push fails
		// only once the listener is closed, when no fragment can follow.
		l.queue.push(item{at: at, refused: true}, 0)
		l.reject(w, http.StatusBadRequest, "not a JSON array")
		return
	case bodyFragment:
		status = http.StatusAccepted
	}
	if !l.handOver(r.Context(), item{body: body, at: at, recv: recv}) {
		l.stats.abandoned.Add(1)
		l.log.Debug("telemetry body abandoned", "status", http.StatusServiceUnavailable, "bytes", len(body))
		http.Error(w, "listener closing or busy", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(status)
}

// handOver queues it for the decode goroutine. When the handoff is full,
// the body goes to the spool if it has room, and otherwise handOver waits
// (bounded by ctx) for room in the handoff. It reports false when ctx
// ended or the listener is closed.
func (l *Listener) handOver(ctx context.Context, it item) bool {
	weight := min(max(int64(len(it.body)), 1), l.queue.bound)
	if !l.queue.room.TryAcquire(weight) {
		if l.spool != nil {
			if written, pushed := l.spool.write(it.body, l.pushSpooled(it)); written {
				return pushed
			}
		}
		l.stats.waited.Add(1)
		if l.waitHook != nil {
			l.waitHook()
		}
		if l.queue.room.Acquire(ctx, weight) != nil {
			return false
		}
	}
	if !l.queue.push(it, weight) {
		l.queue.room.Release(weight)
		return false
	}
	return true
}

// pushSpooled returns the function that queues it once its body is
// written to the spool at off in seg, as an item that takes no room in the
// handoff and no longer holds the body. The spool calls it under its lock,
// so that the queue's order is the order of the writes.
func (l *Listener) pushSpooled(it item) func(seg *spoolSeg, off int64) bool {
	return func(seg *spoolSeg, off int64) bool {
		size := int64(len(it.body))
		it.body, it.spooled, it.seg, it.off, it.size = nil, true, seg, off, size
		if !l.queue.push(it, 0) {
			return false
		}
		l.stats.spooled.Add(1)
		l.stats.spooledBytes.Add(uint64(size))
		return true
	}
}

func (l *Listener) reject(w http.ResponseWriter, code int, msg string) {
	l.stats.rejected.Add(1)
	l.log.Debug("telemetry body rejected", "status", code, "reason", msg)
	http.Error(w, msg, code)
}

// decodeLoop is the decode goroutine: it decodes the handed-over bodies in
// arrival order, reading spooled ones back, and hands their events to the
// sink, until the handoff is closed and empty. Then it closes the spool.
func (l *Listener) decodeLoop() {
	for {
		it, ok := l.queue.pop()
		if !ok {
			break
		}
		switch {
		case l.abort.Load():
			if it.spooled {
				l.spool.release(it.seg, it.size)
			}
			if !it.refused {
				l.stats.abandoned.Add(1)
			}
		case (it.spooled || len(it.body) >= l.burst) && !l.awaitQuiet(it.recv):
			if it.spooled {
				l.spool.release(it.seg, it.size)
			}
			l.stats.abandoned.Add(1)
		case it.spooled && !l.readBack(&it):
			l.stats.abandoned.Add(1)
		default:
			l.process(it)
		}
		if it.weight > 0 {
			l.queue.room.Release(it.weight)
		}
	}
	if l.frag != nil {
		l.frag = nil
		l.stats.unjoined.Add(1)
	}
	if l.spool != nil {
		if err := l.spool.close(); err != nil {
			l.log.Debug("telemetry spool not closed cleanly", "error", err)
		}
	}
}

// awaitQuiet waits until no POST has arrived for l.quiet, or until the
// body received at recv has waited maxDeferQuiets × l.quiet: a function
// that logs heavily without pause still has its batches decoded, only
// later (a flood pauses well within that). It reports false
// when Close gave up on what is left meanwhile; Close itself ends the wait.
func (l *Listener) awaitQuiet(recv time.Duration) bool {
	var t *time.Timer
	for {
		if l.abort.Load() {
			return false
		}
		now := time.Since(l.start)
		wait := l.quiet - (now - time.Duration(l.lastPost.Load()))
		if wait <= 0 || now-recv >= maxDeferQuiets*l.quiet {
			return true
		}
		wait = min(wait, recv+maxDeferQuiets*l.quiet-now)
		if t == nil {
			t = time.NewTimer(wait)
			defer t.Stop()
		} else {
			t.Reset(wait)
		}
		select {
		case <-t.C:
		case <-l.closingCh:
			return !l.abort.Load()
		}
	}
}

// readBack loads the spooled body of it into it.body and gives its bytes
// back to the spool before the body is decoded, as the sink may block. It
// reports false, with one warning per listener, when the body cannot be
// read.
func (l *Listener) readBack(it *item) bool {
	body, err := l.spool.read(it.seg, it.off, it.size)
	l.spool.release(it.seg, it.size)
	if err != nil {
		if !l.readWarned {
			l.readWarned = true
			l.log.Warn("telemetry body lost: cannot read it back from the spool", "bytes", it.size, "error", err)
		}
		return false
	}
	it.body = body
	return true
}

// process handles one item, containing a panic of the sink or the decoder
// as net/http did when decoding ran in the handler.
func (l *Listener) process(it item) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("telemetry batch lost: panic while decoding or enqueueing", "panic", fmt.Sprint(r))
		}
	}()
	if it.refused {
		l.dropFragment()
		return
	}
	l.accept(it.body, it.at)
}

// accept decodes body, received at at, joining it with a pending fragment
// when it does not parse on its own. It runs on the decode goroutine.
func (l *Listener) accept(body []byte, at time.Time) {
	events, st, err := DecodeBatch(body)
	if err == nil {
		l.dropFragment()
		l.deliver(events, st, false)
		return
	}

	// Not JSON: maybe one half of a record split across two POSTs.
	prev, prevAt := l.frag, l.fragAt
	l.frag = nil
	if prev != nil {
		if at.Sub(prevAt) <= l.ttl {
			joined := make([]byte, 0, len(prev)+len(body))
			joined = append(append(joined, prev...), body...)
			if events, st, err := DecodeBatch(joined); err == nil {
				l.stats.joined.Add(1)
				l.deliver(events, st, true)
				return
			}
		}
		l.stats.unjoined.Add(1)
	}
	l.stats.kept.Add(1)
	l.frag, l.fragAt = body, at
	l.log.Debug("telemetry body kept as fragment", "bytes", len(body), "replaced", prev != nil)
}

// dropFragment discards a pending fragment, counting it as unjoined.
func (l *Listener) dropFragment() {
	if l.frag == nil {
		return
	}
	l.frag = nil
	l.stats.unjoined.Add(1)
	l.log.Debug("telemetry fragment dropped: a complete batch arrived instead")
}

func (l *Listener) deliver(events []Event, st BatchStats, joined bool) {
	c := &l.stats
	c.batches.Add(1)
	c.events.Add(uint64(len(events)))
	c.bad.Add(uint64(st.Bad))
	c.unknown.Add(uint64(st.Unknown))
	if len(events) > 0 {
		l.sink.Enqueue(l.sinkCtx, events)
	}
	// Only odd batches are logged: a line per batch would itself become an
	// "extension" event and feed a loop.
	if st.Bad > 0 || st.Unknown > 0 || joined {
		l.log.Debug("telemetry batch", "events", st.Events, "bad", st.Bad, "unknown", st.Unknown, "joined", joined)
	}
}
