package exporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstream-otel/slipstream/config"
	"github.com/slipstream-otel/slipstream/emulator/sink"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// Values the default redaction set must keep from the backend, the spill
// file and the agent's own log.
var secretValues = []string{
	"AKIAIOSFODNN7EXAMPLE",
	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	"mF_9.B5f-4.1JqM",
	"s3cr3tpw",
	"hunter2",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
}

// secretBatch is one invocation whose function logs carry the secrets in a
// text line, a JSON line's message and fields, and an error's message and
// stack trace (from which the mapper derives exception.* attributes).
func secretBatch(t *testing.T, id string) []telemetry.Event {
	t.Helper()
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	ts := `"time":"2026-01-02T03:04:05Z"`
	body := "[" + strings.Join([]string{
		`{` + ts + `,"type":"platform.start","record":{"requestId":"` + id + `"}}`,
		`{` + ts + `,"type":"function","record":` + q("2026-01-02T03:04:05.000Z\t"+id+"\tINFO\tkey AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") + `}`,
		`{` + ts + `,"type":"function","record":{"level":"INFO","requestId":"` + id + `","message":"call with Authorization: Bearer mF_9.B5f-4.1JqM","password":"hunter2","db":"postgres://app:s3cr3tpw@db/x"}}`,
		`{` + ts + `,"type":"function","record":{"level":"ERROR","requestId":"` + id + `","errorType":"AuthError","errorMessage":"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk rejected","stackTrace":["at login (password=hunter2)"]}}`,
		`{` + ts + `,"type":"platform.runtimeDone","record":{"requestId":"` + id + `","status":"success"}}`,
		`{` + ts + `,"type":"platform.report","record":{"requestId":"` + id + `","status":"success","metrics":{"durationMs":1}}}`,
	}, ",") + "]"
	evs, _, err := telemetry.DecodeBatch([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// recordingRT keeps every request body as the backend decodes it, and passes
// the request on.
type recordingRT struct {
	next http.RoundTripper
	// mu guards bodies.
	mu     sync.Mutex
	bodies [][]byte
}

func (w *recordingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	plain := b
	if r.Header.Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			plain, _ = io.ReadAll(zr)
		}
	}
	w.mu.Lock()
	w.bodies = append(w.bodies, plain)
	w.mu.Unlock()
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	return w.next.RoundTrip(r2)
}

func (w *recordingRT) all() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Join(w.bodies, nil)
}

func assertNoSecret(t *testing.T, where string, b []byte) {
	t.Helper()
	for _, s := range secretValues {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds %q", where, s)
		}
	}
}

func redactingConfig(t *testing.T) *config.Config {
	cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
	cfg.ServiceName = "fn"
	cfg.RedactDefaults = true
	return cfg
}

func TestNoRedactedValueReachesTheBackendOrTheLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := redactingConfig(t)
		col := sink.New(sink.Options{})
		rec := &recordingRT{next: col.Transport()}
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: rec}, NewMapper: realMapper})
		h.run(t)
		ctx := context.Background()
		h.p.Invoke(ctx, invokeEvent("r1", time.Now().Add(time.Minute)))
		h.p.Enqueue(ctx, secretBatch(t, "r1"))
		if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		h.close(t)
		wire := rec.all()
		logs := col.Snapshot().LogBodies()
		if len(logs) != 3 {
			t.Fatalf("received log bodies %v, want the 3 lines", logs)
		}
		assertNoSecret(t, "what the backend received", wire)
		assertNoSecret(t, "the agent's log", []byte(h.logs.String()))
		for _, want := range []string{"[REDACTED]", "exception.message", "AuthError"} {
			if !bytes.Contains(wire, []byte(want)) {
				t.Errorf("what the backend received lacks %q", want)
			}
		}
	})
}

func TestNoRedactedValueReachesTheSpillFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := redactingConfig(t)
		h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: refusedRT()}, NewMapper: realMapper})
		h.run(t)
		ctx := context.Background()
		h.p.Invoke(ctx, invokeEvent("r1", time.Now().Add(time.Minute)))
		h.p.Enqueue(ctx, secretBatch(t, "r1"))
		// A second batch stays in the intake until Close spills it too.
		if err := h.p.Shutdown(ctx, shutdownEvent(time.Now().Add(2*time.Second), "spindown")); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		h.p.Enqueue(ctx, secretBatch(t, "r2"))
		h.close(t)
		files := spillFiles(t, cfg.SpillDir)
		if len(files) == 0 {
			t.Fatal("no spill file")
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("[REDACTED]")) {
				t.Errorf("spill file %s holds no redacted log line", f)
			}
			assertNoSecret(t, "the spill file", b)
		}
		assertNoSecret(t, "the agent's log", []byte(h.logs.String()))
	})
}
