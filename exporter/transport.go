package exporter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/internal/awsauth"
	"github.com/slipstream-otel/slipstream/secrets"
)

// Protocols accepted in config.Signal.Protocol.
const (
	protoHTTPProtobuf = "http/protobuf"
	protoHTTPJSON     = "http/json"
	protoGRPC         = "grpc"
)

// grpcNoTimeout disables the gRPC exporters' own wall-clock export timeout:
// attempts are bounded by awake time instead (see awakeContext).
const grpcNoTimeout = 24 * time.Hour

// exporters holds the three OTLP exporters and the HTTP transports we own.
type exporters struct {
	traces  sdktrace.SpanExporter
	logs    sdklog.Exporter
	metrics sdkmetric.Exporter
	// timeouts per signal: the awake time an attempt is given.
	tracesTimeout, logsTimeout, metricsTimeout time.Duration
	// creds are the function's AWS credentials, for SigV4 (sigv4.go).
	creds *awsauth.Credentials
	// secrets resolves the secret references in the headers (nil when
	// there is none); started by the pipeline after the first INVOKE.
	secrets *secrets.Resolver
	// idle lists what CloseIdleConnections is called on after a failure,
	// so that a retry uses a fresh connection.
	idle []interface{ CloseIdleConnections() }
	// endpoints names each signal's backend for the log (by flight
	// index): scheme and host only, see endpointName.
	endpoints [3]string
}

// endpoint names the backend of sig for the log.
func (e *exporters) endpoint(sig signal) string { return e.endpoints[flightIndex(sig)] }

// endpointName is what the log says of an endpoint: its scheme and host
// (with port), never its path, query or user info, which may carry
// credentials. A gRPC endpoint given without a scheme stays host:port.
func endpointName(raw string) string {
	if !strings.Contains(raw, "://") {
		host, _, _ := strings.Cut(raw, "/")
		if _, h, ok := strings.Cut(host, "@"); ok {
			host = h
		}
		return host
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable endpoint)"
	}
	return u.Scheme + "://" + u.Host
}

func (e *exporters) closeIdle() {
	for _, t := range e.idle {
		t.CloseIdleConnections()
	}
}

func (e *exporters) shutdown(ctx context.Context) error {
	e.secrets.Stop()
	var errs []error
	if e.traces != nil {
		errs = append(errs, e.traces.Shutdown(ctx))
	}
	if e.logs != nil {
		errs = append(errs, e.logs.Shutdown(ctx))
	}
	if e.metrics != nil {
		errs = append(errs, e.metrics.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// defaultEndpoint is used when the configuration left a signal's endpoint
// empty (Load normally fills it in).
func defaultEndpoint(protocol, path string) string {
	if protocol == protoGRPC {
		return "http://localhost:4317"
	}
	return "http://localhost:4318" + path
}

func timeoutOf(s config.Signal) time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 10 * time.Second
}

// tlsConfig builds the TLS settings of one signal from its certificate
// files. It returns nil when none is set.
func tlsConfig(s config.Signal) (*tls.Config, error) {
	if s.Certificate == "" && s.ClientCertificate == "" && s.ClientKey == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.Certificate != "" {
		pem, err := os.ReadFile(s.Certificate)
		if err != nil {
			return nil, fmt.Errorf("read certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("certificate %s: no PEM certificate found", s.Certificate)
		}
		c.RootCAs = pool
	}
	if s.ClientCertificate != "" || s.ClientKey != "" {
		cert, err := tls.LoadX509KeyPair(s.ClientCertificate, s.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// httpTransport is our own transport for one signal: TLS, proxy and dial
// timeouts live here because WithHTTPClient makes the exporter ignore
// WithTLSClientConfig, WithTimeout and WithProxy. There is deliberately no
// http.Client.Timeout: attempts are bounded by awake time (awakeContext),
// which a freeze does not consume.
func httpTransport(s config.Signal) (*http.Transport, error) {
	tc, err := tlsConfig(s)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: timeoutOf(s), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeoutOf(s),
		ExpectContinueTimeout: time.Second,
	}, nil
}

// newExporters builds the exporters from cfg.OTLP only, with explicit
// options (explicit options win over the OTEL_EXPORTER_OTLP_* variables the
// exporters would otherwise read by themselves). base, when not nil,
// replaces our transports (tests, or a caller that manages TLS itself).
func newExporters(ctx context.Context, o config.OTLP, base http.RoundTripper, env ...exporterEnv) (*exporters, error) {
	e := &exporters{
		tracesTimeout:  timeoutOf(o.Traces),
		logsTimeout:    timeoutOf(o.Logs),
		metricsTimeout: timeoutOf(o.Metrics),
	}
	// One compressor for the three HTTP exporters (see gzipTransport).
	z := &gzipper{}
	// The function's AWS credentials, for SLIPSTREAM_OTLP_AUTH=sigv4 (sigv4.go).
	creds := awsauth.NewCredentials(os.Getenv, time.Now)
	e.creds = creds
	// Secret references in SLIPSTREAM_* headers (secretheaders.go).
	var xenv exporterEnv
	if len(env) > 0 {
		xenv = env[0]
	}
	e.secrets = newResolver(o, creds, xenv)
	client := func(s config.Signal) (*http.Client, error) {
		rt := base
		if rt == nil {
			t, err := httpTransport(s)
			if err != nil {
				return nil, err
			}
			t.Proxy = proxyFor(o, nil) // SLIPSTREAM_HTTPS_PROXY (proxy.go)
			rt = t
		}
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			e.idle = append(e.idle, c)
		}
		t := e.signed(s, observingTransport{base: rt}) // secure.go
		if s.Compression == "" || s.Compression == "gzip" {
			t = &gzipTransport{base: t, z: z}
		}
		t = e.withSecrets(s, t)
		return &http.Client{Transport: t}, nil
	}
	// grpcPlaintext: an http:// endpoint or _INSECURE=true means no TLS
	// (the specification applies INSECURE only to endpoints without a
	// scheme; an explicit https:// always uses TLS).
	grpcPlaintext := func(s config.Signal, endpoint string) bool {
		e := strings.ToLower(endpoint)
		switch {
		case strings.HasPrefix(e, "https://"):
			return false
		case strings.HasPrefix(e, "http://"):
			return true
		}
		return s.Insecure
	}
	grpcCreds := func(s config.Signal) (credentials.TransportCredentials, error) {
		tc, err := tlsConfig(s)
		if err != nil {
			return nil, err
		}
		if tc == nil {
			// Explicit, so that OTEL_EXPORTER_OTLP_CERTIFICATE is not read.
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		return credentials.NewTLS(tc), nil
	}
	proto := func(s config.Signal) string {
		if s.Protocol != "" {
			return s.Protocol
		}
		if o.Protocol != "" {
			return o.Protocol
		}
		return protoHTTPProtobuf
	}
	gzip := func(s config.Signal) bool { return s.Compression == "" || s.Compression == "gzip" }

	e.endpoints = [3]string{
		flTraces:  endpointName(endpointOr(o.Traces, proto(o.Traces), "/v1/traces")),
		flLogs:    endpointName(endpointOr(o.Logs, proto(o.Logs), "/v1/logs")),
		flMetrics: endpointName(endpointOr(o.Metrics, proto(o.Metrics), "/v1/metrics")),
	}

	// Traces.
	s := o.Traces
	switch p := proto(s); p {
	case protoGRPC:
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpointURL(endpointOr(s, p, "/v1/traces")),
			otlptracegrpc.WithHeaders(nonNil(s.Headers)),
			otlptracegrpc.WithTimeout(grpcNoTimeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
			otlptracegrpc.WithDialOption(grpc.WithUnaryInterceptor(grpcObserver)),
			otlptracegrpc.WithDialOption(e.grpcOptions(o, o.Traces)...),
		}
		if gzip(s) {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		if grpcPlaintext(s, endpointOr(s, p, "/v1/traces")) {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else if c, err := grpcCreds(s); err != nil {
			return nil, fmt.Errorf("traces exporter: %w", err)
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(c))
		}
		x, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("traces exporter: %w", err)
		}
		e.traces = x
	default:
		hc, err := client(s)
		if err != nil {
			return nil, fmt.Errorf("traces exporter: %w", err)
		}
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpointURL(endpointOr(s, p, "/v1/traces")),
			otlptracehttp.WithHeaders(nonNil(s.Headers)),
			otlptracehttp.WithHTTPClient(hc),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
			otlptracehttp.WithCompression(otlptracehttp.NoCompression),
		}
		if p == protoHTTPJSON {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		x, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("traces exporter: %w", err)
		}
		e.traces = x
	}

	// Metrics (http/json is not supported: protobuf).
	s = o.Metrics
	switch p := proto(s); p {
	case protoGRPC:
		opts := []otlpmetricgrpc.Option{
			otlpmetricgrpc.WithEndpointURL(endpointOr(s, p, "/v1/metrics")),
			otlpmetricgrpc.WithHeaders(nonNil(s.Headers)),
			otlpmetricgrpc.WithTimeout(grpcNoTimeout),
			otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}),
			otlpmetricgrpc.WithDialOption(grpc.WithUnaryInterceptor(grpcObserver)),
			otlpmetricgrpc.WithDialOption(e.grpcOptions(o, o.Metrics)...),
		}
		if gzip(s) {
			opts = append(opts, otlpmetricgrpc.WithCompressor("gzip"))
		}
		if grpcPlaintext(s, endpointOr(s, p, "/v1/metrics")) {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		} else if c, err := grpcCreds(s); err != nil {
			return nil, fmt.Errorf("metrics exporter: %w", err)
		} else {
			opts = append(opts, otlpmetricgrpc.WithTLSCredentials(c))
		}
		x, err := otlpmetricgrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("metrics exporter: %w", err)
		}
		e.metrics = x
	default:
		hc, err := client(s)
		if err != nil {
			return nil, fmt.Errorf("metrics exporter: %w", err)
		}
		opts := []otlpmetrichttp.Option{
			otlpmetrichttp.WithEndpointURL(endpointOr(s, protoHTTPProtobuf, "/v1/metrics")),
			otlpmetrichttp.WithHeaders(nonNil(s.Headers)),
			otlpmetrichttp.WithHTTPClient(hc),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}),
			otlpmetrichttp.WithCompression(otlpmetrichttp.NoCompression),
		}
		x, err := otlpmetrichttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("metrics exporter: %w", err)
		}
		e.metrics = x
	}

	// Logs.
	s = o.Logs
	switch p := proto(s); p {
	case protoGRPC:
		opts := []otlploggrpc.Option{
			otlploggrpc.WithEndpointURL(endpointOr(s, p, "/v1/logs")),
			otlploggrpc.WithHeaders(nonNil(s.Headers)),
			otlploggrpc.WithTimeout(grpcNoTimeout),
			otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}),
			otlploggrpc.WithDialOption(grpc.WithUnaryInterceptor(grpcObserver)),
			otlploggrpc.WithDialOption(e.grpcOptions(o, o.Logs)...),
		}
		if gzip(s) {
			opts = append(opts, otlploggrpc.WithCompressor("gzip"))
		}
		if grpcPlaintext(s, endpointOr(s, p, "/v1/logs")) {
			opts = append(opts, otlploggrpc.WithInsecure())
		} else if c, err := grpcCreds(s); err != nil {
			return nil, fmt.Errorf("logs exporter: %w", err)
		} else {
			opts = append(opts, otlploggrpc.WithTLSCredentials(c))
		}
		x, err := otlploggrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("logs exporter: %w", err)
		}
		e.logs = x
	default:
		hc, err := client(s)
		if err != nil {
			return nil, fmt.Errorf("logs exporter: %w", err)
		}
		opts := []otlploghttp.Option{
			otlploghttp.WithEndpointURL(endpointOr(s, protoHTTPProtobuf, "/v1/logs")),
			otlploghttp.WithHeaders(nonNil(s.Headers)),
			otlploghttp.WithHTTPClient(hc),
			otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
			otlploghttp.WithCompression(otlploghttp.NoCompression),
		}
		x, err := otlploghttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("logs exporter: %w", err)
		}
		e.logs = x
	}
	return e, nil
}

func endpointOr(s config.Signal, protocol, path string) string {
	if s.Endpoint != "" {
		return s.Endpoint
	}
	return defaultEndpoint(protocol, path)
}

// nonNil keeps an explicit (empty) header option even when no header is
// configured, so the exporter never falls back to OTEL_EXPORTER_OTLP_HEADERS.
func nonNil(h map[string]string) map[string]string {
	if h == nil {
		return map[string]string{}
	}
	return h
}
