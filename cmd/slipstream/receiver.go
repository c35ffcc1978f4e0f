package main

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/receiver"
)

// receiverHost is the only interface the receiver listens on: the
// function runs in the same environment.
const receiverHost = "127.0.0.1"

// otlpAcceptor is the exporter's intake of the function's own OTLP data
// (*exporter.Pipeline has it; a pipe without it gets no receiver).
type otlpAcceptor interface {
	AcceptOTLP(msg proto.Message) (rejected int64, reason string)
}

// bindReceiver binds the local OTLP receiver's sockets, before the
// extension registers: registering lets Lambda start the runtime, whose
// init may already export. A port already taken (another extension's
// collector) is one WARN line, and the agent goes on without that
// receiver. It returns nil when no socket is bound.
func bindReceiver(cfg *config.Config, log *slog.Logger) *receiver.Receiver {
	if !cfg.ExportEnabled || (cfg.ReceiverHTTPPort == 0 && cfg.ReceiverGRPCPort == 0) {
		return nil
	}
	rc := receiver.Config{Logger: log}
	if cfg.ReceiverHTTPPort != 0 {
		rc.HTTPAddr = net.JoinHostPort(receiverHost, strconv.Itoa(cfg.ReceiverHTTPPort))
	}
	if cfg.ReceiverGRPCPort != 0 {
		rc.GRPCAddr = net.JoinHostPort(receiverHost, strconv.Itoa(cfg.ReceiverGRPCPort))
	}
	r := receiver.New(rc)
	herr, gerr := r.Listen()
	if herr != nil {
		log.Warn("OTLP/HTTP receiver not started: its port is taken (set SLIPSTREAM_RECEIVER_HTTP_PORT to another port or off)",
			"port", cfg.ReceiverHTTPPort, "error", herr.Error())
	}
	if gerr != nil {
		log.Warn("OTLP/gRPC receiver not started: its port is taken (set SLIPSTREAM_RECEIVER_GRPC_PORT to another port or off)",
			"port", cfg.ReceiverGRPCPort, "error", gerr.Error())
	}
	if r.HTTPAddr() == "" && r.GRPCAddr() == "" {
		return nil
	}
	return r
}

// functionSink is the receiver's sink: the exporter's AcceptOTLP, with
// the exporter's panics contained like every other call into it.
type functionSink struct {
	a   *agent
	acc otlpAcceptor
}

func (s functionSink) accept(msg proto.Message) receiver.Result {
	off := receiver.Result{Rejected: receiver.Items(msg), Message: "Slipstream's export is switched off: data dropped"}
	if s.a.off.Load() {
		return off
	}
	var res receiver.Result
	func() {
		defer s.a.contain("receive")
		res.Rejected, res.Message = s.acc.AcceptOTLP(msg)
	}()
	if s.a.off.Load() && res.Rejected == 0 {
		return off // the exporter panicked on this request
	}
	return res
}

func (s functionSink) ExportTraces(_ context.Context, req *coltracepb.ExportTraceServiceRequest) receiver.Result {
	return s.accept(req)
}

func (s functionSink) ExportMetrics(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) receiver.Result {
	return s.accept(req)
}

func (s functionSink) ExportLogs(_ context.Context, req *collogspb.ExportLogsServiceRequest) receiver.Result {
	return s.accept(req)
}

// closeReceiverAt closes the receiver when the SHUTDOWN plan's Drain
// phase ends (or ctx does), letting the requests in progress finish until
// flush. It returns a channel closed once the receiver is closed.
func (a *agent) closeReceiverAt(ctx context.Context, drain, flush time.Time) <-chan struct{} {
	done := make(chan struct{})
	if a.recv == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		t := time.NewTimer(time.Until(drain))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), flush)
		defer cancel()
		a.closeReceiver(cctx)
	}()
	return done
}

// closeReceiver closes the receiver (once) and logs its counters.
func (a *agent) closeReceiver(ctx context.Context) {
	if a.recv == nil {
		return
	}
	a.recvOnce.Do(func() {
		if err := a.recv.Close(ctx); err != nil {
			a.log.Warn("close OTLP receiver", "error", err.Error())
		}
		st := a.recv.Stats()
		level := slog.LevelDebug
		if st.Rejected > 0 || st.Bad > 0 {
			level = slog.LevelWarn
		}
		a.log.Log(context.Background(), level, "OTLP receiver summary",
			"requests", st.Requests, "rejected", st.Rejected, "bad", st.Bad, "oversized", st.Oversized)
	})
}

// closeUnserved releases the sockets of a receiver that never served.
func closeUnserved(r *receiver.Receiver) {
	if r != nil {
		r.Close(context.Background()) //nolint:errcheck // closing listeners only: nothing to report
	}
}
