package exporter

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// The spill encoding of collected metrics. The OTLP exporters expose no
// payload, so a metric collection the final flush could not send is kept
// as our own JSON rendering of the SDK's metricdata:
//
//	{"resource":{"schema_url":"…","attrs":[{"k":"service.name","t":"string","v":"fn"}]},
//	 "scopes":[{"name":"…","version":"…","metrics":[
//	   {"name":"faas.invocations","unit":"{invocation}","kind":"sum_int64",
//	    "temporality":"delta","monotonic":true,
//	    "points":[{"attrs":[…],"start":"2025-01-02T03:04:05.000000006Z","time":"…","value":3}]}]}]}
//
// Every aggregation of the SDK is covered (kind names the aggregation and
// its number type), and every attribute type. Temporality is a word, times
// are RFC 3339 with nanoseconds, an undefined histogram min or max is
// absent, and the floats JSON cannot hold are the strings "NaN", "+Inf" and
// "-Inf". Exemplars are dropped: they are optional samples pointing at
// traces, not part of the aggregated data.

// mdKind names an aggregation and its number type.
type mdKind string

const (
	mdSumInt64            mdKind = "sum_int64"
	mdSumFloat64          mdKind = "sum_float64"
	mdGaugeInt64          mdKind = "gauge_int64"
	mdGaugeFloat64        mdKind = "gauge_float64"
	mdHistogramInt64      mdKind = "histogram_int64"
	mdHistogramFloat64    mdKind = "histogram_float64"
	mdExpHistogramInt64   mdKind = "exp_histogram_int64"
	mdExpHistogramFloat64 mdKind = "exp_histogram_float64"
	mdSummary             mdKind = "summary"
)

// mdTemporality is metricdata.Temporality as a word.
type mdTemporality string

const (
	mdCumulative mdTemporality = "cumulative"
	mdDelta      mdTemporality = "delta"
)

// mdAttrType names an attribute.Type.
type mdAttrType string

const (
	mdBool         mdAttrType = "bool"
	mdInt64        mdAttrType = "int64"
	mdFloat64      mdAttrType = "float64"
	mdString       mdAttrType = "string"
	mdBoolSlice    mdAttrType = "bool_slice"
	mdInt64Slice   mdAttrType = "int64_slice"
	mdFloat64Slice mdAttrType = "float64_slice"
	mdStringSlice  mdAttrType = "string_slice"
	mdBytes        mdAttrType = "bytes" // base64, as encoding/json writes []byte
	mdSlice        mdAttrType = "slice" // v is a list of {"t","v"}
	mdMap          mdAttrType = "map"   // v is a list of {"k","t","v"}
	mdEmpty        mdAttrType = "empty" // no v
)

type mdDoc struct {
	Resource *mdResource `json:"resource,omitempty"` // absent for a nil Resource
	Scopes   []mdScope   `json:"scopes"`
}

type mdResource struct {
	SchemaURL string   `json:"schema_url,omitempty"`
	Attrs     []mdAttr `json:"attrs,omitempty"`
}

type mdScope struct {
	Name      string     `json:"name"`
	Version   string     `json:"version,omitempty"`
	SchemaURL string     `json:"schema_url,omitempty"`
	Attrs     []mdAttr   `json:"attrs,omitempty"`
	Metrics   []mdMetric `json:"metrics"`
}

type mdMetric struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Unit        string        `json:"unit,omitempty"`
	Kind        mdKind        `json:"kind"`
	Temporality mdTemporality `json:"temporality,omitempty"` // all but gauges and summaries
	Monotonic   bool          `json:"monotonic,omitempty"`   // sums only
	// Points is a list of mdPoint, mdHistPoint, mdExpPoint or
	// mdSummaryPoint, as Kind says.
	Points json.RawMessage `json:"points"`
}

type mdPoint[N int64 | float64] struct {
	Attrs []mdAttr  `json:"attrs,omitempty"`
	Start time.Time `json:"start,omitzero"`
	Time  time.Time `json:"time,omitzero"`
	Value mdNum[N]  `json:"value"`
}

type mdHistPoint[N int64 | float64] struct {
	Attrs  []mdAttr  `json:"attrs,omitempty"`
	Start  time.Time `json:"start,omitzero"`
	Time   time.Time `json:"time,omitzero"`
	Count  uint64    `json:"count"`
	Bounds []mdFloat `json:"bounds,omitempty"`
	Counts []uint64  `json:"counts"` // len(Bounds)+1
	Min    *mdNum[N] `json:"min,omitempty"`
	Max    *mdNum[N] `json:"max,omitempty"`
	Sum    mdNum[N]  `json:"sum"`
}

type mdExpPoint[N int64 | float64] struct {
	Attrs         []mdAttr  `json:"attrs,omitempty"`
	Start         time.Time `json:"start,omitzero"`
	Time          time.Time `json:"time,omitzero"`
	Count         uint64    `json:"count"`
	Min           *mdNum[N] `json:"min,omitempty"`
	Max           *mdNum[N] `json:"max,omitempty"`
	Sum           mdNum[N]  `json:"sum"`
	Scale         int32     `json:"scale"`
	ZeroCount     uint64    `json:"zero_count"`
	ZeroThreshold mdFloat   `json:"zero_threshold"`
	Positive      mdBucket  `json:"positive"`
	Negative      mdBucket  `json:"negative"`
}

type mdBucket struct {
	Offset int32    `json:"offset"`
	Counts []uint64 `json:"counts,omitempty"`
}

type mdSummaryPoint struct {
	Attrs     []mdAttr     `json:"attrs,omitempty"`
	Start     time.Time    `json:"start,omitzero"`
	Time      time.Time    `json:"time,omitzero"`
	Count     uint64       `json:"count"`
	Sum       mdFloat      `json:"sum"`
	Quantiles []mdQuantile `json:"quantiles,omitempty"`
}

type mdQuantile struct {
	Quantile mdFloat `json:"q"`
	Value    mdFloat `json:"v"`
}

// mdAttr is an attribute (K set) or, inside a slice value, a bare value.
type mdAttr struct {
	K string          `json:"k,omitempty"`
	T mdAttrType      `json:"t"`
	V json.RawMessage `json:"v,omitempty"`
}

// mdFloat is a float64 that encodes NaN and ±Inf as strings.
type mdFloat float64

func (f mdFloat) MarshalJSON() ([]byte, error) {
	switch v := float64(f); {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	default:
		return json.Marshal(v)
	}
}

func (f *mdFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return errors.New("float: null")
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*f = mdFloat(math.NaN())
		case "+Inf":
			*f = mdFloat(math.Inf(1))
		case "-Inf":
			*f = mdFloat(math.Inf(-1))
		default:
			return fmt.Errorf(`float %q: want a number, "NaN", "+Inf" or "-Inf"`, s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = mdFloat(v)
	return nil
}

// mdNum is a data point value: an int64, or a float64 as mdFloat.
type mdNum[N int64 | float64] struct{ v N }

func (n mdNum[N]) MarshalJSON() ([]byte, error) {
	if f, ok := any(n.v).(float64); ok {
		return mdFloat(f).MarshalJSON()
	}
	return strconv.AppendInt(nil, int64(n.v), 10), nil
}

func (n *mdNum[N]) UnmarshalJSON(b []byte) error {
	switch p := any(&n.v).(type) {
	case *float64:
		return (*mdFloat)(p).UnmarshalJSON(b)
	case *int64:
		if string(b) == "null" {
			return errors.New("int64: null")
		}
		return json.Unmarshal(b, p)
	}
	return fmt.Errorf("number type %T", n.v) // unreachable: N is int64 or float64
}

func mdFloats(v []float64) []mdFloat {
	if v == nil {
		return nil
	}
	out := make([]mdFloat, len(v))
	for i, f := range v {
		out[i] = mdFloat(f)
	}
	return out
}

func mdFloat64s(v []mdFloat) []float64 {
	if v == nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

// encodeMetrics returns rm as our spill encoding (JSON).
func encodeMetrics(rm *metricdata.ResourceMetrics) (json.RawMessage, error) {
	if rm == nil {
		return nil, errors.New("encode metrics: nil ResourceMetrics")
	}
	doc := mdDoc{Scopes: make([]mdScope, 0, len(rm.ScopeMetrics))}
	if r := rm.Resource; r != nil {
		attrs, err := mdEncodeAttrs(r.Attributes())
		if err != nil {
			return nil, fmt.Errorf("encode metrics: resource: %w", err)
		}
		doc.Resource = &mdResource{SchemaURL: r.SchemaURL(), Attrs: attrs}
	}
	for _, sm := range rm.ScopeMetrics {
		attrs, err := mdEncodeAttrs(sm.Scope.Attributes.ToSlice())
		if err != nil {
			return nil, fmt.Errorf("encode metrics: scope %q: %w", sm.Scope.Name, err)
		}
		s := mdScope{
			Name: sm.Scope.Name, Version: sm.Scope.Version, SchemaURL: sm.Scope.SchemaURL,
			Attrs: attrs, Metrics: make([]mdMetric, 0, len(sm.Metrics)),
		}
		for _, m := range sm.Metrics {
			em := mdMetric{Name: m.Name, Description: m.Description, Unit: m.Unit}
			if err := mdEncodeData(&em, m.Data); err != nil {
				return nil, fmt.Errorf("encode metrics: scope %q: metric %q: %w", sm.Scope.Name, m.Name, err)
			}
			s.Metrics = append(s.Metrics, em)
		}
		doc.Scopes = append(doc.Scopes, s)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode metrics: %w", err)
	}
	return b, nil
}

// decodeMetrics is the inverse of encodeMetrics; an unknown aggregation
// kind or attribute type is an error.
func decodeMetrics(raw json.RawMessage) (*metricdata.ResourceMetrics, error) {
	var doc *mdDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode metrics: %w", err)
	}
	if doc == nil {
		return nil, errors.New("decode metrics: null")
	}
	rm := &metricdata.ResourceMetrics{}
	if r := doc.Resource; r != nil {
		attrs, err := mdDecodeAttrs(r.Attrs)
		if err != nil {
			return nil, fmt.Errorf("decode metrics: resource: %w", err)
		}
		if r.SchemaURL == "" {
			rm.Resource = resource.NewSchemaless(attrs...)
		} else {
			rm.Resource = resource.NewWithAttributes(r.SchemaURL, attrs...)
		}
	}
	if len(doc.Scopes) > 0 {
		rm.ScopeMetrics = make([]metricdata.ScopeMetrics, 0, len(doc.Scopes))
	}
	for _, s := range doc.Scopes {
		attrs, err := mdDecodeAttrs(s.Attrs)
		if err != nil {
			return nil, fmt.Errorf("decode metrics: scope %q: %w", s.Name, err)
		}
		sm := metricdata.ScopeMetrics{Scope: instrumentation.Scope{Name: s.Name, Version: s.Version, SchemaURL: s.SchemaURL}}
		if len(attrs) > 0 {
			// Without attributes the zero Set, as the SDK's meters have:
			// Scope is compared with ==, where NewSet() differs from it.
			sm.Scope.Attributes = attribute.NewSet(attrs...)
		}
		if len(s.Metrics) > 0 {
			sm.Metrics = make([]metricdata.Metrics, 0, len(s.Metrics))
		}
		for _, m := range s.Metrics {
			data, err := mdDecodeData(m)
			if err != nil {
				return nil, fmt.Errorf("decode metrics: scope %q: metric %q: %w", s.Name, m.Name, err)
			}
			sm.Metrics = append(sm.Metrics, metricdata.Metrics{
				Name: m.Name, Description: m.Description, Unit: m.Unit, Data: data,
			})
		}
		rm.ScopeMetrics = append(rm.ScopeMetrics, sm)
	}
	return rm, nil
}

func mdEncodeData(m *mdMetric, data metricdata.Aggregation) error {
	var (
		points any
		err    error
	)
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		m.Kind, m.Monotonic = mdSumInt64, d.IsMonotonic
		m.Temporality, err = mdEncodeTemporality(d.Temporality)
		points = mdEncodePoints(d.DataPoints, &err)
	case metricdata.Sum[float64]:
		m.Kind, m.Monotonic = mdSumFloat64, d.IsMonotonic
		m.Temporality, err = mdEncodeTemporality(d.Temporality)
		points = mdEncodePoints(d.DataPoints, &err)
	case metricdata.Gauge[int64]:
		m.Kind = mdGaugeInt64
		points = mdEncodePoints(d.DataPoints, &err)
	case metricdata.Gauge[float64]:
		m.Kind = mdGaugeFloat64
		points = mdEncodePoints(d.DataPoints, &err)
	case metricdata.Histogram[int64]:
		m.Kind = mdHistogramInt64
		m.Temporality, err = mdEncodeTemporality(d.Temporality)
		points = mdEncodeHistPoints(d.DataPoints, &err)
	case metricdata.Histogram[float64]:
		m.Kind = mdHistogramFloat64
		m.Temporality, err = mdEncodeTemporality(d.Temporality)
		points = mdEncodeHistPoints(d.DataPoints, &err)
	case metricdata.ExponentialHistogram[int64]:
		m.Kind = mdExpHistogramInt64
		m.Temporality, err = mdEncodeTemporality(d.Temporality)
		points = mdEncodeExpPoints(d.DataPoints, &err)
	case metricdata.ExponentialHistogram[float64]:
		m.Kind = mdExpHistogramFloat64
		m.Temporality, err = mdEncodeTemporality(d.Temporality)
		points = mdEncodeExpPoints(d.DataPoints, &err)
	case metricdata.Summary:
		m.Kind = mdSummary
		points = mdEncodeSummaryPoints(d.DataPoints, &err)
	default:
		return fmt.Errorf("unsupported aggregation %T", data)
	}
	if err != nil {
		return err
	}
	m.Points, err = json.Marshal(points)
	return err
}

func mdDecodeData(m mdMetric) (metricdata.Aggregation, error) {
	switch m.Kind {
	case mdSumInt64:
		return mdDecodeSum[int64](m)
	case mdSumFloat64:
		return mdDecodeSum[float64](m)
	case mdGaugeInt64:
		return mdDecodeGauge[int64](m)
	case mdGaugeFloat64:
		return mdDecodeGauge[float64](m)
	case mdHistogramInt64:
		return mdDecodeHistogram[int64](m)
	case mdHistogramFloat64:
		return mdDecodeHistogram[float64](m)
	case mdExpHistogramInt64:
		return mdDecodeExpHistogram[int64](m)
	case mdExpHistogramFloat64:
		return mdDecodeExpHistogram[float64](m)
	case mdSummary:
		return mdDecodeSummary(m)
	}
	return nil, fmt.Errorf("unknown aggregation kind %q", m.Kind)
}

func mdEncodeTemporality(t metricdata.Temporality) (mdTemporality, error) {
	switch t {
	case metricdata.CumulativeTemporality:
		return mdCumulative, nil
	case metricdata.DeltaTemporality:
		return mdDelta, nil
	}
	return "", fmt.Errorf("undefined temporality %d", t)
}

func (t mdTemporality) decode() (metricdata.Temporality, error) {
	switch t {
	case mdCumulative:
		return metricdata.CumulativeTemporality, nil
	case mdDelta:
		return metricdata.DeltaTemporality, nil
	}
	return 0, fmt.Errorf("unknown temporality %q", t)
}

// The point encoders stop at the first error, which they store in *errp
// (when it is still nil), so that mdEncodeData stays one line per kind.

func mdEncodePoints[N int64 | float64](dps []metricdata.DataPoint[N], errp *error) []mdPoint[N] {
	out := make([]mdPoint[N], 0, len(dps))
	for i, dp := range dps {
		attrs, err := mdEncodeAttrs(dp.Attributes.ToSlice())
		if err != nil {
			mdSetErr(errp, fmt.Errorf("point %d: %w", i, err))
			return nil
		}
		out = append(out, mdPoint[N]{Attrs: attrs, Start: dp.StartTime, Time: dp.Time, Value: mdNum[N]{dp.Value}})
	}
	return out
}

func mdEncodeHistPoints[N int64 | float64](dps []metricdata.HistogramDataPoint[N], errp *error) []mdHistPoint[N] {
	out := make([]mdHistPoint[N], 0, len(dps))
	for i, dp := range dps {
		attrs, err := mdEncodeAttrs(dp.Attributes.ToSlice())
		if err == nil {
			err = mdCheckBuckets(len(dp.Bounds), len(dp.BucketCounts))
		}
		if err != nil {
			mdSetErr(errp, fmt.Errorf("point %d: %w", i, err))
			return nil
		}
		out = append(out, mdHistPoint[N]{
			Attrs: attrs, Start: dp.StartTime, Time: dp.Time,
			Count: dp.Count, Bounds: mdFloats(dp.Bounds), Counts: dp.BucketCounts,
			Min: mdEncodeExtrema(dp.Min), Max: mdEncodeExtrema(dp.Max), Sum: mdNum[N]{dp.Sum},
		})
	}
	return out
}

func mdEncodeExpPoints[N int64 | float64](dps []metricdata.ExponentialHistogramDataPoint[N], errp *error) []mdExpPoint[N] {
	out := make([]mdExpPoint[N], 0, len(dps))
	for i, dp := range dps {
		attrs, err := mdEncodeAttrs(dp.Attributes.ToSlice())
		if err != nil {
			mdSetErr(errp, fmt.Errorf("point %d: %w", i, err))
			return nil
		}
		out = append(out, mdExpPoint[N]{
			Attrs: attrs, Start: dp.StartTime, Time: dp.Time, Count: dp.Count,
			Min: mdEncodeExtrema(dp.Min), Max: mdEncodeExtrema(dp.Max), Sum: mdNum[N]{dp.Sum},
			Scale: dp.Scale, ZeroCount: dp.ZeroCount, ZeroThreshold: mdFloat(dp.ZeroThreshold),
			Positive: mdBucket{Offset: dp.PositiveBucket.Offset, Counts: dp.PositiveBucket.Counts},
			Negative: mdBucket{Offset: dp.NegativeBucket.Offset, Counts: dp.NegativeBucket.Counts},
		})
	}
	return out
}

func mdEncodeSummaryPoints(dps []metricdata.SummaryDataPoint, errp *error) []mdSummaryPoint {
	out := make([]mdSummaryPoint, 0, len(dps))
	for i, dp := range dps {
		attrs, err := mdEncodeAttrs(dp.Attributes.ToSlice())
		if err != nil {
			mdSetErr(errp, fmt.Errorf("point %d: %w", i, err))
			return nil
		}
		p := mdSummaryPoint{Attrs: attrs, Start: dp.StartTime, Time: dp.Time, Count: dp.Count, Sum: mdFloat(dp.Sum)}
		for _, q := range dp.QuantileValues {
			p.Quantiles = append(p.Quantiles, mdQuantile{Quantile: mdFloat(q.Quantile), Value: mdFloat(q.Value)})
		}
		out = append(out, p)
	}
	return out
}

func mdSetErr(errp *error, err error) {
	if *errp == nil {
		*errp = err
	}
}

func mdCheckBuckets(bounds, counts int) error {
	if counts != bounds+1 {
		return fmt.Errorf("%d bucket counts for %d bounds, want %d", counts, bounds, bounds+1)
	}
	return nil
}

func mdEncodeExtrema[N int64 | float64](e metricdata.Extrema[N]) *mdNum[N] {
	if v, ok := e.Value(); ok {
		return &mdNum[N]{v}
	}
	return nil
}

func mdDecodeExtrema[N int64 | float64](n *mdNum[N]) metricdata.Extrema[N] {
	if n == nil {
		return metricdata.Extrema[N]{}
	}
	return metricdata.NewExtrema(n.v)
}

// mdDecodePoints unmarshals m.Points and converts each point with conv.
func mdDecodePoints[P, T any](m mdMetric, conv func(P) (T, error)) ([]T, error) {
	var in []P
	if err := json.Unmarshal(m.Points, &in); err != nil {
		return nil, fmt.Errorf("points: %w", err)
	}
	if in == nil {
		return nil, nil
	}
	out := make([]T, 0, len(in))
	for i, p := range in {
		t, err := conv(p)
		if err != nil {
			return nil, fmt.Errorf("point %d: %w", i, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func mdDecodePoint[N int64 | float64](p mdPoint[N]) (metricdata.DataPoint[N], error) {
	set, err := mdDecodeSet(p.Attrs)
	return metricdata.DataPoint[N]{Attributes: set, StartTime: p.Start, Time: p.Time, Value: p.Value.v}, err
}

func mdDecodeSum[N int64 | float64](m mdMetric) (metricdata.Aggregation, error) {
	t, err := m.Temporality.decode()
	if err != nil {
		return nil, err
	}
	dps, err := mdDecodePoints(m, mdDecodePoint[N])
	if err != nil {
		return nil, err
	}
	return metricdata.Sum[N]{DataPoints: dps, Temporality: t, IsMonotonic: m.Monotonic}, nil
}

func mdDecodeGauge[N int64 | float64](m mdMetric) (metricdata.Aggregation, error) {
	dps, err := mdDecodePoints(m, mdDecodePoint[N])
	if err != nil {
		return nil, err
	}
	return metricdata.Gauge[N]{DataPoints: dps}, nil
}

func mdDecodeHistogram[N int64 | float64](m mdMetric) (metricdata.Aggregation, error) {
	t, err := m.Temporality.decode()
	if err != nil {
		return nil, err
	}
	dps, err := mdDecodePoints(m, func(p mdHistPoint[N]) (metricdata.HistogramDataPoint[N], error) {
		if err := mdCheckBuckets(len(p.Bounds), len(p.Counts)); err != nil {
			return metricdata.HistogramDataPoint[N]{}, err
		}
		set, err := mdDecodeSet(p.Attrs)
		return metricdata.HistogramDataPoint[N]{
			Attributes: set, StartTime: p.Start, Time: p.Time,
			Count: p.Count, Bounds: mdFloat64s(p.Bounds), BucketCounts: p.Counts,
			Min: mdDecodeExtrema(p.Min), Max: mdDecodeExtrema(p.Max), Sum: p.Sum.v,
		}, err
	})
	if err != nil {
		return nil, err
	}
	return metricdata.Histogram[N]{DataPoints: dps, Temporality: t}, nil
}

func mdDecodeExpHistogram[N int64 | float64](m mdMetric) (metricdata.Aggregation, error) {
	t, err := m.Temporality.decode()
	if err != nil {
		return nil, err
	}
	dps, err := mdDecodePoints(m, func(p mdExpPoint[N]) (metricdata.ExponentialHistogramDataPoint[N], error) {
		set, err := mdDecodeSet(p.Attrs)
		return metricdata.ExponentialHistogramDataPoint[N]{
			Attributes: set, StartTime: p.Start, Time: p.Time, Count: p.Count,
			Min: mdDecodeExtrema(p.Min), Max: mdDecodeExtrema(p.Max), Sum: p.Sum.v,
			Scale: p.Scale, ZeroCount: p.ZeroCount, ZeroThreshold: float64(p.ZeroThreshold),
			PositiveBucket: metricdata.ExponentialBucket{Offset: p.Positive.Offset, Counts: p.Positive.Counts},
			NegativeBucket: metricdata.ExponentialBucket{Offset: p.Negative.Offset, Counts: p.Negative.Counts},
		}, err
	})
	if err != nil {
		return nil, err
	}
	return metricdata.ExponentialHistogram[N]{DataPoints: dps, Temporality: t}, nil
}

func mdDecodeSummary(m mdMetric) (metricdata.Aggregation, error) {
	dps, err := mdDecodePoints(m, func(p mdSummaryPoint) (metricdata.SummaryDataPoint, error) {
		set, err := mdDecodeSet(p.Attrs)
		dp := metricdata.SummaryDataPoint{Attributes: set, StartTime: p.Start, Time: p.Time, Count: p.Count, Sum: float64(p.Sum)}
		for _, q := range p.Quantiles {
			dp.QuantileValues = append(dp.QuantileValues, metricdata.QuantileValue{Quantile: float64(q.Quantile), Value: float64(q.Value)})
		}
		return dp, err
	})
	if err != nil {
		return nil, err
	}
	return metricdata.Summary{DataPoints: dps}, nil
}

func mdEncodeAttrs(kvs []attribute.KeyValue) ([]mdAttr, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make([]mdAttr, 0, len(kvs))
	for _, kv := range kvs {
		a, err := mdEncodeValue(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", kv.Key, err)
		}
		a.K = string(kv.Key)
		out = append(out, a)
	}
	return out, nil
}

func mdEncodeValue(v attribute.Value) (mdAttr, error) {
	var (
		t mdAttrType
		x any
	)
	switch v.Type() {
	case attribute.EMPTY:
		return mdAttr{T: mdEmpty}, nil
	case attribute.BOOL:
		t, x = mdBool, v.AsBool()
	case attribute.INT64:
		t, x = mdInt64, v.AsInt64()
	case attribute.FLOAT64:
		t, x = mdFloat64, mdFloat(v.AsFloat64())
	case attribute.STRING:
		t, x = mdString, v.AsString()
	case attribute.BOOLSLICE:
		t, x = mdBoolSlice, v.AsBoolSlice()
	case attribute.INT64SLICE:
		t, x = mdInt64Slice, v.AsInt64Slice()
	case attribute.FLOAT64SLICE:
		t, x = mdFloat64Slice, mdFloats(v.AsFloat64Slice())
	case attribute.STRINGSLICE:
		t, x = mdStringSlice, v.AsStringSlice()
	case attribute.BYTESLICE:
		t, x = mdBytes, v.AsByteSlice()
	case attribute.SLICE:
		vs := v.AsSlice()
		elems := make([]mdAttr, 0, len(vs))
		for i, e := range vs {
			a, err := mdEncodeValue(e)
			if err != nil {
				return mdAttr{}, fmt.Errorf("element %d: %w", i, err)
			}
			elems = append(elems, a)
		}
		t, x = mdSlice, elems
	case attribute.MAP:
		kvs, err := mdEncodeAttrs(v.AsMap())
		if err != nil {
			return mdAttr{}, err
		}
		if kvs == nil {
			kvs = []mdAttr{}
		}
		t, x = mdMap, kvs
	default:
		return mdAttr{}, fmt.Errorf("unsupported attribute type %s", v.Type())
	}
	b, err := json.Marshal(x)
	return mdAttr{T: t, V: b}, err
}

func mdDecodeSet(as []mdAttr) (attribute.Set, error) {
	kvs, err := mdDecodeAttrs(as)
	if err != nil {
		return attribute.Set{}, err
	}
	return attribute.NewSet(kvs...), nil
}

func mdDecodeAttrs(as []mdAttr) ([]attribute.KeyValue, error) {
	if len(as) == 0 {
		return nil, nil
	}
	out := make([]attribute.KeyValue, 0, len(as))
	for _, a := range as {
		v, err := mdDecodeValue(a)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.K, err)
		}
		out = append(out, attribute.KeyValue{Key: attribute.Key(a.K), Value: v})
	}
	return out, nil
}

func mdDecodeValue(a mdAttr) (attribute.Value, error) {
	switch a.T {
	case mdEmpty:
		return attribute.Value{}, nil
	case mdBool:
		return mdUnmarshalValue(a.V, attribute.BoolValue)
	case mdInt64:
		return mdUnmarshalValue(a.V, attribute.Int64Value)
	case mdFloat64:
		return mdUnmarshalValue(a.V, func(f mdFloat) attribute.Value { return attribute.Float64Value(float64(f)) })
	case mdString:
		return mdUnmarshalValue(a.V, attribute.StringValue)
	case mdBoolSlice:
		return mdUnmarshalValue(a.V, attribute.BoolSliceValue)
	case mdInt64Slice:
		return mdUnmarshalValue(a.V, attribute.Int64SliceValue)
	case mdFloat64Slice:
		return mdUnmarshalValue(a.V, func(f []mdFloat) attribute.Value { return attribute.Float64SliceValue(mdFloat64s(f)) })
	case mdStringSlice:
		return mdUnmarshalValue(a.V, attribute.StringSliceValue)
	case mdBytes:
		return mdUnmarshalValue(a.V, attribute.ByteSliceValue)
	case mdSlice:
		var elems []mdAttr
		if err := json.Unmarshal(a.V, &elems); err != nil {
			return attribute.Value{}, err
		}
		vs := make([]attribute.Value, 0, len(elems))
		for i, e := range elems {
			v, err := mdDecodeValue(e)
			if err != nil {
				return attribute.Value{}, fmt.Errorf("element %d: %w", i, err)
			}
			vs = append(vs, v)
		}
		return attribute.SliceValue(vs...), nil
	case mdMap:
		var kvs []mdAttr
		if err := json.Unmarshal(a.V, &kvs); err != nil {
			return attribute.Value{}, err
		}
		m, err := mdDecodeAttrs(kvs)
		if err != nil {
			return attribute.Value{}, err
		}
		return attribute.MapValue(m...), nil
	}
	return attribute.Value{}, fmt.Errorf("unknown attribute type %q", a.T)
}

func mdUnmarshalValue[T any](raw json.RawMessage, value func(T) attribute.Value) (attribute.Value, error) {
	var x T
	if err := json.Unmarshal(raw, &x); err != nil {
		return attribute.Value{}, err
	}
	return value(x), nil
}
