package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the table.
type row struct {
	metric, agent, floor, ratio, target, result string
}

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "MISS"
}

func ratio(a, f float64) string {
	if f == 0 {
		return "—"
	}
	return strconv.FormatFloat(a/f, 'f', 2, 64) + "×"
}

func (r *report) rows() []row {
	var rows []row
	const mi = 1 << 20
	for _, s := range []struct {
		arch   string
		budget int64
	}{{"amd64", 16 * mi}, {"arm64", 15 * mi}} {
		a, f := r.sizes[s.arch][agentName], r.sizes[s.arch][floorName]
		rows = append(rows, row{
			metric: "stripped binary linux/" + s.arch + " (MiB, bytes)",
			agent:  fmt.Sprintf("%.2f (%d)", float64(a)/mi, a), floor: fmt.Sprintf("%.2f (%d)", float64(f)/mi, f),
			ratio: ratio(float64(a), float64(f)), target: fmt.Sprintf("≤ %d MiB (%d)", s.budget/mi, s.budget), result: verdict(a <= s.budget),
		})
	}

	if len(r.readyAgent) > 0 {
		rows = append(rows, r.readyRows()...)
	}
	if len(r.initAgent) > 0 {
		rows = append(rows, r.initRows()...)
	}
	rows = append(rows, r.postRows()...)
	rows = append(rows, r.fnRows()...)
	if p, ok := r.run("adaptive", "healthy"); ok {
		per := func(d time.Duration, n int) float64 { return float64(d) / 1e6 / float64(n) * 1000 }
		a, f := per(p.cpu, p.invocations), per(r.postFloor.cpu, r.postFloor.invocations)
		rows = append(rows, row{
			metric: fmt.Sprintf("CPU ms per 1,000 invocations (adaptive, healthy; /proc stat ticks: %.0f)", per(p.cpuTicks, p.invocations)),
			agent:  fmt.Sprintf("%.0f", a), floor: fmt.Sprintf("%.0f", f), ratio: ratio(a, f), target: "—", result: "—",
		})
	}
	if r.rssAgent > 0 {
		rows = append(rows, r.rssRows()...)
	}
	if r.flood.lines > 0 {
		rows = append(rows, r.floodRows()...)
	}
	rows = append(rows, r.hangRows()...)
	for _, flush := range []string{"async", "adaptive"} {
		if p, ok := r.run(flush, "healthy"); ok {
			n := int64(max(p.invocations, 1))
			rows = append(rows, row{
				metric: fmt.Sprintf("OTLP bytes (requests) per invocation on the wire (%s, healthy, 5 log lines)", flush),
				agent:  fmt.Sprintf("%d (%.2f)", p.wireBytes/n, float64(p.requests)/float64(n)),
				floor:  "0",
				ratio:  "—", target: "—", result: "—",
			})
		}
	}
	return rows
}

func (r *report) readyRows() []row {
	ra, rf := percentile(r.readyAgent, 50), percentile(r.readyFloor, 50)
	return []row{{
		metric: fmt.Sprintf("ready: exec → first /event/next, p50 of %d starts (ms)", len(r.readyAgent)),
		agent:  ms(ra), floor: ms(rf), ratio: ratio(float64(ra), float64(rf)),
		target: fmt.Sprintf("≤ floor + 15 = %s", ms(rf+15*time.Millisecond)), result: verdict(ra <= rf+15*time.Millisecond),
	}}
}

func (r *report) initRows() []row {
	ia, iff := medianInit(r.initAgent), medianInit(r.initFloor)
	return []row{
		{metric: fmt.Sprintf("GODEBUG=inittrace=1 Σ init clock, median of %d (ms)", len(r.initAgent)),
			agent: fmt.Sprintf("%.2f", ia.ClockMs), floor: fmt.Sprintf("%.2f", iff.ClockMs), ratio: ratio(ia.ClockMs, iff.ClockMs), target: "—", result: "—"},
		{metric: "  inittrace: last init ends at (ms from start)",
			agent: fmt.Sprintf("%.2f", ia.EndMs), floor: fmt.Sprintf("%.2f", iff.EndMs), ratio: ratio(ia.EndMs, iff.EndMs), target: "—", result: "—"},
		{metric: "  inittrace: Σ init heap (KiB) / allocs / packages",
			agent: fmt.Sprintf("%d / %d / %d", ia.Bytes>>10, ia.Allocs, ia.Packages),
			floor: fmt.Sprintf("%d / %d / %d", iff.Bytes>>10, iff.Allocs, iff.Packages), ratio: ratio(float64(ia.Bytes), float64(iff.Bytes)), target: "—", result: "—"},
	}
}

func (r *report) postRows() []row {
	var rows []row
	for _, p := range r.post {
		p99, f99 := percentile(p.post, 99), percentile(p.floor, 99)
		withExport, exports := 0, 0
		for i, d := range p.post {
			if i < len(p.exported) && p.exported[i] {
				exports++
				if d > time.Millisecond {
					withExport++
				}
			}
		}
		rows = append(rows, row{
			metric: fmt.Sprintf("post-runtime p50/p99/max (n > 1 ms), %s, %s backend, %d inv (ms)", p.flush, p.backend, len(p.post)),
			agent:  postCell(p.post),
			floor:  postCell(p.floor),
			ratio:  ratio(float64(p99), float64(f99)),
			target: "p99 ≤ 1", result: verdict(p99 <= time.Millisecond),
		}, row{
			metric: "  invocations during which an export reached the backend; of the n > 1 ms",
			agent:  fmt.Sprintf("%d; %d", exports, withExport), floor: "—", ratio: "—", target: "—", result: "—",
		})
	}
	return rows
}

// hangRows: a backend that accepts and never answers, one invocation a
// second; the agent gives the hung request up at the third INVOKE without
// progress, and then no invocation waits.
func (r *report) hangRows() []row {
	var rows []row
	for _, h := range r.hang {
		if len(h.post) == 0 {
			continue
		}
		rest := h.post[1:]
		var cells []string
		for _, d := range rest {
			cells = append(cells, fmt.Sprintf("%.0f", float64(d)/1e6))
		}
		detected := "never"
		if h.detected > 0 {
			detected = strconv.Itoa(h.detected)
		}
		rows = append(rows, row{
			metric: fmt.Sprintf("hanging backend, %s, 1 inv/s: post-runtime of invocation 1; of the next %d (ms)", h.flush, len(rest)),
			agent:  fmt.Sprintf("%.0f; %s", float64(h.post[0])/1e6, strings.Join(cells, " ")),
			floor:  "—", ratio: "—", target: "—", result: "—",
		}, row{
			metric: "  invocations until the hung request was given up (connection closed)",
			agent:  detected, floor: "—", ratio: "—", target: "≤ 4", result: verdict(h.detected > 0 && h.detected <= 4),
		})
	}
	return rows
}

func (r *report) fnRows() []row {
	var rows []row
	for _, w := range []struct {
		name string
		m    map[string]*fnRun
	}{{"back to back", r.fnBusy}, {"paced " + r.o.pace.String(), r.fnPaced}} {
		none, ag, fl := w.m["none"], w.m[agentName], w.m[floorName]
		if none == nil || ag == nil || fl == nil {
			continue
		}
		nm, am, fm := mean(none.durations), mean(ag.durations), mean(fl.durations)
		limit := nm * 102 / 100
		rows = append(rows,
			row{metric: fmt.Sprintf("function duration mean, %s, 128 MB CPU share, %d inv (ms)", w.name, len(ag.durations)),
				agent: ms(am), floor: ms(fm), ratio: ratio(float64(am), float64(fm)),
				target: fmt.Sprintf("≤ no-ext %s × 1.02 = %s", ms(nm), ms(limit)), result: verdict(am <= limit)},
			row{metric: fmt.Sprintf("  p50 / p99 (ms); no extension %s / %s", ms(percentile(none.durations, 50)), ms(percentile(none.durations, 99))),
				agent: ms(percentile(ag.durations, 50)) + " / " + ms(percentile(ag.durations, 99)),
				floor: ms(percentile(fl.durations, 50)) + " / " + ms(percentile(fl.durations, 99)),
				ratio: "—", target: "—", result: "—"},
			row{metric: fmt.Sprintf("  CPU ms/inv function + extension, throttled periods, OTLP requests/inv; no extension %s, %d", ms(perInv(none.fnCPU, none.invocations)), none.throttled),
				agent: fmt.Sprintf("%s + %s, %d, %.2f", ms(perInv(ag.fnCPU, ag.invocations)), ms(perInv(ag.extCPU, ag.invocations)), ag.throttled, float64(ag.requests)/float64(max(ag.invocations, 1))),
				floor: fmt.Sprintf("%s + %s, %d", ms(perInv(fl.fnCPU, fl.invocations)), ms(perInv(fl.extCPU, fl.invocations)), fl.throttled),
				ratio: "—", target: "—", result: "—"},
		)
	}
	return rows
}

func (r *report) rssRows() []row {
	return []row{{
		metric: fmt.Sprintf("peak RSS (VmHWM), %d inv × 5 log lines (MiB)", r.o.rssInv),
		agent:  mib(r.rssAgent), floor: mib(r.rssFloor), ratio: ratio(float64(r.rssAgent), float64(r.rssFloor)),
		target: "≤ 24 MiB", result: verdict(r.rssAgent <= 24<<10),
	}, {
		metric: "  VmHWM at end of Init; RSS anon + file at exit (MiB)",
		agent:  fmt.Sprintf("%s; %s + %s", mib(r.rssInitAgent), mib(r.rssLastAgent.RssAnon), mib(r.rssLastAgent.RssFile)),
		floor:  fmt.Sprintf("%s; %s + %s", mib(r.rssInitFloor), mib(r.rssLastFloor.RssAnon), mib(r.rssLastFloor.RssFile)),
		ratio:  "—", target: "—", result: "—",
	}}
}

func (r *report) floodRows() []row {
	fa2, ff2 := r.flood, r.floodFloor
	complete := fa2.delivered == fa2.lines && fa2.emulatorDrops == 0 && fa2.agentDrops == 0
	return []row{
		{metric: fmt.Sprintf("flood %d lines: distinct lines at the sink (records incl. duplicates)", fa2.lines),
			agent: fmt.Sprintf("%d (%d)", fa2.delivered, fa2.records), floor: "discards",
			ratio: "—", target: fmt.Sprintf("%d, no drops", fa2.lines), result: verdict(complete)},
		{metric: "  flood: platform drops (emulator records, logsDropped events) + agent drops",
			agent: fmt.Sprintf("%d, %d + %.0f", fa2.emulatorDrops, fa2.logsDropped, fa2.agentDrops),
			floor: fmt.Sprintf("%d, %d + —", ff2.emulatorDrops, ff2.logsDropped), ratio: "—", target: "0", result: "—"},
		{metric: "  flood: function runtime / post-runtime / exit after SHUTDOWN (ms)",
			agent: fmt.Sprintf("%s / %s / %s%s", ms(fa2.runtime), ms(fa2.postRuntime), ms(fa2.shutdownExit), killedNote(fa2.killed)),
			floor: fmt.Sprintf("%s / %s / %s%s", ms(ff2.runtime), ms(ff2.postRuntime), ms(ff2.shutdownExit), killedNote(ff2.killed)),
			ratio: "—", target: "—", result: "—"},
		{metric: "flood: peak RSS at 128 MB (MiB; RSS anon + file at exit)",
			agent: fmt.Sprintf("%s (%s + %s)", mib(fa2.hwmKiB), mib(fa2.last.RssAnon), mib(fa2.last.RssFile)),
			floor: fmt.Sprintf("%s (%s + %s)", mib(ff2.hwmKiB), mib(ff2.last.RssAnon), mib(ff2.last.RssFile)), ratio: ratio(float64(fa2.hwmKiB), float64(ff2.hwmKiB)),
			target: "≤ 32 MiB", result: verdict(fa2.hwmKiB <= 32<<10)},
	}
}

// postCell formats post-runtime p50/p99/max and the count above 1 ms.
func postCell(ds []time.Duration) string {
	n := 0
	for _, d := range ds {
		if d > time.Millisecond {
			n++
		}
	}
	return fmt.Sprintf("%s / %s / %s (%d)", ms(percentile(ds, 50)), ms(percentile(ds, 99)), ms(percentile(ds, 100)), n)
}

// perInv returns d per invocation.
func perInv(d time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

func killedNote(k bool) string {
	if k {
		return " (SIGKILL)"
	}
	return ""
}

// medianInit returns the run with the median Σ clock.
func medianInit(ts []initTrace) initTrace {
	if len(ts) == 0 {
		return initTrace{}
	}
	ds := make([]time.Duration, len(ts))
	for i, t := range ts {
		ds[i] = time.Duration(t.ClockMs * 1e6)
	}
	m := percentile(ds, 50)
	for i := range ts {
		if ds[i] == m {
			return ts[i]
		}
	}
	return ts[0]
}

func (r *report) print(w io.Writer) error {
	cmd := "go run ./cmd/slipstream-bench"
	if r.o.quick {
		cmd += " -quick"
	}
	if r.o.tags != "" {
		cmd += " -tags " + r.o.tags
	}
	fmt.Fprintf(w, "\nSlipstream whole-process benchmark, %s (took %s)\n", r.started.UTC().Format("2006-01-02 15:04 MST"), r.elapsed.Round(time.Second))
	fmt.Fprintf(w, "machine: linux/%s, %d CPUs (%s), %s\n", runtime.GOARCH, runtime.NumCPU(), cpuModel(), runtime.Version())
	fmt.Fprintf(w, "command: %s   (make bench runs it after the Go benchmarks)\n", cmd)
	fmt.Fprintf(w, "cgroup:  %s\n\n", r.cgroupNote)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tslipstream\tfloor\tratio\ttarget\tresult")
	fmt.Fprintln(tw, "------\t----------\t-----\t-----\t------\t------")
	for _, rw := range r.rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", rw.metric, rw.agent, rw.floor, rw.ratio, rw.target, rw.result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, `
Notes: numbers only; a MISS never fails the run. Every environment runs the example function
(128 MB, freeze between invocations, Telemetry API on, emulator platform buffer 1 MiB) with one
extension: the agent built as released (CGO_ENABLED=0 -trimpath -ldflags "-s -w") or the floor
(stdlib only, same subscription, discards everything). The slow backend holds every request
200 ms; the dead one is a closed port. Post-runtime = runtime's /next → last extension's
/next, all invocations counted (adaptive's first one runs in end mode); each agent run follows
a floor run with the same backend (floor column). CPU = Σ thread on-CPU time
(/proc/<pid>/task/*/schedstat) from the end of Init to exit, shutdown flush included.
Peak RSS = VmHWM sampled every 2 ms until the process exits. Function duration = runtimeDone
durationMs with the function and the extension in the cgroup, healthy backend, leaving out
the first %d invocations of each environment; "back to back" saturates the CPU share, so the
mean grows with every CPU millisecond spent in the cgroup; "paced" pauses %s (frozen)
between invocations. The hanging backend accepts connections, reads them and never answers;
its adaptive run sets SLIPSTREAM_MAX_DATA_AGE=1s, so that every invocation (1 s apart) waits
as every invocation after a 60 s gap does by default.
`, r.o.warmup, r.o.pace)
	return nil
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
