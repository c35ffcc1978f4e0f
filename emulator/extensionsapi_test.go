//go:build e2e

package emulator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestExtensionsAPI(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Extensions = nil
	cfg.Freeze = false
	cfg.InProcessExtensions = []string{"other"} // keeps registration open while "probe" is tested
	e, initDone := initWithProbe(t, cfg)
	url := "http://" + e.RuntimeAPI() + "/2020-01-01/extension"

	// Extensions API register errors
	for _, tc := range []struct {
		name, extName, body, wantType string
		wantStatus                    int
	}{
		{"a name that is not a launched extension is rejected", "bootstrap", `{"events":["INVOKE"]}`, "Extension.InvalidExtensionName", 403},
		{"a missing name is rejected", "", `{"events":["INVOKE"]}`, "Extension.InvalidExtensionName", 403},
		{"an unknown event type is rejected", "probe", `{"events":["INVOKE","RESTORE"]}`, "Extension.InvalidEventType", 403},
		{"a body that is not JSON is rejected", "probe", `{"events":`, "InvalidRequestFormat", 400},
		{"configurationKeys are rejected as deprecated", "probe", `{"events":[],"configurationKeys":["a"]}`, "InvalidRequestFormat", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, b := apiCall(t, "POST", url+"/register", map[string]string{hdrExtName: tc.extName}, tc.body)
			if st != tc.wantStatus || errorTypeOf(b) != tc.wantType {
				t.Errorf("got %d %s, want %d %s", st, b, tc.wantStatus, tc.wantType)
			}
		})
	}

	var id string
	t.Run("the launched name registers and gets accountId when asked", func(t *testing.T) {
		st, h, b := apiCall(t, "POST", url+"/register", map[string]string{hdrExtName: "probe", hdrExtFeature: "foo, accountId"}, `{"events":["INVOKE","SHUTDOWN"]}`)
		id = h.Get(hdrExtID)
		if st != 200 || id == "" || !strings.Contains(string(b), `"accountId":"123456789012"`) || !strings.Contains(string(b), `"functionName":"test-fn"`) {
			t.Errorf("got %d %s id=%q", st, b, id)
		}
	})
	t.Run("a second registration of the same name is rejected", func(t *testing.T) {
		st, _, b := apiCall(t, "POST", url+"/register", map[string]string{hdrExtName: "probe"}, `{}`)
		if st != 403 || errorTypeOf(b) != "Extension.InvalidExtensionState" {
			t.Errorf("got %d %s", st, b)
		}
	})
	t.Run("next without or with an unknown identifier is rejected", func(t *testing.T) {
		st, _, b := apiCall(t, "GET", url+"/event/next", nil, "")
		if st != 403 || errorTypeOf(b) != "Extension.MissingExtensionIdentifier" {
			t.Errorf("missing: got %d %s", st, b)
		}
		st, _, b = apiCall(t, "GET", url+"/event/next", map[string]string{hdrExtID: "nope"}, "")
		if st != 403 || errorTypeOf(b) != "Extension.InvalidExtensionIdentifier" {
			t.Errorf("unknown: got %d %s", st, b)
		}
	})
	p := &probe{t: t, base: "http://" + e.RuntimeAPI(), id: id}
	first := p.next()
	register(t, e, "other").next() // no events: blocks until shutdown
	if err := <-initDone; err != nil {
		t.Fatalf("init: %v", err)
	}
	t.Run("registration after init is closed", func(t *testing.T) {
		st, _, b := apiCall(t, "POST", url+"/register", map[string]string{hdrExtName: "probe"}, `{}`)
		if st != 403 || errorTypeOf(b) != "Extension.RegistrationClosed" {
			t.Errorf("got %d %s", st, b)
		}
	})
	t.Run("INVOKE carries an epoch deadline, the request ID, the ARN and tracing", func(t *testing.T) {
		before := time.Now()
		done := make(chan InvokeResult, 1)
		go func() {
			res, _ := e.Invoke(context.Background(), nil, InvokeOptions{RequestID: "r1", TraceHeader: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"})
			done <- res
		}()
		ev := <-first
		// Extensions API: deadlineMs is epoch ms (now + timeout)
		if ev.EventType != "INVOKE" || ev.RequestID != "r1" || ev.DeadlineMs < before.Add(3*time.Second).UnixMilli() ||
			ev.InvokedFunctionARN != "arn:aws:lambda:us-east-1:123456789012:function:test-fn" ||
			ev.Tracing == nil || ev.Tracing.Type != "X-Amzn-Trace-Id" || !strings.HasPrefix(ev.Tracing.Value, "Root=1-5759e988") {
			t.Errorf("got %+v", ev)
		}
		first = p.next()
		if res := <-done; res.Status != StatusSuccess {
			t.Errorf("invoke %+v", res)
		}
	})
	t.Run("exit/error needs the error type header, answers 202, then rejects calls", func(t *testing.T) {
		st, _, b := apiCall(t, "POST", url+"/exit/error", map[string]string{hdrExtID: id}, `{}`)
		if st != 400 {
			t.Errorf("without error type: got %d %s", st, b)
		}
		st, _, b = apiCall(t, "POST", url+"/exit/error", map[string]string{hdrExtID: id, hdrExtErrorType: "Extension.Broken"}, `{"errorMessage":"x","errorType":"y","stackTrace":[]}`)
		if st != 202 {
			t.Errorf("got %d %s", st, b)
		}
		if _, ok := <-first; ok {
			t.Error("the pending next returned an event after exit/error")
		}
		st, _, b = apiCall(t, "GET", url+"/event/next", map[string]string{hdrExtID: id}, "")
		if st != 403 || errorTypeOf(b) != "Extension.InvalidExtensionState" {
			t.Errorf("next after exit/error: got %d %s", st, b)
		}
	})
}

func TestInitFailures(t *testing.T) {
	t.Run("an extension that calls init/error fails init with Extension.InitError", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.Extensions = nil
		e, initDone := initWithProbe(t, cfg)
		p := register(t, e, "probe", "INVOKE")
		st, _, b := apiCall(t, "POST", p.base+"/2020-01-01/extension/init/error", map[string]string{hdrExtID: p.id, hdrExtErrorType: "Extension.ConfigInvalid"}, "")
		if st != 202 {
			t.Fatalf("init/error: %d %s", st, b)
		}
		var ie *InitError
		if err := <-initDone; !errors.As(err, &ie) || ie.ErrorType != errExtensionInit {
			t.Errorf("init: %v", err)
		}
	})
	t.Run("an extension that never calls next fails init at the init timeout", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.Extensions = nil
		cfg.InitTimeout = 300 * time.Millisecond
		var events []string
		cfg.OnEvent = func(ev Event) { events = append(events, string(ev.JSON)) }
		e, initDone := initWithProbe(t, cfg)
		register(t, e, "probe", "INVOKE")
		var ie *InitError
		if err := <-initDone; !errors.As(err, &ie) || ie.Status != StatusTimeout || !strings.Contains(ie.Detail, "probe") {
			t.Fatalf("init: %v", err)
		}
		e.mu.Lock() // OnEvent runs under e.mu
		defer e.mu.Unlock()
		found := false
		for _, ev := range events {
			found = found || strings.Contains(ev, `"platform.initReport"`) && strings.Contains(ev, `"status":"timeout"`)
		}
		if !found {
			t.Errorf("no initReport with status timeout in %q", events)
		}
	})
	t.Run("a missing bootstrap fails Start", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.Function = "/nonexistent/bootstrap"
		if _, err := Start(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "Runtime.InvalidEntrypoint") {
			t.Errorf("got %v", err)
		}
	})
}

func TestShutdown(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Extensions = append(cfg.Extensions, bin.stubborn)
	cfg.ShutdownTimeout = 500 * time.Millisecond
	e, initDone := initWithProbe(t, cfg)
	p := register(t, e, "probe", "SHUTDOWN")
	next := p.next()
	if err := <-initDone; err != nil {
		t.Fatal(err)
	}
	if _, err := e.Invoke(t.Context(), nil, InvokeOptions{}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	res := shutdown(t, e)
	ev := <-next
	t.Run("SHUTDOWN carries reason spindown and an epoch deadline", func(t *testing.T) {
		// Extensions API
		if ev.EventType != "SHUTDOWN" || ev.ShutdownReason != ReasonSpindown || ev.DeadlineMs < before.Add(cfg.ShutdownTimeout).UnixMilli()-1 {
			t.Errorf("got %+v", ev)
		}
	})
	t.Run("an extension ignoring SHUTDOWN is killed at the deadline, the others exit", func(t *testing.T) {
		// Lambda lifecycle: SIGKILL after the deadline
		if len(res.Killed) != 1 || res.Killed[0] != "stubborn" {
			t.Errorf("killed %v", res.Killed)
		}
		for _, n := range []string{"slipstream-floor", "stubborn", "probe"} {
			if _, ok := res.ExtensionExit[n]; !ok {
				t.Errorf("no exit time for %s: %v", n, res.ExtensionExit)
			}
		}
		if res.ExtensionExit["slipstream-floor"] >= res.ExtensionExit["stubborn"] {
			t.Errorf("exit times %v", res.ExtensionExit)
		}
		if ps := e.Processes(); len(ps) != 0 {
			t.Errorf("still running: %+v", ps)
		}
	})
}

func TestResets(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Timeout = 500 * time.Millisecond
	var events []string
	cfg.OnEvent = func(ev Event) { events = append(events, string(ev.JSON)) }
	e := start(t, cfg)
	reset := func() []string { // events since the last call; OnEvent runs under e.mu
		e.mu.Lock()
		defer e.mu.Unlock()
		got := events
		events = nil
		return got
	}
	has := func(evs []string, parts ...string) bool {
	next:
		for _, ev := range evs {
			for _, p := range parts {
				if !strings.Contains(ev, p) {
					continue next
				}
			}
			return true
		}
		return false
	}
	reset()
	for _, tc := range []struct {
		name, payload string
		status        Status
		errType       string
	}{
		{"a function exceeding its timeout ends with status timeout and a reset", `{"action":"sleep","ms":60000}`, StatusTimeout, errSandboxTimedout},
		{"a panicking function ends with Runtime.ExitError and a reset", `{"action":"panic"}`, StatusError, errRuntimeExit},
		{"a function exiting during an invoke ends with Runtime.ExitError", `{"action":"exit"}`, StatusError, errRuntimeExit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Invoke(t.Context(), []byte(tc.payload), InvokeOptions{RequestID: "bad"})
			if err != nil || res.Status != tc.status || res.ErrorType != tc.errType || errorTypeOf(res.Response) == "" {
				t.Fatalf("got %+v %s, %v", res, res.Response, err)
			}
			evs := reset()
			for _, typ := range []string{TypeRuntimeDone, TypeReport} {
				if !has(evs, `"type":"`+typ+`"`, `"status":"`+string(tc.status)+`"`, `"errorType":"`+tc.errType+`"`) {
					t.Errorf("no %s with status %s in %q", typ, tc.status, evs)
				}
			}
			// The next invoke re-runs init inside the invoke (Lambda lifecycle, phase "invoke").
			res, err = e.Invoke(t.Context(), []byte(`{"action":"echo"}`), InvokeOptions{})
			if err != nil || res.Status != StatusSuccess {
				t.Fatalf("invoke after reset: %+v, %v", res, err)
			}
			if evs := reset(); !has(evs, `"platform.initStart"`, `"phase":"invoke"`) || !has(evs, `"platform.initReport"`, `"phase":"invoke"`, `"status":"success"`) {
				t.Errorf("no suppressed init in %q", evs)
			}
		})
	}
	if st := e.Stats(); st.Inits != 4 {
		t.Errorf("inits %d, want 4", st.Inits)
	}
}

func TestTooManyExtensions(t *testing.T) {
	t.Run("the eleventh extension is rejected with Extension.TooManyExtensions", func(t *testing.T) {
		// Extensions API: 10 extensions per function.
		cfg := baseConfig(t)
		cfg.Extensions = nil
		for i := range 11 {
			cfg.InProcessExtensions = append(cfg.InProcessExtensions, fmt.Sprintf("x%d", i))
		}
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Shutdown(context.Background(), "")
		for i := range 10 {
			register(t, e, fmt.Sprintf("x%d", i))
		}
		st, _, b := apiCall(t, "POST", "http://"+e.RuntimeAPI()+"/2020-01-01/extension/register", map[string]string{hdrExtName: "x10"}, `{}`)
		if st != 403 || errorTypeOf(b) != "Extension.TooManyExtensions" {
			t.Errorf("got %d %s", st, b)
		}
	})
}

func TestExtensionCrash(t *testing.T) {
	t.Run("an extension dying during an invoke fails it with Extension.Crash and resets the environment", func(t *testing.T) {
		// Lambda lifecycle: failure during Invoke ⇒ reset; Extensions API Extension.Crash.
		cfg := baseConfig(t)
		cfg.Extensions = []string{bin.crashy}
		e := start(t, cfg)
		res, err := e.Invoke(t.Context(), nil, InvokeOptions{})
		if err != nil || res.Status != StatusError || res.ErrorType != errExtensionCrash {
			t.Fatalf("got %+v, %v", res, err)
		}
		if _, err := e.Invoke(t.Context(), nil, InvokeOptions{}); err != nil {
			t.Fatal(err)
		}
		if st := e.Stats(); st.Inits != 2 {
			t.Errorf("inits %d, want 2 (a suppressed init after the reset)", st.Inits)
		}
	})
}
