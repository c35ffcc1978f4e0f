package exporter

import (
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/slipstream-otel/slipstream/config"
)

// The security layers of a signal's HTTP transport chain, shared by the
// SDK exporters (newExporters) and the function's own OTLP clients
// (newFnClients), so that both send alike. Outermost first: secret
// headers, gzip, SigV4, observing, our http.Transport (whose proxy is
// proxyFor's).

// signed wraps t (the observing transport) in SigV4 when s asks for it.
func (e *exporters) signed(s config.Signal, t http.RoundTripper) http.RoundTripper {
	if s.Auth != config.AuthSigV4 {
		return t
	}
	return &sigv4Transport{base: t, creds: e.creds, service: s.SigV4Service, region: s.SigV4Region, now: time.Now}
}

// withSecrets wraps t (the outermost transport) so that s's header
// references are replaced by their secrets.
func (e *exporters) withSecrets(s config.Signal, t http.RoundTripper) http.RoundTripper {
	if refs := headerRefs(s); e.secrets != nil && len(refs) > 0 {
		return &secretHeaderTransport{base: t, res: e.secrets, refs: refs}
	}
	return t
}

// grpcOptions are the dial options of s's gRPC connection beyond the
// exporters' own: SLIPSTREAM_HTTPS_PROXY=none and the secret headers.
func (e *exporters) grpcOptions(o config.OTLP, s config.Signal) []grpc.DialOption {
	return append(grpcProxy(o), grpcSecrets(e.secrets, headerRefs(s))...)
}
