package metriccodec

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

// The encoding:
//
//	{"resource":{"schema_url":"…","attrs":[{"k":"service.name","t":"string","v":"fn"}]},
//	 "scopes":[{"name":"…","version":"…","metrics":[
//	   {"name":"faas.invocations","unit":"{invocation}","kind":"sum_int64",
//	    "temporality":"delta","monotonic":true,
//	    "points":[{"attrs":[…],"start":"2025-01-02T03:04:05.000000006Z","time":"…","value":3}]}]}]}
//
// Kind names the aggregation and its number type; it covers the
// aggregations the agent's instruments make with the SDK's default
// aggregation (counters: sums; gauges: int64 and float64 gauges; histograms
// with explicit buckets), and the attribute types its resource and data
// points carry. Temporality is a word, times are RFC 3339 with nanoseconds,
// an undefined histogram min or max is absent, and the floats JSON cannot
// hold are the strings "NaN", "+Inf" and "-Inf". Exemplars are dropped:
// they are optional samples pointing at traces, not part of the aggregated
// data (and the agent's MeterProvider records none).

// kind names an aggregation and its number type.
type kind string

const (
	kindSumInt64         kind = "sum_int64"
	kindSumFloat64       kind = "sum_float64"
	kindGaugeInt64       kind = "gauge_int64"
	kindGaugeFloat64     kind = "gauge_float64"
	kindHistogramInt64   kind = "histogram_int64"
	kindHistogramFloat64 kind = "histogram_float64"
)

// temporality is metricdata.Temporality as a word.
type temporality string

const (
	cumulative temporality = "cumulative"
	delta      temporality = "delta"
)

// attrType names an attribute.Type.
type attrType string

const (
	typeBool        attrType = "bool"
	typeInt64       attrType = "int64"
	typeFloat64     attrType = "float64"
	typeString      attrType = "string"
	typeStringSlice attrType = "string_slice"
)

type document struct {
	Resource *resourceDoc `json:"resource,omitempty"` // absent for a nil Resource
	Scopes   []scopeDoc   `json:"scopes"`
}

type resourceDoc struct {
	SchemaURL string `json:"schema_url,omitempty"`
	Attrs     []attr `json:"attrs,omitempty"`
}

type scopeDoc struct {
	Name      string      `json:"name"`
	Version   string      `json:"version,omitempty"`
	SchemaURL string      `json:"schema_url,omitempty"`
	Attrs     []attr      `json:"attrs,omitempty"`
	Metrics   []metricDoc `json:"metrics"`
}

type metricDoc struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Unit        string      `json:"unit,omitempty"`
	Kind        kind        `json:"kind"`
	Temporality temporality `json:"temporality,omitempty"` // sums and histograms
	Monotonic   bool        `json:"monotonic,omitempty"`   // sums only
	// Points is a list of point or histPoint, as Kind says.
	Points json.RawMessage `json:"points"`
}

type point[N int64 | float64] struct {
	Attrs []attr    `json:"attrs,omitempty"`
	Start time.Time `json:"start,omitzero"`
	Time  time.Time `json:"time,omitzero"`
	Value number[N] `json:"value"`
}

type histPoint[N int64 | float64] struct {
	Attrs  []attr     `json:"attrs,omitempty"`
	Start  time.Time  `json:"start,omitzero"`
	Time   time.Time  `json:"time,omitzero"`
	Count  uint64     `json:"count"`
	Bounds []float    `json:"bounds,omitempty"`
	Counts []uint64   `json:"counts"` // len(Bounds)+1
	Min    *number[N] `json:"min,omitempty"`
	Max    *number[N] `json:"max,omitempty"`
	Sum    number[N]  `json:"sum"`
}

// attr is an attribute.
type attr struct {
	K string          `json:"k"`
	T attrType        `json:"t"`
	V json.RawMessage `json:"v"`
}

// float is a float64 that encodes NaN and ±Inf as strings.
type float float64

func (f float) MarshalJSON() ([]byte, error) {
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

func (f *float) UnmarshalJSON(b []byte) error {
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
			*f = float(math.NaN())
		case "+Inf":
			*f = float(math.Inf(1))
		case "-Inf":
			*f = float(math.Inf(-1))
		default:
			return fmt.Errorf(`float %q: want a number, "NaN", "+Inf" or "-Inf"`, s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = float(v)
	return nil
}

// number is a data point value: an int64, or a float64 as float.
type number[N int64 | float64] struct{ v N }

func (n number[N]) MarshalJSON() ([]byte, error) {
	if f, ok := any(n.v).(float64); ok {
		return float(f).MarshalJSON()
	}
	return strconv.AppendInt(nil, int64(n.v), 10), nil
}

func (n *number[N]) UnmarshalJSON(b []byte) error {
	switch p := any(&n.v).(type) {
	case *float64:
		return (*float)(p).UnmarshalJSON(b)
	case *int64:
		if string(b) == "null" {
			return errors.New("int64: null")
		}
		return json.Unmarshal(b, p)
	}
	return fmt.Errorf("number type %T", n.v) // unreachable: N is int64 or float64
}

// Encode returns rm in this package's encoding. An aggregation or attribute
// type the encoding does not cover is an error wrapping
// [errors.ErrUnsupported]. A sum or histogram of undefined temporality and
// a histogram whose bucket counts do not match its bounds are errors too.
func Encode(rm *metricdata.ResourceMetrics) (json.RawMessage, error) {
	if rm == nil {
		return nil, errors.New("encode metrics: nil ResourceMetrics")
	}
	doc := document{Scopes: make([]scopeDoc, 0, len(rm.ScopeMetrics))}
	if r := rm.Resource; r != nil {
		attrs, err := encodeAttrs(r.Attributes())
		if err != nil {
			return nil, fmt.Errorf("encode metrics: resource: %w", err)
		}
		doc.Resource = &resourceDoc{SchemaURL: r.SchemaURL(), Attrs: attrs}
	}
	for _, sm := range rm.ScopeMetrics {
		attrs, err := encodeAttrs(sm.Scope.Attributes.ToSlice())
		if err != nil {
			return nil, fmt.Errorf("encode metrics: scope %q: %w", sm.Scope.Name, err)
		}
		s := scopeDoc{
			Name: sm.Scope.Name, Version: sm.Scope.Version, SchemaURL: sm.Scope.SchemaURL,
			Attrs: attrs, Metrics: make([]metricDoc, 0, len(sm.Metrics)),
		}
		for _, m := range sm.Metrics {
			em := metricDoc{Name: m.Name, Description: m.Description, Unit: m.Unit}
			if err := encodeData(&em, m.Data); err != nil {
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

// Decode is the inverse of [Encode]; an unknown aggregation kind or
// attribute type is an error.
func Decode(raw json.RawMessage) (*metricdata.ResourceMetrics, error) {
	var doc *document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode metrics: %w", err)
	}
	if doc == nil {
		return nil, errors.New("decode metrics: null")
	}
	rm := &metricdata.ResourceMetrics{}
	if r := doc.Resource; r != nil {
		attrs, err := decodeAttrs(r.Attrs)
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
		attrs, err := decodeAttrs(s.Attrs)
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
			data, err := decodeData(m)
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

// DataPoints counts the data points of rm, the unit in which the exporter
// counts metrics sent, dropped or spilled. An aggregation the encoding
// does not cover counts as one.
func DataPoints(rm *metricdata.ResourceMetrics) int64 {
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				n += int64(len(d.DataPoints))
			case metricdata.Sum[float64]:
				n += int64(len(d.DataPoints))
			case metricdata.Gauge[int64]:
				n += int64(len(d.DataPoints))
			case metricdata.Gauge[float64]:
				n += int64(len(d.DataPoints))
			case metricdata.Histogram[int64]:
				n += int64(len(d.DataPoints))
			case metricdata.Histogram[float64]:
				n += int64(len(d.DataPoints))
			default:
				n++
			}
		}
	}
	return n
}

func encodeData(m *metricDoc, data metricdata.Aggregation) error {
	var (
		points any
		err    error
	)
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		m.Kind, m.Monotonic = kindSumInt64, d.IsMonotonic
		m.Temporality, err = encodeTemporality(d.Temporality)
		points = encodePoints(d.DataPoints, &err)
	case metricdata.Sum[float64]:
		m.Kind, m.Monotonic = kindSumFloat64, d.IsMonotonic
		m.Temporality, err = encodeTemporality(d.Temporality)
		points = encodePoints(d.DataPoints, &err)
	case metricdata.Gauge[int64]:
		m.Kind = kindGaugeInt64
		points = encodePoints(d.DataPoints, &err)
	case metricdata.Gauge[float64]:
		m.Kind = kindGaugeFloat64
		points = encodePoints(d.DataPoints, &err)
	case metricdata.Histogram[int64]:
		m.Kind = kindHistogramInt64
		m.Temporality, err = encodeTemporality(d.Temporality)
		points = encodeHistPoints(d.DataPoints, &err)
	case metricdata.Histogram[float64]:
		m.Kind = kindHistogramFloat64
		m.Temporality, err = encodeTemporality(d.Temporality)
		points = encodeHistPoints(d.DataPoints, &err)
	default:
		return fmt.Errorf("aggregation %T: %w", data, errors.ErrUnsupported)
	}
	if err != nil {
		return err
	}
	m.Points, err = json.Marshal(points)
	return err
}

func decodeData(m metricDoc) (metricdata.Aggregation, error) {
	switch m.Kind {
	case kindSumInt64:
		return decodeSum[int64](m)
	case kindSumFloat64:
		return decodeSum[float64](m)
	case kindGaugeInt64:
		return decodeGauge[int64](m)
	case kindGaugeFloat64:
		return decodeGauge[float64](m)
	case kindHistogramInt64:
		return decodeHistogram[int64](m)
	case kindHistogramFloat64:
		return decodeHistogram[float64](m)
	}
	return nil, fmt.Errorf("unknown aggregation kind %q", m.Kind)
}

func encodeTemporality(t metricdata.Temporality) (temporality, error) {
	switch t {
	case metricdata.CumulativeTemporality:
		return cumulative, nil
	case metricdata.DeltaTemporality:
		return delta, nil
	}
	return "", fmt.Errorf("undefined temporality %d", t)
}

func (t temporality) decode() (metricdata.Temporality, error) {
	switch t {
	case cumulative:
		return metricdata.CumulativeTemporality, nil
	case delta:
		return metricdata.DeltaTemporality, nil
	}
	return 0, fmt.Errorf("unknown temporality %q", t)
}

// The point encoders stop at the first error, which they store in *errp
// (when it is still nil), so that encodeData stays one line per kind.

func encodePoints[N int64 | float64](dps []metricdata.DataPoint[N], errp *error) []point[N] {
	out := make([]point[N], 0, len(dps))
	for i, dp := range dps {
		attrs, err := encodeAttrs(dp.Attributes.ToSlice())
		if err != nil {
			setErr(errp, fmt.Errorf("point %d: %w", i, err))
			return nil
		}
		out = append(out, point[N]{Attrs: attrs, Start: dp.StartTime, Time: dp.Time, Value: number[N]{dp.Value}})
	}
	return out
}

func encodeHistPoints[N int64 | float64](dps []metricdata.HistogramDataPoint[N], errp *error) []histPoint[N] {
	out := make([]histPoint[N], 0, len(dps))
	for i, dp := range dps {
		attrs, err := encodeAttrs(dp.Attributes.ToSlice())
		if err == nil {
			err = checkBuckets(len(dp.Bounds), len(dp.BucketCounts))
		}
		if err != nil {
			setErr(errp, fmt.Errorf("point %d: %w", i, err))
			return nil
		}
		out = append(out, histPoint[N]{
			Attrs: attrs, Start: dp.StartTime, Time: dp.Time,
			Count: dp.Count, Bounds: floats(dp.Bounds), Counts: dp.BucketCounts,
			Min: encodeExtrema(dp.Min), Max: encodeExtrema(dp.Max), Sum: number[N]{dp.Sum},
		})
	}
	return out
}

func setErr(errp *error, err error) {
	if *errp == nil {
		*errp = err
	}
}

func checkBuckets(bounds, counts int) error {
	if counts != bounds+1 {
		return fmt.Errorf("%d bucket counts for %d bounds, want %d", counts, bounds, bounds+1)
	}
	return nil
}

func floats(v []float64) []float {
	if v == nil {
		return nil
	}
	out := make([]float, len(v))
	for i, f := range v {
		out[i] = float(f)
	}
	return out
}

func float64s(v []float) []float64 {
	if v == nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

func encodeExtrema[N int64 | float64](e metricdata.Extrema[N]) *number[N] {
	if v, ok := e.Value(); ok {
		return &number[N]{v}
	}
	return nil
}

func decodeExtrema[N int64 | float64](n *number[N]) metricdata.Extrema[N] {
	if n == nil {
		return metricdata.Extrema[N]{}
	}
	return metricdata.NewExtrema(n.v)
}

// decodePoints unmarshals m.Points and converts each point with conv.
func decodePoints[P, T any](m metricDoc, conv func(P) (T, error)) ([]T, error) {
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

func decodePoint[N int64 | float64](p point[N]) (metricdata.DataPoint[N], error) {
	set, err := decodeSet(p.Attrs)
	return metricdata.DataPoint[N]{Attributes: set, StartTime: p.Start, Time: p.Time, Value: p.Value.v}, err
}

func decodeSum[N int64 | float64](m metricDoc) (metricdata.Aggregation, error) {
	t, err := m.Temporality.decode()
	if err != nil {
		return nil, err
	}
	dps, err := decodePoints(m, decodePoint[N])
	if err != nil {
		return nil, err
	}
	return metricdata.Sum[N]{DataPoints: dps, Temporality: t, IsMonotonic: m.Monotonic}, nil
}

func decodeGauge[N int64 | float64](m metricDoc) (metricdata.Aggregation, error) {
	dps, err := decodePoints(m, decodePoint[N])
	if err != nil {
		return nil, err
	}
	return metricdata.Gauge[N]{DataPoints: dps}, nil
}

func decodeHistogram[N int64 | float64](m metricDoc) (metricdata.Aggregation, error) {
	t, err := m.Temporality.decode()
	if err != nil {
		return nil, err
	}
	dps, err := decodePoints(m, func(p histPoint[N]) (metricdata.HistogramDataPoint[N], error) {
		if err := checkBuckets(len(p.Bounds), len(p.Counts)); err != nil {
			return metricdata.HistogramDataPoint[N]{}, err
		}
		set, err := decodeSet(p.Attrs)
		return metricdata.HistogramDataPoint[N]{
			Attributes: set, StartTime: p.Start, Time: p.Time,
			Count: p.Count, Bounds: float64s(p.Bounds), BucketCounts: p.Counts,
			Min: decodeExtrema(p.Min), Max: decodeExtrema(p.Max), Sum: p.Sum.v,
		}, err
	})
	if err != nil {
		return nil, err
	}
	return metricdata.Histogram[N]{DataPoints: dps, Temporality: t}, nil
}

func encodeAttrs(kvs []attribute.KeyValue) ([]attr, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make([]attr, 0, len(kvs))
	for _, kv := range kvs {
		var (
			t attrType
			x any
		)
		switch v := kv.Value; v.Type() {
		case attribute.BOOL:
			t, x = typeBool, v.AsBool()
		case attribute.INT64:
			t, x = typeInt64, v.AsInt64()
		case attribute.FLOAT64:
			t, x = typeFloat64, float(v.AsFloat64())
		case attribute.STRING:
			t, x = typeString, v.AsString()
		case attribute.STRINGSLICE:
			t, x = typeStringSlice, v.AsStringSlice()
		default:
			return nil, fmt.Errorf("attribute %q: type %s: %w", kv.Key, v.Type(), errors.ErrUnsupported)
		}
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", kv.Key, err)
		}
		out = append(out, attr{K: string(kv.Key), T: t, V: b})
	}
	return out, nil
}

func decodeSet(as []attr) (attribute.Set, error) {
	kvs, err := decodeAttrs(as)
	if err != nil {
		return attribute.Set{}, err
	}
	return attribute.NewSet(kvs...), nil
}

func decodeAttrs(as []attr) ([]attribute.KeyValue, error) {
	if len(as) == 0 {
		return nil, nil
	}
	out := make([]attribute.KeyValue, 0, len(as))
	for _, a := range as {
		v, err := decodeValue(a)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.K, err)
		}
		out = append(out, attribute.KeyValue{Key: attribute.Key(a.K), Value: v})
	}
	return out, nil
}

func decodeValue(a attr) (attribute.Value, error) {
	switch a.T {
	case typeBool:
		return unmarshalValue(a.V, attribute.BoolValue)
	case typeInt64:
		return unmarshalValue(a.V, attribute.Int64Value)
	case typeFloat64:
		return unmarshalValue(a.V, func(f float) attribute.Value { return attribute.Float64Value(float64(f)) })
	case typeString:
		return unmarshalValue(a.V, attribute.StringValue)
	case typeStringSlice:
		return unmarshalValue(a.V, attribute.StringSliceValue)
	}
	return attribute.Value{}, fmt.Errorf("unknown attribute type %q", a.T)
}

func unmarshalValue[T any](raw json.RawMessage, value func(T) attribute.Value) (attribute.Value, error) {
	var x T
	if err := json.Unmarshal(raw, &x); err != nil {
		return attribute.Value{}, err
	}
	return value(x), nil
}
