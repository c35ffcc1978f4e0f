package signals

import (
	"context"
	"sort"
	"strings"
	"testing"

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
