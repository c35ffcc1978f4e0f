package signals

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/slipstream-otel/slipstream/telemetry"
)

// signalsTable is the README's "Signals" section parsed: per "###"
// subsection, the rows' cells (the first cell without backticks).
func signalsTable(t *testing.T) map[string][][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(b), "\n## Signals\n")
	if !ok {
		t.Fatal("README.md has no Signals section")
	}
	if i := strings.Index(text, "\n## "); i >= 0 {
		text = text[:i]
	}
	out := map[string][][]string{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			section = h
			continue
		}
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		cells[0] = strings.Trim(cells[0], "`")
		out[section] = append(out[section], cells)
	}
	return out
}

// seen is every name and key found in the decoded output.
type seen struct {
	resource, spans, spanAttrs, logAttrs map[string]bool
	metrics                              map[string]string          // name -> "Instrument unit"
	metricAttrs                          map[string]map[string]bool // name -> keys
}

func (s *seen) addResource(r pcommon.Resource) {
	for k := range r.Attributes().All() {
		s.resource[k] = true
	}
}

func keysOf(m pcommon.Map, into map[string]bool) {
	for k := range m.All() {
		into[k] = true
	}
}

func collectSeen(t *testing.T, ex exported, s *seen) {
	for _, td := range ex.traces {
		for _, rs := range td.ResourceSpans().All() {
			s.addResource(rs.Resource())
			fn, _ := rs.Resource().Attributes().Get("faas.name")
			for _, ss := range rs.ScopeSpans().All() {
				if ss.Scope().Name() != ScopeName {
					t.Errorf("scope %q", ss.Scope().Name())
				}
				for _, sp := range ss.Spans().All() {
					name := sp.Name()
					if name == fn.Str() && sp.Kind() == 2 {
						name = "{faas.name}"
					}
					s.spans[name] = true
					keysOf(sp.Attributes(), s.spanAttrs)
				}
			}
		}
	}
	for _, md := range ex.metrics {
		for _, rm := range md.ResourceMetrics().All() {
			s.addResource(rm.Resource())
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if s.metricAttrs[m.Name()] == nil {
						s.metricAttrs[m.Name()] = map[string]bool{}
					}
					switch m.Type() {
					case pmetric.MetricTypeSum:
						if !m.Sum().IsMonotonic() {
							t.Errorf("%s: not monotonic", m.Name())
						}
						s.metrics[m.Name()] = "Counter " + m.Unit()
						for _, dp := range m.Sum().DataPoints().All() {
							keysOf(dp.Attributes(), s.metricAttrs[m.Name()])
						}
					case pmetric.MetricTypeHistogram:
						s.metrics[m.Name()] = "Histogram " + m.Unit()
						for _, dp := range m.Histogram().DataPoints().All() {
							keysOf(dp.Attributes(), s.metricAttrs[m.Name()])
						}
					case pmetric.MetricTypeGauge:
						s.metrics[m.Name()] = "Gauge " + m.Unit()
						for _, dp := range m.Gauge().DataPoints().All() {
							keysOf(dp.Attributes(), s.metricAttrs[m.Name()])
						}
					default:
						t.Errorf("%s: unexpected type %v", m.Name(), m.Type())
					}
				}
			}
		}
	}
	for _, ld := range ex.logs {
		for _, rl := range ld.ResourceLogs().All() {
			s.addResource(rl.Resource())
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					keysOf(lr.Attributes(), s.logAttrs)
				}
			}
		}
	}
}

func compareSets(t *testing.T, what string, table, out map[string]bool) {
	t.Helper()
	for k := range out {
		if !table[k] {
			t.Errorf("%s %q is in the golden output but not in README.md", what, k)
		}
	}
	for k := range table {
		if !out[k] {
			t.Errorf("%s %q is in README.md but never in the golden output", what, k)
		}
	}
}

func TestSignalsTableMatchesGoldenOutput(t *testing.T) {
	s := &seen{resource: map[string]bool{}, spans: map[string]bool{}, spanAttrs: map[string]bool{},
		logAttrs: map[string]bool{}, metrics: map[string]string{}, metricAttrs: map[string]map[string]bool{}}
	jsonFields := map[string]bool{}
	for _, sc := range scenarios() {
		collectSeen(t, readGolden(t, sc.name), s)
		for _, st := range loadSteps(t, sc.file) {
			if st.Batch == nil {
				continue
			}
			for _, ev := range decodeBatch(t, st.Batch) {
				if l, ok := ev.Record.(*telemetry.Log); ok {
					for k := range l.Fields {
						jsonFields[k] = true
					}
				}
			}
		}
	}
	// Keys that come from the user, not from Slipstream.
	for k := range testConfig().ResourceAttributes {
		delete(s.resource, k)
	}
	for k := range jsonFields {
		delete(s.logAttrs, k)
	}

	tab := signalsTable(t)
	set := func(section string) map[string]bool {
		m := map[string]bool{}
		for _, row := range tab[section] {
			m[row[0]] = true
		}
		if len(m) == 0 {
			t.Fatalf("README.md: no rows under %q", section)
		}
		return m
	}
	compareSets(t, "resource attribute", set("Resource attributes"), s.resource)
	compareSets(t, "span", set("Spans"), s.spans)
	compareSets(t, "span attribute", set("Span attributes"), s.spanAttrs)
	compareSets(t, "log attribute", set("Log record attributes"), s.logAttrs)

	metrics := map[string]bool{}
	for k := range s.metrics {
		metrics[k] = true
	}
	compareSets(t, "metric", set("Metrics"), metrics)
	for _, row := range tab["Metrics"] {
		name, instrument, unit, attrs := row[0], row[1], strings.Trim(row[2], "`"), row[3]
		if got, ok := s.metrics[name]; ok && got != instrument+" "+unit {
			t.Errorf("metric %s: README.md says %q, output has %q", name, instrument+" "+unit, got)
		}
		want := map[string]bool{}
		for _, a := range strings.Split(attrs, ",") {
			if a = strings.Trim(strings.TrimSpace(a), "`"); a != "" {
				want[a] = true
			}
		}
		if got, ok := s.metricAttrs[name]; ok {
			compareSets(t, "attribute of metric "+name, want, got)
		}
	}
}

// readGolden decodes a golden file with pdata's JSON unmarshalers.
func readGolden(t *testing.T, name string) exported {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Traces, Metrics, Logs []json.RawMessage
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var ex exported
	for _, r := range doc.Traces {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ex.traces = append(ex.traces, td)
	}
	for _, r := range doc.Metrics {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ex.metrics = append(ex.metrics, md)
	}
	for _, r := range doc.Logs {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ex.logs = append(ex.logs, ld)
	}
	return ex
}

// expectedOutcomes counts, from the events alone, the invocations that
// finished (runtimeDone or report), the successful ones, and those started
// but never finished.
func expectedOutcomes(evs []telemetry.Event) (finished, successful, unfinished int) {
	status := map[string]telemetry.Status{}
	started := map[string]bool{}
	for _, ev := range evs {
		switch r := ev.Record.(type) {
		case *telemetry.Start:
			started[r.RequestID] = true
		case *telemetry.RuntimeDone:
			if _, ok := status[r.RequestID]; !ok {
				status[r.RequestID] = r.Status
			}
		case *telemetry.Report:
			if _, ok := status[r.RequestID]; !ok {
				status[r.RequestID] = r.Status
			}
		}
	}
	for id, st := range status {
		finished++
		if st == telemetry.StatusSuccess {
			successful++
		}
		delete(started, id)
	}
	return finished, successful, len(started)
}

type totals struct {
	invocations, outcomes int64
	invokeDurationCount   uint64
}

func (tt *totals) add(rm metricdata.ResourceMetrics) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					switch m.Name {
					case "faas.invocations":
						tt.invocations += dp.Value
						tt.outcomes += dp.Value
					case "faas.errors", "faas.timeouts":
						tt.outcomes += dp.Value
					}
				}
			case metricdata.Histogram[float64]:
				if m.Name == "faas.invoke_duration" {
					for _, dp := range d.DataPoints {
						tt.invokeDurationCount += dp.Count
					}
				}
			}
		}
	}
}

func TestMetricSumsReconcileWithFixtures(t *testing.T) {
	var wantFinished, wantOK, wantCut int
	var cum, del totals
	for _, sc := range scenarios() {
		mo := runScenario(t, sc)
		f, ok, cut := expectedOutcomes(mo.events)
		wantFinished, wantOK, wantCut = wantFinished+f, wantOK+ok, wantCut+cut

		var c, d totals
		c.add(mo.cumulative)
		for _, rm := range mo.deltas {
			d.add(rm)
		}
		for name, got := range map[string]totals{"cumulative": c, "delta": d} {
			if got.invocations != int64(ok) {
				t.Errorf("%s %s: Σfaas.invocations = %d, want %d successful", sc.name, name, got.invocations, ok)
			}
			if got.invokeDurationCount != uint64(f) {
				t.Errorf("%s %s: faas.invoke_duration count = %d, want %d invocations", sc.name, name, got.invokeDurationCount, f)
			}
			if got.outcomes != int64(f+cut) {
				t.Errorf("%s %s: invocations+errors+timeouts = %d, want %d", sc.name, name, got.outcomes, f+cut)
			}
		}
		cum.invocations += c.invocations
		del.invocations += d.invocations
	}
	if cum.invocations != int64(wantOK) || del.invocations != int64(wantOK) {
		t.Errorf("all fixtures: Σfaas.invocations cumulative %d, delta %d, want %d", cum.invocations, del.invocations, wantOK)
	}
	if wantOK == 0 || wantFinished == wantOK || wantCut == 0 {
		t.Errorf("fixtures should mix outcomes: finished %d, successful %d, cut %d", wantFinished, wantOK, wantCut)
	}
}
