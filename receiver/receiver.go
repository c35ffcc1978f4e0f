package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// Default bounds of the servers.
const (
	// DefaultMaxBodyBytes bounds a request after decompression: gRPC's
	// default largest message, far above an SDK's batch of 512 spans.
	DefaultMaxBodyBytes = 4 << 20
	// DefaultMaxConcurrent bounds the requests handled at once, per protocol.
	DefaultMaxConcurrent = 8
	maxHeaderBytes       = 32 << 10
	readHeaderTimeout    = 2 * time.Second
	readTimeout          = 5 * time.Second
	writeTimeout         = 5 * time.Second
	idleTimeout          = 30 * time.Second
)

// Signal names an OTLP signal.
type Signal string

// The signals the receiver takes.
const (
	Traces  Signal = "traces"
	Metrics Signal = "metrics"
	Logs    Signal = "logs"
)

// Result is the Sink's answer to one request: how many of its items it
// did not take (all or nothing), and why.
type Result struct {
	Rejected int64
	Message  string
}

// Sink takes what the receiver decoded: the exporter's queue. Each call
// must return at once (it does not wait for the export) and may keep the
// request. The receiver calls it from many goroutines.
type Sink interface {
	ExportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) Result
	ExportMetrics(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) Result
	ExportLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) Result
}

// Config configures a Receiver. An empty address switches that protocol off.
type Config struct {
	HTTPAddr string // host:port of OTLP/HTTP, such as 127.0.0.1:4318
	GRPCAddr string // host:port of OTLP/gRPC, such as 127.0.0.1:4317
	// MaxBodyBytes bounds a request body after decompression (default
	// DefaultMaxBodyBytes); a larger one is answered 413 (gRPC:
	// ResourceExhausted).
	MaxBodyBytes int64
	// MaxConcurrent bounds the requests handled at once per protocol
	// (default DefaultMaxConcurrent); more wait for a slot.
	MaxConcurrent int
	// ReadTimeout bounds the reading of one request, headers and body
	// (default 5s): a body dripped slowly is cut off.
	ReadTimeout time.Duration
	Logger      *slog.Logger
}

// Stats are the receiver's counters since New.
type Stats struct {
	Requests  uint64 // requests decoded and handed to the sink
	Rejected  uint64 // requests the sink did not take (answered with partial_success)
	Bad       uint64 // requests answered 4xx (or a gRPC error): malformed, too large, wrong type
	Oversized uint64 // bodies over MaxBodyBytes after decompression (also in Bad)
}

type counters struct {
	requests, rejected, bad, oversized atomic.Uint64
}

// Receiver serves OTLP on the loopback interface. Create it with New, then
// Listen, Serve and Close.
type Receiver struct {
	cfg  Config
	sink Sink
	log  *slog.Logger
	st   counters

	// httpSem and grpcSem bound the requests in progress.
	httpSem, grpcSem chan struct{}

	// mu guards httpLn, grpcLn, httpSrv, grpcSrv, closed.
	mu      sync.Mutex
	httpLn  net.Listener
	grpcLn  net.Listener
	httpSrv *http.Server
	grpcSrv *grpc.Server
	closed  bool
	wg      sync.WaitGroup // the serving goroutines
}

// New returns a Receiver; Serve gives it its sink.
func New(cfg Config) *Receiver {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = readTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Receiver{cfg: cfg, log: cfg.Logger,
		httpSem: make(chan struct{}, cfg.MaxConcurrent), grpcSem: make(chan struct{}, cfg.MaxConcurrent)}
}

// Listen binds the configured sockets. A socket that cannot be bound (the
// port is taken, say by another extension's collector) is left out: its
// error is returned and the other protocol is still served.
func (r *Receiver) Listen() (httpErr, grpcErr error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("receiver closed"), errors.New("receiver closed")
	}
	if r.cfg.HTTPAddr != "" && r.httpLn == nil {
		r.httpLn, httpErr = net.Listen("tcp", r.cfg.HTTPAddr)
		if httpErr != nil {
			httpErr = fmt.Errorf("OTLP/HTTP receiver: %w", httpErr)
		}
	}
	if r.cfg.GRPCAddr != "" && r.grpcLn == nil {
		r.grpcLn, grpcErr = net.Listen("tcp", r.cfg.GRPCAddr)
		if grpcErr != nil {
			grpcErr = fmt.Errorf("OTLP/gRPC receiver: %w", grpcErr)
		}
	}
	return httpErr, grpcErr
}

// HTTPAddr is the bound OTLP/HTTP address ("" when not bound).
func (r *Receiver) HTTPAddr() string { return addrOf(&r.mu, &r.httpLn) }

// GRPCAddr is the bound OTLP/gRPC address ("" when not bound).
func (r *Receiver) GRPCAddr() string { return addrOf(&r.mu, &r.grpcLn) }

func addrOf(mu *sync.Mutex, ln *net.Listener) string {
	mu.Lock()
	defer mu.Unlock()
	if *ln == nil {
		return ""
	}
	return (*ln).Addr().String()
}

// Serve serves the bound sockets in the background until Close, handing
// each request to sink. It may be called once.
func (r *Receiver) Serve(sink Sink) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.sink != nil {
		return
	}
	r.sink = sink
	if r.httpLn != nil && r.httpSrv == nil {
		r.httpSrv = r.newHTTPServer()
		srv, ln := r.httpSrv, r.httpLn
		r.wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Warn("OTLP/HTTP receiver stopped", "error", err.Error())
			}
		})
	}
	if r.grpcLn != nil && r.grpcSrv == nil {
		r.grpcSrv = r.newGRPCServer()
		srv, ln := r.grpcSrv, r.grpcLn
		r.wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				r.log.Warn("OTLP/gRPC receiver stopped", "error", err.Error())
			}
		})
	}
}

// Close stops accepting, lets the requests in progress finish until ctx
// ends (then cuts them), and waits for the serving goroutines.
func (r *Receiver) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	hs, gs := r.httpSrv, r.grpcSrv
	lns := []net.Listener{}
	if hs == nil && r.httpLn != nil {
		lns = append(lns, r.httpLn)
	}
	if gs == nil && r.grpcLn != nil {
		lns = append(lns, r.grpcLn)
	}
	r.mu.Unlock()
	var errs []error
	for _, ln := range lns {
		errs = append(errs, ln.Close()) // bound, never served
	}
	if hs != nil {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close OTLP/HTTP receiver: %w", err), hs.Close())
		}
	}
	if gs != nil {
		done := make(chan struct{})
		go func() {
			gs.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			gs.Stop()
			<-done
			errs = append(errs, fmt.Errorf("close OTLP/gRPC receiver: %w", ctx.Err()))
		}
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// Stats returns the counters.
func (r *Receiver) Stats() Stats {
	return Stats{Requests: r.st.requests.Load(), Rejected: r.st.rejected.Load(),
		Bad: r.st.bad.Load(), Oversized: r.st.oversized.Load()}
}

// acquire takes a slot of sem, or gives up when ctx ends.
func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// fullMessage is the partial_success error_message of a request the
// sink did not take for lack of room, when it gave none.
const fullMessage = "Slipstream's export buffer is full (SLIPSTREAM_BUFFER_MAX_BYTES): data dropped"
