//go:build e2e

package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sync/atomic"
	"testing"

	"github.com/slipstream-otel/slipstream/internal/leaktest"
)

// Binaries built once by TestMain.
var bin struct {
	fn, floor, stubborn, crashy string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "emulator-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin.fn = filepath.Join(dir, "fn", "bootstrap")
	bin.floor = filepath.Join(dir, "ext", "slipstream-floor")
	bin.stubborn = filepath.Join(dir, "ext", "stubborn")
	bin.crashy = filepath.Join(dir, "ext", "crashy")
	for _, b := range [][2]string{{bin.fn, "./testdata/fn"}, {bin.floor, "../cmd/slipstream-floor"}, {bin.stubborn, "./testdata/stubborn"}, {bin.crashy, "./testdata/crashy"}} {
		out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[1], err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// baseConfig runs the test function with the floor extension.
func baseConfig(t *testing.T) Config {
	return Config{
		Function:           bin.fn,
		Extensions:         []string{bin.floor},
		FunctionName:       "test-fn",
		Env:                []string{"SLIPSTREAM_LISTENER_PORT=0"}, // the floor binds a free port
		TelemetrySupported: true,
		Freeze:             true,
	}
}

func start(t *testing.T, cfg Config) *Emulator {
	t.Helper()
	e, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { e.Shutdown(context.Background(), "") }) // ErrClosed when the test shut it down
	return e
}

func shutdown(t *testing.T, e *Emulator) ShutdownResult {
	t.Helper()
	res, err := e.Shutdown(context.Background(), ReasonSpindown)
	if err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	return res
}

// apiCall does one HTTP call and returns status, headers and body.
func apiCall(t *testing.T, method, url string, hdr map[string]string, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func errorTypeOf(b []byte) string {
	var e apiError
	json.Unmarshal(b, &e) // a non-JSON body yields ""
	return e.ErrorType
}

// probe is the test acting as an in-process extension over HTTP.
type probe struct {
	t    *testing.T
	base string
	id   string
}

func register(t *testing.T, e *Emulator, name string, events ...string) *probe {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"events": events})
	st, h, b := apiCall(t, "POST", "http://"+e.RuntimeAPI()+"/2020-01-01/extension/register", map[string]string{hdrExtName: name}, string(body))
	if st != 200 {
		t.Fatalf("register %s: %d %s", name, st, b)
	}
	return &probe{t: t, base: "http://" + e.RuntimeAPI(), id: h.Get(hdrExtID)}
}

type nextEvent struct {
	EventType          string        `json:"eventType"`
	DeadlineMs         int64         `json:"deadlineMs"`
	RequestID          string        `json:"requestId"`
	InvokedFunctionARN string        `json:"invokedFunctionArn"`
	Tracing            *traceContext `json:"tracing"`
	ShutdownReason     string        `json:"shutdownReason"`
}

// next calls /event/next in a goroutine; the channel yields the event.
func (p *probe) next() <-chan nextEvent {
	ch := make(chan nextEvent, 1)
	go func() {
		defer close(ch)
		req, _ := http.NewRequest("GET", p.base+"/2020-01-01/extension/event/next", nil)
		req.Header.Set(hdrExtID, p.id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		var ev nextEvent
		if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&ev) == nil {
			ch <- ev
		}
	}()
	return ch
}

func (p *probe) subscribe(body string) (int, []byte) {
	st, _, b := apiCall(p.t, "PUT", p.base+"/2022-07-01/telemetry", map[string]string{hdrExtID: p.id, "Content-Type": "application/json"}, body)
	return st, b
}

func subscriptionBody(port int, types ...string) string {
	b, _ := json.Marshal(map[string]any{
		"schemaVersion": "2025-01-29", "types": types,
		"buffering":   map[string]int{"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
		"destination": map[string]string{"protocol": "HTTP", "URI": fmt.Sprintf("http://sandbox.localdomain:%d/telemetry", port)},
	})
	return string(b)
}

// decoded is one received telemetry event.
type decoded struct {
	Time   string          `json:"time"`
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

func (d decoded) field(name string) string {
	var m map[string]any
	if json.Unmarshal(d.Record, &m) != nil {
		return ""
	}
	switch v := m[name].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// collector is a telemetry listener the test controls.
type collector struct {
	srv    *httptest.Server
	events chan decoded
	gate   chan struct{} // when non-nil, each POST waits for it to be closed
	inFl   atomic.Int32
	maxFl  atomic.Int32
	posts  atomic.Int32
	fail   atomic.Int32 // answer 503 to this many POSTs first
	// arrived receives the POST count as each POST arrives.
	arrived chan int32
}

func newCollector(t *testing.T, gate chan struct{}) *collector {
	c := &collector{events: make(chan decoded, 100000), gate: gate, arrived: make(chan int32, 10000)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := c.inFl.Add(1)
		defer c.inFl.Add(-1)
		for {
			m := c.maxFl.Load()
			if n <= m || c.maxFl.CompareAndSwap(m, n) {
				break
			}
		}
		c.arrived <- c.posts.Add(1)
		if c.gate != nil {
			<-c.gate
		}
		if c.fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var batch []decoded
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			t.Errorf("telemetry POST is not a JSON array: %v", err)
		}
		for _, ev := range batch {
			c.events <- ev
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) port() int { return c.srv.Listener.Addr().(*net.TCPAddr).Port }

// until receives events until one satisfies stop; it returns all received.
func (c *collector) until(t *testing.T, stop func(decoded) bool) []decoded {
	t.Helper()
	var got []decoded
	for {
		select {
		case ev := <-c.events:
			got = append(got, ev)
			if stop(ev) {
				return got
			}
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for telemetry; got %d events", len(got))
		}
	}
}

func typeIs(typ, reqID string) func(decoded) bool {
	return func(d decoded) bool { return d.Type == typ && (reqID == "" || d.field("requestId") == reqID) }
}

func types(evs []decoded) []string {
	var ts []string
	for _, ev := range evs {
		ts = append(ts, ev.Type)
	}
	return ts
}

// initWithProbe starts init in the background with an in-process extension
// "probe"; the test must make the probe call next to finish init.
func initWithProbe(t *testing.T, cfg Config) (*Emulator, <-chan error) {
	t.Helper()
	cfg.InProcessExtensions = append(cfg.InProcessExtensions, "probe")
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(context.Background(), "") }) // ErrClosed when already shut down
	done := make(chan error, 1)
	go func() { done <- e.Init(t.Context()) }()
	return e, done
}

func procStateOf(t *testing.T, pid int) byte {
	t.Helper()
	return procState(pid)
}

func TestFunctionRuns(t *testing.T) {
	e := start(t, baseConfig(t))

	t.Run("an aws-lambda-go function returns its response through Invoke", func(t *testing.T) {
		res, err := e.Invoke(t.Context(), []byte(`{"action":"echo"}`), InvokeOptions{RequestID: "req-1"})
		if err != nil {
			t.Fatal(err)
		}
		var body response
		if err := json.Unmarshal(res.Response, &body); err != nil {
			t.Fatalf("response %s: %v", res.Response, err)
		}
		if res.Status != StatusSuccess || body.RequestID != "req-1" || body.Function != "test-fn" || body.Echo != "echo" {
			t.Errorf("got %+v, body %+v", res, body)
		}
		if res.InitDuration == 0 {
			t.Error("the first invoke after init carries no init duration")
		}
		if res.BilledDuration < res.Duration || res.MaxMemoryUsedMB == 0 {
			t.Errorf("billed %v for %v, memory %d MB", res.BilledDuration, res.Duration, res.MaxMemoryUsedMB)
		}
	})

	t.Run("the extension's ready time is measured from exec to its first next", func(t *testing.T) {
		if d, ok := e.ExtensionReady()["slipstream-floor"]; !ok || d <= 0 {
			t.Errorf("ready times %v", e.ExtensionReady())
		}
	})

	t.Run("the invoke endpoint answers like AWS's emulator", func(t *testing.T) {
		st, h, b := apiCall(t, "POST", e.InvokeURL(), map[string]string{"X-Amzn-RequestId": "req-http"}, `{"action":"echo"}`)
		if st != 200 || !strings.Contains(string(b), `"requestId":"req-http"`) || h.Get("X-Amzn-RequestId") != "req-http" {
			t.Errorf("got %d %s %v", st, b, h)
		}
	})

	t.Run("a handler error is returned as error JSON with status error", func(t *testing.T) {
		st, h, b := apiCall(t, "POST", e.InvokeURL(), nil, `{"action":"error"}`)
		if st != 200 || h.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(string(b), "handler failed") {
			t.Errorf("got %d %s %v", st, b, h)
		}
		res, err := e.Invoke(t.Context(), []byte(`{"action":"error"}`), InvokeOptions{})
		if err != nil || res.Status != StatusError || res.ErrorType == "" {
			t.Errorf("got %+v, %v", res, err)
		}
	})

	t.Run("the function and the extension are frozen between invocations", func(t *testing.T) {
		// Lambda lifecycle freeze/thaw
		ps := e.Processes()
		if len(ps) != 2 {
			t.Fatalf("processes %+v", ps)
		}
		for _, p := range ps {
			if s := procStateOf(t, p.PID); s != 'T' {
				t.Errorf("%s (pid %d) is in state %q, want T", p.Name, p.PID, s)
			}
		}
		if _, err := e.Invoke(t.Context(), nil, InvokeOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, p := range e.Processes() {
			if s := procStateOf(t, p.PID); s != 'T' {
				t.Errorf("after a second invoke %s is in state %q, want T", p.Name, s)
			}
		}
	})

	t.Run("shutdown sends SHUTDOWN and the floor extension exits before the deadline", func(t *testing.T) {
		res := shutdown(t, e)
		if _, ok := res.ExtensionExit["slipstream-floor"]; !ok || len(res.Killed) != 0 {
			t.Errorf("got %+v", res)
		}
		if _, err := e.Invoke(t.Context(), nil, InvokeOptions{}); err != ErrClosed {
			t.Errorf("invoke after shutdown: %v", err)
		}
	})

	t.Run("no emulator goroutine is left after shutdown", func(t *testing.T) {
		leaktest.Check(t, "github.com/slipstream-otel/slipstream/emulator")
	})
}

type response struct {
	Echo      string `json:"echo"`
	RequestID string `json:"requestId"`
	Function  string `json:"function"`
}
