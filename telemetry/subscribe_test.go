package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLambda is a Telemetry API endpoint that answers from a script and
// records every request.
type fakeLambda struct {
	mu       sync.Mutex
	requests []recordedRequest // guarded by mu
	answer   func(n int, schema string) (status int, body string)
}

type recordedRequest struct {
	method, path, id, contentType string
	body                          map[string]any
}

func (f *fakeLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, err.Error(), http.StatusTeapot)
		return
	}
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, recordedRequest{r.Method, r.URL.Path, r.Header.Get("Lambda-Extension-Identifier"), r.Header.Get("Content-Type"), body})
	f.mu.Unlock()
	status, answer := f.answer(n, body["schemaVersion"].(string))
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

func (f *fakeLambda) recorded() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}

func validSubscription() Subscription {
	return Subscription{
		Types:    []string{"platform", "function", "extension"},
		MaxItems: 1000, MaxBytes: 262144, TimeoutMs: 25,
		URI: "http://sandbox.localdomain:4243",
	}
}

func startFake(t *testing.T, answer func(n int, schema string) (int, string)) (*fakeLambda, string) {
	t.Helper()
	f := &fakeLambda{answer: answer}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func TestSubscribeSendsTheDocumentedRequest(t *testing.T) {
	f, addr := startFake(t, func(int, string) (int, string) { return 200, `"OK"` })
	hc := &http.Client{Timeout: 5 * time.Second}
	schema, err := Subscribe(context.Background(), hc, addr, "ext-id-1", validSubscription())
	if err != nil || schema != SchemaLatest {
		t.Fatalf("Subscribe = %q, %v", schema, err)
	}
	reqs := f.recorded()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPut || r.path != "/2022-07-01/telemetry" || r.id != "ext-id-1" || r.contentType != "application/json" {
		t.Errorf("request %s %s id=%q type=%q", r.method, r.path, r.id, r.contentType)
	}
	want := readFixture(t, "telemetry.subscribe.request.2025-01-29.json")
	var wantBody map[string]any
	if err := json.Unmarshal(want, &wantBody); err != nil {
		t.Fatal(err)
	}
	wantBody["destination"].(map[string]any)["URI"] = "http://sandbox.localdomain:4243"
	got, _ := json.Marshal(r.body)
	exp, _ := json.Marshal(wantBody)
	if string(got) != string(exp) {
		t.Errorf("body\n got %s\nwant %s", got, exp)
	}
}

func TestSubscribeOutcomes(t *testing.T) {
	notSupported := string(readFixture(t, "telemetry.subscribe.response.202-not-supported.json"))
	closed := string(readFixture(t, "telemetry.subscribe.response.403-closed.json"))
	tests := []struct {
		name         string
		answer       func(n int, schema string) (int, string)
		wantSchema   SchemaVersion
		wantRequests int
		notSupported bool
		wantErrType  APIErrorType
	}{
		{"a platform refusing 2025-01-29 gets 2022-12-13 once", func(_ int, schema string) (int, string) {
			if schema == string(SchemaLatest) {
				return 400, `{"errorType":"ValidationError","errorMessage":"schemaVersion: must be one of 2022-07-01, 2022-12-13"}`
			}
			return 200, `"OK"`
		}, SchemaFallback, 2, false, ""},
		{"a 400 that mentions the schema also triggers the fallback", func(_ int, schema string) (int, string) {
			if schema == string(SchemaLatest) {
				return 400, `{"errorType":"InvalidRequest","errorMessage":"unsupported schema version"}`
			}
			return 200, `"OK"`
		}, SchemaFallback, 2, false, ""},
		{"a fallback that fails too is an error with both statuses", func(int, string) (int, string) {
			return 400, `{"errorType":"ValidationError","errorMessage":"no"}`
		}, "", 2, false, ErrorTypeValidation},
		{"a 400 about something else is not retried", func(int, string) (int, string) {
			return 400, `{"errorType":"InvalidParameter","errorMessage":"bad buffering"}`
		}, "", 1, false, "InvalidParameter"},
		{"202 Telemetry.NotSupported means unsupported", func(int, string) (int, string) { return 202, notSupported }, "", 1, true, ErrorTypeNotSupported},
		{"403 subscription closed means unsupported", func(int, string) (int, string) { return 403, closed }, "", 1, true, ErrorTypeSubscriptionClosed},
		{"404 from other emulators means unsupported", func(int, string) (int, string) { return 404, "404 page not found" }, "", 1, true, ""},
		{"500 is an error naming the status and type", func(int, string) (int, string) {
			return 500, `{"errorType":"Extension.DuplicateSubscription","errorMessage":"dup"}`
		}, "", 1, false, "Extension.DuplicateSubscription"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, addr := startFake(t, tt.answer)
			schema, err := Subscribe(context.Background(), &http.Client{Timeout: 5 * time.Second}, addr, "id", validSubscription())
			if n := len(f.recorded()); n != tt.wantRequests {
				t.Errorf("%d requests, want %d", n, tt.wantRequests)
			}
			if schema != tt.wantSchema {
				t.Errorf("schema %q, want %q", schema, tt.wantSchema)
			}
			if tt.wantSchema != "" {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrNotSupported) != tt.notSupported {
				t.Errorf("errors.Is(ErrNotSupported) = %v for %v", !tt.notSupported, err)
			}
			apiErr, ok := errors.AsType[*APIError](err)
			if !ok || apiErr.ErrorType != tt.wantErrType {
				t.Errorf("error %v: APIError %+v", err, apiErr)
			}
		})
	}
}

func TestSubscribeTransportErrors(t *testing.T) {
	t.Run("an unreachable runtime API is an error, not a hang", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := strings.TrimPrefix(srv.URL, "http://")
		srv.Close()
		_, err := Subscribe(context.Background(), &http.Client{Timeout: 5 * time.Second}, addr, "id", validSubscription())
		if err == nil || errors.Is(err, ErrNotSupported) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("a nil client is refused", func(t *testing.T) {
		if _, err := Subscribe(context.Background(), nil, "127.0.0.1:1", "id", validSubscription()); err == nil {
			t.Error("no error")
		}
	})
}

func TestSubscriptionValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(s *Subscription)
		want   string // substring of the error; "" = valid
	}{
		{"the documented defaults are valid", func(*Subscription) {}, ""},
		{"the upper bounds are valid", func(s *Subscription) { s.MaxItems, s.MaxBytes, s.TimeoutMs = 10000, 1048576, 30000 }, ""},
		{"a single type is valid", func(s *Subscription) { s.Types = []string{"platform"} }, ""},
		{"no types is invalid", func(s *Subscription) { s.Types = nil }, "types: empty"},
		{"an unknown type is invalid", func(s *Subscription) { s.Types = []string{"platform", "logs"} }, `"logs" is not one of`},
		{"a repeated type is invalid", func(s *Subscription) { s.Types = []string{"function", "function"} }, "listed twice"},
		{"maxItems below 1000 is invalid", func(s *Subscription) { s.MaxItems = 999 }, "maxItems: 999 out of range 1000..10000"},
		{"maxItems above 10000 is invalid", func(s *Subscription) { s.MaxItems = 10001 }, "maxItems"},
		{"maxBytes below 262144 is invalid", func(s *Subscription) { s.MaxBytes = 262143 }, "maxBytes: 262143 out of range 262144..1048576"},
		{"maxBytes above 1 MiB is invalid", func(s *Subscription) { s.MaxBytes = 1048577 }, "maxBytes"},
		{"timeoutMs below 25 is invalid", func(s *Subscription) { s.TimeoutMs = 24 }, "timeoutMs: 24 out of range 25..30000"},
		{"timeoutMs above 30000 is invalid", func(s *Subscription) { s.TimeoutMs = 30001 }, "timeoutMs"},
		{"a non-HTTP URI is invalid", func(s *Subscription) { s.URI = "tcp://sandbox.localdomain:1" }, "URI"},
		{"an empty URI is invalid", func(s *Subscription) { s.URI = "" }, "URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSubscription()
			tt.modify(&s)
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want it to contain %q", err, tt.want)
			}
		})
	}
	t.Run("an invalid subscription is never sent", func(t *testing.T) {
		f, addr := startFake(t, func(int, string) (int, string) { return 200, `"OK"` })
		s := validSubscription()
		s.TimeoutMs = 5
		if _, err := Subscribe(context.Background(), &http.Client{Timeout: time.Second}, addr, "id", s); err == nil {
			t.Error("no error")
		}
		if n := len(f.recorded()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
}
