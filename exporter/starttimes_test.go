package exporter

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collection builds a ResourceMetrics of one cumulative counter with a
// point per error type, all stamped start (the provider's start) and t.
func collection(start, t time.Time, temporality metricdata.Temporality, types ...string) *metricdata.ResourceMetrics {
	var pts []metricdata.DataPoint[int64]
	for _, ty := range types {
		pts = append(pts, metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.String("error.type", ty)),
			StartTime: start, Time: t, Value: 1})
	}
	return &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: "s"},
		Metrics: []metricdata.Metrics{
			{Name: "faas.errors", Data: metricdata.Sum[int64]{Temporality: temporality, IsMonotonic: true, DataPoints: pts}},
			{Name: "slipstream.memory_size", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{{StartTime: start, Time: t, Value: 1}}}},
		},
	}}}
}

func startsOf(rm *metricdata.ResourceMetrics) map[string]time.Time {
	out := map[string]time.Time{}
	for _, p := range rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64]).DataPoints {
		v, _ := p.Attributes.Value("error.type")
		out[v.AsString()] = p.StartTime
	}
	out["gauge"] = rm.ScopeMetrics[0].Metrics[1].Data.(metricdata.Gauge[int64]).DataPoints[0].StartTime
	return out
}

func TestSeriesStartAtThePreviousCollection(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC) // the provider's start
	c1, c2, c3 := t0.Add(time.Second), t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	tests := []struct {
		name        string
		temporality metricdata.Temporality
		want        []map[string]time.Time // starts after each collection
	}{
		{"a series of the first collection keeps the provider's start; one that appears later starts at the collection before it, and keeps that start; gauges are left as they are", metricdata.CumulativeTemporality, []map[string]time.Time{
			{"A": t0, "gauge": t0},
			{"A": t0, "B": c1, "gauge": t0},
			{"A": t0, "B": c1, "C": c2, "gauge": t0},
		}},
		{"delta points are left as they are", metricdata.DeltaTemporality, []map[string]time.Time{
			{"A": t0, "gauge": t0},
			{"A": t0, "B": t0, "gauge": t0},
			{"A": t0, "B": t0, "C": t0, "gauge": t0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seriesStarts
			for i, rm := range []*metricdata.ResourceMetrics{
				collection(t0, c1, tt.temporality, "A"),
				collection(t0, c2, tt.temporality, "A", "B"),
				collection(t0, c3, tt.temporality, "A", "B", "C"),
			} {
				s.apply(rm)
				got := startsOf(rm)
				for k, want := range tt.want[i] {
					if !got[k].Equal(want) {
						t.Errorf("collection %d: start of %s = %v, want %v", i+1, k, got[k], want)
					}
				}
			}
		})
	}
}
