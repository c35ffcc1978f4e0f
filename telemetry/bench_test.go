package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// signalSink tells the benchmark when a batch has reached it.
type signalSink chan int

func (s signalSink) Enqueue(_ context.Context, events []Event) { s <- len(events) }

// BenchmarkListenerPost measures one Telemetry API POST of about 1 MiB of
// log lines against a live listener: rtt-ns/op is the time Lambda's one
// delivery in flight is held (request sent to answer read); ns/op also
// includes the wait until the batch has reached the sink, so each POST
// finds the listener idle. SpoolQuiet is off: a 1 MiB body is a burst
// body, which would otherwise wait for a pause in deliveries.
func BenchmarkListenerPost(b *testing.B) {
	const maxBytes = 1 << 20
	sink := make(signalSink, 1)
	l := NewListener(ListenerConfig{MaxBytes: maxBytes, Host: "127.0.0.1", SpoolQuiet: -1}, sink)
	benchmarkListenerPost(b, l, sink, logLinesBody(maxBytes))
}

// BenchmarkListenerPostSpooled is BenchmarkListenerPost with the handoff
// held full, so that every body is written to the spool before the answer
// and read back by the decode goroutine.
func BenchmarkListenerPostSpooled(b *testing.B) {
	const maxBytes = 1 << 20
	sink := make(signalSink, 1)
	l := NewListener(ListenerConfig{MaxBytes: maxBytes, Host: "127.0.0.1", SpoolDir: b.TempDir(), SpoolBytes: 4 * maxBytes, SpoolQuiet: -1}, sink)
	if !l.queue.room.TryAcquire(l.queue.bound) {
		b.Fatal("handoff not empty")
	}
	defer l.queue.room.Release(l.queue.bound)
	benchmarkListenerPost(b, l, sink, logLinesBody(maxBytes))
	if st := l.Stats(); st.Waited != 0 || st.Spooled == 0 {
		b.Errorf("stats %+v", st)
	}
}

// logLinesBody is a batch of function log lines of about maxBytes.
func logLinesBody(maxBytes int) []byte {
	var body []byte
	body = append(body, '[')
	for i := 0; len(body) < maxBytes-300; i++ {
		if i > 0 {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"time":"2026-11-26T00:45:33.%03dZ","type":"function","record":"2026-11-26T00:45:33.%03dZ\te3c00079-0f56-4943-a190-0821f0e429bd\tINFO\tprocessed item %d of the batch"}`, i%1000, i%1000, i)
	}
	return append(body, ']')
}

func benchmarkListenerPost(b *testing.B, l *Listener, sink signalSink, body []byte) {
	if _, err := l.Start(); err != nil {
		b.Fatal(err)
	}
	defer l.Close(context.Background())
	url := "http://" + l.Addr().String() + "/"
	hc := newTestClient()
	b.SetBytes(int64(len(body)))
	var rtt time.Duration
	for b.Loop() {
		start := time.Now()
		if code := post(b, hc, url, body); code != http.StatusOK {
			b.Fatalf("status %d", code)
		}
		rtt += time.Since(start)
		<-sink
	}
	b.ReportMetric(float64(rtt.Nanoseconds())/float64(b.N), "rtt-ns/op")
}
