package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/internal/awsauth"
	"github.com/slipstream-otel/slipstream/secrets"
)

// errSecretUnavailable: a header's secret reference could not be resolved
// (one ERROR line said why): nothing is sent for that signal.
var errSecretUnavailable = errors.New("secret reference not resolved: not sent")

// headerRefs returns the headers of s whose values are secret references.
func headerRefs(s config.Signal) map[string]secrets.Ref {
	var refs map[string]secrets.Ref
	for name, v := range s.Headers {
		if ref, ok, err := secrets.Parse(v); ok && err == nil {
			if refs == nil {
				refs = map[string]secrets.Ref{}
			}
			refs[name] = ref
		}
	}
	return refs
}

// exporterEnv is what newExporters needs beyond the configuration: the
// agent's logger (for the resolver's ERROR lines) and, in tests only, the
// endpoints of Secrets Manager and SSM.
type exporterEnv struct {
	log      *slog.Logger
	endpoint func(service, region string) string
}

// newResolver builds the resolver of every reference in the exporters'
// SLIPSTREAM_* headers, or nil when there is none.
func newResolver(o config.OTLP, creds *awsauth.Credentials, env exporterEnv) *secrets.Resolver {
	all := map[secrets.Ref]string{}
	if o.Source != config.SourceSlipstream {
		return nil
	}
	for _, s := range []config.Signal{o.Traces, o.Metrics, o.Logs} {
		if !s.Enabled() {
			continue
		}
		for _, ref := range headerRefs(s) {
			all[ref] = s.HeadersFrom
		}
	}
	if len(all) == 0 {
		return nil
	}
	// The calls to Secrets Manager and SSM take the exporters' proxy
	// (SLIPSTREAM_HTTPS_PROXY), not only the function's.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = proxyFor(o, nil)
	return secrets.New(secrets.Options{Refs: all, Region: os.Getenv("AWS_REGION"), Credentials: creds,
		Log: env.log, Endpoint: env.endpoint, Client: &http.Client{Timeout: 10 * time.Second, Transport: tr}})
}

// secretHeaderTransport puts the resolved secrets into the request's
// headers at send time (above gzip and SigV4, which then sign them). While
// a reference is unresolved the attempt waits (bounded by its context):
// nothing is sent without it. A 401 or 403 asks the resolver to fetch the
// secrets again (a rotated secret), at most every 15 minutes.
type secretHeaderTransport struct {
	base http.RoundTripper
	res  *secrets.Resolver
	refs map[string]secrets.Ref // header name -> reference
}

func (t *secretHeaderTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r2 := req.Clone(req.Context())
	for name, ref := range t.refs {
		v, st, err := t.res.Wait(req.Context(), ref)
		if err != nil {
			return nil, fmt.Errorf("secret for header %s: %w", name, err)
		}
		if st != secrets.Resolved {
			return nil, errSecretUnavailable
		}
		r2.Header.Set(name, v)
	}
	resp, err := t.base.RoundTrip(r2)
	if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		t.res.Refetch()
	}
	return resp, err
}

// grpcSecrets is the gRPC exporters' equivalent: a unary interceptor that
// replaces the reference in the outgoing metadata.
func grpcSecrets(res *secrets.Resolver, refs map[string]secrets.Ref) []grpc.DialOption {
	if res == nil || len(refs) == 0 {
		return nil
	}
	lower := make(map[string]secrets.Ref, len(refs))
	for k, v := range refs {
		lower[strings.ToLower(k)] = v
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		md = md.Copy()
		for name, ref := range lower {
			v, st, err := res.Wait(ctx, ref)
			if err != nil {
				return fmt.Errorf("secret for header %s: %w", name, err)
			}
			if st != secrets.Resolved {
				return errSecretUnavailable
			}
			md.Set(name, v)
		}
		err := invoker(metadata.NewOutgoingContext(ctx, md), method, req, reply, cc, opts...)
		if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
			res.Refetch()
		}
		return err
	})}
}
