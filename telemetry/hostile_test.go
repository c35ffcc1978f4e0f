package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// markerSink tells when an event carrying a marker has arrived.
type markerSink struct {
	mu      sync.Mutex
	waiting map[string]chan struct{} // marker -> closed on arrival
	events  int
}

func newMarkerSink() *markerSink { return &markerSink{waiting: map[string]chan struct{}{}} }

func (s *markerSink) expect(marker string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.waiting[marker] = ch
	return ch
}

func (s *markerSink) Enqueue(_ context.Context, events []Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events += len(events)
	for _, ev := range events {
		l, ok := ev.Record.(*Log)
		if !ok {
			continue
		}
		for m, ch := range s.waiting {
			if strings.Contains(l.Text, m) || strings.Contains(l.Message, m) {
				close(ch)
				delete(s.waiting, m)
			}
		}
	}
}

// nextInvocation is a well-formed batch of one invocation whose log line
// carries marker.
func nextInvocation(marker string) []byte {
	id := "8f9d2c4e-7b1a-4c3d-9e8f-0a1b2c3d4e5f"
	return []byte(`[{"time":"2026-01-02T03:04:05.000Z","type":"platform.start","record":{"requestId":"` + id + `"}},` +
		`{"time":"2026-01-02T03:04:05.001Z","type":"function","record":"` + marker + `"},` +
		`{"time":"2026-01-02T03:04:05.002Z","type":"platform.runtimeDone","record":{"requestId":"` + id + `","status":"success"}}]`)
}

// hostile is one kind of bad input: the requests it sends.
type hostile struct {
	name string
	send func(t *testing.T, hc *http.Client, url string)
}

func postWith(t *testing.T, hc *http.Client, url string, body []byte, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func hostileInputs(limit int64) []hostile {
	one := func(body []byte) func(t *testing.T, hc *http.Client, url string) {
		return func(t *testing.T, hc *http.Client, url string) {
			if code := post(t, hc, url, body); code >= 500 {
				t.Errorf("answered %d", code)
			}
		}
	}
	ev := func(record string) string {
		return `{"time":"2026-01-02T03:04:05Z","type":"function","record":` + record + `}`
	}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	deepInRecord := `{"a":` + strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000) + `}`
	return []hostile{
		{"a truncated batch", one([]byte(`[{"time":"2026-01-02T03:04:05Z","type":"function","record":"cut he`))},
		{"a batch truncated inside an escape", one([]byte(`[` + ev(`"ab\u00`)))},
		{"nesting deeper than the JSON decoder allows", one([]byte(deep))},
		{"a record nested 5000 levels deep", one([]byte(`[` + ev(deepInRecord) + `]`))},
		{"a JSON log line nested 5000 levels deep", one([]byte(`[` + ev(fmt.Sprintf("%q", deepInRecord)) + `]`))},
		{"fields of the wrong JSON type", one([]byte(`[{"time":123,"type":["function"],"record":5},` +
			`{"time":"2026-01-02T03:04:05Z","type":"platform.report","record":{"requestId":7,"metrics":"none","status":{}}},` +
			`{"time":"2026-01-02T03:04:05Z","type":"platform.start","record":[]},` +
			`{"time":"not a time","type":"function","record":"x"},42,null,"text",[],{}]`))},
		{"a JSON object instead of a batch", one([]byte(`{"time":"2026-01-02T03:04:05Z","type":"function","record":"x"}`))},
		{"an empty body", one(nil)},
		{"a string as large as the body limit allows", one([]byte(`[` + ev(`"`+strings.Repeat("x", int(limit)-200)+`"`) + `]`))},
		{"a body over the limit", func(t *testing.T, hc *http.Client, url string) {
			if code := post(t, hc, url, bytes.Repeat([]byte(" "), int(limit)+1)); code != http.StatusRequestEntityTooLarge {
				t.Errorf("answered %d, want 413", code)
			}
		}},
		{"invalid UTF-8 in strings and keys", one([]byte("[" + ev("\"bad \xff\xfe\xc3 bytes\"") + "," + ev("{\"k\xff\":\"v\xc0\xaf\",\"message\":\"m\xed\xa0\x80\"}") + "]"))},
		{"escapes of lone surrogates", one([]byte(`[` + ev(`"\ud800 and \udfff"`) + `]`))},
		{"a body labelled gzip that is not", func(t *testing.T, hc *http.Client, url string) {
			h := http.Header{"Content-Encoding": {"gzip"}, "Content-Type": {"application/json"}}
			if code := postWith(t, hc, url, []byte("\x1f\x8b\x08\x00garbage"), h); code >= 500 {
				t.Errorf("answered %d", code)
			}
			if code := postWith(t, hc, url, []byte(`[`+ev(`"plain under a gzip label"`)+`]`), h); code != http.StatusOK {
				t.Errorf("answered %d, want 200", code)
			}
		}},
		{"binary noise", one(bytes.Repeat([]byte{0, 0xff, '[', ']', '"', '\\'}, 4096))},
		{"the wrong method", func(t *testing.T, hc *http.Client, url string) {
			resp, err := hc.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("answered %d, want 405", resp.StatusCode)
			}
		}},
		{"a flood of small requests", func(t *testing.T, hc *http.Client, url string) {
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Go(func() {
					for i := range 250 {
						body := []byte(`[` + ev(fmt.Sprintf(`"flood %d-%d"`, w, i)) + `]`)
						if i%5 == 0 {
							body = []byte(`[`)
						}
						resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
						if err != nil {
							t.Error(err)
							return
						}
						resp.Body.Close()
					}
				})
			}
			wg.Wait()
		}},
	}
}

// After each kind of hostile input, the next invocation's batch is still
// decoded and handed to the sink.
func TestListenerSurvivesHostileInput(t *testing.T) {
	for _, spool := range []bool{false, true} {
		cfg := ListenerConfig{MaxBytes: MinBufferBytes}
		if spool {
			cfg.SpoolDir, cfg.SpoolBytes = t.TempDir(), 8<<20
		}
		sink := newMarkerSink()
		l, url := startListener(t, cfg, sink)
		hc := newTestClient()
		for i, h := range hostileInputs(l.limit) {
			t.Run(fmt.Sprintf("spool %v: after %s", spool, h.name), func(t *testing.T) {
				h.send(t, hc, url)
				marker := fmt.Sprintf("next-invocation-%d", i)
				arrived := sink.expect(marker)
				if code := post(t, hc, url, nextInvocation(marker)); code != http.StatusOK {
					t.Fatalf("next invocation answered %d", code)
				}
				<-arrived // a listener that lost it hangs the test until go test's -timeout
			})
		}
		if st := l.Stats(); st.Batches == 0 || st.Rejected4xx == 0 || st.BadEvents == 0 {
			t.Errorf("stats %+v: want batches, rejections and bad events counted", st)
		}
	}
}

// Invalid UTF-8 in a JSON log field becomes U+FFFD when decoded: left as
// it is, it fails the protobuf encoding of every OTLP request carrying the
// record, and the records queued behind it are never sent.
func TestInvalidUTF8InFieldsIsReplaced(t *testing.T) {
	for _, rec := range []string{
		"{\"message\":\"m\",\"k\":\"v\xff\",\"n\":{\"x\":\"\xed\xa0\x80\"}}",
		"\"{\\\"message\\\":\\\"m\\\",\\\"k\\\":\\\"v\xff\\\",\\\"n\\\":{\\\"x\\\":\\\"\xed\xa0\x80\\\"}}\"",
	} {
		evs, _, err := DecodeBatch([]byte(`[{"time":"2026-01-02T03:04:05Z","type":"function","record":` + rec + `}]`))
		if err != nil {
			t.Fatal(err)
		}
		l, ok := evs[0].Record.(*Log)
		if !ok || !l.JSON {
			t.Fatalf("record %q not decoded as a JSON line: %+v", rec, evs[0])
		}
		for k, v := range l.Fields {
			if !utf8.Valid(v) || !json.Valid(v) {
				t.Errorf("field %s = %q: not valid UTF-8 JSON", k, v)
			}
		}
	}
}
