package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingSink records what the listener enqueues.
type countingSink struct {
	events atomic.Int64
	mu     sync.Mutex
	got    []Event // guarded by mu
}

func (s *countingSink) Enqueue(_ context.Context, events []Event) {
	s.events.Add(int64(len(events)))
	s.mu.Lock()
	s.got = append(s.got, events...)
	s.mu.Unlock()
}

func (s *countingSink) all() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.got...)
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
}

// startListener starts a listener on 127.0.0.1 and returns its base URL.
func startListener(t *testing.T, cfg ListenerConfig, sink Sink) (*Listener, string) {
	t.Helper()
	cfg.Host = "127.0.0.1"
	l := NewListener(cfg, sink)
	uri, err := l.Start()
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if want := "http://sandbox.localdomain:" + strconv.Itoa(port); uri != want {
		t.Errorf("URI %q, want %q", uri, want)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return l, fmt.Sprintf("http://127.0.0.1:%d/telemetry", port)
}

func post(t testing.TB, hc *http.Client, url string, body []byte) int {
	t.Helper()
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// postAsync posts body from another goroutine and sends the status (-1 on
// error) on the returned channel.
func postAsync(hc *http.Client, url string, body []byte) <-chan int {
	status := make(chan int, 1)
	go func() { // not post: t.Fatal belongs to the test goroutine
		resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			status <- -1
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return status
}

func TestListenerStartBinds(t *testing.T) {
	tests := []struct {
		name        string
		lookup      func(ctx context.Context, host string) ([]string, error)
		unspecified bool
	}{
		{"sandbox.localdomain is bound when it resolves", func(_ context.Context, host string) ([]string, error) {
			if host != SandboxHost {
				return nil, fmt.Errorf("looked up %q", host)
			}
			return []string{"::1", "127.0.0.1"}, nil
		}, false},
		{"all interfaces are bound when the name does not resolve", func(context.Context, string) ([]string, error) {
			return nil, &net.DNSError{Err: "no such host", Name: SandboxHost, IsNotFound: true}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &countingSink{}
			l := NewListener(ListenerConfig{LookupHost: tt.lookup}, sink)
			uri, err := l.Start()
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().(*net.TCPAddr)
			if addr.IP.IsUnspecified() != tt.unspecified || (!tt.unspecified && !addr.IP.Equal(net.IPv4(127, 0, 0, 1))) {
				t.Errorf("bound %v", addr)
			}
			if uri != "http://sandbox.localdomain:"+strconv.Itoa(addr.Port) {
				t.Errorf("URI %q for %v", uri, addr)
			}
			url := fmt.Sprintf("http://127.0.0.1:%d/", addr.Port)
			if code := post(t, newTestClient(), url, readFixture(t, "telemetry.post-body.invoke-batch.json")); code != 200 {
				t.Errorf("status %d", code)
			}
			if err := l.Close(context.Background()); err != nil { // drains into the sink
				t.Fatal(err)
			}
			if sink.events.Load() != 3 {
				t.Errorf("%d events reached the sink", sink.events.Load())
			}
		})
	}
	t.Run("a second Start is refused", func(t *testing.T) {
		l, _ := startListener(t, ListenerConfig{}, &countingSink{})
		if _, err := l.Start(); err == nil {
			t.Error("no error")
		}
	})
}

func TestListenerAnswers(t *testing.T) {
	const maxBytes = 262144
	limit := 2*maxBytes + 64<<10
	tooBig := append(append([]byte(`[{"time":"2022-10-21T14:05:03.165Z","type":"function","record":"`), bytes.Repeat([]byte("a"), limit)...), `"}]`...)
	tests := []struct {
		name    string
		method  string
		body    []byte
		chunked bool
		status  int
		events  int64
		check   func(t *testing.T, st ListenerStats, got []Event)
	}{
		{"a valid batch is answered 200 and enqueued", "POST", readFixture(t, "telemetry.post-body.invoke-batch.json"), false, 200, 3,
			func(t *testing.T, st ListenerStats, _ []Event) {
				if st.Batches != 1 || st.Events != 3 || st.Rejected4xx != 0 {
					t.Errorf("stats %+v", st)
				}
			}},
		{"an empty array is answered 200", "POST", []byte(`[]`), false, 200, 0, nil},
		{"an object body is answered 400", "POST", readFixture(t, "platform.start.json"), false, 400, 0,
			func(t *testing.T, st ListenerStats, _ []Event) {
				if st.Rejected4xx != 1 || st.Batches != 0 {
					t.Errorf("stats %+v", st)
				}
			}},
		{"a number body is answered 400", "POST", []byte(`12`), false, 400, 0, nil},
		{"a string body is answered 400", "POST", []byte(`"OK"`), false, 400, 0, nil},
		{"an empty body is answered 400", "POST", nil, false, 400, 0, nil},
		{"GET is answered 405", "GET", nil, false, 405, 0,
			func(t *testing.T, st ListenerStats, _ []Event) {
				if st.Rejected4xx != 1 {
					t.Errorf("stats %+v", st)
				}
			}},
		{"a body over 2 × maxBytes + 64 KiB is answered 413", "POST", tooBig, false, 413, 0,
			func(t *testing.T, st ListenerStats, _ []Event) {
				if st.Oversize != 1 || st.Rejected4xx != 1 {
					t.Errorf("stats %+v", st)
				}
			}},
		{"a chunked body over the limit is answered 413", "POST", tooBig, true, 413, 0,
			func(t *testing.T, st ListenerStats, _ []Event) {
				if st.Oversize != 1 {
					t.Errorf("stats %+v", st)
				}
			}},
		{"a body just under the limit is accepted", "POST", tooBig[:limit-3-1], false, 202, 0, nil},
		{"a body of spaces is answered 400", "POST", []byte(" \n\t "), false, 400, 0, nil},
		{"a body in brackets that is not JSON is answered 200 and kept as a fragment", "POST", []byte(`[{"time":"2022-10-21T14:05:03.165Z","record":"a]`), false, 200, 0,
			func(t *testing.T, st ListenerStats, _ []Event) {
				if st.FragmentsKept != 1 || st.Batches != 0 || st.Rejected4xx != 0 {
					t.Errorf("stats %+v", st)
				}
			}},
		{"invalid UTF-8 is answered 200 and decoded", "POST",
			[]byte("[{\"time\":\"2022-10-21T14:05:03.165Z\",\"type\":\"function\",\"record\":\"caf\xe9 \xff\"}]"), false, 200, 1,
			func(t *testing.T, _ ListenerStats, got []Event) {
				if l := got[0].Record.(*Log); l.Text != "caf\uFFFD \uFFFD" {
					t.Errorf("text %q", l.Text)
				}
			}},
		{"malformed JSON is kept as a fragment and answered 202", "POST", []byte(`[{"time":"2022-10-21T14:05:03.165Z","ty`), false, 202, 0,
			func(t *testing.T, st ListenerStats, _ []Event) {
				if st.FragmentsKept != 1 || st.Rejected4xx != 0 {
					t.Errorf("stats %+v", st)
				}
			}},
		{"a batch with an unknown and a bad event is used and counted", "POST",
			[]byte(`[{"time":"2022-10-21T14:05:03.165Z","type":"platform.new","record":{}},{"time":"x","type":"function","record":"y"},{"time":"2022-10-21T14:05:03.165Z","type":"function","record":"z"}]`),
			false, 200, 3, func(t *testing.T, st ListenerStats, _ []Event) {
				if st.UnknownEvents != 1 || st.BadEvents != 1 || st.Events != 3 {
					t.Errorf("stats %+v", st)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &countingSink{}
			l, url := startListener(t, ListenerConfig{MaxBytes: maxBytes}, sink)
			var rd io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				rd = io.MultiReader(rd) // hides the length: sent chunked
			}
			req, err := http.NewRequest(tt.method, url, rd)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := newTestClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if err := l.Close(context.Background()); err != nil { // drains into the sink
				t.Fatal(err)
			}
			if n := sink.events.Load(); n != tt.events {
				t.Errorf("%d events enqueued, want %d", n, tt.events)
			}
			if tt.check != nil {
				tt.check(t, l.Stats(), sink.all())
			}
		})
	}
}

// splitRecordBody is one batch holding a function log line of n bytes.
func splitRecordBody(n int) []byte {
	return append(append([]byte(`[{"time":"2022-10-21T14:05:03.165Z","type":"function","record":"`),
		bytes.Repeat([]byte("x"), n)...), `"},{"time":"2022-10-21T14:05:03.166Z","type":"function","record":"after"}]`...)
}

func TestListenerStitchesSplitRecords(t *testing.T) {
	const maxBytes = 1 << 20
	const recordSize = 1_500_000
	body := splitRecordBody(recordSize)
	first, second := body[:maxBytes], body[maxBytes:]
	garbage := []byte(`{"this is":"not`)

	t.Run("a 1.5 MB record split across two POSTs is joined into one event", func(t *testing.T) {
		sink := &countingSink{}
		l, url := startListener(t, ListenerConfig{MaxBytes: maxBytes}, sink)
		hc := newTestClient()
		if code := post(t, hc, url, first); code != http.StatusAccepted {
			t.Errorf("first half: status %d", code)
		}
		// The second half is answered before it is joined: 202, not 200.
		if code := post(t, hc, url, second); code != http.StatusAccepted {
			t.Errorf("second half: status %d", code)
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := sink.all()
		if len(got) != 2 {
			t.Fatalf("%d events", len(got))
		}
		if l := got[0].Record.(*Log); len(l.Text) != recordSize {
			t.Errorf("joined line is %d bytes, want %d", len(l.Text), recordSize)
		}
		if st := l.Stats(); st.FragmentsKept != 1 || st.FragmentsJoined != 1 || st.FragmentsUnjoined != 0 || st.Batches != 1 {
			t.Errorf("stats %+v", st)
		}
	})

	tests := []struct {
		name     string
		steps    func(t *testing.T, hc *http.Client, url string, clock *fakeClock)
		unjoined uint64 // after Close
		events   int64
	}{
		{"a fragment followed by a complete batch is counted unjoined", func(t *testing.T, hc *http.Client, url string, _ *fakeClock) {
			post(t, hc, url, first)
			if code := post(t, hc, url, readFixture(t, "telemetry.post-body.invoke-batch.json")); code != 200 {
				t.Errorf("status %d", code)
			}
		}, 1, 3},
		{"a fragment that does not join the next one is counted, the next is kept", func(t *testing.T, hc *http.Client, url string, _ *fakeClock) {
			post(t, hc, url, garbage)
			if code := post(t, hc, url, first); code != http.StatusAccepted {
				t.Errorf("status %d", code)
			}
			if code := post(t, hc, url, second); code != http.StatusAccepted {
				t.Errorf("status %d", code)
			}
		}, 1, 2},
		{"a fragment older than FragmentTTL is not joined", func(t *testing.T, hc *http.Client, url string, clock *fakeClock) {
			post(t, hc, url, first)
			clock.Advance(DefaultFragmentTTL + time.Millisecond)
			if code := post(t, hc, url, second); code != http.StatusAccepted {
				t.Errorf("status %d", code)
			}
		}, 2, 0},
		{"a fragment within FragmentTTL is joined", func(t *testing.T, hc *http.Client, url string, clock *fakeClock) {
			post(t, hc, url, first)
			clock.Advance(DefaultFragmentTTL)
			post(t, hc, url, second)
		}, 0, 2},
		{"a fragment pending at Close is counted unjoined", func(t *testing.T, hc *http.Client, url string, _ *fakeClock) {
			post(t, hc, url, garbage)
		}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &countingSink{}
			clock := &fakeClock{now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
			l := NewListener(ListenerConfig{MaxBytes: maxBytes, Host: "127.0.0.1", Now: clock.Now}, sink)
			if _, err := l.Start(); err != nil {
				t.Fatal(err)
			}
			url := "http://" + l.Addr().String() + "/"
			tt.steps(t, newTestClient(), url, clock)
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := l.Stats(); st.FragmentsUnjoined != tt.unjoined {
				t.Errorf("unjoined %d, want %d (stats %+v)", st.FragmentsUnjoined, tt.unjoined, st)
			}
			if n := sink.events.Load(); n != tt.events {
				t.Errorf("%d events, want %d", n, tt.events)
			}
		})
	}
}

func TestListenerUnderConcurrentPosts(t *testing.T) {
	const workers, posts = 50, 2000
	sink := &countingSink{}
	l, url := startListener(t, ListenerConfig{MaxBytes: 262144}, sink)
	hc := newTestClient()
	jobs := make(chan int)
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				body := fmt.Appendf(nil, `[{"time":"2026-11-26T00:45:33.185Z","type":"platform.start","record":{"requestId":"r%d"}},`+
					`{"time":"2026-11-26T00:45:33.186Z","type":"function","record":"line %d"}]`, i, i)
				resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
			}
		})
	}
	for i := range posts {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	if n := failures.Load(); n != 0 {
		t.Errorf("%d posts failed or were not answered 200", n)
	}
	if code := post(t, hc, url, readFixture(t, "telemetry.post-body.invoke-batch.json")); code != 200 {
		t.Errorf("listener unhealthy afterwards: status %d", code)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := sink.events.Load(); n != 2*posts+3 {
		t.Errorf("%d events reached the sink, want %d", n, 2*posts+3)
	}
	st := l.Stats()
	if st.Batches != posts+1 || st.Events != 2*posts+3 || st.BadEvents != 0 || st.Rejected4xx != 0 || st.FragmentsKept != 0 {
		t.Errorf("stats %+v", st)
	}
	seen := make(map[string]bool, posts)
	for _, ev := range sink.all() {
		if s, ok := ev.Record.(*Start); ok {
			seen[s.RequestID] = true
		}
	}
	if len(seen) != posts+1 {
		t.Errorf("%d distinct requests seen, want %d", len(seen), posts+1)
	}
}

// fullSink drops everything, as the exporter's queue does when full.
type fullSink struct{ dropped atomic.Int64 }

func (s *fullSink) Enqueue(_ context.Context, events []Event) { s.dropped.Add(int64(len(events))) }

func TestListenerLifecycle(t *testing.T) {
	t.Run("a full sink still gets 200: a retry would only resend", func(t *testing.T) {
		sink := &fullSink{}
		l, url := startListener(t, ListenerConfig{}, sink)
		if code := post(t, newTestClient(), url, readFixture(t, "telemetry.post-body.invoke-batch.json")); code != 200 {
			t.Errorf("status %d", code)
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if sink.dropped.Load() != 3 {
			t.Errorf("sink saw %d events", sink.dropped.Load())
		}
	})
	t.Run("Close stops accepting and can be called twice", func(t *testing.T) {
		l := NewListener(ListenerConfig{Host: "127.0.0.1"}, &countingSink{})
		if _, err := l.Start(); err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(context.Background()); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := net.Dial("tcp", addr); err == nil {
			t.Error("still accepting after Close")
		}
		if _, err := l.Start(); err == nil {
			t.Error("Start after Close succeeded")
		}
	})
	t.Run("Close waits for an answered body still on its way to the sink", func(t *testing.T) {
		sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
		l, url := startListener(t, ListenerConfig{}, sink)
		status := postAsync(newTestClient(), url, lineBody(0))
		<-sink.entered
		closed := make(chan error, 1)
		go func() { closed <- l.Close(context.Background()) }()
		<-l.closing()
		if code := <-status; code != 200 { // answered while the sink holds the batch
			t.Errorf("request got %d", code)
		}
		select { // Close cannot return while the batch is blocked in the sink
		case err := <-closed:
			t.Fatalf("Close returned (%v) with a batch not yet delivered", err)
		default:
		}
		close(sink.release)
		if err := <-closed; err != nil {
			t.Error(err)
		}
	})
	t.Run("Close with an expired context reports it and does not wait", func(t *testing.T) {
		sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
		l, url := startListener(t, ListenerConfig{}, sink)
		answered := postAsync(newTestClient(), url, lineBody(0))
		<-sink.entered
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
		close(sink.release)
		// Any status: Close may have cut the connection.
		<-answered
		if err := l.Close(context.Background()); err != nil { // waits for the decode goroutine
			t.Error(err)
		}
	})
}

// blockingSink holds Enqueue until released, to keep a handler in flight.
type blockingSink struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *blockingSink) Enqueue(context.Context, []Event) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
}

func TestListenerDefaultLookupSendsNoDNSQuery(t *testing.T) {
	l := NewListener(ListenerConfig{}, nil)
	t.Run("a name missing from /etc/hosts fails without asking a name server", func(t *testing.T) {
		_, err := l.lookup(context.Background(), "slipstream-not-in-hosts.invalid")
		dnsErr, ok := errors.AsType[*net.DNSError](err)
		if !ok || dnsErr.Err != errNoDNS.Error() {
			t.Fatalf("lookup error %v: the resolver went beyond /etc/hosts", err)
		}
	})
	t.Run("a name in /etc/hosts still resolves", func(t *testing.T) {
		addrs, err := l.lookup(context.Background(), "localhost")
		if err != nil || len(addrs) == 0 {
			t.Fatalf("localhost: %v %v", addrs, err)
		}
	})
}

// gateSink blocks every Enqueue until released and reports each batch.
type gateSink struct {
	release chan struct{}
	got     chan []Event // unbuffered: a receive means Enqueue was entered
	once    sync.Once
}

// open releases the sink; unlike close(s.release), it may be called twice.
func (s *gateSink) open() { s.once.Do(func() { close(s.release) }) }

func newGateSink() *gateSink {
	return &gateSink{release: make(chan struct{}), got: make(chan []Event, 64)}
}

func (s *gateSink) Enqueue(_ context.Context, events []Event) {
	s.got <- events
	<-s.release
}

func lineBody(i int) []byte {
	return fmt.Appendf(nil, `[{"time":"2026-11-26T00:45:33.185Z","type":"function","record":"line %d"}]`, i)
}

func TestListenerAnswersBeforeDecoding(t *testing.T) {
	t.Run("a batch is answered 200 while the sink still holds it", func(t *testing.T) {
		sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
		l, url := startListener(t, ListenerConfig{}, sink)
		if code := post(t, newTestClient(), url, lineBody(1)); code != http.StatusOK {
			t.Errorf("status %d", code)
		}
		<-sink.entered // the batch reaches the sink after the answer, and stays there
		close(sink.release)
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.Batches != 1 || st.Events != 1 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("bodies posted one after another reach the sink in order", func(t *testing.T) {
		const n = 200
		sink := &countingSink{}
		l, url := startListener(t, ListenerConfig{}, sink)
		hc := newTestClient()
		for i := range n {
			if code := post(t, hc, url, lineBody(i)); code != http.StatusOK {
				t.Fatalf("post %d: status %d", i, code)
			}
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := sink.all()
		if len(got) != n {
			t.Fatalf("%d events, want %d", len(got), n)
		}
		for i, ev := range got {
			if want := fmt.Sprintf("line %d", i); ev.Record.(*Log).Text != want {
				t.Fatalf("event %d is %q, want %q", i, ev.Record.(*Log).Text, want)
			}
		}
	})

	t.Run("Close drains every answered body into the sink", func(t *testing.T) {
		const n = 5
		sink := newGateSink()
		l, url := startListener(t, ListenerConfig{}, sink)
		hc := newTestClient()
		for i := range n {
			if code := post(t, hc, url, lineBody(i)); code != http.StatusOK {
				t.Fatalf("post %d: status %d", i, code)
			}
		}
		<-sink.got // the first batch is in the sink, the others are queued
		closed := make(chan error, 1)
		go func() { closed <- l.Close(context.Background()) }()
		<-l.closing()
		close(sink.release)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if got := len(sink.got); got != n-1 {
			t.Errorf("%d more batches reached the sink, want %d", got, n-1)
		}
		if st := l.Stats(); st.Batches != n || st.Events != n || st.Abandoned != 0 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("Close whose context ends discards what is left and counts it", func(t *testing.T) {
		const n = 3
		sink := newGateSink()
		l, url := startListener(t, ListenerConfig{}, sink)
		hc := newTestClient()
		for i := range n {
			if code := post(t, hc, url, lineBody(i)); code != http.StatusOK {
				t.Fatalf("post %d: status %d", i, code)
			}
		}
		<-sink.got
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
		close(sink.release)
		if err := l.Close(context.Background()); err != nil { // waits for the decode goroutine
			t.Fatal(err)
		}
		if st := l.Stats(); st.Batches != 1 || st.Abandoned != n-1 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("a full handoff makes the next POST wait, not drop", func(t *testing.T) {
		sink := newGateSink()
		waiting := make(chan struct{})
		l := NewListener(ListenerConfig{Host: "127.0.0.1", HandoffBytes: 1}, sink)
		l.waitHook = func() { close(waiting) }
		if _, err := l.Start(); err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String() + "/"
		hc := newTestClient()
		if code := post(t, hc, url, lineBody(0)); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		<-sink.got // the first batch holds all the room until the sink returns
		status := postAsync(hc, url, lineBody(1))
		<-waiting
		select {
		case code := <-status:
			t.Fatalf("second POST answered %d while the handoff was full", code)
		default:
		}
		close(sink.release)
		if code := <-status; code != http.StatusOK {
			t.Errorf("second POST: status %d", code)
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.Waited != 1 || st.Abandoned != 0 || st.Events != 2 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("a POST whose request ends while waiting is answered 503 and counted", func(t *testing.T) {
		sink := newGateSink()
		l, url := startListener(t, ListenerConfig{HandoffBytes: 1}, sink)
		defer close(sink.release)
		if code := post(t, newTestClient(), url, lineBody(0)); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		<-sink.got
		ctx, cancel := context.WithCancel(context.Background())
		l.waitHook = cancel // the request ends as soon as it waits
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1/", bytes.NewReader(lineBody(1)))
		rec := httptest.NewRecorder()
		l.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d", rec.Code)
		}
		if st := l.Stats(); st.Waited != 1 || st.Abandoned != 1 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("a split record whose first half ends in ']' is answered 200 and still joined", func(t *testing.T) {
		sink := &countingSink{}
		l, url := startListener(t, ListenerConfig{}, sink)
		hc := newTestClient()
		if code := post(t, hc, url, []byte(`[{"time":"2022-10-21T14:05:03.165Z","type":"function","record":"abc]`)); code != http.StatusOK {
			t.Errorf("first half: status %d", code)
		}
		if code := post(t, hc, url, []byte(`def"}]`)); code != http.StatusAccepted {
			t.Errorf("second half: status %d", code)
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := sink.all()
		if len(got) != 1 || got[0].Record.(*Log).Text != "abc]def" {
			t.Errorf("events %+v", got)
		}
		if st := l.Stats(); st.FragmentsKept != 1 || st.FragmentsJoined != 1 || st.FragmentsUnjoined != 0 || st.Batches != 1 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("a body refused 400 still drops a pending fragment, in order", func(t *testing.T) {
		sink := &countingSink{}
		l, url := startListener(t, ListenerConfig{}, sink)
		hc := newTestClient()
		post(t, hc, url, []byte(`[{"time":"2022-10-21T14:05:03.165Z","type":"function","record":"abc`))
		if code := post(t, hc, url, []byte(`{"not":"an array"}`)); code != http.StatusBadRequest {
			t.Errorf("status %d", code)
		}
		post(t, hc, url, []byte(`def"}]`)) // would have joined the first
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.FragmentsKept != 2 || st.FragmentsUnjoined != 2 || st.FragmentsJoined != 0 || st.Rejected4xx != 1 {
			t.Errorf("stats %+v", st)
		}
		if n := sink.events.Load(); n != 0 {
			t.Errorf("%d events", n)
		}
	})
}
