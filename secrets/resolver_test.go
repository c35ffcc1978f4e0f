package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/internal/awsauth"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     Ref
		isRef    bool
		bad      bool
	}{
		{"a Secrets Manager ARN with a key", "${secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:otel-AbCdEf#api_key}",
			Ref{SecretsManager, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:otel-AbCdEf", "api_key"}, true, false},
		{"a Secrets Manager name without a key", "${secretsmanager:otel/key}", Ref{SecretsManager, "otel/key", ""}, true, false},
		{"an SSM parameter", "${ssm:/otel/api-key}", Ref{SSM, "/otel/api-key", ""}, true, false},
		{"a plain value is not a reference", "Bearer abc", Ref{}, false, false},
		{"an unclosed reference is malformed", "${ssm:/otel/api-key", Ref{}, true, true},
		{"an empty key is malformed", "${secretsmanager:otel#}", Ref{}, true, true},
		{"an SSM reference with a key is malformed", "${ssm:/p#k}", Ref{}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, ok, err := Parse(tt.in)
			if ok != tt.isRef || (err != nil) != tt.bad || ref != tt.want {
				t.Errorf("Parse = %+v, %v, %v", ref, ok, err)
			}
			if ok && !tt.bad && ref.String() != tt.in {
				t.Errorf("String = %q", ref.String())
			}
		})
	}
}

// fakeAWS answers GetSecretValue and GetParameter like the JSON 1.1
// services do, and records the targets called.
type fakeAWS struct {
	mu      sync.Mutex
	targets []string
	answer  func(target string, in map[string]any) (int, string)
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var in map[string]any
	json.Unmarshal(b, &in)
	target := r.Header.Get("X-Amz-Target")
	f.mu.Lock()
	f.targets = append(f.targets, target)
	f.mu.Unlock()
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	status, body := f.answer(target, in)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (f *fakeAWS) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.targets)
}

func newResolver(t *testing.T, f *fakeAWS, refs map[Ref]string, log *bytes.Buffer) *Resolver {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "tok"}
	r := New(Options{
		Refs: refs, Region: "eu-west-1",
		Credentials: awsauth.NewCredentials(func(k string) string { return env[k] }, nil),
		Log:         slog.New(slog.NewJSONHandler(log, nil)),
		Endpoint:    func(service, region string) string { return srv.URL + "/" + service + "/" + region },
	})
	t.Cleanup(r.Stop)
	return r
}

func TestResolve(t *testing.T) {
	sm := Ref{SecretsManager, "arn:aws:secretsmanager:us-east-2:123456789012:secret:otel", "api_key"}
	param := Ref{SSM, "/otel/token", ""}
	f := &fakeAWS{answer: func(target string, in map[string]any) (int, string) {
		switch target {
		case "secretsmanager.GetSecretValue":
			return 200, `{"SecretString":"{\"api_key\":\"sm-value\"}"}`
		case "AmazonSSM.GetParameter":
			if in["WithDecryption"] != true {
				return 400, `{"__type":"ValidationException"}`
			}
			return 200, `{"Parameter":{"Value":"ssm-value"}}`
		}
		return 400, `{}`
	}}
	var log bytes.Buffer
	r := newResolver(t, f, map[Ref]string{sm: "SLIPSTREAM_OTLP_HEADERS", param: "SLIPSTREAM_OTLP_LOGS_HEADERS"}, &log)
	if _, st := r.Value(sm); st != Pending {
		t.Fatalf("state before Start = %v, want Pending", st)
	}
	if f.calls() != 0 {
		t.Fatal("called before Start")
	}
	r.Start(context.Background())
	for ref, want := range map[Ref]string{sm: "sm-value", param: "ssm-value"} {
		v, st, err := r.Wait(context.Background(), ref)
		if err != nil || st != Resolved || v != want {
			t.Errorf("Wait(%v) = %q, %v, %v", ref, v, st, err)
		}
	}
	if strings.Contains(log.String(), "value") {
		t.Errorf("log mentions a value: %s", log.String())
	}
}

func TestResolveFailures(t *testing.T) {
	tests := []struct {
		name, answer, reason string
		status               int
	}{
		{"a denied call names the missing permission", `{"__type":"AccessDeniedException","message":"User x is not authorized"}`, "no permission", 400},
		{"a missing secret says not found", `{"__type":"ResourceNotFoundException"}`, "not found", 400},
		{"a throttled call says throttled", `{"__type":"ThrottlingException"}`, "throttled", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAWS{answer: func(string, map[string]any) (int, string) { return tt.status, tt.answer }}
			var log bytes.Buffer
			ref := Ref{SecretsManager, "otel", ""}
			r := newResolver(t, f, map[Ref]string{ref: "SLIPSTREAM_OTLP_HEADERS"}, &log)
			r.Start(context.Background())
			_, st, _ := r.Wait(context.Background(), ref)
			if st != Failed {
				t.Fatalf("state = %v, want Failed", st)
			}
			r.Stop()
			if n := strings.Count(log.String(), `"level":"ERROR"`); n != 1 || !strings.Contains(log.String(), tt.reason) || !strings.Contains(log.String(), "SLIPSTREAM_OTLP_HEADERS") {
				t.Errorf("%d ERROR lines: %s", n, log.String())
			}
			if strings.Contains(log.String(), "not authorized") {
				t.Errorf("the service's message was logged: %s", log.String())
			}
		})
	}
}

// memRT serves requests from a handler in memory (for synctest bubbles).
type memRT struct{ h http.Handler }

func (m memRT) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

func TestRefetchAtMostEvery15Minutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		value := "v1"
		var mu sync.Mutex
		f := &fakeAWS{answer: func(string, map[string]any) (int, string) {
			mu.Lock()
			defer mu.Unlock()
			return 200, `{"Parameter":{"Value":"` + value + `"}}`
		}}
		ref := Ref{SSM, "/p", ""}
		env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "s"}
		now := time.Now()
		var clock sync.Mutex
		r := New(Options{Refs: map[Ref]string{ref: "SLIPSTREAM_OTLP_HEADERS"}, Region: "eu-west-1",
			Credentials: awsauth.NewCredentials(func(k string) string { return env[k] }, nil),
			Client:      &http.Client{Transport: memRT{f}},
			Now: func() time.Time {
				clock.Lock()
				defer clock.Unlock()
				return now
			}})
		defer r.Stop()
		r.Start(context.Background())
		synctest.Wait()
		mu.Lock()
		value = "v2"
		mu.Unlock()
		r.Refetch() // a 401 right after the first fetch: too soon
		synctest.Wait()
		if v, _ := r.Value(ref); v != "v1" || f.calls() != 1 {
			t.Errorf("value %q after %d calls, want v1 after 1", v, f.calls())
		}
		clock.Lock()
		now = now.Add(15 * time.Minute)
		clock.Unlock()
		r.Refetch()
		synctest.Wait()
		if v, _ := r.Value(ref); v != "v2" || f.calls() != 2 {
			t.Errorf("value %q after %d calls, want v2 after 2", v, f.calls())
		}
	})
}
