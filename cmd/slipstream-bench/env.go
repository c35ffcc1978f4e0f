package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipstream-otel/slipstream/emulator"
	"github.com/slipstream-otel/slipstream/emulator/sink"
)

// Names of the binaries; an extension registers with its file name.
const (
	agentName = "slipstream"
	floorName = "slipstream-floor"
)

// The function's payload in every run but the flood: 5 text log lines.
var logPayload = []byte(`{"action":"log","lines":5}`)

// bench holds the built binaries and the cgroup of one benchmark run.
type bench struct {
	o        options
	dir      string
	progress io.Writer
	children io.Writer // the children's output
	logFile  *os.File

	agent, floor, function string                      // built for this machine
	sizes                  map[string]map[string]int64 // arch -> name -> bytes

	cgroup     string // "" when unavailable
	cgroupNote string
}

func newBench(ctx context.Context, o options, progress io.Writer) (*bench, error) {
	dir, err := os.MkdirTemp("", "slipstream-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, dir: dir, progress: progress, children: io.Discard, sizes: map[string]map[string]int64{}}
	if o.agentLog != "" {
		f, err := os.Create(o.agentLog)
		if err != nil {
			b.close()
			return nil, err
		}
		b.logFile, b.children = f, f
	}
	b.step("building the agent and the floor (linux/amd64, linux/arm64, stripped) and the example function")
	for _, arch := range []string{"amd64", "arm64"} {
		b.sizes[arch] = map[string]int64{}
		for _, bin := range []struct{ name, pkg string }{{agentName, "./cmd/slipstream"}, {floorName, "./cmd/slipstream-floor"}} {
			out := filepath.Join(dir, arch, bin.name)
			tags := ""
			if bin.name == agentName {
				tags = o.tags
			}
			if err := build(ctx, bin.pkg, arch, tags, out); err != nil {
				b.close()
				return nil, err
			}
			fi, err := os.Stat(out)
			if err != nil {
				b.close()
				return nil, err
			}
			b.sizes[arch][bin.name] = fi.Size()
		}
	}
	host := runtime.GOARCH
	b.agent, b.floor = filepath.Join(dir, host, agentName), filepath.Join(dir, host, floorName)
	if o.agentBin != "" {
		// The extension registers with its file name: copy it as "slipstream".
		b.agent = filepath.Join(dir, "custom", agentName)
		if err := copyFile(o.agentBin, b.agent); err != nil {
			b.close()
			return nil, err
		}
	}
	b.function = filepath.Join(dir, "function", "bootstrap")
	if err := build(ctx, "./examples/function", host, "", b.function); err != nil {
		b.close()
		return nil, err
	}
	b.cgroup, b.cgroupNote = makeCgroup()
	b.step("cgroup: " + b.cgroupNote)
	return b, nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

func (b *bench) close() {
	if b.cgroup != "" {
		removeCgroup(b.cgroup)
	}
	if b.logFile != nil {
		b.logFile.Close()
	}
	os.RemoveAll(b.dir)
}

func (b *bench) step(msg string) {
	fmt.Fprintf(b.progress, "==> %s %s\n", time.Now().Format("15:04:05"), msg)
}

// build compiles pkg for linux/arch like `make build`, with optional build tags.
func build(ctx context.Context, pkg, arch, tags, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-tags", tags, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s (%s): %w", pkg, arch, err)
	}
	return nil
}

// cfsPeriodUs is the CFS period; the quota is the CPU share of a 128 MB
// function (Lambda gives one vCPU at 1,769 MB): 7,236 µs per period.
const cfsPeriodUs = 100_000

// makeCgroup creates a CPU cgroup limited to 128/1769 of a core (cgroup v1
// cpu controller, else cgroup v2 cpu.max). It returns "" and the reason when
// that is not possible (not root, no cpu controller).
func makeCgroup() (dir, note string) {
	quota := (cfsPeriodUs*128 + 1768) / 1769 // round up: 7236
	name := "slipstream-bench-" + strconv.Itoa(os.Getpid())
	if fi, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil && !fi.IsDir() {
		dir = filepath.Join("/sys/fs/cgroup/cpu", name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", "unavailable (" + err.Error() + "): function duration measured WITHOUT a CPU limit"
		}
		err1 := os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(cfsPeriodUs)), 0)
		err2 := os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), []byte(strconv.Itoa(quota)), 0)
		if err := errors.Join(err1, err2); err != nil {
			removeCgroup(dir)
			return "", "unavailable (" + err.Error() + "): function duration measured WITHOUT a CPU limit"
		}
		return dir, fmt.Sprintf("cgroup v1 %s, cpu.cfs_quota_us=%d per cpu.cfs_period_us=%d (128/1769 of a core)", dir, quota, cfsPeriodUs)
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil && strings.Contains(string(b), "cpu") {
		dir = filepath.Join("/sys/fs/cgroup", name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", "unavailable (" + err.Error() + "): function duration measured WITHOUT a CPU limit"
		}
		if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(fmt.Sprintf("%d %d", quota, cfsPeriodUs)), 0); err != nil {
			removeCgroup(dir)
			return "", "unavailable (" + err.Error() + "): function duration measured WITHOUT a CPU limit"
		}
		return dir, fmt.Sprintf("cgroup v2 %s, cpu.max=%d %d (128/1769 of a core)", dir, quota, cfsPeriodUs)
	}
	return "", "unavailable (no writable cpu controller): function duration measured WITHOUT a CPU limit"
}

// removeCgroup removes the cgroup; its processes have exited, but the kernel
// may need a moment to let go of them.
func removeCgroup(dir string) {
	for range 50 {
		if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond) // cleanup retry, not synchronisation
	}
	fmt.Fprintln(os.Stderr, "slipstream-bench: could not remove cgroup", dir)
}

// backend is an OTLP endpoint: the sink (healthy, or slow: every request held
// 200 ms), a closed port (dead), or a listener that accepts and never
// answers (hanging). wire counts request body bytes as sent.
type backend struct {
	kind     string
	sink     *sink.Sink
	srv      *http.Server
	hold     *holder // hanging
	endpoint string
	wire     atomic.Int64
}

// holder accepts connections, reads and discards what arrives, and never
// answers; gaveUp counts the connections the client closed.
type holder struct {
	ln     net.Listener
	gaveUp atomic.Int64
	wg     sync.WaitGroup
	// mu guards conns.
	mu    sync.Mutex
	conns []net.Conn
}

func startHolder(ln net.Listener) *holder {
	h := &holder{ln: ln}
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.wg.Go(func() {
				if _, err := io.Copy(io.Discard, c); err == nil || !errors.Is(err, net.ErrClosed) {
					h.gaveUp.Add(1) // EOF or reset: the client closed it
				}
			})
		}
	})
	return h
}

func (h *holder) close() {
	h.ln.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func startBackend(kind string) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{kind: kind, endpoint: "http://" + ln.Addr().String()}
	switch kind {
	case "dead":
		ln.Close() // connections are refused from now on
		return b, nil
	case "hanging":
		b.hold = startHolder(ln)
		return b, nil
	}
	var opts sink.Options
	if kind == "slow" {
		opts.Faults = []sink.Fault{{Delay: 200 * time.Millisecond}}
	}
	b.sink = sink.New(opts)
	h := b.sink.Handler()
	b.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = &countingBody{ReadCloser: r.Body, n: &b.wire}
			h.ServeHTTP(w, r)
		})}
	go b.srv.Serve(ln) // ends with close
	return b, nil
}

// close stops the backend after its in-flight requests.
func (b *backend) close() {
	if b.hold != nil {
		b.hold.close()
	}
	if b.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.sink.Close(ctx) // releases held requests (nothing to report: data stays readable)
	b.srv.Shutdown(ctx)
}

// requests returns the number of export requests received so far.
func (b *backend) requests() int64 {
	if b.sink == nil {
		return 0
	}
	var n int64
	for _, c := range b.sink.Requests() {
		n += int64(c.Received)
	}
	return n
}

// countingBody counts the bytes read from a request body (compressed: as on the wire).
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// envSpec is one execution environment to run.
type envSpec struct {
	ext     string // extension path; "" runs the function alone
	flush   string // SLIPSTREAM_FLUSH; "" keeps the default (adaptive)
	backend *backend
	cgroup  string
	timeout time.Duration
	pace    time.Duration // pause between invocations (the environment is frozen meanwhile)
	env     []string      // extra variables for the extension
}

// envRun is what one environment measured.
type envRun struct {
	ready   time.Duration // extension exec → first /event/next
	results []emulator.InvokeResult
	// exported tells, per invocation, whether an export request reached the
	// backend while it ran.
	exported []bool
	// cpu is the extension's CPU time from the end of Init to its exit
	// (the invocations and the shutdown flush).
	cpu      time.Duration
	cpuTicks time.Duration // the same from /proc/<pid>/stat (10 ms ticks)
	hwmKiB   int64         // the extension's VmHWM, last read before it exited
	lastMem  memory        // the extension's last memory sample before it exited
	initHWM  int64         // the extension's VmHWM at the end of Init
	fnCPU    time.Duration // the function's CPU time during the invocations
	// throttled and throttledTime are the cgroup's CFS throttling during the run.
	throttled     int64
	throttledTime time.Duration
	stats         emulator.Stats
	// wireBytes and requests are what reached the backend during the run.
	wireBytes, requests int64
	// gaveUp is, after each invocation, how many connections the agent
	// had closed on a hanging backend.
	gaveUp   []int64
	shutdown emulator.ShutdownResult
}

// runEnv starts an environment, invokes each payload in turn, and shuts it
// down, sampling the extension's CPU and peak RSS until it exits.
func (b *bench) runEnv(ctx context.Context, spec envSpec, payloads [][]byte) (envRun, error) {
	var r envRun
	spill, err := os.MkdirTemp(b.dir, "spill-")
	if err != nil {
		return r, err
	}
	env := []string{
		"SLIPSTREAM_OTLP_ENDPOINT=" + spec.backend.endpoint,
		"SLIPSTREAM_LISTENER_PORT=0", // a free port, named in the subscription
		"SLIPSTREAM_SPILL_DIR=" + spill,
		"SLIPSTREAM_LOG_LEVEL=warn",
		// The example function's own OpenTelemetry SDK is off: every row
		// measures the platform's telemetry alone, the same work for the
		// agent, an older agent (-agent-bin) and the floor.
		"OTEL_SDK_DISABLED=true",
	}
	if spec.flush != "" {
		env = append(env, "SLIPSTREAM_FLUSH="+spec.flush)
	}
	env = append(env, spec.env...)
	if spec.ext == b.agent {
		env = append(env, b.o.agentEnv...) // os/exec keeps the last of two settings
	}
	cfg := emulator.Config{
		Function:           b.function,
		FunctionName:       "slipstream-bench",
		MemoryMB:           128,
		Timeout:            spec.timeout,
		Freeze:             true,
		TelemetrySupported: true,
		Env:                env,
		CgroupDir:          spec.cgroup,
		Stdout:             b.children,
		Stderr:             b.children,
	}
	name := ""
	if spec.ext != "" {
		cfg.Extensions = []string{spec.ext}
		name = filepath.Base(spec.ext)
	}
	wire0, req0 := spec.backend.wire.Load(), spec.backend.requests()
	emu, err := emulator.Start(ctx, cfg)
	if err != nil {
		return r, fmt.Errorf("start emulator (%s): %w", describe(spec), err)
	}
	pid, fnPID := 0, 0
	if name != "" {
		r.ready = emu.ExtensionReady()[name]
	}
	for _, p := range emu.Processes() {
		switch {
		case p.Runtime:
			fnPID = p.PID
		case p.Name == name:
			pid = p.PID
		}
	}
	cpu0, _ := taskCPU(pid)  // 0 without an extension
	tick0, _ := procCPU(pid) // idem
	r.initHWM, _ = procHWM(pid)
	fn0, _ := taskCPU(fnPID)
	thr0, thrT0 := cgroupThrottling(spec.cgroup)
	for i, p := range payloads {
		if i > 0 && spec.pace > 0 {
			time.Sleep(spec.pace) // pacing the load, not synchronisation
		}
		res, err := emu.Invoke(ctx, p, emulator.InvokeOptions{})
		if err != nil {
			_, serr := emu.Shutdown(context.WithoutCancel(ctx), emulator.ReasonFailure)
			return r, errors.Join(fmt.Errorf("invoke %d (%s): %w", i+1, describe(spec), err), serr)
		}
		r.results = append(r.results, res)
		reqs := spec.backend.requests()
		r.exported = append(r.exported, reqs > req0+r.requests)
		r.requests = reqs - req0
		if h := spec.backend.hold; h != nil {
			r.gaveUp = append(r.gaveUp, h.gaveUp.Load())
		}
	}
	if fn1, err := taskCPU(fnPID); err == nil {
		r.fnCPU = fn1 - fn0
	}
	thr1, thrT1 := cgroupThrottling(spec.cgroup)
	r.throttled, r.throttledTime = thr1-thr0, thrT1-thrT0

	// Sample until the extension exits: the peak may come with the final flush.
	type sample struct {
		cpu, ticks time.Duration
		mem        memory
	}
	stop, done := make(chan struct{}), make(chan sample)
	go func() {
		var last sample
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if pid > 0 {
				c, err1 := taskCPU(pid)
				k, err2 := procCPU(pid)
				m, err3 := procMemory(pid) // fails for a zombie: keep the last value
				if err1 == nil && err2 == nil && err3 == nil {
					last = sample{c, k, m}
				}
			}
			select {
			case <-stop:
				done <- last
				return
			case <-t.C:
			}
		}
	}()
	r.shutdown, err = emu.Shutdown(ctx, emulator.ReasonSpindown)
	close(stop)
	s := <-done
	r.cpu, r.cpuTicks, r.hwmKiB, r.lastMem = s.cpu-cpu0, s.ticks-tick0, s.mem.HWM, s.mem
	r.stats = emu.Stats()
	r.wireBytes, r.requests = spec.backend.wire.Load()-wire0, spec.backend.requests()-req0
	if err != nil {
		return r, fmt.Errorf("shutdown (%s): %w", describe(spec), err)
	}
	return r, nil
}

func describe(s envSpec) string {
	ext := "no extension"
	if s.ext != "" {
		ext = filepath.Base(s.ext)
	}
	return fmt.Sprintf("%s, flush %q, %s backend", ext, s.flush, s.backend.kind)
}

// taskCPU sums the on-CPU time (ns, /proc/<pid>/task/*/schedstat) of every
// thread of pid.
func taskCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, errors.New("empty schedstat")
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// cgroupThrottling reads the CFS throttling counters of a cgroup's cpu.stat
// (v1: nr_throttled, throttled_time in ns; v2: nr_throttled, throttled_usec).
func cgroupThrottling(dir string) (periods int64, d time.Duration) {
	if dir == "" {
		return 0, 0
	}
	b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "nr_throttled":
			periods = n
		case "throttled_time":
			d = time.Duration(n)
		case "throttled_usec":
			d = time.Duration(n) * time.Microsecond
		}
	}
	return periods, d
}

func repeat(p []byte, n int) [][]byte {
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = p
	}
	return ps
}
