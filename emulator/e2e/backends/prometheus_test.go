//go:build e2e

package backends

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// ctzi is the Prometheus feature that stores a zero at a new cumulative
// series' start time, which makes its first point count in increase().
const ctzi = "created-timestamp-zero-ingestion"

// prometheus is a running Prometheus 3 with its OTLP receiver.
type prometheus struct {
	api  string // base URL
	otlp string // metrics endpoint for the agent
}

// startPrometheus runs Prometheus on 127.0.0.1 with temporary storage, the
// OTLP receiver and the given features.
func startPrometheus(ctx context.Context, t *testing.T, features ...string) *prometheus {
	t.Helper()
	return startPrometheusConfig(ctx, t, "global:\n  evaluation_interval: 1m\n", features...)
}

// startPrometheusConfig is startPrometheus with the given configuration
// file's content.
func startPrometheusConfig(ctx context.Context, t *testing.T, config string, features ...string) *prometheus {
	t.Helper()
	bin := tool(t, "prometheus")
	port := freePort(t)
	cfg := writeFile(t, "prometheus.yml", config)
	args := []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + t.TempDir(),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--web.enable-otlp-receiver",
	}
	if len(features) > 0 {
		args = append(args, "--enable-feature="+strings.Join(features, ","))
	}
	startBackend(ctx, t, "prometheus", "Server is ready to receive web requests.", bin, args...)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	return &prometheus{api: base, otlp: base + "/api/v1/otlp/v1/metrics"}
}

// series is one element of an instant vector.
type series struct {
	labels map[string]string
	value  float64
}

func (s series) String() string {
	keys := slices.Sorted(maps.Keys(s.labels))
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, s.labels[k])
	}
	fmt.Fprintf(&b, "} %g", s.value)
	return b.String()
}

// query evaluates an instant query now.
func (p *prometheus) query(ctx context.Context, expr string) ([]series, error) {
	var body struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	status, err := getJSON(ctx, p.api+"/api/v1/query?query="+url.QueryEscape(expr), &body)
	if err != nil {
		return nil, err
	}
	if status != 200 || body.Status != "success" || body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: HTTP %d, status %q, result type %q", expr, status, body.Status, body.Data.ResultType)
	}
	var out []series
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", expr, r.Value, err)
		}
		out = append(out, series{labels: r.Metric, value: v})
	}
	slices.SortFunc(out, func(a, b series) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

// must evaluates expr and fails the test on an error.
func (p *prometheus) must(ctx context.Context, t *testing.T, expr string) []series {
	t.Helper()
	out, err := p.query(ctx, expr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitForEnvs waits until expr returns one series per environment, each
// with its own non-empty instance label, holding the values want (in any
// order: the test cannot know the instance IDs the agent picks).
func (p *prometheus) waitForEnvs(ctx context.Context, t *testing.T, expr string, want ...float64) []series {
	t.Helper()
	var got []series
	eventually(ctx, t, expr, func(ctx context.Context) (bool, string, error) {
		var err error
		got, err = p.query(ctx, expr)
		if err != nil {
			return false, "", err
		}
		return sameValues(got, want), fmt.Sprint(got), nil
	})
	return got
}

func sameValues(got []series, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	instances := map[string]bool{}
	var values []float64
	for _, s := range got {
		instances[s.labels["instance"]] = true
		values = append(values, s.value)
	}
	if instances[""] || len(instances) != len(got) {
		return false
	}
	slices.Sort(values)
	return slices.Equal(values, slices.Sorted(slices.Values(want)))
}

// envNames maps instance labels to the test's names of the environments.
type envNames map[string]string

// values maps the series of a vector by environment name.
func (n envNames) values(v []series) map[string]float64 {
	out := map[string]float64{}
	for _, s := range v {
		name, ok := n[s.labels["instance"]]
		if !ok {
			name = "instance " + s.labels["instance"]
		}
		out[name] = s.value
	}
	return out
}

// TestPrometheus runs two environments of one function side by side, each
// serving one and then several invocations, exporting cumulative metrics
// to Prometheus's OTLP receiver, and reads them back with the expressions
// a user alerts with, with and without created-timestamp zero ingestion.
func TestPrometheus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name     string
		features []string
	}{
		{"without created-timestamp zero ingestion", nil},
		{"with created-timestamp zero ingestion", []string{ctzi}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPrometheus(ctx, t, tc.features...)
			ct := slices.Contains(tc.features, ctzi)
			t.Run("two environments with distinct service.instance.id keep separate counters that rate and increase read", func(t *testing.T) {
				sideBySide(ctx, t, p, ct, true)
			})
			t.Run("two environments with the agent's own resource keep separate counters", func(t *testing.T) {
				sideBySide(ctx, t, p, ct, false)
			})
		})
	}
}

// sideBySide runs environments A and B of one function interleaved. With
// setInstance each gets its own service.instance.id (A and B) through
// OTEL_RESOURCE_ATTRIBUTES: what the agent has to set itself, since on
// Lambda a function's variables are the same in all its environments.
func sideBySide(ctx context.Context, t *testing.T, p *prometheus, ct, setInstance bool) {
	function := fmt.Sprintf("slipstream-prom-%d", time.Now().UnixNano())
	s := testSink(t)
	job := fmt.Sprintf("{job=%q}", function)
	sel := func(name string) string { return name + job }
	envs := map[string]*lambdaEnv{}
	for _, id := range []string{"A", "B"} {
		vars := []string{
			"SLIPSTREAM_OTLP_METRICS_ENDPOINT=" + p.otlp,
			"SLIPSTREAM_OTLP_TRACES_ENDPOINT=" + s.URL(sink.SignalTraces),
			"SLIPSTREAM_OTLP_LOGS_ENDPOINT=" + s.URL(sink.SignalLogs),
			// Each invocation's counters leave when it ends.
			"SLIPSTREAM_FLUSH=end",
		}
		if setInstance {
			vars = append(vars, "OTEL_RESOURCE_ATTRIBUTES=service.instance.id="+id)
		}
		envs[id] = startEnv(ctx, t, envConfig{function: function, env: vars})
	}
	a, b := envs["A"], envs["B"]

	// Phase 1: one cold invocation in each environment.
	a.invoke(ctx, `{"action":"succeed"}`, "", emulator.StatusSuccess)
	b.invoke(ctx, `{"action":"succeed"}`, "", emulator.StatusSuccess)
	p.waitForEnvs(ctx, t, sel("faas_invocations_total"), 1, 1)
	p.waitForEnvs(ctx, t, sel("faas_coldstarts_total"), 1, 1)
	coldInc := p.must(ctx, t, "increase("+sel("faas_coldstarts_total")+"[10m])")
	t.Logf("after one cold invocation each: increase(faas_coldstarts_total[10m]) = %v", coldInc)
	switch {
	case ct && (len(coldInc) != 2 || coldInc[0].value < 1 || coldInc[1].value < 1):
		t.Errorf("increase of the cold starts = %v, want >= 1 for each environment (the zero at the start time counts it)", coldInc)
	case !ct && slices.ContainsFunc(coldInc, func(s series) bool { return s.value != 0 }):
		t.Errorf("increase of the cold starts = %v, want 0 or nothing (a new series' first cumulative point is invisible to increase)", coldInc)
	}

	// Phase 2: several invocations, errors among them; A fails once, B twice.
	var errorType string
	for _, step := range []struct {
		env     *lambdaEnv
		payload string
		want    emulator.Status
	}{
		{a, `{"action":"succeed"}`, emulator.StatusSuccess},
		{b, `{"action":"error"}`, emulator.StatusError},
		{a, `{"action":"error"}`, emulator.StatusError},
		{b, `{"action":"succeed"}`, emulator.StatusSuccess},
		{a, `{"action":"succeed"}`, emulator.StatusSuccess},
		{b, `{"action":"error"}`, emulator.StatusError},
		{b, `{"action":"succeed"}`, emulator.StatusSuccess},
	} {
		res := step.env.invoke(ctx, step.payload, "", step.want)
		if res.ErrorType != "" {
			errorType = res.ErrorType
		}
	}
	a.shutdown(ctx, true)
	b.shutdown(ctx, true)
	for id, e := range envs {
		if errs := e.warnings(); len(errs) > 0 {
			t.Errorf("environment %s: the agent logged %d warnings or errors, first: %s", id, len(errs), errs[0])
		}
	}

	// Raw cumulative values: what each environment counted. The errors
	// tell the environments apart.
	names := envNames{}
	for _, s := range p.waitForEnvs(ctx, t, sel("faas_errors_total"), 1, 2) {
		names[s.labels["instance"]] = map[float64]string{1: "A", 2: "B"}[s.value]
		if s.labels["error_type"] != errorType {
			t.Errorf("faas_errors_total: error_type = %q, want %q (the invocation's errorType)", s.labels["error_type"], errorType)
		}
	}
	p.waitForEnvs(ctx, t, sel("faas_invocations_total"), 3, 3)
	p.waitForEnvs(ctx, t, sel("faas_coldstarts_total"), 1, 1)
	durations := names.values(p.waitForEnvs(ctx, t, sel("faas_invoke_duration_seconds_count"), 4, 5))
	if durations["A"] != 4 || durations["B"] != 5 {
		t.Errorf("faas_invoke_duration_seconds_count = %v, want A:4 B:5", durations)
	}
	if got := p.must(ctx, t, "sum("+sel("faas_invocations_total")+")"); len(got) != 1 || got[0].value != 6 {
		t.Errorf("sum(faas_invocations_total) = %v, want 6", got)
	}

	// What a user alerts and graphs with.
	type window struct {
		expr string
		// least is the smallest value per environment increase() may show
		// (extrapolation only adds).
		least map[string]float64
	}
	for _, w := range []window{
		// Without the zero at the start, a series' first point (the cold
		// start's invocation, the first error) is not part of its increase.
		{"increase(" + sel("faas_invocations_total") + "[10m])", pick(ct, map[string]float64{"A": 3, "B": 3}, map[string]float64{"A": 2, "B": 2})},
		{"increase(" + sel("faas_errors_total") + "[10m])", pick(ct, map[string]float64{"A": 1, "B": 2}, map[string]float64{"A": 0, "B": 1})},
		{"increase(" + sel("faas_coldstarts_total") + "[10m])", pick(ct, map[string]float64{"A": 1, "B": 1}, map[string]float64{"A": 0, "B": 0})},
	} {
		got := names.values(p.must(ctx, t, w.expr))
		t.Logf("%s = %v", w.expr, got)
		for id, least := range w.least {
			v, ok := got[id]
			if !ok || v < least {
				t.Errorf("%s: environment %s shows %v (present %v), want at least %v", w.expr, id, v, ok, least)
			}
		}
	}
	// The alert on errors: fires for both environments only when the
	// first error of a series counts.
	alert := "increase(" + sel("faas_errors_total") + "[10m]) > 0"
	firing := slices.Sorted(maps.Keys(names.values(p.must(ctx, t, alert))))
	want := pick(ct, []string{"A", "B"}, []string{"B"})
	if !slices.Equal(firing, want) {
		t.Errorf("%s fires for %v, want %v", alert, firing, want)
	}
	rate := "sum by (instance) (rate(" + sel("faas_invocations_total") + "[10m])) > 0"
	if got := names.values(p.must(ctx, t, rate)); len(got) != 2 {
		t.Errorf("%s = %v, want both environments", rate, got)
	}

	// How many series one environment creates.
	for instance, name := range names {
		expr := fmt.Sprintf(`count({__name__=~".+", job=%q, instance=%q})`, function, instance)
		n := p.must(ctx, t, expr)
		byName := p.must(ctx, t, fmt.Sprintf(`count by (__name__) ({__name__=~".+", job=%q, instance=%q})`, function, instance))
		var list []string
		for _, s := range byName {
			list = append(list, fmt.Sprintf("%s:%g", s.labels["__name__"], s.value))
		}
		t.Logf("environment %s: %s = %v; by name: %s", name, expr, n, strings.Join(list, " "))
	}
}

func pick[T any](cond bool, yes, no T) T {
	if cond {
		return yes
	}
	return no
}

// TestPrometheusTemporality proves by querying which temporality the agent
// sends: delta points are not stored by a plain Prometheus, and its
// delta-to-cumulative conversion adds them up to what the environment
// counted.
func TestPrometheusTemporality(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name        string
		features    []string
		temporality string
		stored      bool
	}{
		{"delta counters are not stored by a plain Prometheus", nil, "delta", false},
		{"delta counters add up to the environment's counts with otlp-deltatocumulative", []string{"otlp-deltatocumulative"}, "delta", true},
		{"cumulative counters hold the environment's counts", nil, "cumulative", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPrometheus(ctx, t, tc.features...)
			s := testSink(t)
			function := fmt.Sprintf("slipstream-temporality-%d", time.Now().UnixNano())
			job := fmt.Sprintf("{job=%q}", function)
			e := startEnv(ctx, t, envConfig{function: function, env: []string{
				"SLIPSTREAM_OTLP_METRICS_ENDPOINT=" + p.otlp,
				"SLIPSTREAM_OTLP_TRACES_ENDPOINT=" + s.URL(sink.SignalTraces),
				"SLIPSTREAM_OTLP_LOGS_ENDPOINT=" + s.URL(sink.SignalLogs),
				"SLIPSTREAM_OTLP_METRICS_TEMPORALITY_PREFERENCE=" + tc.temporality,
				"SLIPSTREAM_FLUSH=end",
			}})
			for range 3 {
				e.invoke(ctx, `{"action":"succeed"}`, "", emulator.StatusSuccess)
			}
			e.invoke(ctx, `{"action":"error"}`, "", emulator.StatusError)
			e.shutdown(ctx, true)
			if errs := e.warnings(); len(errs) > 0 {
				t.Logf("the agent logged %d warnings or errors, first: %.300s", len(errs), errs[0])
			}
			if tc.stored {
				for _, c := range []struct {
					name string
					want float64
				}{{"faas_invocations_total", 3}, {"faas_errors_total", 1}, {"faas_invoke_duration_seconds_count", 4}} {
					eventually(ctx, t, c.name+job, func(ctx context.Context) (bool, string, error) {
						got, err := p.query(ctx, c.name+job)
						return len(got) == 1 && got[0].value == c.want, fmt.Sprint(got), err
					})
				}
				return
			}
			// The agent has exported everything and exited: what Prometheus
			// holds now is all it will hold (it refuses delta sums and
			// histograms unless a delta feature is on).
			if got := p.must(ctx, t, fmt.Sprintf(`{__name__=~".+", job=%q}`, function)); len(got) != 0 {
				t.Errorf("Prometheus stored %d series from delta points, want none: %v", len(got), got)
			}
		})
	}
}
