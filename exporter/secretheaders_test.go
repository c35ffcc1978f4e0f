package exporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// headerBackend records the Authorization header of each request.
type headerBackend struct {
	mu    sync.Mutex
	auths []string
}

func (b *headerBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	b.mu.Lock()
	b.auths = append(b.auths, r.Header.Get("Authorization"))
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (b *headerBackend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.auths...)
}

func TestSecretReferenceInHeaders(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   string // Authorization the backend sees; "" = nothing sent
		errors int
	}{
		{"a resolved secret is sent in place of the reference", func(w http.ResponseWriter) {
			io.WriteString(w, `{"Parameter":{"Value":"Bearer from-ssm"}}`)
		}, "Bearer from-ssm", 0},
		{"an unresolvable secret sends nothing and logs one ERROR", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"AccessDeniedException"}`)
		}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
			t.Setenv("AWS_REGION", "eu-west-1")
			var ssmCalls int
			var mu sync.Mutex
			ssm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				ssmCalls++
				mu.Unlock()
				if r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				tt.answer(w)
			}))
			defer ssm.Close()
			backend := &headerBackend{}
			col := httptest.NewServer(backend)
			defer col.Close()
			cfg := config.Load(func(k string) string {
				return map[string]string{
					"SLIPSTREAM_OTLP_ENDPOINT": col.URL,
					"SLIPSTREAM_OTLP_HEADERS":  "authorization=${ssm:/otel/api-key}",
					"SLIPSTREAM_FLUSH":         "async",
					"AWS_LAMBDA_FUNCTION_NAME": "fn",
				}[k]
			})
			if len(cfg.Problems) > 0 {
				t.Fatal(cfg.Problems)
			}
			cfg.SpillDir = t.TempDir()
			h := newHarness(t, cfg, knobs{NewMapper: realMapper, SecretsEndpoint: func(service, region string) string {
				return ssm.URL + "/" + service + "/" + region
			}})
			h.run(t)
			ctx := context.Background()
			h.p.Enqueue(ctx, invocation("r1", 1, time.Now()))
			mu.Lock()
			before := ssmCalls
			mu.Unlock()
			if before != 0 {
				t.Fatalf("SSM called %d times before the first INVOKE", before)
			}
			h.p.Invoke(ctx, invokeEvent("r1", time.Now().Add(time.Minute)))
			h.p.Enqueue(ctx, []telemetry.Event{runtimeDone("r1", time.Now()), report("r1", time.Now())})
			if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			h.close(t)
			seen := backend.seen()
			if tt.want == "" && len(seen) != 0 {
				t.Errorf("the backend received %d requests, want none", len(seen))
			}
			for _, a := range seen {
				if a != tt.want {
					t.Errorf("Authorization = %q, want %q", a, tt.want)
				}
			}
			if tt.want != "" && len(seen) == 0 {
				t.Error("nothing received")
			}
			logs := h.logs.String()
			if n := strings.Count(logs, `"msg":"secret reference not resolved`); n != tt.errors {
				t.Errorf("%d resolver ERROR lines, want %d: %s", n, tt.errors, logs)
			}
			if strings.Contains(logs, "from-ssm") {
				t.Error("the secret value was logged")
			}
		})
	}
}
