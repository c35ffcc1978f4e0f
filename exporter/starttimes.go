package exporter

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// seriesStarts gives a cumulative series that first appears in a later
// collection the time of the collection before it as its start time,
// instead of the MeterProvider's start, and keeps that start for the
// series from then on (a cumulative stream's start time does not change).
//
// A counter series is created by its first increment: an environment's
// first error of an error.type, or its first timeout, may come hours after
// the agent started. A backend that stores a zero at the start time
// (Prometheus's created-timestamp zero ingestion) then stores it far
// outside any rate() window, and the first increment is never counted.
// The previous collection's time is as true a start (the series counted
// nothing then) and lies just before the point, but strictly before it:
// Prometheus keeps no zero at the sample's own millisecond.
//
// Series of the first collection keep the provider's start. Worker-only.
type seriesStarts struct {
	prev  time.Time // the latest point time of the previous collection
	start map[seriesKey]time.Time
}

type seriesKey struct {
	scope, name string
	attrs       attribute.Distinct
}

// apply sets the start times of rm's cumulative sums and histograms.
func (s *seriesStarts) apply(rm *metricdata.ResourceMetrics) {
	if s.start == nil {
		s.start = make(map[seriesKey]time.Time)
	}
	latest := s.prev
	at := func(scope, name string, attrs attribute.Set, st, t time.Time) time.Time {
		latest = later(latest, t)
		k := seriesKey{scope, name, attrs.Equivalent()}
		if v, ok := s.start[k]; ok {
			return v
		}
		if !s.prev.IsZero() && s.prev.After(st) && s.prev.Before(t) {
			st = s.prev
		}
		s.start[k] = st
		return st
	}
	for i := range rm.ScopeMetrics {
		sm := &rm.ScopeMetrics[i]
		for j := range sm.Metrics {
			m := &sm.Metrics[j]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if d.Temporality == metricdata.CumulativeTemporality {
					for n := range d.DataPoints {
						p := &d.DataPoints[n]
						p.StartTime = at(sm.Scope.Name, m.Name, p.Attributes, p.StartTime, p.Time)
					}
				}
			case metricdata.Sum[float64]:
				if d.Temporality == metricdata.CumulativeTemporality {
					for n := range d.DataPoints {
						p := &d.DataPoints[n]
						p.StartTime = at(sm.Scope.Name, m.Name, p.Attributes, p.StartTime, p.Time)
					}
				}
			case metricdata.Histogram[int64]:
				if d.Temporality == metricdata.CumulativeTemporality {
					for n := range d.DataPoints {
						p := &d.DataPoints[n]
						p.StartTime = at(sm.Scope.Name, m.Name, p.Attributes, p.StartTime, p.Time)
					}
				}
			case metricdata.Histogram[float64]:
				if d.Temporality == metricdata.CumulativeTemporality {
					for n := range d.DataPoints {
						p := &d.DataPoints[n]
						p.StartTime = at(sm.Scope.Name, m.Name, p.Attributes, p.StartTime, p.Time)
					}
				}
			}
		}
	}
	s.prev = latest
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
