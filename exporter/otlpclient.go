package exporter

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/receiver"
)

// Slipstream's own OTLP client for the function's data: the OpenTelemetry
// SDK exporters take SDK types, not the OTLP messages the receiver decodes.

// fnClients send the function's data: per lane an encoder's output and a
// send function, over HTTP (protobuf, or JSON for http/json traces) or
// gRPC, as the signal's configuration says.
type fnClients struct {
	json    [3]bool
	send    [3]func(ctx context.Context, body []byte) error
	timeout [3]time.Duration
	conns   []*grpc.ClientConn
}

// encode encodes a request for lane sig's protocol.
func (c *fnClients) encode(sig signal, msg proto.Message) ([]byte, error) {
	if c.json[fnLane(sig)] {
		return receiver.MarshalJSON(msg)
	}
	return proto.Marshal(msg)
}

func (c *fnClients) close() error {
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// newFnClients builds the clients from the configuration, with the
// transports the SDK exporters get (base replaces them in tests); the HTTP
// transports join exp.idle (closed after a failure).
func newFnClients(o config.OTLP, base http.RoundTripper, exp *exporters) (*fnClients, error) {
	c := &fnClients{}
	z := &gzipper{}
	for l, sig := range fnSignals {
		s := o.Traces
		path := "/v1/traces"
		switch sig {
		case sigLogs:
			s, path = o.Logs, "/v1/logs"
		case sigMetrics:
			s, path = o.Metrics, "/v1/metrics"
		}
		c.timeout[l] = timeoutOf(s)
		proto := s.Protocol
		if proto == "" {
			proto = o.Protocol
		}
		if !s.Enabled() {
			c.send[l] = func(context.Context, []byte) error { return errors.New("signal not exported") }
			continue
		}
		if proto == protoGRPC {
			send, cc, err := grpcFnSender(s, sig, exp.grpcOptions(o, s)...)
			if err != nil {
				return nil, fmt.Errorf("function %s client: %w", sig, err)
			}
			c.send[l] = send
			c.conns = append(c.conns, cc)
			continue
		}
		rt := base
		if rt == nil {
			t, err := httpTransport(s)
			if err != nil {
				return nil, fmt.Errorf("function %s client: %w", sig, err)
			}
			t.Proxy = proxyFor(o, nil) // SLIPSTREAM_HTTPS_PROXY (proxy.go)
			rt = t
		}
		if ci, ok := rt.(interface{ CloseIdleConnections() }); ok {
			exp.idle = append(exp.idle, ci)
		}
		t := exp.signed(s, observingTransport{base: rt}) // secure.go
		if s.Compression == "" || s.Compression == "gzip" {
			t = &gzipTransport{base: t, z: z}
		}
		t = exp.withSecrets(s, t)
		ct := "application/x-protobuf"
		if proto == protoHTTPJSON && sig == sigTraces {
			c.json[l] = true
			ct = "application/json"
		}
		c.send[l] = httpFnSender(&http.Client{Transport: t}, endpointOr(s, protoHTTPProtobuf, path), s.Headers, ct)
	}
	return c, nil
}

// httpFnSender POSTs a body; a non-2xx answer is an error (the status is
// classified from the attempt the observing transport fills in).
func httpFnSender(hc *http.Client, endpoint string, headers map[string]string, ct string) func(context.Context, []byte) error {
	return func(ctx context.Context, body []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return err
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("Content-Type", ct)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		// Read (a bounded part of) the answer so the connection is reused.
		_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("OTLP export of function data: HTTP %d", resp.StatusCode)
		}
		return rerr
	}
}

// grpcFnSender sends over the collector's gRPC stubs on a connection built
// like the gRPC exporters' (plaintext for http:// or _INSECURE, TLS
// otherwise; our observing interceptor; gzip).
func grpcFnSender(s config.Signal, sig signal, extra ...grpc.DialOption) (func(context.Context, []byte) error, *grpc.ClientConn, error) {
	endpoint := endpointOr(s, protoGRPC, "")
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, nil, fmt.Errorf("grpc endpoint %q: not a URL", s.RedactedEndpoint())
	}
	creds := insecure.NewCredentials()
	if u.Scheme == "https" || (u.Scheme != "http" && !s.Insecure) {
		tc, err := tlsConfig(s)
		if err != nil {
			return nil, nil, err
		}
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(tc)
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithUnaryInterceptor(grpcObserver)}, extra...)
	cc, err := grpc.NewClient(u.Host, dial...)
	if err != nil {
		return nil, nil, err
	}
	md := metadata.New(s.Headers)
	var opts []grpc.CallOption
	if s.Compression == "" || s.Compression == "gzip" {
		opts = append(opts, grpc.UseCompressor(gzip.Name))
	}
	// The body was encoded on the worker; decoding it here again gives
	// the stub a message no other goroutine touches.
	send := func(ctx context.Context, body []byte) error {
		ctx = metadata.NewOutgoingContext(ctx, md)
		switch sig {
		case sigTraces:
			req := &coltracepb.ExportTraceServiceRequest{}
			if err := proto.Unmarshal(body, req); err != nil {
				return err
			}
			_, err := coltracepb.NewTraceServiceClient(cc).Export(ctx, req, opts...)
			return err
		case sigLogs:
			req := &collogspb.ExportLogsServiceRequest{}
			if err := proto.Unmarshal(body, req); err != nil {
				return err
			}
			_, err := collogspb.NewLogsServiceClient(cc).Export(ctx, req, opts...)
			return err
		}
		req := &colmetricpb.ExportMetricsServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			return err
		}
		_, err := colmetricpb.NewMetricsServiceClient(cc).Export(ctx, req, opts...)
		return err
	}
	return send, cc, nil
}
