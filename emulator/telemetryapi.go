package emulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Subscription limits (Telemetry API buffering table).
const (
	minItems, maxItemsLimit   = 1000, 10000
	minBytes, maxBytesLimit   = 262144, 1048576
	minTimeout, maxTimeoutLim = 25, 30000
	defaultItems              = 10000
	defaultBytes              = 262144
	defaultTimeout            = 1000
)

// Accepted schema versions (Telemetry API).
var schemaVersions = []string{"2022-07-01", "2022-12-13", "2025-01-29"}

type subscribeRequest struct {
	SchemaVersion string   `json:"schemaVersion"`
	Types         []string `json:"types"`
	Buffering     *struct {
		MaxItems  *int `json:"maxItems"`
		MaxBytes  *int `json:"maxBytes"`
		TimeoutMs *int `json:"timeoutMs"`
	} `json:"buffering"`
	Destination *struct {
		Protocol string `json:"protocol"`
		URI      string `json:"URI"`
		Port     int    `json:"port"`
	} `json:"destination"`
}

// subscription is a validated Telemetry API subscription.
type subscription struct {
	types                         []string
	maxItems, maxBytes, timeoutMs int
	url                           string // rewritten to 127.0.0.1 (Telemetry API)
}

// validateSubscription checks a PUT body like Lambda's schema does and returns
// the 400 ValidationError message on failure (Telemetry API).
func validateSubscription(body []byte) (subscription, string) {
	var req subscribeRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return subscription{}, "invalid JSON: " + err.Error()
	}
	if !slices.Contains(schemaVersions, req.SchemaVersion) {
		return subscription{}, fmt.Sprintf("schemaVersion %q: must be one of %v", req.SchemaVersion, schemaVersions)
	}
	if len(req.Types) == 0 {
		return subscription{}, "types: at least one of platform, function, extension is required"
	}
	for _, t := range req.Types {
		if t != "platform" && t != "function" && t != "extension" {
			return subscription{}, fmt.Sprintf("types: %q is not one of platform, function, extension", t)
		}
	}
	s := subscription{types: slices.Compact(slices.Sorted(slices.Values(req.Types))), maxItems: defaultItems, maxBytes: defaultBytes, timeoutMs: defaultTimeout}
	if b := req.Buffering; b != nil {
		for _, f := range []struct {
			name     string
			v        *int
			dst      *int
			min, max int
		}{
			{"maxItems", b.MaxItems, &s.maxItems, minItems, maxItemsLimit},
			{"maxBytes", b.MaxBytes, &s.maxBytes, minBytes, maxBytesLimit},
			{"timeoutMs", b.TimeoutMs, &s.timeoutMs, minTimeout, maxTimeoutLim},
		} {
			if f.v == nil {
				continue
			}
			if *f.v < f.min || *f.v > f.max {
				return subscription{}, fmt.Sprintf("buffering.%s: %d is outside %d..%d", f.name, *f.v, f.min, f.max)
			}
			*f.dst = *f.v
		}
	}
	d := req.Destination
	if d == nil {
		return subscription{}, "destination is required"
	}
	if d.Protocol != "HTTP" {
		// TCP destinations are documented (Telemetry API) but not emulated.
		return subscription{}, fmt.Sprintf("destination.protocol %q: this emulator supports HTTP only", d.Protocol)
	}
	u, err := url.Parse(d.URI)
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return subscription{}, fmt.Sprintf("destination.URI %q: must be http://sandbox.localdomain:PORT[/PATH]", d.URI)
	}
	if h := u.Hostname(); h != "sandbox.localdomain" && h != "sandbox" {
		return subscription{}, fmt.Sprintf("destination.URI %q: host must be sandbox.localdomain", d.URI)
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 || p == 9001 {
		return subscription{}, fmt.Sprintf("destination.URI %q: invalid port", d.URI)
	}
	u.Host = net.JoinHostPort("127.0.0.1", u.Port()) // Telemetry API: sandbox.localdomain → loopback
	s.url = u.String()
	return s, ""
}

// handleTelemetrySubscribe serves PUT /2022-07-01/telemetry (Telemetry API).
func (e *Emulator) handleTelemetrySubscribe(w http.ResponseWriter, r *http.Request) {
	if !e.cfg.TelemetrySupported {
		// Telemetry API: classic RIE / SAM answer 202 NotSupported without validation.
		writeJSON(w, http.StatusAccepted, apiError{"Telemetry.NotSupported", "Telemetry API is not supported"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestFormat", "read body: "+err.Error())
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ext, ok := e.extensionFromHeader(w, r)
	if !ok {
		return
	}
	if !e.subscriptionsOpen {
		writeError(w, http.StatusForbidden, "Telemetry.SubscriptionClosed", "Telemetry API subscription is closed")
		return
	}
	s, msg := validateSubscription(body)
	if msg != "" {
		writeError(w, http.StatusBadRequest, "ValidationError", msg)
		return
	}
	if old := ext.sub; old != nil {
		old.close()
	}
	sub := newSubscriber(e, ext.name, s)
	ext.sub = sub
	e.emitLocked(TypeTelemetrySubscription, subscriptionRecord{Name: ext.name, State: "Subscribed", Types: s.types})
	// Telemetry API: events produced before the subscription (this one included)
	// are replayed to it during init.
	for _, ev := range e.initLog {
		sub.add(ev.typ, ev.raw)
	}
	e.subs = append(e.subs, sub)
	e.wg.Go(sub.run)
	writeJSON(w, http.StatusOK, "OK")
}

// subscriber buffers and delivers events to one extension's listener
// (Telemetry API): batches by maxItems/maxBytes/timeoutMs, one POST in flight,
// bounded retries with backoff, platform.logsDropped on overflow or failure.
type subscriber struct {
	e    *Emulator
	name string
	sub  subscription
	wake chan struct{} // capacity 1: buffer or state changed

	mu sync.Mutex // guards the fields below
	// buf holds encoded events waiting for delivery; bufBytes their size.
	buf      [][]byte
	bufBytes int
	first    time.Time // when the oldest buffered event arrived
	frozen   bool      // the environment is frozen: no new POST starts
	flushNow bool      // deliver regardless of the buffering timeout
	closed   bool
	inFlight bool
	// dropped* accumulate until a logsDropped event can be queued.
	droppedRecords, droppedBytes int64
	dropReason                   string
}

func newSubscriber(e *Emulator, name string, s subscription) *subscriber {
	return &subscriber{e: e, name: name, sub: s, wake: make(chan struct{}, 1), frozen: e.frozen}
}

func (s *subscriber) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

const reasonSlow = "Consumer seems to have fallen behind as it has not acknowledged receipt of logs."

// add queues one encoded event when the subscription selects its type. Log
// records beyond the buffer cap are dropped and counted; platform events are
// always kept (there are few of them).
func (s *subscriber) add(typ string, raw []byte) {
	if !slices.Contains(s.sub.types, category(typ)) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if category(typ) != "platform" && s.bufBytes+len(raw) > s.e.cfg.TelemetryBufferBytes {
		s.droppedRecords++
		s.droppedBytes += int64(len(raw))
		if s.dropReason == "" {
			s.dropReason = reasonSlow
		}
		s.e.stats.add(func(st *Stats) { st.DroppedRecords++; st.DroppedBytes += int64(len(raw)) })
		return
	}
	s.appendLocked(raw)
	s.poke()
}

func (s *subscriber) appendLocked(raw []byte) {
	if len(s.buf) == 0 {
		s.first = time.Now()
	}
	s.buf = append(s.buf, raw)
	s.bufBytes += len(raw)
}

// noteDropsLocked queues a platform.logsDropped for drops counted so far.
func (s *subscriber) noteDropsLocked() {
	if s.droppedRecords == 0 || !slices.Contains(s.sub.types, "platform") {
		s.droppedRecords, s.droppedBytes, s.dropReason = 0, 0, ""
		return
	}
	raw := encodeEvent(time.Now(), TypeLogsDropped, logsDroppedRecord{DroppedBytes: s.droppedBytes, DroppedRecords: s.droppedRecords, Reason: s.dropReason})
	s.appendLocked(raw)
	s.droppedRecords, s.droppedBytes, s.dropReason = 0, 0, ""
	s.e.stats.add(func(st *Stats) { st.LogsDroppedEvents++ })
}

func (s *subscriber) setFrozen(f bool) {
	s.mu.Lock()
	s.frozen = f
	s.mu.Unlock()
	s.poke()
}

// flush asks for immediate delivery and reports whether the buffer is empty
// and nothing is in flight.
func (s *subscriber) flush() (idle bool) {
	s.mu.Lock()
	s.flushNow = true
	idle = len(s.buf) == 0 && !s.inFlight && s.droppedRecords == 0
	s.mu.Unlock()
	s.poke()
	return idle
}

func (s *subscriber) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.poke()
}

// next blocks until a batch is due and returns it, or nil when closed.
func (s *subscriber) next() [][]byte {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil
		}
		var wait time.Duration = -1
		if !s.frozen {
			s.noteDropsLocked()
		}
		if !s.frozen && len(s.buf) > 0 {
			due := s.first.Add(time.Duration(s.sub.timeoutMs) * time.Millisecond)
			if s.flushNow || len(s.buf) >= s.sub.maxItems || s.bufBytes >= s.sub.maxBytes || !time.Now().Before(due) {
				batch := s.takeLocked()
				s.inFlight = true
				s.mu.Unlock()
				return batch
			}
			wait = time.Until(due)
		}
		if len(s.buf) == 0 {
			s.flushNow = false
		}
		s.mu.Unlock()
		if wait < 0 {
			<-s.wake
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// takeLocked removes up to maxItems events / maxBytes bytes (at least one event).
func (s *subscriber) takeLocked() [][]byte {
	n, size := 0, 0
	for n < len(s.buf) && n < s.sub.maxItems && (n == 0 || size+len(s.buf[n]) <= s.sub.maxBytes) {
		size += len(s.buf[n])
		n++
	}
	batch := slices.Clone(s.buf[:n])
	s.buf = slices.Delete(s.buf, 0, n)
	s.bufBytes -= size
	if len(s.buf) > 0 {
		s.first = time.Now()
	}
	return batch
}

// run is the subscriber's delivery goroutine (owned by Emulator.wg).
func (s *subscriber) run() {
	log := s.e.log.With(slog.String("subscriber", s.name))
	for {
		batch := s.next()
		if batch == nil {
			return
		}
		err := s.deliver(batch)
		s.mu.Lock()
		s.inFlight = false
		if err != nil {
			var n int64
			for _, b := range batch {
				n += int64(len(b))
			}
			s.droppedRecords += int64(len(batch))
			s.droppedBytes += n
			s.dropReason = "could not send events: " + err.Error()
		}
		s.mu.Unlock()
		if err != nil {
			log.Warn("telemetry batch dropped", slog.Int("events", len(batch)), slog.String("error", err.Error()))
			s.e.stats.add(func(st *Stats) { st.FailedBatches++; st.DroppedRecords += int64(len(batch)) })
		}
		s.e.notify()
	}
}

// deliver POSTs one batch, retrying failures with exponential backoff
// (Telemetry API: "Lambda retries with back-off"), at most TelemetryMaxAttempts.
func (s *subscriber) deliver(batch [][]byte) error {
	body := make([]byte, 0, 2+len(batch)*64)
	body = append(body, '[')
	for i, b := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
	}
	body = append(body, ']')
	sum := sha256.Sum256(body)
	seq := base64.StdEncoding.EncodeToString(sum[:])
	backoff := 50 * time.Millisecond
	var err error
	for attempt := 1; ; attempt++ {
		err = s.post(body, seq)
		s.e.stats.add(func(st *Stats) {
			st.POSTs++
			if err == nil {
				st.Events += int64(len(batch))
			}
		})
		if err == nil || attempt >= s.e.cfg.TelemetryMaxAttempts {
			return err
		}
		s.e.stats.add(func(st *Stats) { st.Retries++ })
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.e.closing:
			t.Stop()
			return err
		}
		backoff = min(2*backoff, time.Second)
		// Do not retry into a frozen environment; wait for the thaw.
		for {
			s.mu.Lock()
			frozen, closed := s.frozen, s.closed
			s.mu.Unlock()
			if closed {
				return err
			}
			if !frozen {
				break
			}
			<-s.wake
		}
	}
}

func (s *subscriber) post(body []byte, seq string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.e.cfg.TelemetryPOSTTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.sub.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sequence-Id", seq) // Telemetry API (RIE header)
	resp, err := s.e.client.Do(req)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return cerr
}
