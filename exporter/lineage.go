package exporter

import (
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/slipstream-otel/slipstream/exporter/signals"
	"github.com/slipstream-otel/slipstream/telemetry"
)

// srcEvent is a decoded event kept as the source of mapped outputs, so that
// what cannot be sent can be spilled as our own data and re-mapped later.
type srcEvent struct {
	seq uint64
	ev  telemetry.Event
}

// spillFile is a replayed file whose items are still in the pipeline.
type spillFile struct {
	id, path  string
	pending   int  // items mapped from it not yet sent, dropped or re-spilled
	replaying bool // still being re-mapped: not deletable yet
}

// lineage remembers which source events each mapped output came from: per
// phase (one invocation, init, restore) the platform events consumed so
// far, so that a span mapped at platform.report can be spilled together
// with the start and runtimeDone it was built from; and per log stream the
// lines a multi-line record is made of. One lineage serves one mapper (the
// live one, or one spill file's replay). Bounded: at most maxPhases
// phases, the oldest forgotten first. Worker-only.
type lineage struct {
	byPhase map[signals.Phase][]*srcEvent
	order   []signals.Phase
	// context is the latest initStart/restoreStart: written into every
	// spill file so that a replay rebuilds the same resource.
	context *srcEvent
	// pending holds, per stream (function, extension), the log events the
	// mapper has consumed but not yet emitted as a record (multi-line).
	pending [2][]*srcEvent
	// origin is the spill file replayed through this lineage (nil: live).
	origin *spillFile

	// cur is the event the mapper is consuming (nil outside Consume) and
	// its phase; used: it became the source of a log record.
	cur      *srcEvent
	curPhase signals.Phase
	used     bool
}

const (
	maxPhases       = 64   // phases remembered
	maxPhaseEvents  = 16   // events remembered per phase
	maxPendingLines = 1024 // log lines remembered per stream
	functionStream  = 0
	extensionStream = 1
)

func newLineage(origin *spillFile) *lineage {
	return &lineage{byPhase: make(map[signals.Phase][]*srcEvent), origin: origin}
}

func stream(ev telemetry.Event) int {
	if ev.Type == telemetry.TypeExtensionLog {
		return extensionStream
	}
	return functionStream
}

// begin records se (of phase ph) before the mapper consumes it.
func (l *lineage) begin(se *srcEvent, ph signals.Phase) {
	if ph.Kind != signals.PhaseNone {
		if opensPhase(se.ev) {
			l.forget(ph)
			l.context = se
		}
		l.add(ph, se)
	}
	l.cur, l.curPhase, l.used = se, ph, false
}

// end closes the consumption begun by begin: a log line that became no
// record yet is held as pending, and a phase that ended is forgotten.
func (l *lineage) end() {
	se := l.cur
	if isLogEvent(se.ev) && !l.used {
		s := stream(se.ev)
		if len(l.pending[s]) < maxPendingLines {
			l.pending[s] = append(l.pending[s], se)
		}
	}
	if closesPhase(se.ev) {
		l.forget(l.curPhase)
	}
	l.cur, l.curPhase, l.used = nil, signals.Phase{}, false
}

// closesPhase reports whether ev is the last event of its phase. Init and
// restore phases stay known until the next one starts: their spans may be
// held until the first invocation's report.
func closesPhase(ev telemetry.Event) bool {
	_, ok := ev.Record.(*telemetry.Report)
	return ok
}

// opensPhase reports whether ev starts a phase that replaces an earlier
// one under the same key.
func opensPhase(ev telemetry.Event) bool {
	switch ev.Record.(type) {
	case *telemetry.InitStart, *telemetry.RestoreStart:
		return true
	}
	return false
}

func (l *lineage) add(ph signals.Phase, se *srcEvent) {
	if _, ok := l.byPhase[ph]; !ok {
		if len(l.order) >= maxPhases {
			delete(l.byPhase, l.order[0])
			l.order = l.order[1:]
		}
		l.order = append(l.order, ph)
	}
	if len(l.byPhase[ph]) < maxPhaseEvents {
		l.byPhase[ph] = append(l.byPhase[ph], se)
	}
}

func (l *lineage) events(ph signals.Phase) []*srcEvent {
	return append([]*srcEvent(nil), l.byPhase[ph]...)
}

func (l *lineage) forget(ph signals.Phase) {
	if _, ok := l.byPhase[ph]; !ok {
		return
	}
	delete(l.byPhase, ph)
	for i, k := range l.order {
		if k == ph {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
}

// spanSources returns the source events of a span of phase ph: the
// events of its phase and, for an init or restore span emitted while
// another phase's event was consumed (a cold start's report decides where
// the init span goes), that event's phase too, so a replay places it the
// same way. Without a known phase, the event being consumed.
func (l *lineage) spanSources(ph signals.Phase) []*srcEvent {
	src := l.events(ph)
	if ph.Kind != signals.PhaseInvocation && l.curPhase.Kind != signals.PhaseNone && l.curPhase != ph {
		src = append(l.events(l.curPhase), src...)
	}
	if len(src) == 0 && l.cur != nil {
		src = []*srcEvent{l.cur}
	}
	return src
}

// logSources returns the source events of a log record: the lines the
// mapper was holding for the stream of the event being consumed (a
// multi-line record), else that event; outside Consume (a flush of held
// lines), the held lines of the first stream that has any.
func (l *lineage) logSources() []*srcEvent {
	if l.cur != nil && isLogEvent(l.cur.ev) {
		s := stream(l.cur.ev)
		if len(l.pending[s]) > 0 {
			src := l.pending[s]
			l.pending[s] = nil
			return src
		}
		l.used = true
		return []*srcEvent{l.cur}
	}
	for s := range l.pending {
		if len(l.pending[s]) > 0 {
			src := l.pending[s]
			l.pending[s] = nil
			return src
		}
	}
	if l.cur != nil {
		return []*srcEvent{l.cur}
	}
	return nil
}

// Fixed costs of a queued output and of each of its source events, in
// bytes of memory: a log record is a large struct (inline attributes)
// held by value in its item, and a source event is a telemetry.Event with
// its decoded record. They matter for short log lines, where they are
// several times the text.
const (
	logItemOverhead = int64(unsafe.Sizeof(item{}) + unsafe.Sizeof(srcEvent{}))
	srcOverhead     = int64(unsafe.Sizeof(srcEvent{}) + unsafe.Sizeof(telemetry.Log{}) + 8)
)

func spanBytes(s sdktrace.ReadOnlySpan) int64 {
	n := int64(256 + len(s.Name()))
	for _, kv := range s.Attributes() {
		n += 32 + int64(len(kv.Key)+len(kv.Value.String()))
	}
	n += 64 * int64(len(s.Events())+len(s.Links()))
	return n
}

func logBytes(r *sdklog.Record) int64 {
	n := logItemOverhead + int64(32*r.AttributesLen())
	if b := r.Body(); b.Type() == attribute.STRING {
		return n + int64(len(b.AsString()))
	}
	return n + int64(len(r.Body().String()))
}

func srcBytes(src []*srcEvent) int64 {
	var n int64
	for _, s := range src {
		n += srcOverhead + eventSize(s.ev)
	}
	return n
}

// sharedBytes is what a log record's body shares with its one source
// event: a plain-text line is the same string in both (the comparison
// returns at once when the two point at the same bytes), and must not be
// charged twice against the queue's bound.
func sharedBytes(r *sdklog.Record, src []*srcEvent) int64 {
	if len(src) != 1 {
		return 0
	}
	l, ok := src[0].ev.Record.(*telemetry.Log)
	if !ok || l == nil || len(l.Text) < 1024 {
		return 0
	}
	if b := r.Body(); b.Type() != attribute.STRING || b.AsString() != l.Text {
		return 0
	}
	return int64(len(l.Text))
}
