package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// invocation is one scripted step as it ran.
type invocation struct {
	step   step
	header string
	result emulator.InvokeResult
}

// printInvocations prints what the platform measured for each invocation
// and what the columns mean.
func printInvocations(w io.Writer, ran []invocation) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tWHAT\tSTATUS\tRUNTIME ms\tPOST-RUNTIME ms\tX-AMZN-TRACE-ID (the caller's X-Ray header)")
	for i, r := range ran {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1f\t%.2f\t%s\n", i+1, r.step.what, r.result.Status,
			millis(r.result.RuntimeDuration), millis(r.result.PostRuntime), r.header)
	}
	tw.Flush()
	fmt.Fprint(w, `
RUNTIME ms: the function's own time, from the invocation's start until the runtime asked for
  the next one (runtimeDone); the caller gets the response then.
POST-RUNTIME ms: from there until the last extension asked for the next event. This is the
  extensions' time after the response: the caller does not wait for it, but Lambda counts it in
  the invocation's duration, so the function's owner pays for it, and the environment takes no
  new invocation until it ends. Slipstream's default flush mode (adaptive) waits for its export
  only on the first invocation after an init (and after an idle gap), which is why invocation 1
  and the last one (the first after the panic's reset) show tens of milliseconds and the others
  a few hundredths (see the README's "Flush modes").
X-AMZN-TRACE-ID: with active tracing Lambda passes each invocation an X-Ray header; Slipstream
  puts the invocation span in that trace (Root) under the caller's span (Parent). Sampled=0
  spans are still exported, with the sampled flag off.
`)
}

// printReceived prints the sink's per-invocation table, the trace trees
// and the metric values.
func printReceived(w io.Writer, snap *sink.Snapshot, ran []invocation) error {
	fmt.Fprintf(w, "\n==> what the OTLP sink received\n\n")
	if err := snap.Table(w); err != nil {
		return err
	}
	fmt.Fprint(w, `
One row per invocation span. DURATION ms: the span, from platform.start to platform.report
  (post-runtime included). BILLED ms and MEMORY MB come from Lambda's report; "-" where the
  span left before the report existed: under the default SLIPSTREAM_FLUSH=adaptive, the first
  invocation after an init waits for its runtimeDone and sends its span then, and Lambda writes
  the report only after the wait, so those figures arrive as metrics. STATUS: the span status
  and error.type. TRACE ID: the X-Ray Root without "1-" and dashes. LOGS: log records of the
  invocation.
`)
	fmt.Fprintf(w, "\n==> traces (as a tracing backend shows them)\n\n")
	printTraces(w, snap.Spans(), ran)
	fmt.Fprintf(w, "\n==> metric values (totals over the run; histograms as count, sum, min..max)\n\n")
	printMetrics(w, snap.Points())
	return nil
}

// printTraces prints one tree per trace, ordered by start time.
func printTraces(w io.Writer, spans []sink.SpanView, ran []invocation) {
	byTrace := map[string][]sink.SpanView{}
	for _, sp := range spans {
		byTrace[sp.TraceID] = append(byTrace[sp.TraceID], sp)
	}
	headers := map[string]string{} // trace ID -> X-Ray header
	for _, r := range ran {
		if root, ok := xrayRoot(r.header); ok {
			headers[root] = r.header
		}
	}
	traces := slices.Collect(maps.Keys(byTrace))
	slices.SortFunc(traces, func(a, b string) int { return earliest(byTrace[a]).Compare(earliest(byTrace[b])) })
	for _, id := range traces {
		trace := byTrace[id]
		fmt.Fprintf(w, "trace %s", id)
		if h, ok := headers[id]; ok {
			fmt.Fprintf(w, "  (from %s)", h)
		}
		fmt.Fprintln(w)
		ids := map[string]bool{}
		for _, sp := range trace {
			ids[sp.SpanID] = true
		}
		children := map[string][]sink.SpanView{}
		var roots []sink.SpanView
		for _, sp := range trace {
			if sp.ParentSpanID == "" || !ids[sp.ParentSpanID] {
				roots = append(roots, sp)
				continue
			}
			children[sp.ParentSpanID] = append(children[sp.ParentSpanID], sp)
		}
		byStart := func(a, b sink.SpanView) int { return a.Start.Compare(b.Start) }
		slices.SortFunc(roots, byStart)
		for _, c := range children {
			slices.SortFunc(c, byStart)
		}
		for _, r := range roots {
			printSpan(w, r, children, "", true)
		}
	}
}

func printSpan(w io.Writer, sp sink.SpanView, children map[string][]sink.SpanView, indent string, last bool) {
	branch, next := "├─ ", indent+"│  "
	if last {
		branch, next = "└─ ", indent+"   "
	}
	var notes []string
	if sp.ParentSpanID != "" && indent == "" {
		notes = append(notes, "parent "+sp.ParentSpanID+" (the caller's)")
	}
	if sp.Kind != "Internal" {
		notes = append(notes, strings.ToUpper(sp.Kind))
	}
	if sp.Status == "Error" {
		notes = append(notes, "Error: "+sp.StatusMessage)
	}
	if v, ok := sp.Attributes["faas.coldstart"].(bool); ok && v {
		notes = append(notes, "cold start")
	}
	if v, ok := sp.Attributes["slipstream.initialization_type"].(string); ok {
		notes = append(notes, v)
	}
	if v, ok := sp.Attributes["faas.invocation_id"].(string); ok {
		notes = append(notes, "request "+v)
	}
	fmt.Fprintf(w, "%s%s%s %.2f ms", indent, branch, sp.Name, millis(sp.Duration()))
	if len(notes) > 0 {
		fmt.Fprintf(w, "  [%s]", strings.Join(notes, ", "))
	}
	fmt.Fprintln(w)
	kids := children[sp.SpanID]
	for i, c := range kids {
		printSpan(w, c, children, next, i == len(kids)-1)
	}
}

// printMetrics prints each metric stream's total: a delta point adds up,
// a cumulative point or gauge replaces the earlier point of its stream
// (the panic's reset starts a new process and so new streams, which add
// up).
func printMetrics(w io.Writer, points []sink.MetricPoint) {
	type total struct {
		name, unit, kind, attrs string
		value, sum              float64
		count                   uint64
		min, max                float64
		hasMinMax               bool
	}
	latest := map[string]sink.MetricPoint{} // stream key -> point
	var deltas []sink.MetricPoint
	for _, p := range points {
		if p.Temporality == "Delta" {
			deltas = append(deltas, p)
			continue
		}
		key := fmt.Sprint(p.Name, p.Resource, p.Scope, p.Attributes, p.Start.UnixNano())
		if old, ok := latest[key]; !ok || !p.Time.Before(old.Time) {
			latest[key] = p
		}
	}
	totals := map[string]*total{}
	for _, p := range append(slices.Collect(maps.Values(latest)), deltas...) {
		attrs := attributes(p.Attributes)
		key := p.Name + attrs
		t, ok := totals[key]
		if !ok {
			t = &total{name: p.Name, unit: p.Unit, kind: p.Type, attrs: attrs, min: math.Inf(1), max: math.Inf(-1)}
			totals[key] = t
		}
		switch p.Type {
		case "Gauge":
			t.value = p.Value // one stream per process; the last one read wins
		case "Sum":
			t.value += p.Value
		default:
			t.sum += p.Value
			t.count += p.Count
			if p.HasMinMax && p.Count > 0 {
				t.hasMinMax = true
				t.min, t.max = math.Min(t.min, p.Min), math.Max(t.max, p.Max)
			}
		}
	}
	keys := slices.Sorted(maps.Keys(totals))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tUNIT\tVALUE")
	for _, k := range keys {
		t := totals[k]
		var value string
		switch t.kind {
		case "Gauge", "Sum":
			value = fmt.Sprintf("%g", t.value)
		default:
			value = fmt.Sprintf("count %d, sum %.6g", t.count, t.sum)
			if t.hasMinMax {
				value += fmt.Sprintf(", %.6g..%.6g", t.min, t.max)
			}
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", t.name, t.attrs, t.unit, value)
	}
	tw.Flush()
}

// attributes formats a point's attributes as {k=v,...}, "" for none.
func attributes(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return "{" + strings.Join(pairs, ",") + "}"
}

// printAgentLines prints the agent's own log lines: what a user finds in
// the function's CloudWatch log stream.
func printAgentLines(w io.Writer, agent [][]byte) {
	fmt.Fprintf(w, "\n==> the agent's own log lines (JSON on stderr: in CloudWatch, in the function's log stream)\n\n")
	for _, l := range agent {
		fmt.Fprintf(w, "%s\n", l)
	}
	fmt.Fprint(w, `
"slipstream started": the version, the Telemetry API subscription, and where each signal goes
  (endpoint, protocol, header names), or which variable switched it off. One per environment
  start: three here, because the timeout and the panic each reset the environment (the
  "shutdown" line gives the reason) and Lambda starts a new one for the next invocation.
"export totals": at exit, per signal, what was sent, spilled and dropped (WARN when anything
  was dropped). "export summary" lines appear only when requests fail or data is dropped.
`)
}

// xrayRoot returns the trace ID an X-Ray header's Root becomes in OTLP.
func xrayRoot(header string) (string, bool) {
	for part := range strings.SplitSeq(header, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "Root=1-"); ok {
			return strings.ReplaceAll(v, "-", ""), true
		}
	}
	return "", false
}

func earliest(spans []sink.SpanView) time.Time {
	t := spans[0].Start
	for _, sp := range spans[1:] {
		if sp.Start.Before(t) {
			t = sp.Start
		}
	}
	return t
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// lines collects the children's output, which the emulator writes from
// several goroutines.
type lines struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// agentLines returns the lines the agent logged: JSON objects with
// "extension":"slipstream".
func (l *lines) agentLines() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for line := range bytes.Lines(l.buf.Bytes()) {
		line = bytes.TrimSpace(line)
		var v struct {
			Extension string `json:"extension"`
		}
		if json.Unmarshal(line, &v) == nil && v.Extension == "slipstream" {
			out = append(out, line)
		}
	}
	return out
}
