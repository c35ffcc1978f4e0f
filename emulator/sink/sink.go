package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
)

// Signal is an OTLP signal, named as in its URL path (/v1/<signal>).
type Signal string

// The three OTLP signals.
const (
	SignalTraces  Signal = "traces"
	SignalMetrics Signal = "metrics"
	SignalLogs    Signal = "logs"
)

// Path returns the signal's default OTLP/HTTP path, e.g. "/v1/traces".
func (g Signal) Path() string { return "/v1/" + string(g) }

// DefaultMaxBodyBytes bounds a request body, before and after decompression, when
// Options.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 64 << 20

// Options configure a Sink. The zero value is usable.
type Options struct {
	// Logger receives start, stop and bad-request lines; nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body, compressed and decompressed (413 above it).
	// 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Now is the clock for Fault.For; nil means time.Now.
	Now func() time.Time
	// Faults are injected before the first request, as by InjectFault.
	Faults []Fault
}

// RequestCount counts the requests received for one signal.
type RequestCount struct {
	Received int // every POST to the signal's path
	Accepted int // decoded, stored and answered 200
	Faulted  int // answered (or hung up) by an injected fault
	Rejected int // answered 400, 413 or 415
	Held     int // currently held by a fault's Delay or Stall
}

// Sink is an OTLP/HTTP receiver that keeps everything it receives. Create it with New.
type Sink struct {
	log     *slog.Logger
	maxBody int64
	now     func() time.Time
	handler http.Handler

	// closing is closed by Close: held requests are released and answered 503.
	closing   chan struct{}
	closeOnce sync.Once

	// mu guards srv, served, endpoint, faults, data, requests and changed.
	mu       sync.Mutex
	srv      *http.Server
	served   chan error // receives Serve's result; nil before Start
	endpoint string
	faults   []*activeFault
	data     Snapshot
	requests map[Signal]RequestCount
	// changed is closed and replaced on every change of data or requests.
	changed chan struct{}
}

// New returns a Sink that is not yet listening; use Start, or serve Handler yourself.
func New(opts Options) *Sink {
	s := &Sink{
		log:      opts.Logger,
		maxBody:  opts.MaxBodyBytes,
		now:      opts.Now,
		closing:  make(chan struct{}),
		requests: make(map[Signal]RequestCount),
		changed:  make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	mux := http.NewServeMux()
	for _, sig := range []Signal{SignalTraces, SignalMetrics, SignalLogs} {
		mux.HandleFunc("POST "+sig.Path(), func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, sig) })
	}
	s.handler = mux
	for _, f := range opts.Faults {
		s.InjectFault(f)
	}
	return s
}

// Handler returns the sink's HTTP handler, for use with httptest.NewServer or another server.
func (s *Sink) Handler() http.Handler { return s.handler }

// Start listens on addr ("" means 127.0.0.1:0, an ephemeral loopback port) and serves in the
// background until Close. It returns the base endpoint, e.g. "http://127.0.0.1:43117", suitable
// for OTEL_EXPORTER_OTLP_ENDPOINT; URL gives a signal's full URL.
func (s *Sink) Start(addr string) (endpoint string, err error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New("sink: start: already started")
	}
	select {
	case <-s.closing:
		return "", errors.New("sink: start: closed")
	default:
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sink: start: %w", err)
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.served = make(chan error, 1)
	s.endpoint = "http://" + ln.Addr().String()
	go func(srv *http.Server, done chan<- error) {
		done <- srv.Serve(ln)
	}(s.srv, s.served)
	s.log.Info("sink listening", "endpoint", s.endpoint)
	return s.endpoint, nil
}

// Endpoint returns the base endpoint returned by Start, or "" before Start.
func (s *Sink) Endpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endpoint
}

// URL returns the full URL of a signal's path, e.g. "http://127.0.0.1:43117/v1/traces",
// as otlptracehttp.WithEndpointURL expects it.
func (s *Sink) URL(sig Signal) string { return s.Endpoint() + sig.Path() }

// Close releases held requests (answering them 503), stops accepting, and waits for in-flight
// requests and the serving goroutine until ctx ends. Stored data stays readable.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.mu.Lock()
	srv, served := s.srv, s.served
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	var errs []error
	if err := srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("sink: close: %w", err))
		errs = append(errs, srv.Close())
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("sink: serve: %w", err))
	}
	s.log.Info("sink closed")
	return errors.Join(errs...)
}

// Snapshot returns an immutable copy of everything received so far.
func (s *Sink) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

func (s *Sink) snapshotLocked() *Snapshot {
	d := s.data
	snap := &Snapshot{
		traces:   d.traces[:len(d.traces):len(d.traces)],
		metrics:  d.metrics[:len(d.metrics):len(d.metrics)],
		logs:     d.logs[:len(d.logs):len(d.logs)],
		spans:    d.spans[:len(d.spans):len(d.spans)],
		records:  d.records[:len(d.records):len(d.records)],
		points:   d.points[:len(d.points):len(d.points)],
		arrivals: d.arrivals[:len(d.arrivals):len(d.arrivals)],
		requests: make(map[Signal]RequestCount, len(s.requests)),
	}
	for k, v := range s.requests {
		snap.requests[k] = v
	}
	return snap
}

// WaitFor blocks until cond holds for the data received so far, or ctx ends. cond is called
// once at once and again after every change (a request received, stored, faulted or rejected),
// on the calling goroutine. On ctx's end, the error wraps ctx.Err() and summarizes what arrived.
func (s *Sink) WaitFor(ctx context.Context, cond func(*Snapshot) bool) error {
	for {
		s.mu.Lock()
		snap, changed := s.snapshotLocked(), s.changed
		s.mu.Unlock()
		if cond(snap) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("sink: wait: %w (received %s)", ctx.Err(), snap.summary())
		}
	}
}

// Reset forgets everything received and every request count. Faults stay.
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := make(map[Signal]RequestCount)
	for k, v := range s.requests {
		if v.Held > 0 {
			held[k] = RequestCount{Held: v.Held}
		}
	}
	s.data = Snapshot{}
	s.requests = held
	s.notifyLocked()
}

// notifyLocked wakes every WaitFor. s.mu must be held.
func (s *Sink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// arrive records a request's arrival, counts it as received and wakes waiters.
func (s *Sink) arrive(sig Signal, r *http.Request) {
	a := Arrival{Signal: sig, Time: s.now(), Header: r.Header.Clone()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.arrivals = append(s.data.arrivals, a)
	c := s.requests[sig]
	c.Received++
	s.requests[sig] = c
	s.notifyLocked()
}

// count applies f to the signal's request count and wakes waiters.
func (s *Sink) count(sig Signal, f func(*RequestCount)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.requests[sig]
	f(&c)
	s.requests[sig] = c
	s.notifyLocked()
}

// The convenience accessors below read a fresh Snapshot.

// Traces returns every trace export received, in arrival order.
func (s *Sink) Traces() []ptrace.Traces { return s.Snapshot().Traces() }

// MetricsData returns every metric export received, in arrival order.
func (s *Sink) MetricsData() []pmetric.Metrics { return s.Snapshot().MetricsData() }

// LogsData returns every log export received, in arrival order.
func (s *Sink) LogsData() []plog.Logs { return s.Snapshot().LogsData() }

// Spans returns every span received, flattened, in arrival order.
func (s *Sink) Spans() []SpanView { return s.Snapshot().Spans() }

// Logs returns every log record received, flattened, in arrival order.
func (s *Sink) Logs() []LogView { return s.Snapshot().Logs() }

// Metrics returns every data point received, by metric name, in arrival order.
func (s *Sink) Metrics() map[string][]MetricPoint { return s.Snapshot().Metrics() }

// Sum is Snapshot.Sum on a fresh Snapshot.
func (s *Sink) Sum(name string, attrs ...attribute.KeyValue) float64 {
	return s.Snapshot().Sum(name, attrs...)
}

// Count is Snapshot.Count on a fresh Snapshot.
func (s *Sink) Count(name string, attrs ...attribute.KeyValue) uint64 {
	return s.Snapshot().Count(name, attrs...)
}

// Requests returns the request counts per signal.
func (s *Sink) Requests() map[Signal]RequestCount { return s.Snapshot().Requests() }

// Invocations returns one row per invocation span, as Table prints them.
func (s *Sink) Invocations() []Invocation { return s.Snapshot().Invocations() }

// Table prints one row per invocation span and a footer with totals (see Snapshot.Table).
func (s *Sink) Table(w io.Writer) error { return s.Snapshot().Table(w) }
