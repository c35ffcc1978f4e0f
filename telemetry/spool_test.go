package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// syncBuffer is a log destination the handlers and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// warnings counts the WARN lines logged so far.
func (b *syncBuffer) warnings() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), `"level":"WARN"`)
}

// startSpooling starts a listener on 127.0.0.1 with cfg and returns it
// with its URL and its log. A POST that waits for room runs waitHook; nil
// means none may: the test fails and the sink opens, so that it does not
// hang.
func startSpooling(t *testing.T, cfg ListenerConfig, sink *gateSink, waitHook func()) (*Listener, string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Host = "127.0.0.1"
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	l := NewListener(cfg, sink)
	l.waitHook = waitHook
	if waitHook == nil {
		l.waitHook = func() {
			t.Error("a POST waited for room although the spool had some")
			sink.open()
		}
	}
	if _, err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return l, "http://" + l.Addr().String() + "/", logs
}

// texts receives n batches from sink and returns their log lines in order.
func texts(sink *gateSink, n int) []string {
	var got []string
	for range n {
		for _, ev := range <-sink.got {
			got = append(got, ev.Record.(*Log).Text)
		}
	}
	return got
}

func lines(from, to int) []string {
	var want []string
	for i := from; i < to; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	return want
}

// spoolFile returns the listener's spool file, failing the test when none
// was created.
func spoolFile(t *testing.T, l *Listener) *os.File {
	t.Helper()
	l.spool.mu.Lock()
	defer l.spool.mu.Unlock()
	if l.spool.f == nil {
		t.Fatal("no spool file")
	}
	return l.spool.f
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("spool dir holds %d entries, want none: the file is unlinked at once", len(entries))
	}
}

func TestListenerSpool(t *testing.T) {
	t.Run("bodies beyond the handoff are spooled, answered at once, and reach the sink in order", func(t *testing.T) {
		const n = 20
		dir := t.TempDir()
		sink := newGateSink()
		l, url, logs := startSpooling(t, ListenerConfig{HandoffBytes: 1, SpoolDir: dir, SpoolBytes: 1 << 20}, sink, nil)
		hc := newTestClient()
		if code := post(t, hc, url, lineBody(0)); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		<-sink.got // the first batch holds all the room until the sink returns
		var spooledBytes uint64
		for i := 1; i <= n; i++ {
			if code := post(t, hc, url, lineBody(i)); code != http.StatusOK {
				t.Fatalf("post %d: status %d", i, code)
			}
			spooledBytes += uint64(len(lineBody(i)))
		}
		if st := l.Stats(); st.Waited != 0 || st.Spooled != n || st.SpooledBytes != spooledBytes || st.Batches != 1 {
			t.Errorf("stats %+v", st)
		}
		assertEmptyDir(t, dir)

		f := spoolFile(t, l)
		sink.open()
		if got, want := texts(sink, n), lines(1, n+1); !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		// Every spooled body was read back before its batch reached the sink.
		l.spool.mu.Lock()
		used, end := l.spool.used, l.spool.end
		fi, err := f.Stat()
		l.spool.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if used != 0 || end != 0 || fi.Size() != 0 {
			t.Errorf("spool not emptied: used %d, end %d, size %d", used, end, fi.Size())
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.Batches != n+1 || st.Events != n+1 || st.Abandoned != 0 {
			t.Errorf("stats %+v", st)
		}
		if len(sink.got) != 0 {
			t.Errorf("%d more batches reached the sink", len(sink.got))
		}
		if logs.warnings() != 0 {
			t.Errorf("%d warnings", logs.warnings())
		}
		assertEmptyDir(t, dir)
	})

	t.Run("a full spool makes the next POST wait, not drop", func(t *testing.T) {
		sink := newGateSink()
		waiting := make(chan struct{})
		var mayWait atomic.Bool
		size := int64(len(lineBody(1)))
		l, url, _ := startSpooling(t, ListenerConfig{HandoffBytes: 1, SpoolDir: t.TempDir(), SpoolBytes: 2 * size}, sink, func() {
			if !mayWait.Load() {
				t.Error("a POST waited for room although the spool had some")
				sink.open()
				return
			}
			close(waiting)
		})
		hc := newTestClient()
		for i := range 3 {
			if code := post(t, hc, url, lineBody(i)); code != http.StatusOK {
				t.Fatalf("post %d: status %d", i, code)
			}
			if i == 0 {
				<-sink.got
			}
		}
		if t.Failed() { // a POST waited and opened the sink
			return
		}
		mayWait.Store(true)
		status := postAsync(hc, url, lineBody(3))
		<-waiting
		select {
		case code := <-status:
			t.Fatalf("POST answered %d while the handoff and the spool were full", code)
		default:
		}
		sink.open()
		if code := <-status; code != http.StatusOK {
			t.Errorf("waiting POST: status %d", code)
		}
		if got, want := texts(sink, 3), lines(1, 4); !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.Waited != 1 || st.Spooled != 2 || st.SpooledBytes != uint64(2*size) || st.Events != 4 || st.Abandoned != 0 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("Close whose context ends counts spooled bodies as abandoned", func(t *testing.T) {
		const n = 3
		sink := newGateSink()
		l, url, _ := startSpooling(t, ListenerConfig{HandoffBytes: 1, SpoolDir: t.TempDir(), SpoolBytes: 1 << 20}, sink, nil)
		hc := newTestClient()
		if code := post(t, hc, url, lineBody(0)); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		<-sink.got
		for i := 1; i <= n; i++ {
			if code := post(t, hc, url, lineBody(i)); code != http.StatusOK {
				t.Fatalf("post %d: status %d", i, code)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
		sink.open()
		if err := l.Close(context.Background()); err != nil { // waits for the decode goroutine
			t.Fatal(err)
		}
		if st := l.Stats(); st.Spooled != n || st.Batches != 1 || st.Abandoned != n {
			t.Errorf("stats %+v", st)
		}
		l.spool.mu.Lock()
		closed, used := l.spool.closed, l.spool.used
		l.spool.mu.Unlock()
		if !closed || used != 0 {
			t.Errorf("spool closed %v, %d bytes outstanding", closed, used)
		}
	})

	t.Run("a spooled body that cannot be read back is abandoned, with one warning", func(t *testing.T) {
		sink := newGateSink()
		l, url, logs := startSpooling(t, ListenerConfig{HandoffBytes: 1, SpoolDir: t.TempDir(), SpoolBytes: 1 << 20}, sink, nil)
		hc := newTestClient()
		for i := range 4 {
			if code := post(t, hc, url, lineBody(i)); code != http.StatusOK {
				t.Fatalf("post %d: status %d", i, code)
			}
			if i == 0 {
				<-sink.got
			}
		}
		f := spoolFile(t, l)
		l.spool.mu.Lock()
		err := f.Truncate(0) // the spooled bodies are gone
		l.spool.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		sink.open()
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.Spooled != 3 || st.Abandoned != 3 || st.Events != 1 {
			t.Errorf("stats %+v", st)
		}
		if n := logs.warnings(); n != 1 {
			t.Errorf("%d warnings, want 1", n)
		}
	})
}

func TestListenerSpoolUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
	}{
		{"a spool dir that is a regular file falls back to waiting, with one warning", file},
		{"a spool dir under a regular file falls back to waiting, with one warning", filepath.Join(file, "spool")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newGateSink()
			waiting := make(chan struct{}, 2)
			l, url, logs := startSpooling(t, ListenerConfig{HandoffBytes: 1, SpoolDir: tt.dir, SpoolBytes: 1 << 20}, sink, func() { waiting <- struct{}{} })
			hc := newTestClient()
			if code := post(t, hc, url, lineBody(0)); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			<-sink.got
			first, second := postAsync(hc, url, lineBody(1)), postAsync(hc, url, lineBody(2))
			<-waiting // both tried the spool first
			<-waiting
			sink.open()
			if code1, code2 := <-first, <-second; code1 != http.StatusOK || code2 != http.StatusOK {
				t.Errorf("status %d and %d", code1, code2)
			}
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := l.Stats(); st.Waited != 2 || st.Spooled != 0 || st.Events != 3 || st.Abandoned != 0 {
				t.Errorf("stats %+v", st)
			}
			if n := logs.warnings(); n != 1 {
				t.Errorf("%d warnings, want 1", n)
			}
		})
	}
}

func TestListenerSpoolJoinsSplitRecords(t *testing.T) {
	first := []byte(`[{"time":"2022-10-21T14:05:03.165Z","type":"function","record":"abc`)
	second := []byte(`def"}]`)
	tests := []struct {
		name    string
		handoff int // room left beside lineBody(0), held in the sink
		spooled uint64
	}{
		{"a split record whose halves were both spooled is joined", 0, 2},
		{"a split record whose second half alone was spooled is joined", len(first), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newGateSink()
			cfg := ListenerConfig{HandoffBytes: len(lineBody(0)) + tt.handoff, SpoolDir: t.TempDir(), SpoolBytes: 1 << 20}
			l, url, _ := startSpooling(t, cfg, sink, nil)
			hc := newTestClient()
			if code := post(t, hc, url, lineBody(0)); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			<-sink.got
			if code := post(t, hc, url, first); code != http.StatusAccepted {
				t.Errorf("first half: status %d", code)
			}
			if code := post(t, hc, url, second); code != http.StatusAccepted {
				t.Errorf("second half: status %d", code)
			}
			if st := l.Stats(); st.Spooled != tt.spooled || st.Waited != 0 {
				t.Errorf("stats %+v", st)
			}
			sink.open()
			if got := texts(sink, 1); !slices.Equal(got, []string{"abcdef"}) {
				t.Errorf("events %q", got)
			}
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := l.Stats(); st.FragmentsKept != 1 || st.FragmentsJoined != 1 || st.FragmentsUnjoined != 0 || st.Batches != 2 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// A steady flood, where bodies wait in the spool all the time, keeps the
// disk within about twice the bound: a full file is left to drain and a
// new one takes the writes.
func TestSpoolDiskStaysBoundedWhileBodiesWait(t *testing.T) {
	const bound, body, waiting = 4096, 1000, 2
	s := newSpool(t.TempDir(), bound, slog.New(slog.DiscardHandler))
	type ref struct {
		seg *spoolSeg
		off int64
	}
	var queue []ref
	segs := map[*spoolSeg]bool{}
	for i := range 1000 {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, body)
		var seg *spoolSeg
		var off int64
		written, pushed := s.write(b, func(sg *spoolSeg, o int64) bool { seg, off = sg, o; return true })
		if !written || !pushed {
			t.Fatalf("write %d refused with %d bytes waiting", i, s.used)
		}
		segs[seg] = true
		queue = append(queue, ref{seg, off})
		if len(queue) > waiting {
			r := queue[0]
			queue = queue[1:]
			got, err := s.read(r.seg, r.off, body)
			if err != nil || len(got) != body {
				t.Fatalf("read back: %v", err)
			}
			s.release(r.seg, body)
		}
		var disk int64
		for seg := range segs {
			if seg.pending == 0 && seg != s.cur {
				delete(segs, seg) // released and closed
				continue
			}
			fi, err := seg.f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			disk += fi.Size()
		}
		if disk > 2*(bound+body) {
			t.Fatalf("after %d bodies the spool files hold %d bytes, bound %d", i+1, disk, bound)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}
