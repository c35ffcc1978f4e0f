package extension

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestRegister(t *testing.T) {
	tests := []struct {
		name             string
		managedInstances bool
		wantBody         string
	}{
		{"an on-demand function registers for INVOKE and SHUTDOWN", false, `{"events":["INVOKE","SHUTDOWN"]}`},
		{"a Managed Instances function registers for SHUTDOWN only", true, `{"events":["SHUTDOWN"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLambda{register: registerOK(t, "ext-1")}
			c, _ := f.serve(t)

			got, err := c.Register(t.Context(), "slipstream", EventsFor(tt.managedInstances))
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			want := RegisterResponse{FunctionName: "helloWorld", FunctionVersion: "$LATEST",
				Handler: "lambda_function.lambda_handler", AccountID: "123456789012"}
			if got != want {
				t.Errorf("Register = %+v, want %+v", got, want)
			}
			if c.ID() != "ext-1" {
				t.Errorf("ID() = %q, want ext-1", c.ID())
			}
			reqs := f.calls(pathRegister)
			if len(reqs) != 1 {
				t.Fatalf("got %d register calls, want 1", len(reqs))
			}
			r := reqs[0]
			if v := r.Header.Get("Lambda-Extension-Name"); v != "slipstream" {
				t.Errorf("Lambda-Extension-Name = %q, want slipstream", v)
			}
			if v := r.Header.Get("Lambda-Extension-Accept-Feature"); v != "accountId" {
				t.Errorf("Lambda-Extension-Accept-Feature = %q, want accountId", v)
			}
			if string(r.Body) != tt.wantBody {
				t.Errorf("body = %s, want %s", r.Body, tt.wantBody)
			}
		})
	}

	t.Run("the body matches the documented request", func(t *testing.T) {
		f := &fakeLambda{register: registerOK(t, "ext-1")}
		c, _ := f.serve(t)
		if _, err := c.Register(t.Context(), "slipstream", EventsFor(false)); err != nil {
			t.Fatalf("Register: %v", err)
		}
		var got, want any
		mustUnmarshal(t, f.calls(pathRegister)[0].Body, &got)
		mustUnmarshal(t, fixture(t, "extensions.register.request.json"), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("body = %v, want %v", got, want)
		}
	})

	t.Run("no events are sent as an empty list", func(t *testing.T) {
		f := &fakeLambda{register: registerOK(t, "ext-1")}
		c, _ := f.serve(t)
		if _, err := c.Register(t.Context(), "slipstream", nil); err != nil {
			t.Fatalf("Register: %v", err)
		}
		if b := string(f.calls(pathRegister)[0].Body); b != `{"events":[]}` {
			t.Errorf("body = %s, want {\"events\":[]}", b)
		}
	})
}

func TestRegisterFailures(t *testing.T) {
	tests := []struct {
		name          string
		handler       http.HandlerFunc
		wantStatus    int // 0: no *APIError expected
		wantErrorType string
		wantInError   []string
	}{
		{
			name: "a 403 carries the platform's errorType",
			handler: answer(http.StatusForbidden,
				`{"errorType":"Extension.InvalidExtensionName","errorMessage":"name mismatch"}`),
			wantStatus:    403,
			wantErrorType: "Extension.InvalidExtensionName",
			wantInError:   []string{"register extension", "403", "Extension.InvalidExtensionName", "name mismatch"},
		},
		{
			name:        "a 500 with a text body keeps the text",
			handler:     answer(http.StatusInternalServerError, "internal failure\n"),
			wantStatus:  500,
			wantInError: []string{"register extension", "500", "internal failure"},
		},
		{
			name:        "a 200 without an identifier is an error",
			handler:     answer(http.StatusOK, `{"functionName":"f"}`),
			wantInError: []string{"register extension", "Lambda-Extension-Identifier"},
		},
		{
			name: "a 200 with a body that is not JSON is an error",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Lambda-Extension-Identifier", "ext-1")
				w.Write([]byte("<html>"))
			},
			wantInError: []string{"register extension", "decode response"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLambda{register: tt.handler}
			c, _ := f.serve(t)
			_, err := c.Register(t.Context(), "slipstream", EventsFor(false))
			if err == nil {
				t.Fatal("Register succeeded, want an error")
			}
			for _, s := range tt.wantInError {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			var apiErr *APIError
			switch {
			case tt.wantStatus == 0 && errors.As(err, &apiErr):
				t.Errorf("error is an *APIError (%v), want another kind", apiErr)
			case tt.wantStatus != 0 && !errors.As(err, &apiErr):
				t.Errorf("error %v is not an *APIError", err)
			case tt.wantStatus != 0:
				if apiErr.StatusCode != tt.wantStatus || apiErr.ErrorType != tt.wantErrorType {
					t.Errorf("APIError = %+v, want status %d, errorType %q", apiErr, tt.wantStatus, tt.wantErrorType)
				}
			}
			if c.ID() != "" {
				t.Errorf("ID() = %q after a failed Register, want empty", c.ID())
			}
		})
	}
}

func TestNext(t *testing.T) {
	t.Run("an INVOKE is decoded with its deadline and trace header", func(t *testing.T) {
		events := make(chan string, 1)
		events <- string(fixture(t, "extensions.next.invoke.json"))
		f := &fakeLambda{register: registerOK(t, "ext-1"), next: serveEvents(events, "application/json")}
		c, _ := f.serve(t)
		mustRegister(t, c)

		ev, err := c.Next(t.Context())
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		want := Event{
			Type:               Invoke,
			DeadlineMs:         1666361403165,
			RequestID:          "459921b5-681c-4a96-beb0-81e0aa586026",
			InvokedFunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:ExtensionTest",
			Tracing: &Tracing{Type: "X-Amzn-Trace-Id",
				Value: "Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=1"},
		}
		if !reflect.DeepEqual(ev, want) {
			t.Errorf("Next = %+v, want %+v", ev, want)
		}
		if got, want := ev.Deadline(), time.Date(2022, 10, 21, 14, 10, 3, 165e6, time.UTC); !got.Equal(want) {
			t.Errorf("Deadline() = %v, want %v", got, want)
		}
	})

	t.Run("a SHUTDOWN labelled text/plain is decoded as JSON", func(t *testing.T) {
		events := make(chan string, 1)
		events <- string(fixture(t, "extensions.next.shutdown.json"))
		f := &fakeLambda{register: registerOK(t, "ext-1"), next: serveEvents(events, "text/plain; charset=utf-8")}
		c, _ := f.serve(t)
		mustRegister(t, c)

		ev, err := c.Next(t.Context())
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		want := Event{Type: Shutdown, DeadlineMs: 1666361705764, ShutdownReason: "spindown"}
		if !reflect.DeepEqual(ev, want) {
			t.Errorf("Next = %+v, want %+v", ev, want)
		}
		if ev.Reason() != ReasonSpindown {
			t.Errorf("Reason() = %q, want %q", ev.Reason(), ReasonSpindown)
		}
	})

	t.Run("an INVOKE without a trace header has no Tracing", func(t *testing.T) {
		events := make(chan string, 1)
		events <- `{"eventType":"INVOKE","deadlineMs":1,"requestId":"r","invokedFunctionArn":"a"}`
		f := &fakeLambda{register: registerOK(t, "ext-1"), next: serveEvents(events, "application/json")}
		c, _ := f.serve(t)
		mustRegister(t, c)
		ev, err := c.Next(t.Context())
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if ev.Tracing != nil {
			t.Errorf("Tracing = %+v, want nil", ev.Tracing)
		}
	})

	failures := []struct {
		name        string
		handler     http.HandlerFunc
		wantInError []string
	}{
		{"a 403 is an error naming the errorType",
			answer(http.StatusForbidden, `{"errorType":"Extension.InvalidExtensionIdentifier","errorMessage":"unknown id"}`),
			[]string{"next event", "403", "Extension.InvalidExtensionIdentifier"}},
		{"a 500 is an error", answer(http.StatusInternalServerError, `{"errorType":"Extension.Crash"}`),
			[]string{"next event", "500", "Extension.Crash"}},
		{"a body that is not JSON is an error", answer(http.StatusOK, `not json`),
			[]string{"next event", "decode response"}},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLambda{register: registerOK(t, "ext-1"), next: tt.handler}
			c, _ := f.serve(t)
			mustRegister(t, c)
			_, err := c.Next(t.Context())
			if err == nil {
				t.Fatal("Next succeeded, want an error")
			}
			for _, s := range tt.wantInError {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}

	t.Run("a canceled context ends the long poll", func(t *testing.T) {
		f := &fakeLambda{register: registerOK(t, "ext-1"), next: serveEvents(nil, "application/json")}
		c, _ := f.serve(t)
		mustRegister(t, c)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := c.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Next = %v, want context.Canceled", err)
		}
	})
}

func TestNextHasNoClientTimeout(t *testing.T) {
	t.Run("a long poll outlives the client timeout that ends other calls", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			f := &fakeLambda{
				// register and exit/error stall until the client gives up.
				register:  func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
				exitError: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
				next: func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-release:
						w.Write([]byte(`{"eventType":"SHUTDOWN","deadlineMs":1,"shutdownReason":"spindown"}`))
					case <-r.Context().Done():
					}
				},
			}
			c := NewClient("lambda.test:9001", &http.Client{Transport: handlerTransport{f}, Timeout: time.Second})

			if _, err := c.Register(t.Context(), "slipstream", EventsFor(false)); !isTimeout(err) {
				t.Fatalf("Register = %v, want a client timeout", err)
			}

			type result struct {
				ev  Event
				err error
			}
			done := make(chan result, 1)
			go func() {
				ev, err := c.Next(t.Context())
				done <- result{ev, err}
			}()
			// Inside the bubble the clock is fake: this advances it an hour
			// past the client's one-second Timeout, at no real cost.
			time.Sleep(time.Hour)
			if err := c.ExitError(t.Context(), "Extension.Test", errors.New("x")); !isTimeout(err) {
				t.Fatalf("ExitError = %v, want a client timeout", err)
			}
			synctest.Wait()
			select {
			case r := <-done:
				t.Fatalf("Next returned before the event was released: %+v, %v", r.ev, r.err)
			default:
			}
			close(release)
			r := <-done
			if r.err != nil || r.ev.Type != Shutdown {
				t.Fatalf("Next = %+v, %v; want the SHUTDOWN event", r.ev, r.err)
			}
		})
	})

	t.Run("over loopback, a 1ns timeout ends other calls but not the long poll", func(t *testing.T) {
		entered := make(chan struct{})
		release := make(chan struct{})
		f := &fakeLambda{
			register: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			next: func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				select {
				case <-release:
					w.Write(fixture(t, "extensions.next.invoke.json"))
				case <-r.Context().Done():
				}
			},
		}
		addr, tr := f.start(t)
		c := NewClient(addr, &http.Client{Transport: tr, Timeout: time.Nanosecond})

		if _, err := c.Register(t.Context(), "slipstream", EventsFor(false)); !isTimeout(err) {
			t.Fatalf("Register = %v, want a client timeout", err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.Next(t.Context())
			done <- err
		}()
		// The request reached the fake: a 1ns deadline would have ended it
		// before it was even written.
		<-entered
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("Next = %v, want the INVOKE event", err)
		}
	})
}

func TestIdentifierIsSentOnLaterCalls(t *testing.T) {
	events := make(chan string, 1)
	events <- string(fixture(t, "extensions.next.invoke.json"))
	f := &fakeLambda{
		register:  registerOK(t, "ext-42"),
		next:      serveEvents(events, "application/json"),
		initError: answer(http.StatusAccepted, `{"status":"OK"}`),
		exitError: answer(http.StatusAccepted, `{"status":"OK"}`),
	}
	c, _ := f.serve(t)
	mustRegister(t, c)
	if _, err := c.Next(t.Context()); err != nil {
		t.Fatalf("Next: %v", err)
	}
	if err := c.InitError(t.Context(), "Extension.ConfigInvalid", errors.New("bad")); err != nil {
		t.Fatalf("InitError: %v", err)
	}
	if err := c.ExitError(t.Context(), "Extension.Crash", errors.New("bad")); err != nil {
		t.Fatalf("ExitError: %v", err)
	}
	for _, path := range []string{pathNext, pathInitError, pathExitError} {
		t.Run("the identifier goes with "+path, func(t *testing.T) {
			reqs := f.calls(path)
			if len(reqs) != 1 {
				t.Fatalf("got %d calls, want 1", len(reqs))
			}
			if v := reqs[0].Header.Get("Lambda-Extension-Identifier"); v != "ext-42" {
				t.Errorf("Lambda-Extension-Identifier = %q, want ext-42", v)
			}
		})
	}
}

func TestReportErrors(t *testing.T) {
	calls := []struct {
		name string
		path string
		call func(c *Client, ctx context.Context, errorType string, err error) error
		op   string
	}{
		{"init error", pathInitError, (*Client).InitError, "report init error"},
		{"exit error", pathExitError, (*Client).ExitError, "report exit error"},
	}
	for _, call := range calls {
		t.Run("an "+call.name+" sends the error type header and body and accepts 202", func(t *testing.T) {
			f := &fakeLambda{register: registerOK(t, "ext-1")}
			f.initError = answer(http.StatusAccepted, `{"status":"OK"}`)
			f.exitError = f.initError
			c, _ := f.serve(t)
			mustRegister(t, c)

			if err := call.call(c, t.Context(), "Extension.ConfigInvalid", errors.New("SLIPSTREAM_LOG_LEVEL: bad")); err != nil {
				t.Fatalf("%s: %v", call.name, err)
			}
			reqs := f.calls(call.path)
			if len(reqs) != 1 {
				t.Fatalf("got %d calls, want 1", len(reqs))
			}
			r := reqs[0]
			if v := r.Header.Get("Lambda-Extension-Function-Error-Type"); v != "Extension.ConfigInvalid" {
				t.Errorf("Lambda-Extension-Function-Error-Type = %q, want Extension.ConfigInvalid", v)
			}
			if v := r.Header.Get("Lambda-Extension-Identifier"); v != "ext-1" {
				t.Errorf("Lambda-Extension-Identifier = %q, want ext-1", v)
			}
			var body map[string]any
			mustUnmarshal(t, r.Body, &body)
			want := map[string]any{"errorMessage": "SLIPSTREAM_LOG_LEVEL: bad", "errorType": "Extension.ConfigInvalid"}
			if !reflect.DeepEqual(body, want) {
				t.Errorf("body = %v, want %v", body, want)
			}
		})

		t.Run("an "+call.name+" without a type or error says Extension.UnknownReason", func(t *testing.T) {
			f := &fakeLambda{register: registerOK(t, "ext-1")}
			f.initError = answer(http.StatusAccepted, "")
			f.exitError = f.initError
			c, _ := f.serve(t)
			mustRegister(t, c)
			if err := call.call(c, t.Context(), "", nil); err != nil {
				t.Fatalf("%s: %v", call.name, err)
			}
			r := f.calls(call.path)[0]
			if v := r.Header.Get("Lambda-Extension-Function-Error-Type"); v != "Extension.UnknownReason" {
				t.Errorf("Lambda-Extension-Function-Error-Type = %q, want Extension.UnknownReason", v)
			}
			var body map[string]any
			mustUnmarshal(t, r.Body, &body)
			if body["errorType"] != "Extension.UnknownReason" || body["errorMessage"] != "Extension.UnknownReason" {
				t.Errorf("body = %v", body)
			}
		})

		for _, st := range []struct {
			status int
			body   string
			want   []string
		}{
			{400, `{"errorType":"InvalidRequestFormat","errorMessage":"bad body"}`, []string{"400", "InvalidRequestFormat"}},
			{403, `{"errorType":"Extension.InvalidExtensionIdentifier","errorMessage":"who?"}`, []string{"403", "Extension.InvalidExtensionIdentifier"}},
			{500, `{"errorType":"Extension.Crash","errorMessage":"boom"}`, []string{"500", "Extension.Crash"}},
		} {
			t.Run("an "+call.name+" answered "+http.StatusText(st.status)+" is an error", func(t *testing.T) {
				f := &fakeLambda{register: registerOK(t, "ext-1")}
				f.initError = answer(st.status, st.body)
				f.exitError = f.initError
				c, _ := f.serve(t)
				mustRegister(t, c)
				err := call.call(c, t.Context(), "Extension.Test", errors.New("x"))
				if err == nil {
					t.Fatal("succeeded, want an error")
				}
				for _, s := range append([]string{call.op}, st.want...) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
			})
		}
	}
}

func TestShutdownReason(t *testing.T) {
	tests := []struct {
		in   string
		want ShutdownReason
	}{
		{"SPINDOWN", ReasonSpindown},
		{"spindown", ReasonSpindown},
		{"Spindown", ReasonSpindown},
		{"TIMEOUT", ReasonTimeout},
		{"timeout", ReasonTimeout},
		{"FAILURE", ReasonFailure},
		{"failure", ReasonFailure},
		{"SandboxTerminated", ReasonOther},
		{"", ReasonOther},
		{"spin down", ReasonOther},
	}
	for _, tt := range tests {
		t.Run("the reason "+strconv.Quote(tt.in)+" is "+string(tt.want), func(t *testing.T) {
			if got := ParseShutdownReason(tt.in); got != tt.want {
				t.Errorf("ParseShutdownReason(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := (Event{Type: Shutdown, ShutdownReason: tt.in}).Reason(); got != tt.want {
				t.Errorf("Event.Reason() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEventDeadline(t *testing.T) {
	t.Run("deadlineMs is read as Unix epoch milliseconds", func(t *testing.T) {
		ev := Event{DeadlineMs: 1795654252978}
		if got := ev.Deadline(); got.UnixMilli() != 1795654252978 || got.Year() != 2026 {
			t.Errorf("Deadline() = %v", got)
		}
	})
	t.Run("a missing deadline is the zero time", func(t *testing.T) {
		if got := (Event{}).Deadline(); !got.IsZero() {
			t.Errorf("Deadline() = %v, want the zero time", got)
		}
	})
}

func mustRegister(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.Register(t.Context(), "slipstream", EventsFor(false)); err != nil {
		t.Fatalf("Register: %v", err)
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
