package exporter

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipstream-otel/slipstream/exporter/internal/metriccodec"
	"github.com/slipstream-otel/slipstream/internal/privdir"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// spillVersion is the format version of spill files written: 2 added
// OTLP (the function's own data). Files of version 1 are still read.
const spillVersion = 2

// spill stores what could not be sent as OUR data: the decoded Telemetry
// API events (after the pre-queue filter) the unsent spans and log records
// were mapped from. The OTLP exporters expose no payload, so this is the
// only thing that can be persisted; a replay re-maps it. One JSON file per
// batch, named <created unix ns>-<id>.json, 0600 in a 0700 directory;
// bounded by max bytes (oldest files go first) and ttl.
type spill struct {
	dir  string
	max  int64
	ttl  time.Duration
	env  string // region/function/version: files of another environment are left alone
	now  func() time.Time
	rand io.Reader
	// beforeDelete, when set (tests), runs before a delivered file is
	// deleted; false skips the delete, as if the process were killed
	// between the 2xx and the delete.
	beforeDelete func(id string) bool
}

type spillDoc struct {
	V        int            `json:"v"`
	ID       string         `json:"id"`
	Env      string         `json:"env"`
	Created  time.Time      `json:"created"`
	Shutdown *spillShutdown `json:"shutdown,omitempty"`
	// Context is the latest initStart/restoreStart when no spilled item
	// was mapped from it: a replay takes the resource from it (faas.instance)
	// without mapping its phase again (its span was already handled).
	Context *spillEvent  `json:"context,omitempty"`
	Events  []spillEvent `json:"events"`
	// Metrics are the metric collections the final flush could not send,
	// in our own encoding (metriccodec.Encode); a replay sends them as they are.
	Metrics []json.RawMessage `json:"metrics,omitempty"`
	// OTLP are the function's own requests (package receiver) not sent,
	// as OTLP protobuf (version 2); a replay sends them as they are.
	OTLP []spillOTLP `json:"otlp,omitempty"`
}

// spillShutdown records the SHUTDOWN that closed open invocations, so a
// replay closes them the same way.
type spillShutdown struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

type spillEvent struct {
	Time   time.Time       `json:"time"`
	Type   telemetry.Type  `json:"type"`
	Record json.RawMessage `json:"record,omitempty"`
	Raw    json.RawMessage `json:"raw,omitempty"`
	Size   int             `json:"size,omitempty"`
}

func encodeEvent(ev telemetry.Event) (spillEvent, error) {
	se := spillEvent{Time: ev.Time, Type: ev.Type, Raw: ev.Raw, Size: ev.Size}
	if ev.Record != nil {
		b, err := json.Marshal(ev.Record)
		if err != nil {
			return se, err
		}
		se.Record = b
	}
	return se, nil
}

// newRecord returns a pointer to the record struct of an event type, or
// nil for types kept raw.
func newRecord(t telemetry.Type) any {
	switch t {
	case telemetry.TypeInitStart:
		return &telemetry.InitStart{}
	case telemetry.TypeInitRuntimeDone:
		return &telemetry.InitRuntimeDone{}
	case telemetry.TypeInitReport:
		return &telemetry.InitReport{}
	case telemetry.TypeStart:
		return &telemetry.Start{}
	case telemetry.TypeRuntimeDone:
		return &telemetry.RuntimeDone{}
	case telemetry.TypeReport:
		return &telemetry.Report{}
	case telemetry.TypeRestoreStart:
		return &telemetry.RestoreStart{}
	case telemetry.TypeRestoreRuntimeDone:
		return &telemetry.RestoreRuntimeDone{}
	case telemetry.TypeRestoreReport:
		return &telemetry.RestoreReport{}
	case telemetry.TypeExtension:
		return &telemetry.Extension{}
	case telemetry.TypeTelemetrySubscription:
		return &telemetry.TelemetrySubscription{}
	case telemetry.TypeLogsDropped:
		return &telemetry.LogsDropped{}
	case telemetry.TypeFunction, telemetry.TypeExtensionLog:
		return &telemetry.Log{}
	}
	return nil
}

func decodeEvent(se spillEvent) telemetry.Event {
	ev := telemetry.Event{Time: se.Time, Type: se.Type, Raw: se.Raw, Size: se.Size}
	if len(se.Record) > 0 {
		if r := newRecord(se.Type); r != nil && json.Unmarshal(se.Record, r) == nil {
			ev.Record = r
		} else if ev.Raw == nil {
			ev.Raw = se.Record
		}
	}
	return ev
}

func (s *spill) newID() (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("spill id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// spillEntry is a spill file found on disk.
type spillEntry struct {
	name    string
	created time.Time
	size    int64
}

// list returns the spill files, oldest first.
func (s *spill) list() ([]spillEntry, error) {
	if err := privdir.Check(s.dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	des, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	var out []spillEntry
	for _, de := range des {
		name := de.Name()
		ts, _, ok := strings.Cut(strings.TrimSuffix(name, ".json"), "-")
		if !de.Type().IsRegular() || !strings.HasSuffix(name, ".json") || !ok {
			continue
		}
		ns, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, spillEntry{name: name, created: time.Unix(0, ns), size: info.Size()})
	}
	slices.SortFunc(out, func(a, b spillEntry) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// write stores events as one new spill file and returns its ID. Older
// files are deleted to keep the total within max; a batch larger than max
// on its own is refused.
func (s *spill) write(evs []telemetry.Event, metrics []json.RawMessage, sd *spillShutdown, context *telemetry.Event, fn []spillOTLP) (string, int, error) {
	id, err := s.newID()
	if err != nil {
		return "", 0, err
	}
	created := s.now()
	doc := spillDoc{V: spillVersion, ID: id, Env: s.env, Created: created, Shutdown: sd,
		Events: make([]spillEvent, 0, len(evs)), Metrics: metrics, OTLP: fn}
	for _, ev := range evs {
		se, err := encodeEvent(ev)
		if err != nil {
			continue // cannot happen for the telemetry record types
		}
		doc.Events = append(doc.Events, se)
	}
	if context != nil {
		if se, err := encodeEvent(*context); err == nil {
			doc.Context = &se
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", 0, fmt.Errorf("spill: encode: %w", err)
	}
	if int64(len(b)) > s.max {
		return "", 0, fmt.Errorf("spill: batch of %d bytes exceeds SLIPSTREAM_SPILL_MAX_BYTES (%d)", len(b), s.max)
	}
	// A directory we create is 0700; an existing one (say SLIPSTREAM_SPILL_DIR=/tmp)
	// keeps its mode: the files themselves are 0600. It is checked again
	// before each write: a link put in its place is not followed.
	if err := privdir.Prepare(s.dir); err != nil {
		return "", 0, fmt.Errorf("spill: %w", err)
	}
	expired := 0
	if ents, err := s.list(); err == nil {
		var total int64
		for _, e := range ents {
			total += e.size
		}
		for _, e := range ents {
			old := s.ttl > 0 && created.Sub(e.created) > s.ttl
			if !old && total+int64(len(b)) <= s.max {
				continue
			}
			if os.Remove(filepath.Join(s.dir, e.name)) == nil {
				total -= e.size
				expired++
			}
		}
	}
	name := fmt.Sprintf("%020d-%s.json", created.UnixNano(), id)
	tmp := filepath.Join(s.dir, ".tmp-"+name)
	f, err := privdir.Create(tmp)
	if err != nil {
		return "", expired, fmt.Errorf("spill: %w", err)
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp) // best effort: the write already failed
		return "", expired, fmt.Errorf("spill: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return "", expired, fmt.Errorf("spill: %w", err)
	}
	return id, expired, nil
}

func (s *spill) read(name string) (*spillDoc, error) {
	b, err := privdir.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	var doc spillDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("spill %s: %w", name, err)
	}
	if doc.V < 1 || doc.V > spillVersion {
		return nil, fmt.Errorf("spill %s: version %d not supported", name, doc.V)
	}
	return &doc, nil
}

// spillAll cancels the requests in flight and takes their items back,
// maps what is left in the intake, then writes the source events of every
// queued item to one spill file (or counts them dropped when spill is off
// or fails).
func (w *worker) spillAll() error {
	w.abandonFlights()
	evs := w.h.takeIntake()
	// The intake goes to the spill file with the queue: the queue's bound
	// does not evict for it (the intake is bounded itself).
	bound := w.q.max
	w.q.max = math.MaxInt64
	for _, ev := range evs {
		w.consume(w.m, w.live, ev)
	}
	w.m.FlushLogs()
	w.releaseWaiters()
	metrics, empty := w.mq.unsent(w.m.Resource(), w.cfg.OTLP.Metrics.Enabled())
	for _, pm := range empty {
		if !w.cfg.OTLP.Metrics.Enabled() {
			w.c.drop(sigMetrics, dropSignalOff, pm.n) // replayed before the switch
		}
		w.settleMetricsOrigin(pm)
	}
	items, fnq := splitFunction(w.q.drain())
	w.q.max = bound
	w.c.queueBytes.Store(0)
	var mpoints int64
	var mraw []json.RawMessage
	encoded := metrics[:0]
	for _, pm := range metrics {
		raw, err := metriccodec.Encode(pm.rm)
		if err != nil {
			w.c.drop(sigMetrics, dropUnencodable, pm.n)
			w.settleMetricsOrigin(pm)
			w.log.Error("unsent metrics dropped: they cannot be encoded", slog.Int64("metric_points", pm.n), slog.String("error", err.Error()))
			continue
		}
		mpoints += pm.n
		mraw = append(mraw, raw)
		encoded = append(encoded, pm)
	}
	metrics = encoded
	if len(items) == 0 && len(metrics) == 0 && len(fnq) == 0 {
		return nil
	}
	var n [2]int64 // traces, logs
	seen := make(map[uint64]bool)
	var src []*srcEvent
	for _, it := range items {
		if it.span != nil {
			n[0]++
		} else {
			n[1]++
		}
		for _, se := range it.src {
			if !seen[se.seq] {
				seen[se.seq] = true
				src = append(src, se)
			}
		}
	}
	var context *telemetry.Event
	if c := w.live.context; c != nil && !seen[c.seq] {
		context = &c.ev
	}
	slices.SortFunc(src, func(a, b *srcEvent) int { return cmp.Compare(a.seq, b.seq) })
	var err error
	if w.sp == nil {
		err = errors.New("spill disabled (SLIPSTREAM_SPILL_MAX_BYTES=0)")
	} else {
		out := make([]telemetry.Event, len(src))
		for i, se := range src {
			out[i] = se.ev
		}
		var id string
		var expired int
		fn := w.fnSpill(fnq)
		id, expired, err = w.sp.write(out, mraw, w.shutdown, context, fn)
		w.c.spillExpired.Add(int64(expired))
		if err == nil {
			w.c.spillWritten.Add(1)
			w.c.count(sigTraces, outSpilled, n[0])
			w.c.count(sigLogs, outSpilled, n[1])
			w.c.count(sigMetrics, outSpilled, mpoints)
			w.log.Warn("spilled unsent telemetry", slog.String("spill_id", id),
				slog.Int64("spans", n[0]), slog.Int64("log_records", n[1]), slog.Int64("metric_points", mpoints),
				slog.Int("events", len(out)), slog.Int("function_requests", len(fn)))
			w.settleFnSpill(fnq, true)
			for _, it := range items {
				w.settle(it)
			}
			for _, pm := range metrics {
				w.settleMetricsOrigin(pm)
			}
			return nil
		}
	}
	w.c.spillErr.Add(1)
	w.settleFnSpill(fnq, false)
	w.c.drop(sigTraces, dropSpillFailed, n[0])
	w.c.drop(sigLogs, dropSpillFailed, n[1])
	w.c.drop(sigMetrics, dropSpillFailed, mpoints)
	for _, it := range items {
		w.settle(it)
	}
	for _, pm := range metrics {
		w.settleMetricsOrigin(pm)
	}
	w.log.Error("unsent telemetry dropped", slog.Int64("spans", n[0]), slog.Int64("log_records", n[1]),
		slog.Int64("metric_points", mpoints), slog.String("error", err.Error()))
	return err
}

// replay re-maps the spill files of this environment left by an earlier
// process: expired ones are deleted, the others feed a fresh mapper each
// (its metrics go nowhere, so nothing is counted twice) and their outputs
// join the queue; their spilled metric collections join the metrics queue
// as they are. A file is deleted once all of its outputs were sent (2xx),
// dropped or re-spilled.
func (w *worker) replay() {
	s := w.sp
	if s == nil {
		return
	}
	ents, err := s.list()
	if err != nil {
		w.log.Warn("spill replay", slog.String("error", err.Error()))
		return
	}
	now := w.now()
	for _, e := range ents {
		path := filepath.Join(s.dir, e.name)
		if s.ttl > 0 && now.Sub(e.created) > s.ttl {
			if os.Remove(path) == nil {
				w.c.spillExpired.Add(1)
			}
			continue
		}
		doc, err := s.read(e.name)
		if err != nil {
			w.log.Warn("spill replay: unreadable file deleted", slog.String("file", e.name), slog.String("error", err.Error()))
			os.Remove(path) // best effort
			continue
		}
		if doc.Env != s.env {
			continue // another environment's file (shared directory)
		}
		f := &spillFile{id: doc.ID, path: path, replaying: true}
		lin := newLineage(f)
		m, err := w.replayMapper(lin)
		if err != nil {
			w.log.Warn("spill replay: mapper", slog.String("error", err.Error()))
			return
		}
		if doc.Context != nil {
			m.ConsumeContext(decodeEvent(*doc.Context))
		}
		for _, se := range doc.Events {
			w.consume(m, lin, decodeEvent(se))
		}
		for _, raw := range doc.Metrics {
			rm, err := metriccodec.Decode(raw)
			if err != nil {
				w.log.Warn("spill replay: unreadable metrics dropped", slog.String("file", e.name), slog.String("error", err.Error()))
				continue
			}
			n := metriccodec.DataPoints(rm)
			if n == 0 {
				continue // nothing to send; it must not keep the file
			}
			if !w.cfg.OTLP.Metrics.Enabled() {
				w.c.drop(sigMetrics, dropSignalOff, n)
				continue
			}
			f.pending++
			w.mq.add(&pendingMetrics{rm: rm, n: n, origin: f})
		}
		w.replayFunction(doc.OTLP, f, e.name)
		if doc.Shutdown != nil {
			m.Shutdown(doc.Shutdown.Reason, doc.Shutdown.At)
		} else {
			m.FlushLogs()
		}
		f.replaying = false
		w.c.spillReplayed.Add(1)
		if f.pending == 0 {
			w.deleteSpill(f)
		}
	}
}

func (w *worker) deleteSpill(f *spillFile) {
	if f.replaying {
		return
	}
	if h := w.sp.beforeDelete; h != nil && !h(f.id) {
		return
	}
	if err := os.Remove(f.path); err == nil {
		w.c.spillDeleted.Add(1)
	}
}
