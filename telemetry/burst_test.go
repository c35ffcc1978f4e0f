//go:build e2e

package telemetry

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// This file runs on the wall clock (SpoolQuiet periods measured by real
// timers while real POSTs arrive): it belongs to `make e2e`.

// Burst bodies are decoded when deliveries pause, and, for a function that
// logs without pause, once they have waited ten quiet periods: the sink
// gets the first batch while POSTs still come back to back.
func TestBurstBodiesAreDecodedWithoutAPause(t *testing.T) {
	sink := make(signalSink, 1<<16)
	// The spool never fills (a full spool makes POSTs wait, a pause).
	l, url := startListener(t, ListenerConfig{MaxBytes: 4096, SpoolDir: t.TempDir(), SpoolBytes: 256 << 20,
		SpoolQuiet: 200 * time.Millisecond}, sink) // longer than any stall of this loop
	body := burstBody(l.burst)
	hc := newTestClient()
	for i := range 30_000 {
		if code := post(t, hc, url, body); code != http.StatusOK {
			t.Fatalf("post %d: status %d", i, code)
		}
		select {
		case <-sink:
			return
		default:
		}
	}
	t.Fatalf("30,000 back-to-back burst POSTs and no batch decoded (stats %+v)", l.Stats())
}

// burstBody returns a batch of function lines of at least n bytes.
func burstBody(n int) []byte {
	b := []byte("[")
	for i := 0; len(b) < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"time":"2026-11-26T00:45:33.185Z","type":"function","record":"burst line %d"}`, i)
	}
	return append(b, ']')
}
