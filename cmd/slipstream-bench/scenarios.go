package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// report is everything measured; print turns it into the table.
type report struct {
	o          options
	started    time.Time
	elapsed    time.Duration
	cgroupNote string
	sizes      map[string]map[string]int64

	readyAgent, readyFloor []time.Duration
	initAgent, initFloor   []initTrace

	post      []postRun // agent runs by mode and backend
	postFloor postRun   // the floor's run beside the adaptive/healthy one (CPU, bytes)

	// Function duration under the cgroup, by extension ("none", floor, agent):
	// back to back (the CPU share saturated) and paced.
	fnBusy, fnPaced map[string]*fnRun

	rssAgent, rssFloor         int64 // KiB
	rssInitAgent, rssInitFloor int64 // KiB at the end of Init
	rssLastAgent, rssLastFloor memory

	flood, floodFloor floodRun

	hang []hangRun
}

// hangRun is a run against a backend that accepts and never answers.
type hangRun struct {
	flush string
	post  []time.Duration
	// detected is the invocation (1-based) after which the agent had
	// given up a connection; 0 when it never did.
	detected int
}

// postRun is one run of invocations for the post-runtime figures.
type postRun struct {
	flush, backend string
	post           []time.Duration
	floor          []time.Duration // the floor's run just before, same backend
	exported       []bool          // per invocation: an export request arrived meanwhile
	cpu, cpuTicks  time.Duration
	invocations    int
	wireBytes      int64
	requests       int64
}

// fnRun accumulates the function-duration runs of one extension.
type fnRun struct {
	durations     []time.Duration
	fnCPU, extCPU time.Duration
	invocations   int
	throttled     int64
	throttledTime time.Duration
	requests      int64
}

func (f *fnRun) add(r envRun, warmup int) {
	for _, res := range r.results[warmup:] {
		f.durations = append(f.durations, res.RuntimeDuration)
	}
	f.fnCPU += r.fnCPU
	f.extCPU += r.cpu
	f.invocations += len(r.results)
	f.throttled += r.throttled
	f.throttledTime += r.throttledTime
	f.requests += r.requests
}

// floodRun is the flood invocation.
type floodRun struct {
	lines         int // lines written
	delivered     int // distinct flood lines at the sink
	records       int // flood records at the sink, duplicates included
	emulatorDrops int64
	logsDropped   int64 // platform.logsDropped events
	agentDrops    float64
	hwmKiB        int64
	last          memory
	runtime       time.Duration
	postRuntime   time.Duration
	shutdownExit  time.Duration
	killed        bool
}

func (b *bench) measure(ctx context.Context) (*report, error) {
	rep := &report{o: b.o, started: time.Now(), cgroupNote: b.cgroupNote, sizes: b.sizes}
	steps := []struct {
		name string
		f    func(context.Context, *report) error
	}{
		{"init", b.measureInitTrace}, {"ready", b.measureReady}, {"post", b.measurePostRuntime},
		{"rss", b.measureRSS}, {"flood", b.measureFlood}, {"fn", b.measureFunctionDuration},
		{"hang", b.measureHang},
	}
	for _, s := range steps {
		if b.o.only != nil && !b.o.only[s.name] {
			continue
		}
		if err := s.f(ctx, rep); err != nil {
			return nil, err
		}
	}
	rep.elapsed = time.Since(rep.started)
	return rep, nil
}

// measureInitTrace runs each binary with GODEBUG=inittrace=1 and without
// AWS_LAMBDA_RUNTIME_API, so it exits right after its package inits.
func (b *bench) measureInitTrace(ctx context.Context, rep *report) error {
	b.step(fmt.Sprintf("GODEBUG=inittrace=1: %d runs per binary", b.o.initTraces))
	for range b.o.initTraces {
		for _, bin := range []struct {
			path string
			dst  *[]initTrace
		}{{b.agent, &rep.initAgent}, {b.floor, &rep.initFloor}} {
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin.path)
			cmd.Env = []string{"GODEBUG=inittrace=1"}
			cmd.Stderr = &stderr
			_ = cmd.Run() // exits 1: not inside Lambda; only its stderr matters
			t, err := parseInitTrace(&stderr)
			if err != nil {
				return err
			}
			if t.Packages == 0 {
				return fmt.Errorf("inittrace of %s: no init lines in %q", bin.path, stderr.String())
			}
			*bin.dst = append(*bin.dst, t)
		}
	}
	return nil
}

// measureReady starts environments (no invocation) alternately with the
// agent and with the floor.
func (b *bench) measureReady(ctx context.Context, rep *report) error {
	b.step(fmt.Sprintf("ready time: %d environment starts per extension", b.o.starts))
	be, err := startBackend("healthy")
	if err != nil {
		return err
	}
	defer be.close()
	for range b.o.starts {
		for _, x := range []struct {
			path string
			dst  *[]time.Duration
		}{{b.agent, &rep.readyAgent}, {b.floor, &rep.readyFloor}} {
			r, err := b.runEnv(ctx, envSpec{ext: x.path, backend: be}, nil)
			if err != nil {
				return err
			}
			*x.dst = append(*x.dst, r.ready)
		}
	}
	return nil
}

// measurePostRuntime runs the agent in each flush mode with each backend,
// each run just after a floor run with the same backend, invoking the
// 5-log-lines payload.
func (b *bench) measurePostRuntime(ctx context.Context, rep *report) error {
	n := b.o.invocations
	one := func(ext, flush, kind string) (postRun, error) {
		b.step(fmt.Sprintf("post-runtime: %d invocations, %s, flush %s, %s backend", n, ext, orDefault(flush), kind))
		be, err := startBackend(kind)
		if err != nil {
			return postRun{}, err
		}
		path := b.agent
		if ext == floorName {
			path = b.floor
		}
		r, err := b.runEnv(ctx, envSpec{ext: path, flush: flush, backend: be}, repeat(logPayload, n))
		be.close()
		if err != nil {
			return postRun{}, err
		}
		pr := postRun{flush: flush, backend: kind, cpu: r.cpu, cpuTicks: r.cpuTicks, invocations: n, wireBytes: r.wireBytes, requests: r.requests, exported: r.exported}
		for _, res := range r.results {
			pr.post = append(pr.post, res.PostRuntime)
		}
		return pr, nil
	}
	for _, flush := range []string{"async", "adaptive"} {
		for _, kind := range []string{"healthy", "slow", "dead"} {
			fl, err := one(floorName, "", kind)
			if err != nil {
				return err
			}
			pr, err := one(agentName, flush, kind)
			if err != nil {
				return err
			}
			pr.floor = fl.post
			rep.post = append(rep.post, pr)
			if flush == "adaptive" && kind == "healthy" {
				rep.postFloor = fl
			}
		}
	}
	return nil
}

func orDefault(flush string) string {
	if flush == "" {
		return "default"
	}
	return flush
}

// measureRSS runs 100 invocations of 5 log lines (default flush, healthy
// backend) with each extension and keeps its peak RSS.
func (b *bench) measureRSS(ctx context.Context, rep *report) error {
	b.step(fmt.Sprintf("peak RSS: %d invocations × 5 log lines per extension", b.o.rssInv))
	for _, x := range []struct {
		path      string
		dst, init *int64
		last      *memory
	}{{b.agent, &rep.rssAgent, &rep.rssInitAgent, &rep.rssLastAgent}, {b.floor, &rep.rssFloor, &rep.rssInitFloor, &rep.rssLastFloor}} {
		be, err := startBackend("healthy")
		if err != nil {
			return err
		}
		r, err := b.runEnv(ctx, envSpec{ext: x.path, backend: be}, repeat(logPayload, b.o.rssInv))
		be.close()
		if err != nil {
			return err
		}
		*x.dst, *x.init, *x.last = r.hwmKiB, r.initHWM, r.lastMem
	}
	return nil
}

// measureFlood invokes the flood once (128 MB function, default flush,
// healthy backend, the emulator's default 1 MiB platform buffer), shuts
// down, and counts the flood lines that reached the sink.
func (b *bench) measureFlood(ctx context.Context, rep *report) error {
	payload := fmt.Appendf(nil, `{"action":"flood","lines":%d,"bytes":%d}`, b.o.floodLines, b.o.floodBytes)
	for _, x := range []struct {
		path string
		dst  *floodRun
	}{{b.agent, &rep.flood}, {b.floor, &rep.floodFloor}} {
		b.step(fmt.Sprintf("flood: %d lines (every 100th %d bytes) in one invocation, %s", b.o.floodLines, b.o.floodBytes, x.path))
		be, err := startBackend("healthy")
		if err != nil {
			return err
		}
		r, err := b.runEnv(ctx, envSpec{ext: x.path, backend: be, timeout: time.Minute}, [][]byte{payload})
		be.close() // waits for requests in flight
		if err != nil {
			return err
		}
		snap := be.sink.Snapshot()
		seen := make([]bool, b.o.floodLines+1)
		f := floodRun{lines: b.o.floodLines, emulatorDrops: r.stats.DroppedRecords, logsDropped: r.stats.LogsDroppedEvents,
			hwmKiB: r.hwmKiB, last: r.lastMem, runtime: r.results[0].RuntimeDuration, postRuntime: r.results[0].PostRuntime,
			killed: len(r.shutdown.Killed) > 0}
		for _, d := range r.shutdown.ExtensionExit {
			f.shutdownExit = d
		}
		for _, l := range snap.Logs() {
			if n, ok := floodLine(l.Body); ok && n >= 1 && n <= b.o.floodLines {
				f.records++
				if !seen[n] {
					seen[n] = true
					f.delivered++
				}
			}
		}
		f.agentDrops = snap.Sum("slipstream.exporter.items", attribute.String("outcome", "dropped"))
		*x.dst = f
	}
	return nil
}

// measureFunctionDuration runs the function alone, with the floor and with
// the agent, all children in the 128 MB CPU cgroup, in alternating rounds:
// back to back (the CPU share is saturated, so every CPU millisecond of an
// extension shows) and paced (one invocation every pace, as a function that
// is not busy all the time).
func (b *bench) measureFunctionDuration(ctx context.Context, rep *report) error {
	be, err := startBackend("healthy")
	if err != nil {
		return err
	}
	defer be.close()
	rep.fnBusy, rep.fnPaced = map[string]*fnRun{}, map[string]*fnRun{}
	for _, w := range []struct {
		name string
		pace time.Duration
		dst  map[string]*fnRun
	}{{"back to back", 0, rep.fnBusy}, {"paced " + b.o.pace.String(), b.o.pace, rep.fnPaced}} {
		b.step(fmt.Sprintf("function duration, %s: %d rounds × %d invocations × (no extension, floor, agent); %s",
			w.name, b.o.cpuRounds, b.o.cpuInv, b.cgroupNote))
		for range b.o.cpuRounds {
			for _, x := range []struct{ key, path string }{{"none", ""}, {floorName, b.floor}, {agentName, b.agent}} {
				r, err := b.runEnv(ctx, envSpec{ext: x.path, backend: be, cgroup: b.cgroup, timeout: 10 * time.Second, pace: w.pace},
					repeat(logPayload, b.o.cpuInv+b.o.warmup))
				if err != nil {
					return err
				}
				if w.dst[x.key] == nil {
					w.dst[x.key] = &fnRun{}
				}
				w.dst[x.key].add(r, b.o.warmup)
			}
		}
	}
	return nil
}

// hangInvocations: the first invocation and the next ten.
const hangInvocations = 11

// measureHang runs the agent against a backend that accepts connections
// and never answers, one invocation a second (frozen in between), in end
// mode and in adaptive mode with SLIPSTREAM_MAX_DATA_AGE=1s (so that every
// invocation comes after a gap and waits, as every invocation after a 60 s
// gap does by default): the post-runtime of each invocation, and the
// invocation after which the agent gave the hung request up.
func (b *bench) measureHang(ctx context.Context, rep *report) error {
	for _, run := range []struct {
		flush string
		env   []string
	}{{"end", nil}, {"adaptive", []string{"SLIPSTREAM_MAX_DATA_AGE=1s"}}} {
		b.step(fmt.Sprintf("hanging backend: %d invocations, one a second, flush %s", hangInvocations, run.flush))
		be, err := startBackend("hanging")
		if err != nil {
			return err
		}
		r, err := b.runEnv(ctx, envSpec{ext: b.agent, flush: run.flush, backend: be, pace: time.Second, env: run.env},
			repeat(logPayload, hangInvocations))
		be.close()
		if err != nil {
			return err
		}
		hr := hangRun{flush: run.flush}
		for _, res := range r.results {
			hr.post = append(hr.post, res.PostRuntime)
		}
		for i, n := range r.gaveUp {
			if n > 0 {
				hr.detected = i + 1
				break
			}
		}
		rep.hang = append(rep.hang, hr)
	}
	return nil
}

// run returns the agent's post-runtime run for flush and backend.
func (r *report) run(flush, backend string) (postRun, bool) {
	i := slices.IndexFunc(r.post, func(p postRun) bool { return p.flush == flush && p.backend == backend })
	if i < 0 {
		return postRun{}, false
	}
	return r.post[i], true
}
