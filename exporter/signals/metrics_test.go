package signals

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// pointAttrs returns the attribute sets of a metric's data points.
func pointAttrs(m metricdata.Metrics) []attribute.Set {
	var out []attribute.Set
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Sum[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			out = append(out, dp.Attributes)
		}
	}
	return out
}

// The FaaS metrics semantic conventions recommend faas.trigger on every
// faas.* metric; Slipstream's own metrics do not carry it.
func TestFaaSMetricsCarryTheTrigger(t *testing.T) {
	tests := []struct {
		name, setting, want string
	}{
		{"without SLIPSTREAM_FAAS_TRIGGER the trigger is other", "", "other"},
		{"SLIPSTREAM_FAAS_TRIGGER=http gives http", "http", "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.FaaSTrigger = tt.setting
			mm := newMeteredMapper(t, cfg)
			mm.consume(
				telemetry.Event{Time: at(0), Type: telemetry.TypeInitStart, Record: &telemetry.InitStart{
					InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInit, InstanceID: "2026/11/26/[$LATEST]abc"}},
				telemetry.Event{Time: at(40), Type: telemetry.TypeInitReport, Record: &telemetry.InitReport{
					InitializationType: telemetry.InitOnDemand, Phase: telemetry.PhaseInit, Status: telemetry.StatusSuccess,
					Metrics: telemetry.DurationMetrics{DurationMs: 40}}},
			)
			cold := invocationEvents("r1", 100)
			cold[2].Record.(*telemetry.Report).Metrics.InitDurationMs = f64(40)
			mm.consume(cold...)
			failed := invocationEvents("r2", 200)
			failed[1].Record.(*telemetry.RuntimeDone).Status = telemetry.StatusError
			failed[2].Record.(*telemetry.Report).Status = telemetry.StatusError
			mm.consume(failed...)
			late := invocationEvents("r3", 300)
			late[1].Record.(*telemetry.RuntimeDone).Status = telemetry.StatusTimeout
			late[2].Record.(*telemetry.Report).Status = telemetry.StatusTimeout
			mm.consume(late...)

			var rm metricdata.ResourceMetrics
			if err := mm.reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			var faas []string
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					isFaaS := strings.HasPrefix(m.Name, "faas.")
					if isFaaS {
						faas = append(faas, m.Name)
					}
					for _, set := range pointAttrs(m) {
						v, ok := set.Value(attrTrigger)
						switch {
						case isFaaS && (!ok || v.AsString() != tt.want):
							t.Errorf("%s: faas.trigger = %q (present %v), want %q", m.Name, v.AsString(), ok, tt.want)
						case !isFaaS && ok:
							t.Errorf("%s carries faas.trigger, which the conventions define for faas.* metrics only", m.Name)
						}
					}
				}
			}
			sort.Strings(faas)
			want := "faas.coldstarts faas.errors faas.init_duration faas.invocations faas.invoke_duration faas.mem_usage faas.timeouts"
			if got := strings.Join(faas, " "); got != want {
				t.Errorf("faas.* metrics recorded: %s, want %s", got, want)
			}
		})
	}
}

// gaugeValue returns the value of an int64 or float64 gauge, and whether it
// was recorded.
func (mm *meteredMapper) gaugeValue(t *testing.T, name string) (float64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := mm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				return float64(d.DataPoints[0].Value), true
			case metricdata.Gauge[float64]:
				return d.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

// histogramOf returns the single data point of a float64 histogram.
func (mm *meteredMapper) histogramOf(t *testing.T, name string) (metricdata.HistogramDataPoint[float64], bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := mm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name && len(h.DataPoints) == 1 {
				return h.DataPoints[0], true
			}
		}
	}
	return metricdata.HistogramDataPoint[float64]{}, false
}

// The timeout headroom: the invoke phase (report durationMs) over the time
// from platform.start to the INVOKE deadline, with the limit as a gauge.
func TestTimeoutUtilizationIsTheInvokePhaseOverTheTimeLimit(t *testing.T) {
	tests := []struct {
		name       string
		invoke     bool    // an INVOKE with a deadline 3 s after platform.start
		durationMs float64 // report durationMs
		wantRatio  float64 // 0: nothing recorded
		wantBucket int     // index of the bucket it falls in
	}{
		{"a 2.16 s invocation of a 3 s limit is at 0.72, in the bucket ending at 0.75", true, 2160, 0.72, 9},
		{"a 2.88 s invocation is at 0.96, in the last bucket below 1", true, 2880, 0.96, 14},
		{"an invocation cut at its limit is at 1, counted in the bucket ending at 1", true, 3000, 1, 14},
		{"a report longer than the limit lands in the overflow bucket", true, 3000.4, 3000.4 / 3000, 15},
		{"without an INVOKE (Managed Instances) nothing is recorded", false, 2100, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := newMeteredMapper(t, testConfig())
			evs := invocationEvents("r1", 1000)
			if tt.invoke {
				mm.Invoke(Invocation{RequestID: "r1", Deadline: at(1000).Add(3 * time.Second)})
			}
			evs[2].Record.(*telemetry.Report).Metrics.DurationMs = tt.durationMs
			mm.consume(evs...)
			h, ok := mm.histogramOf(t, metricTimeoutUtilization)
			limit, limitOK := mm.gaugeValue(t, metricTimeLimit)
			if tt.wantRatio == 0 {
				if ok || limitOK {
					t.Fatalf("recorded %v (limit %v), want nothing", h.Sum, limit)
				}
				return
			}
			if !ok || h.Count != 1 || math.Abs(h.Sum-tt.wantRatio) > 1e-9 {
				t.Fatalf("timeout utilization = %+v, want one value %v", h, tt.wantRatio)
			}
			if h.BucketCounts[tt.wantBucket] != 1 {
				t.Errorf("bucket counts %v (bounds %v), want the value in bucket %d", h.BucketCounts, h.Bounds, tt.wantBucket)
			}
			if limit != 3 {
				t.Errorf("time limit = %v s, want 3", limit)
			}
		})
	}
}

// Memory utilization buckets tell 71 MiB from 127 MiB of 128 MiB (the
// power-of-two faas.mem_usage buckets do not), and the memory size is a
// gauge beside it.
func TestMemoryUtilizationBucketsAreFineEnoughToRightSize(t *testing.T) {
	mm := newMeteredMapper(t, testConfig())
	for i, usedMB := range []int64{71, 127} {
		evs := invocationEvents(fmt.Sprintf("r%d", i), 1000*(i+1))
		evs[2].Record.(*telemetry.Report).Metrics.MaxMemoryUsedMB = i64(usedMB)
		mm.consume(evs...)
	}
	h, ok := mm.histogramOf(t, metricMemUtilization)
	if !ok {
		t.Fatal("no memory utilization")
	}
	var filled []float64 // upper bounds of the non-empty buckets
	for i, c := range h.BucketCounts {
		if c > 0 && i < len(h.Bounds) {
			filled = append(filled, h.Bounds[i])
		}
	}
	if want := []float64{0.6, 1}; !slices.Equal(filled, want) {
		t.Errorf("71 and 127 of 128 MiB fill the buckets ending at %v, want %v", filled, want)
	}
	if size, ok := mm.gaugeValue(t, metricMemorySize); size != 128<<20 || !ok {
		t.Errorf("memory size = %v (recorded %v), want %d", size, ok, 128<<20)
	}
}

// Under Managed Instances invocations overlap: the gauge follows the
// number started and not reported. One at a time, nothing is recorded.
func TestActiveInvocationsUnderManagedInstances(t *testing.T) {
	start := func(id string, ms int) telemetry.Event {
		return telemetry.Event{Time: at(ms), Type: telemetry.TypeStart, Record: &telemetry.Start{RequestID: id}}
	}
	report := func(id string, ms int) telemetry.Event {
		return telemetry.Event{Time: at(ms), Type: telemetry.TypeReport, Record: &telemetry.Report{RequestID: id,
			Status: telemetry.StatusSuccess, Metrics: telemetry.ReportMetrics{DurationMs: 5}}}
	}
	tests := []struct {
		name string
		lmi  bool
		want []float64 // after each event; nil: never recorded
	}{
		{"two overlapping invocations under Managed Instances count 1, 2, 1, 0", true, []float64{1, 2, 1, 0}},
		{"an ordinary function records no gauge", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ManagedInstances = tt.lmi
			mm := newMeteredMapper(t, cfg)
			var got []float64
			for _, ev := range []telemetry.Event{start("a", 0), start("b", 1), report("a", 6), report("b", 7)} {
				mm.consume(ev)
				if v, ok := mm.gaugeValue(t, metricActiveInvocations); ok {
					got = append(got, v)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("active invocations after each event = %v, want %v", got, tt.want)
			}
		})
	}
}
