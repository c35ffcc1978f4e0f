package exporter

import (
	"slices"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// defaultEventSize is the size charged for an event whose Size is unknown.
const defaultEventSize = 256

func eventSize(ev telemetry.Event) int64 {
	if ev.Size > 0 {
		return int64(ev.Size)
	}
	return defaultEventSize
}

func isLogEvent(ev telemetry.Event) bool {
	return ev.Type == telemetry.TypeFunction || ev.Type == telemetry.TypeExtensionLog
}

// intake is the bounded hand-off between the telemetry listener and the
// worker: decoded events waiting to be mapped. When full it drops
// function/extension log events first (incoming, then already queued, oldest
// first) and platform events last; every drop is counted. Not safe for
// concurrent use: handoff.mu guards it.
type intake struct {
	evs   []telemetry.Event
	bytes int64
	max   int64
}

// batchBytes is what evs take in the intake.
func batchBytes(evs []telemetry.Event) int64 {
	var n int64
	for _, ev := range evs {
		n += eventSize(ev)
	}
	return n
}

// add appends evs, dropping what does not fit; an empty intake takes a
// batch of any size (one Telemetry API batch may exceed the bound). It
// returns the number of log and platform events dropped.
func (in *intake) add(evs []telemetry.Event) (droppedLogs, droppedPlatform int) {
	return in.addSized(evs, batchBytes(evs))
}

// addSized is add for a batch whose batchBytes is need.
func (in *intake) addSized(evs []telemetry.Event, need int64) (droppedLogs, droppedPlatform int) {
	if in.bytes+need <= in.max || in.bytes == 0 {
		in.evs = append(in.evs, evs...)
		in.bytes += need
		return 0, 0
	}
	var platNeed int64
	for _, ev := range evs {
		if !isLogEvent(ev) {
			platNeed += eventSize(ev)
		}
	}
	// Make room for the platform events by evicting queued log events,
	// oldest first.
	if free := in.max - in.bytes; platNeed > free {
		droppedLogs += in.evictLogs(platNeed - free)
	}
	// Platform events first (in order, while they fit), then log events
	// with what is left; the accepted ones keep their original order.
	free := in.max - in.bytes
	keep := make([]bool, len(evs))
	for i, ev := range evs {
		if !isLogEvent(ev) && eventSize(ev) <= free {
			keep[i] = true
			free -= eventSize(ev)
		}
	}
	for i, ev := range evs {
		if isLogEvent(ev) && eventSize(ev) <= free {
			keep[i] = true
			free -= eventSize(ev)
		}
	}
	for i, ev := range evs {
		if !keep[i] {
			if isLogEvent(ev) {
				droppedLogs++
			} else {
				droppedPlatform++
			}
			continue
		}
		in.evs = append(in.evs, ev)
		in.bytes += eventSize(ev)
	}
	return droppedLogs, droppedPlatform
}

// evictLogs removes queued log events, oldest first, until at least want
// bytes are freed or none is left. It returns how many it removed.
func (in *intake) evictLogs(want int64) int {
	var freed int64
	n := 0
	out := in.evs[:0]
	for _, ev := range in.evs {
		if freed < want && isLogEvent(ev) {
			freed += eventSize(ev)
			n++
			continue
		}
		out = append(out, ev)
	}
	clear(in.evs[len(out):])
	in.evs = out
	in.bytes -= freed
	return n
}

// borrow returns every queued event, which stay counted in bytes until
// giveBack: the worker maps them meanwhile.
func (in *intake) borrow() []telemetry.Event {
	evs := in.evs
	in.evs = nil
	return evs
}

// giveBack ends a borrow: mapped bytes were mapped, and rest (the tail of
// the borrowed events, still counted) goes back to the front of the
// intake, before what Enqueue added meanwhile.
func (in *intake) giveBack(rest []telemetry.Event, mapped int64) {
	in.bytes -= mapped
	if len(rest) > 0 {
		in.evs = append(slices.Clip(rest), in.evs...)
	}
}

// take returns every queued event and empties the intake.
func (in *intake) take() []telemetry.Event {
	evs := in.evs
	in.evs, in.bytes = nil, 0
	return evs
}
