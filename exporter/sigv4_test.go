package exporter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipstream-otel/slipstream/config"
)

// sigv4Backend is a fake AWS OTLP endpoint: it recomputes the signature of
// each request with AWS's signer from the secret keys it knows (by access
// key ID), over the body as received, and answers 403 when it differs.
type sigv4Backend struct {
	secrets map[string]aws.Credentials // by access key ID
	service string
	region  string
	// mu guards seen.
	mu   sync.Mutex
	seen []signedRequest
}

type signedRequest struct {
	keyID, token, encoding string
	ok                     bool
}

func (b *sigv4Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	auth := r.Header.Get("Authorization")
	got := signedRequest{token: r.Header.Get("X-Amz-Security-Token"), encoding: r.Header.Get("Content-Encoding")}
	cred, signed := field(auth, "Credential="), field(auth, "SignedHeaders=")
	got.keyID, _, _ = strings.Cut(cred, "/")
	c, known := b.secrets[got.keyID]
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if known && err == nil {
		req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
		for _, h := range strings.Split(signed, ";") {
			if h != "host" && h != "content-length" {
				req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		sum := sha256.Sum256(body)
		if v4.NewSigner().SignHTTP(context.Background(), c, req, hex.EncodeToString(sum[:]), b.service, b.region, when) == nil {
			got.ok = req.Header.Get("Authorization") == auth
		}
	}
	b.mu.Lock()
	b.seen = append(b.seen, got)
	b.mu.Unlock()
	if !got.ok {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// field returns the value after name in an Authorization header, up to the next comma.
func field(auth, name string) string {
	_, v, ok := strings.Cut(auth, name)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

func (b *sigv4Backend) requests() []signedRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]signedRequest(nil), b.seen...)
}

func exportOneSpan(t *testing.T, e *exporters) error {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("5759e988bd862e3fe1be46a994272793")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	span := tracetest.SpanStub{Name: strings.Repeat("s", 300), SpanContext: sc, StartTime: time.Unix(1, 0), EndTime: time.Unix(2, 0)}.Snapshot()
	return e.traces.ExportSpans(context.Background(), []sdktrace.ReadOnlySpan{span})
}

func sigv4Exporters(t *testing.T, endpoint, compression string) *exporters {
	t.Helper()
	cfg := config.Load(func(k string) string {
		return map[string]string{
			"SLIPSTREAM_OTLP_TRACES_ENDPOINT":      endpoint + "/v1/traces",
			"SLIPSTREAM_OTLP_COMPRESSION":          compression,
			"SLIPSTREAM_OTLP_TRACES_AUTH":          "sigv4",
			"SLIPSTREAM_OTLP_TRACES_SIGV4_SERVICE": "xray",
			"SLIPSTREAM_OTLP_SIGV4_REGION":         "us-east-1",
		}[k]
	})
	if len(cfg.Problems) > 0 || cfg.OTLP.Traces.Auth != config.AuthSigV4 {
		t.Fatalf("config: %v, auth %q", cfg.Problems, cfg.OTLP.Traces.Auth)
	}
	e, err := newExporters(context.Background(), cfg.OTLP, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.shutdown(context.Background()) })
	return e
}

func TestSigV4SignsWhatIsSent(t *testing.T) {
	for _, compression := range []string{"gzip", "none"} {
		t.Run("a "+compression+" body is signed as sent and verifies", func(t *testing.T) {
			t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFIRST")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-one")
			t.Setenv("AWS_SESSION_TOKEN", "token-one")
			b := &sigv4Backend{service: "xray", region: "us-east-1", secrets: map[string]aws.Credentials{
				"AKIDFIRST":  {AccessKeyID: "AKIDFIRST", SecretAccessKey: "secret-one", SessionToken: "token-one"},
				"AKIDSECOND": {AccessKeyID: "AKIDSECOND", SecretAccessKey: "secret-two", SessionToken: "token-two"},
			}}
			srv := httptest.NewServer(b)
			defer srv.Close()
			e := sigv4Exporters(t, srv.URL, compression)
			if err := exportOneSpan(t, e); err != nil {
				t.Fatalf("export: %v", err)
			}
			// The function's credentials change: the next request uses the new ones.
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSECOND")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-two")
			t.Setenv("AWS_SESSION_TOKEN", "token-two")
			if err := exportOneSpan(t, e); err != nil {
				t.Fatalf("export: %v", err)
			}
			got := b.requests()
			want := []signedRequest{{keyID: "AKIDFIRST", token: "token-one", ok: true}, {keyID: "AKIDSECOND", token: "token-two", ok: true}}
			if compression == "gzip" {
				want[0].encoding, want[1].encoding = "gzip", "gzip"
			}
			if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Errorf("requests = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSigV4WrongSecretIsRefused(t *testing.T) {
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFIRST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	b := &sigv4Backend{service: "xray", region: "us-east-1", secrets: map[string]aws.Credentials{
		"AKIDFIRST": {AccessKeyID: "AKIDFIRST", SecretAccessKey: "secret-one"}}}
	srv := httptest.NewServer(b)
	defer srv.Close()
	if err := exportOneSpan(t, sigv4Exporters(t, srv.URL, "gzip")); err == nil {
		t.Fatal("export with a wrong secret succeeded: the fake endpoint does not verify")
	}
}

func TestSigV4CredentialsFromTheContainerEndpoint(t *testing.T) {
	var calls int
	var mu sync.Mutex
	credSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		if r.Header.Get("Authorization") != "container-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"AccessKeyId": "AKIDSNAP", "SecretAccessKey": "snap-secret", "Token": "snap-token",
			"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	}))
	defer credSrv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", credSrv.URL+"/2016-11-01/credentialprovider/")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token")
	b := &sigv4Backend{service: "xray", region: "us-east-1", secrets: map[string]aws.Credentials{
		"AKIDSNAP": {AccessKeyID: "AKIDSNAP", SecretAccessKey: "snap-secret", SessionToken: "snap-token"}}}
	srv := httptest.NewServer(b)
	defer srv.Close()
	e := sigv4Exporters(t, srv.URL, "gzip")
	for range 2 {
		if err := exportOneSpan(t, e); err != nil {
			t.Fatalf("export: %v", err)
		}
	}
	got := b.requests()
	if len(got) != 2 || !got[0].ok || got[0].keyID != "AKIDSNAP" || got[0].token != "snap-token" {
		t.Errorf("requests = %+v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("credentials fetched %d times, want 1 (cached until they near expiry)", calls)
	}
}

// The function's own OTLP data is signed like the platform's.
func TestSigV4SignsTheFunctionsData(t *testing.T) {
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFIRST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-one")
	t.Setenv("AWS_SESSION_TOKEN", "")
	b := &sigv4Backend{service: "xray", region: "us-east-1", secrets: map[string]aws.Credentials{
		"AKIDFIRST": {AccessKeyID: "AKIDFIRST", SecretAccessKey: "secret-one"}}}
	srv := httptest.NewServer(b)
	defer srv.Close()
	cfg := testConfig(t, srv.URL, config.FlushAsync)
	cfg.OTLP.Traces.Auth, cfg.OTLP.Traces.SigV4Service, cfg.OTLP.Traces.SigV4Region = config.AuthSigV4, "xray", "us-east-1"
	cfg.OTLP.Metrics.Off = "test" // self-metrics would go unsigned to the same fake
	h := newHarnessWith(t, cfg, Options{LocalInputs: true}, knobs{NewMapper: realMapper})
	h.run(t)
	if rej, reason := h.p.AcceptOTLP(fnTraces(2)); rej != 0 {
		t.Fatalf("rejected %d: %s", rej, reason)
	}
	if err := h.p.Shutdown(context.Background(), shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	h.close(t)
	got := b.requests()
	if len(got) == 0 {
		t.Fatal("nothing received")
	}
	for _, r := range got {
		if !r.ok || r.keyID != "AKIDFIRST" {
			t.Errorf("request %+v not signed as expected", r)
		}
	}
}
