package sink

import (
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
)

// Snapshot is an immutable copy of what a Sink received up to a moment. Its slices and the maps
// inside its views are shared with the Sink and other Snapshots: read them, do not modify them.
type Snapshot struct {
	traces   []ptrace.Traces
	metrics  []pmetric.Metrics
	logs     []plog.Logs
	spans    []SpanView
	records  []LogView
	points   []MetricPoint
	arrivals []Arrival
	requests map[Signal]RequestCount
}

// Arrival is one request as it arrived, before the sink decided how to answer it.
type Arrival struct {
	Signal Signal
	Time   time.Time   // by Options.Now
	Header http.Header // a copy of the request's headers
}

// SpanView is a span flattened for assertions. IDs are lower-case hex, "" when empty; Kind is
// "Server", "Internal"...; Status is "Unset", "Ok" or "Error". Attribute values are as
// pcommon.Value.AsRaw gives them: string, bool, int64, float64, []byte, []any, map[string]any.
type SpanView struct {
	Name          string
	TraceID       string
	SpanID        string
	ParentSpanID  string
	Kind          string
	Start, End    time.Time
	Status        string
	StatusMessage string
	Attributes    map[string]any
	Resource      map[string]any
	Scope         string
	Events        []string   // event names
	Links         []SpanLink // linked span contexts
}

// SpanLink is a link from a span to another span.
type SpanLink struct {
	TraceID, SpanID string
	Attributes      map[string]any
}

// Duration is End − Start.
func (v SpanView) Duration() time.Duration { return v.End.Sub(v.Start) }

// LogView is a log record flattened for assertions. Body is the body as a string (JSON for maps
// and slices); Severity is the severity text, or the severity number's name when the text is empty.
type LogView struct {
	Body           string
	Severity       string
	SeverityNumber int
	TraceID        string
	SpanID         string
	Time           time.Time
	ObservedTime   time.Time
	Attributes     map[string]any
	Resource       map[string]any
	Scope          string
}

// MetricPoint is one data point, flattened. For Sum and Gauge points Value is the value and
// Count is 0; for Histogram, ExponentialHistogram and Summary points Value is the sum of the
// observations and Count their number, and Min and Max are set when HasMinMax.
type MetricPoint struct {
	Name        string
	Unit        string
	Type        string // "Sum", "Gauge", "Histogram", "ExponentialHistogram", "Summary"
	Temporality string // "Cumulative", "Delta", or "" for Gauge and Summary
	Monotonic   bool
	Start, Time time.Time
	Value       float64
	Count       uint64
	HasMinMax   bool
	Min, Max    float64
	Attributes  map[string]any
	Resource    map[string]any
	Scope       string
}

// Traces returns every trace export received, in arrival order.
func (s *Snapshot) Traces() []ptrace.Traces { return slices.Clone(s.traces) }

// MetricsData returns every metric export received, in arrival order.
func (s *Snapshot) MetricsData() []pmetric.Metrics { return slices.Clone(s.metrics) }

// LogsData returns every log export received, in arrival order.
func (s *Snapshot) LogsData() []plog.Logs { return slices.Clone(s.logs) }

// Spans returns every span received, in arrival order (duplicates included).
func (s *Snapshot) Spans() []SpanView { return slices.Clone(s.spans) }

// Logs returns every log record received, in arrival order.
func (s *Snapshot) Logs() []LogView { return slices.Clone(s.records) }

// Points returns every metric data point received, in arrival order.
func (s *Snapshot) Points() []MetricPoint { return slices.Clone(s.points) }

// Metrics returns every data point received, by metric name, in arrival order.
func (s *Snapshot) Metrics() map[string][]MetricPoint {
	m := make(map[string][]MetricPoint)
	for _, p := range s.points {
		m[p.Name] = append(m[p.Name], p)
	}
	return m
}

// MetricNames returns the names of the metrics received, sorted.
func (s *Snapshot) MetricNames() []string {
	return slices.Sorted(maps.Keys(s.Metrics()))
}

// Requests returns the request counts per signal.
func (s *Snapshot) Requests() map[Signal]RequestCount { return maps.Clone(s.requests) }

// Arrivals returns every request received, in arrival order, including those answered by a
// fault or rejected.
func (s *Snapshot) Arrivals() []Arrival { return slices.Clone(s.arrivals) }

// LogBodies counts the log records received by body. A record received twice counts twice.
func (s *Snapshot) LogBodies() map[string]int {
	n := make(map[string]int)
	for _, lr := range s.records {
		n[lr.Body]++
	}
	return n
}

// SumAll adds up the value of every point of the named metric received whose attributes include
// attrs, each cumulative point in full and duplicates included. Unlike Sum, which counts the
// latest point of a cumulative stream once, it shows data sent twice.
func (s *Snapshot) SumAll(name string, attrs ...attribute.KeyValue) float64 {
	var total float64
	for _, p := range s.points {
		if p.Name == name && hasAttributes(p.Attributes, attrs) {
			total += p.Value
		}
	}
	return total
}

// Sum returns the total of the named metric over the points whose attributes include attrs:
// delta points are added up; for cumulative points and gauges only the latest point of each
// stream (resource, scope, attributes and start time) counts. For histograms and summaries it
// totals the sums of observations.
func (s *Snapshot) Sum(name string, attrs ...attribute.KeyValue) float64 {
	var total float64
	for _, p := range s.latest(name, attrs) {
		total += p.Value
	}
	return total
}

// Count returns the number of observations of the named histogram or summary over the points
// whose attributes include attrs, with the same rules as Sum.
func (s *Snapshot) Count(name string, attrs ...attribute.KeyValue) uint64 {
	var total uint64
	for _, p := range s.latest(name, attrs) {
		total += p.Count
	}
	return total
}

// latest returns the points of name matching attrs that count towards a total: every delta
// point, and the latest point of every other stream.
func (s *Snapshot) latest(name string, attrs []attribute.KeyValue) []MetricPoint {
	var out []MetricPoint
	last := make(map[string]int) // stream key -> index in out
	for _, p := range s.points {
		if p.Name != name || !hasAttributes(p.Attributes, attrs) {
			continue
		}
		if p.Temporality == "Delta" {
			out = append(out, p)
			continue
		}
		key := streamKey(p)
		if i, ok := last[key]; ok {
			if !p.Time.Before(out[i].Time) {
				out[i] = p
			}
			continue
		}
		last[key] = len(out)
		out = append(out, p)
	}
	return out
}

// streamKey identifies a cumulative stream: resource, scope, attributes and start time.
func streamKey(p MetricPoint) string {
	return fmt.Sprintf("%s|%v|%v|%d", p.Scope, sortedPairs(p.Resource), sortedPairs(p.Attributes), p.Start.UnixNano())
}

func sortedPairs(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(out)
	return out
}

// hasAttributes reports whether m holds every key-value of attrs.
func hasAttributes(m map[string]any, attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		v, ok := m[string(kv.Key)]
		if !ok || !reflect.DeepEqual(v, rawValue(kv.Value)) {
			return false
		}
	}
	return true
}

// rawValue converts an attribute.Value to what pcommon.Value.AsRaw returns for it.
func rawValue(v attribute.Value) any {
	toAny := func(n int, at func(int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = at(i)
		}
		return out
	}
	switch v.Type() {
	case attribute.BOOLSLICE:
		s := v.AsBoolSlice()
		return toAny(len(s), func(i int) any { return s[i] })
	case attribute.INT64SLICE:
		s := v.AsInt64Slice()
		return toAny(len(s), func(i int) any { return s[i] })
	case attribute.FLOAT64SLICE:
		s := v.AsFloat64Slice()
		return toAny(len(s), func(i int) any { return s[i] })
	case attribute.STRINGSLICE:
		s := v.AsStringSlice()
		return toAny(len(s), func(i int) any { return s[i] })
	default:
		return v.AsInterface()
	}
}

// summary describes the snapshot in a few words, for error messages.
func (s *Snapshot) summary() string {
	var req []string
	for _, sig := range []Signal{SignalTraces, SignalMetrics, SignalLogs} {
		c := s.requests[sig]
		req = append(req, fmt.Sprintf("%s %d/%d", sig, c.Accepted, c.Received))
	}
	return fmt.Sprintf("%d spans, %d metric points, %d log records; requests accepted/received: %s",
		len(s.spans), len(s.points), len(s.records), strings.Join(req, ", "))
}

// spanViews flattens every span of td.
func spanViews(td ptrace.Traces) []SpanView {
	var out []SpanView
	for _, rs := range td.ResourceSpans().All() {
		res := rs.Resource().Attributes().AsRaw()
		for _, ss := range rs.ScopeSpans().All() {
			scope := ss.Scope().Name()
			for _, sp := range ss.Spans().All() {
				v := SpanView{
					Name:          sp.Name(),
					TraceID:       sp.TraceID().String(),
					SpanID:        sp.SpanID().String(),
					ParentSpanID:  sp.ParentSpanID().String(),
					Kind:          sp.Kind().String(),
					Start:         sp.StartTimestamp().AsTime(),
					End:           sp.EndTimestamp().AsTime(),
					Status:        sp.Status().Code().String(),
					StatusMessage: sp.Status().Message(),
					Attributes:    sp.Attributes().AsRaw(),
					Resource:      res,
					Scope:         scope,
				}
				for _, ev := range sp.Events().All() {
					v.Events = append(v.Events, ev.Name())
				}
				for _, l := range sp.Links().All() {
					v.Links = append(v.Links, SpanLink{
						TraceID:    l.TraceID().String(),
						SpanID:     l.SpanID().String(),
						Attributes: l.Attributes().AsRaw(),
					})
				}
				out = append(out, v)
			}
		}
	}
	return out
}

// logViews flattens every log record of ld.
func logViews(ld plog.Logs) []LogView {
	var out []LogView
	for _, rl := range ld.ResourceLogs().All() {
		res := rl.Resource().Attributes().AsRaw()
		for _, sl := range rl.ScopeLogs().All() {
			scope := sl.Scope().Name()
			for _, lr := range sl.LogRecords().All() {
				sev := lr.SeverityText()
				if sev == "" && lr.SeverityNumber() != plog.SeverityNumberUnspecified {
					sev = lr.SeverityNumber().String()
				}
				out = append(out, LogView{
					Body:           lr.Body().AsString(),
					Severity:       sev,
					SeverityNumber: int(lr.SeverityNumber()),
					TraceID:        lr.TraceID().String(),
					SpanID:         lr.SpanID().String(),
					Time:           timeOf(lr.Timestamp()),
					ObservedTime:   timeOf(lr.ObservedTimestamp()),
					Attributes:     lr.Attributes().AsRaw(),
					Resource:       res,
					Scope:          scope,
				})
			}
		}
	}
	return out
}

// timeOf converts a timestamp, keeping 0 as the zero time.
func timeOf(ts pcommon.Timestamp) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	return ts.AsTime()
}

// metricPoints flattens every data point of md.
func metricPoints(md pmetric.Metrics) []MetricPoint {
	var out []MetricPoint
	for _, rm := range md.ResourceMetrics().All() {
		res := rm.Resource().Attributes().AsRaw()
		for _, sm := range rm.ScopeMetrics().All() {
			scope := sm.Scope().Name()
			for _, m := range sm.Metrics().All() {
				base := MetricPoint{Name: m.Name(), Unit: m.Unit(), Type: m.Type().String(), Resource: res, Scope: scope}
				number := func(dp pmetric.NumberDataPoint) MetricPoint {
					p := base
					p.Start, p.Time = timeOf(dp.StartTimestamp()), timeOf(dp.Timestamp())
					p.Attributes = dp.Attributes().AsRaw()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						p.Value = float64(dp.IntValue())
					} else {
						p.Value = dp.DoubleValue()
					}
					return p
				}
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					for _, dp := range m.Gauge().DataPoints().All() {
						out = append(out, number(dp))
					}
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						p := number(dp)
						p.Temporality = m.Sum().AggregationTemporality().String()
						p.Monotonic = m.Sum().IsMonotonic()
						out = append(out, p)
					}
				case pmetric.MetricTypeHistogram:
					t := m.Histogram().AggregationTemporality().String()
					for _, dp := range m.Histogram().DataPoints().All() {
						out = append(out, histogramPoint(base, t, dp))
					}
				case pmetric.MetricTypeExponentialHistogram:
					t := m.ExponentialHistogram().AggregationTemporality().String()
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						out = append(out, histogramPoint(base, t, dp))
					}
				case pmetric.MetricTypeSummary:
					for _, dp := range m.Summary().DataPoints().All() {
						p := base
						p.Start, p.Time = timeOf(dp.StartTimestamp()), timeOf(dp.Timestamp())
						p.Attributes = dp.Attributes().AsRaw()
						p.Value, p.Count = dp.Sum(), dp.Count()
						out = append(out, p)
					}
				}
			}
		}
	}
	return out
}

// histogramDataPoint is what explicit and exponential histogram points share.
type histogramDataPoint interface {
	StartTimestamp() pcommon.Timestamp
	Timestamp() pcommon.Timestamp
	Attributes() pcommon.Map
	Sum() float64
	Count() uint64
	HasMin() bool
	HasMax() bool
	Min() float64
	Max() float64
}

// histogramPoint flattens one histogram data point of either kind.
func histogramPoint[P histogramDataPoint](base MetricPoint, temporality string, dp P) MetricPoint {
	p := base
	p.Temporality = temporality
	p.Start, p.Time = timeOf(dp.StartTimestamp()), timeOf(dp.Timestamp())
	p.Attributes = dp.Attributes().AsRaw()
	p.Value, p.Count = dp.Sum(), dp.Count()
	if dp.HasMin() && dp.HasMax() {
		p.HasMinMax, p.Min, p.Max = true, dp.Min(), dp.Max()
	}
	return p
}
