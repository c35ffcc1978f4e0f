//go:build e2e

package backends

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

var updateRules = flag.Bool("update-rules", false, "rewrite the captured input series of examples/alerts/slipstream.rules.test.yml from this run")

// Files of examples/alerts, relative to the module root.
const (
	rulesFile     = "examples/alerts/slipstream.rules.yml"
	rulesTestFile = "examples/alerts/slipstream.rules.test.yml"
	// alertsFunction is the function name (the job label) of the run whose
	// series the promtool tests read.
	alertsFunction = "slipstream-alerts"
	// captureStep is the spacing of the captured points: four per second
	// of the run, written 15s apart in the promtool test (its `interval`),
	// so a second of the run is a minute there.
	captureStep = 250 * time.Millisecond
)

// Markers of the captured block in the test file.
const (
	captureBegin = "# captured: begin"
	captureEnd   = "# captured: end"
)

// TestAlertRules loads examples/alerts into a real Prometheus (with
// created-timestamp zero ingestion, which the cold-start and error rules
// need), runs the example function through a cold start, memory pressure,
// an invocation near its timeout, errors and a timeout (whose reset makes
// the next invocation cold again), and waits for the cold-start, error and
// timeout alerts to fire. It then reads back the series the rules use,
// as Prometheus stores them, and checks them against the input of the
// promtool tests (with -update-rules, writes them there).
func TestAlertRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join(root, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	// The alerts' `for` durations are minutes; here the expressions must
	// hold on the run's data, which lasts seconds. promtool's tests check
	// the durations.
	noWait := regexp.MustCompile(`(?m)^(\s+)for: .*$`).ReplaceAllString(string(rules), "${1}for: 0s")
	rulesCopy := writeFile(t, "slipstream.rules.yml", noWait)
	p := startPrometheusConfig(ctx, t, fmt.Sprintf("global:\n  evaluation_interval: 1s\nrule_files:\n  - %s\n", rulesCopy), ctzi)

	s := testSink(t)
	built(t) // before the run's clock starts
	begin := time.Now().Truncate(time.Second)
	e := startEnv(ctx, t, envConfig{function: alertsFunction, env: []string{
		"SLIPSTREAM_OTLP_METRICS_ENDPOINT=" + p.otlp,
		"SLIPSTREAM_OTLP_TRACES_ENDPOINT=" + s.URL(sink.SignalTraces),
		"SLIPSTREAM_OTLP_LOGS_ENDPOINT=" + s.URL(sink.SignalLogs),
		// Each invocation's spans leave when it ends, metrics with them.
		"SLIPSTREAM_FLUSH=end",
	}})
	// Phases of about 8 to 18 seconds each (minutes in the promtool
	// tests): healthy; memory high and durations near the 3 s timeout;
	// errors; two timeouts, each resetting the environment, so the next
	// invocation starts cold.
	type step struct {
		payload string
		want    emulator.Status
	}
	ok := func(payload string) step { return step{payload, emulator.StatusSuccess} }
	var run []step
	run = append(run, ok(`{"action":"succeed"}`)) // the cold start
	for range 7 {
		run = append(run, ok(`{"action":"sleep","ms":1000}`))
	}
	run = append(run, ok(`{"action":"alloc","mb":103}`)) // the report's max memory is the environment's peak from now on
	for range 6 {
		run = append(run, ok(`{"action":"sleep","ms":2760}`)) // 92 % of the timeout
	}
	for range 4 {
		run = append(run, step{`{"action":"error"}`, emulator.StatusError}, ok(`{"action":"sleep","ms":1500}`))
	}
	for range 2 {
		run = append(run, step{`{"action":"timeout"}`, emulator.StatusTimeout},
			ok(`{"action":"sleep","ms":500}`), ok(`{"action":"sleep","ms":500}`))
	}
	for range 4 {
		run = append(run, ok(`{"action":"sleep","ms":1000}`))
	}
	for _, st := range run {
		e.invoke(ctx, st.payload, "", st.want)
	}
	e.shutdown(ctx, true)
	if errs := e.warnings(); len(errs) > 0 {
		t.Logf("the agent logged %d warnings or errors, first: %.300s", len(errs), errs[0])
	}

	job := fmt.Sprintf("job=%q", alertsFunction)
	t.Cleanup(func() {
		if t.Failed() {
			for _, rec := range p.must(context.Background(), t, fmt.Sprintf(`{__name__=~"slipstream:.+", %s}`, job)) {
				t.Logf("recorded %s", rec)
			}
		}
	})
	for _, alert := range []string{"SlipstreamColdStartRateHigh", "SlipstreamErrorRateHigh", "SlipstreamTimeoutRateHigh"} {
		expr := fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing", %s}`, alert, job)
		eventually(ctx, t, expr, func(ctx context.Context) (bool, string, error) {
			got, err := p.query(ctx, expr)
			return len(got) == 1, fmt.Sprint(got), err
		})
	}
	firing := p.must(ctx, t, fmt.Sprintf(`ALERTS{alertstate="firing", %s}`, job))
	var names []string
	for _, a := range firing {
		names = append(names, a.labels["alertname"])
	}
	t.Logf("firing after the run: %v", names)
	if testing.Verbose() {
		for _, rec := range p.must(ctx, t, fmt.Sprintf(`{__name__=~"slipstream:.+", %s}`, job)) {
			t.Logf("recorded %s", rec)
		}
	}

	captured := p.capture(ctx, t, job, ruleInputs(string(rules)), begin, time.Now())
	testPath := filepath.Join(root, rulesTestFile)
	if *updateRules {
		if err := writeCaptured(testPath, captured); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d captured series into %s", len(captured), rulesTestFile)
		return
	}
	old, err := readCaptured(testPath)
	if err != nil {
		t.Fatal(err)
	}
	fresh, committed := seriesKeys(captured), seriesKeys(old)
	for k := range fresh {
		if !committed[k] {
			t.Errorf("series %s is stored now but not in the promtool tests' input (rerun with -update-rules)", k)
		}
	}
	for k := range committed {
		if !fresh[k] {
			t.Errorf("series %s is in the promtool tests' input but Prometheus stored none now (rerun with -update-rules)", k)
		}
	}
}

// ruleInputs returns the names of the stored series the rules read: the
// identifiers of Slipstream's metrics in the rules file.
func ruleInputs(rules string) []string {
	names := regexp.MustCompile(`\b(?:faas|slipstream)_[a-z_]+\b`).FindAllString(rules, -1)
	slices.Sort(names)
	return slices.Compact(names)
}

// capturedSeries is one series as promtool's input_series wants it.
type capturedSeries struct {
	series string // name{label="value",...}
	values string // promtool's notation, one value per captureStep ("_": none)
}

// capture reads every stored sample of the names and job from begin to
// end (a range selector returns them raw, not resampled) and lays them out
// at captureStep. Two samples of a series within one step (the zero that
// created-timestamp zero ingestion stores at a counter's start, and its
// first value) go to consecutive steps, so none is lost.
func (p *prometheus) capture(ctx context.Context, t *testing.T, job string, names []string, begin, end time.Time) []capturedSeries {
	t.Helper()
	var out []capturedSeries
	steps := int(end.Sub(begin)/captureStep) + 1
	shifted := 0
	for _, name := range names {
		var body struct {
			Status string `json:"status"`
			Data   struct {
				ResultType string `json:"resultType"`
				Result     []struct {
					Metric map[string]string `json:"metric"`
					Values [][2]any          `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		window := end.Sub(begin).Truncate(time.Second) + time.Second
		q := url.Values{
			"query": {fmt.Sprintf("%s{%s}[%ds]", name, job, int(window.Seconds()))},
			"time":  {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		}
		status, err := getJSON(ctx, p.api+"/api/v1/query?"+q.Encode(), &body)
		if err != nil || status != 200 || body.Status != "success" || body.Data.ResultType != "matrix" {
			t.Fatalf("query %s: HTTP %d, %q, %q: %v", q.Get("query"), status, body.Status, body.Data.ResultType, err)
		}
		if len(body.Data.Result) == 0 {
			t.Errorf("%s{%s}: Prometheus stored no series (a rule reads a name the agent does not send)", name, job)
		}
		for _, r := range body.Data.Result {
			vals := make([]string, steps)
			next := 0 // the first step still free
			for _, v := range r.Values {
				ts, _ := v[0].(float64)
				i := int((ts - float64(begin.UnixMilli())/1000) / captureStep.Seconds())
				if i < next {
					i, shifted = next, shifted+1
				}
				s, _ := v[1].(string)
				f, err := strconv.ParseFloat(s, 64)
				if err != nil || i < 0 || i >= steps+len(r.Values) {
					t.Fatalf("%s: sample %v at step %d of %d: %v", name, v, i, steps, err)
				}
				for len(vals) <= i { // a shift past the last step
					vals = append(vals, "")
				}
				vals[i] = strconv.FormatFloat(f, 'g', -1, 64)
				next = i + 1
			}
			out = append(out, capturedSeries{series: seriesString(r.Metric), values: promtoolValues(vals)})
		}
	}
	t.Logf("captured %d series over %d steps of %v; %d samples moved one step to keep two that fell in one step", len(out), steps, captureStep, shifted)
	slices.SortFunc(out, func(a, b capturedSeries) int { return strings.Compare(a.series, b.series) })
	return out
}

// promtoolValues writes values in promtool's notation, "" as "_", runs of
// one value as "vxN" (v, then N more).
func promtoolValues(vals []string) string {
	var parts []string
	for i := 0; i < len(vals); {
		j := i + 1
		for j < len(vals) && vals[j] == vals[i] {
			j++
		}
		v := cmp.Or(vals[i], "_")
		if n := j - i; n > 1 {
			parts = append(parts, fmt.Sprintf("%sx%d", v, n-1))
		} else {
			parts = append(parts, v)
		}
		i = j
	}
	return strings.Join(parts, " ")
}

// seriesString writes a label set in the series notation promtool reads.
func seriesString(labels map[string]string) string {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if k != "__name__" {
			pairs = append(pairs, k+"="+strconv.Quote(labels[k]))
		}
	}
	return labels["__name__"] + "{" + strings.Join(pairs, ",") + "}"
}

// seriesKeys identifies series by name and labels, without the value of
// instance (the environment's ID, new in every run).
func seriesKeys(list []capturedSeries) map[string]bool {
	instance := regexp.MustCompile(`instance="[^"]*"`)
	out := map[string]bool{}
	for _, s := range list {
		out[instance.ReplaceAllString(s.series, `instance="…"`)] = true
	}
	return out
}

// writeCaptured replaces the lines between the capture markers of the
// test file with the series, indented as the begin marker is.
func writeCaptured(path string, list []capturedSeries) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	begin, end := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case captureBegin:
			begin = i
		case captureEnd:
			end = i
		}
	}
	if begin < 0 || end < begin {
		return fmt.Errorf("%s: no %q … %q block", path, captureBegin, captureEnd)
	}
	indent := lines[begin][:len(lines[begin])-len(strings.TrimLeft(lines[begin], " "))]
	var block []string
	for _, s := range list {
		block = append(block,
			fmt.Sprintf("%s- series: '%s'", indent, s.series),
			fmt.Sprintf("%s  values: '%s'", indent, s.values))
	}
	out := slices.Concat(lines[:begin+1], block, lines[end:])
	return os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644)
}

// readCaptured reads the series between the capture markers.
func readCaptured(path string) ([]capturedSeries, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []capturedSeries
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == captureBegin:
			in = true
		case l == captureEnd:
			in = false
		case in && strings.HasPrefix(l, "- series: '"):
			out = append(out, capturedSeries{series: strings.TrimSuffix(strings.TrimPrefix(l, "- series: '"), "'")})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no series between %q and %q", path, captureBegin, captureEnd)
	}
	return out, nil
}
