package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// counts are load-independent counts of one extension process, from
// start to exit: instructions under valgrind, and system calls and
// context switches from a native run under perf stat.
type counts struct {
	Ir       int64 // instructions executed in user space (valgrind)
	Syscalls int64 // system calls entered (perf stat raw_syscalls:sys_enter)
	Futex    int64 // futex calls among them (thread sleeps and wake-ups)
	CtxSw    int64 // context switches
}

func (c counts) sub(d counts) counts {
	return counts{c.Ir - d.Ir, c.Syscalls - d.Syscalls, c.Futex - d.Futex, c.CtxSw - d.CtxSw}
}

// instrRun is what the instr step measured of one extension: two
// environments that differ only in their number of invocations, so that
// the difference is what the extra invocations cost (Init, the first
// invocations and the shutdown cancel out).
type instrRun struct {
	tool         string // valgrind tool
	perf         bool   // the perf stat counts were measured
	small, large int    // invocations of the two environments
	cSmall       counts
	cLarge       counts
	requests     int64 // OTLP requests that reached the backend during the large valgrind run
}

// per returns a count per extra invocation.
func (r instrRun) per(f func(counts) int64) float64 {
	if r.large <= r.small {
		return 0
	}
	return float64(f(r.cLarge.sub(r.cSmall))) / float64(r.large-r.small)
}

// instrWarmup is the invocations of the small run: the first invocations
// (connections, lazily built state) are left out of the difference.
const instrWarmup = 10

// perfEvents are the events counted by perf stat, in the order of counts.
var perfEvents = []string{"raw_syscalls:sys_enter", "syscalls:sys_enter_futex", "context-switches"}

// measureInstructions runs the floor and the agent, each in two
// environments of instrWarmup and instrWarmup+n invocations of the 5 log
// lines payload (default flush, healthy backend): under valgrind
// (cachegrind without cache simulation, or callgrind), for the
// instructions each process executed, and, when perf stat can count
// tracepoints here, natively under perf stat for its system calls and
// context switches. These counts do not depend on the machine's load,
// unlike CPU time. Instructions count user space only (not the kernel's
// share of a system call, which the system calls stand for), and valgrind
// runs the extension about 50 times slower with its threads serialized,
// so timers fire more often per invocation than in a native run.
func (b *bench) measureInstructions(ctx context.Context, rep *report) error {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return fmt.Errorf("instr: valgrind not found (apt-get install valgrind): %w", err)
	}
	perfOK := exec.Command("perf", "stat", "-x,", "-e", strings.Join(perfEvents, ","), "true").Run() == nil
	n := b.o.instrInv
	for _, x := range []struct {
		name, path string
		env        []string
		dst        *instrRun
	}{{floorName, b.floor, nil, &rep.instrFloor}, {agentName, b.agent, b.o.agentEnv, &rep.instrAgent}} {
		r := instrRun{tool: b.o.valgrind, perf: perfOK, small: instrWarmup, large: instrWarmup + n}
		for _, inv := range []struct {
			count int
			dst   *counts
		}{{r.small, &r.cSmall}, {r.large, &r.cLarge}} {
			b.step(fmt.Sprintf("instructions: %s under valgrind --tool=%s, %d invocations", x.name, b.o.valgrind, inv.count))
			ir, reqs, err := b.runValgrind(ctx, x.name, x.path, x.env, inv.count)
			if err != nil {
				return err
			}
			inv.dst.Ir, r.requests = ir, reqs
			if !perfOK {
				continue
			}
			b.step(fmt.Sprintf("system calls: %s under perf stat, %d invocations", x.name, inv.count))
			c, err := b.runPerfStat(ctx, x.name, x.path, x.env, inv.count)
			if err != nil {
				return err
			}
			inv.dst.Syscalls, inv.dst.Futex, inv.dst.CtxSw = c.Syscalls, c.Futex, c.CtxSw
		}
		*x.dst = r
	}
	return nil
}

// runWrapped runs one environment whose extension is a shell script
// named like the extension (it registers with its file name, argv[0]'s
// base name) that execs argv followed by path.
func (b *bench) runWrapped(ctx context.Context, dir, name, path string, argv, env []string, invocations int) (envRun, error) {
	wrapper := filepath.Join(dir, name)
	script := "#!/bin/sh\nexec " + shellQuote(append(argv, path)) + "\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return envRun{}, err
	}
	be, err := startBackend("healthy")
	if err != nil {
		return envRun{}, err
	}
	defer be.close()
	return b.runEnv(ctx, envSpec{ext: wrapper, backend: be, env: env, timeout: 30 * time.Second, slow: true},
		repeat(logPayload, invocations))
}

// runValgrind runs one environment with the extension at path under
// valgrind and returns the instructions the extension executed and the
// OTLP requests that reached the backend.
func (b *bench) runValgrind(ctx context.Context, name, path string, env []string, invocations int) (ir, requests int64, err error) {
	dir, err := os.MkdirTemp(b.dir, "valgrind-")
	if err != nil {
		return 0, 0, err
	}
	out := filepath.Join(dir, b.o.valgrind+".out")
	argv := []string{"valgrind", "-q", "--tool=" + b.o.valgrind}
	switch b.o.valgrind {
	case "cachegrind":
		argv = append(argv, "--cache-sim=no", "--cachegrind-out-file="+out)
	case "callgrind":
		// Callgrind asserts on the signals of Go's asynchronous preemption.
		env = append(env, "GODEBUG=asyncpreemptoff=1")
		argv = append(argv, "--callgrind-out-file="+out)
	default:
		return 0, 0, fmt.Errorf("instr: -valgrind %q: want cachegrind or callgrind", b.o.valgrind)
	}
	run, err := b.runWrapped(ctx, dir, name, path, argv, env, invocations)
	if err != nil {
		return 0, 0, err
	}
	if ir, err = readIr(out); err != nil {
		return 0, 0, err
	}
	if b.o.valgrindOut != "" {
		keep := filepath.Join(b.o.valgrindOut, fmt.Sprintf("%s.%s.%d", b.o.valgrind, name, invocations))
		if err := copyFile(out, keep); err != nil {
			return 0, 0, err
		}
		b.step("kept " + keep)
	}
	return ir, run.requests, nil
}

// runPerfStat runs one environment with the extension at path under perf
// stat and returns its counts of perfEvents.
func (b *bench) runPerfStat(ctx context.Context, name, path string, env []string, invocations int) (counts, error) {
	dir, err := os.MkdirTemp(b.dir, "perf-")
	if err != nil {
		return counts{}, err
	}
	out := filepath.Join(dir, "perf.csv")
	argv := []string{"perf", "stat", "-x,", "-o", out, "-e", strings.Join(perfEvents, ",")}
	if _, err := b.runWrapped(ctx, dir, name, path, argv, env, invocations); err != nil {
		return counts{}, err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return counts{}, fmt.Errorf("instr: %w", err)
	}
	v, err := parsePerfStat(string(data))
	if err != nil {
		return counts{}, err
	}
	return counts{Syscalls: v[perfEvents[0]], Futex: v[perfEvents[1]], CtxSw: v[perfEvents[2]]}, nil
}

// parsePerfStat reads the counts of perf stat -x, output (value,unit,event,...).
func parsePerfStat(s string) (map[string]int64, error) {
	v := map[string]int64{}
	for line := range strings.SplitSeq(s, "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || strings.HasPrefix(line, "#") {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("instr: perf stat: %q: %w", line, err)
		}
		v[f[2]] = n
	}
	for _, e := range perfEvents {
		if _, ok := v[e]; !ok {
			return nil, fmt.Errorf("instr: perf stat: no count of %s in %q", e, s)
		}
	}
	return v, nil
}

// readIr returns the instruction count (the first event, Ir) of the
// "summary:" (cachegrind) or "totals:" (callgrind) line of a valgrind
// output file.
func readIr(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("instr: %w (did the extension exit normally?)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, key := range []string{"summary:", "totals:"} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				fs := strings.Fields(rest)
				if len(fs) == 0 {
					continue
				}
				return strconv.ParseInt(fs[0], 10, 64)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("instr: no summary line in " + path)
}

// shellQuote quotes each word for sh.
func shellQuote(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func (r *report) instrRows() []row {
	a, f := r.instrAgent, r.instrFloor
	if a.large == 0 || f.large == 0 {
		return nil
	}
	d := fmt.Sprintf("(%d − %d inv) / %d", a.large, a.small, a.large-a.small)
	ap, fp := a.per(func(c counts) int64 { return c.Ir }), f.per(func(c counts) int64 { return c.Ir })
	rows := []row{{
		metric: fmt.Sprintf("instructions per invocation, valgrind %s, %s (thousands)", a.tool, d),
		agent:  fmt.Sprintf("%.0f", ap/1e3), floor: fmt.Sprintf("%.0f", fp/1e3), ratio: ratio(ap, fp),
		target: "≤ 1.25×", result: verdict(fp > 0 && ap <= 1.25*fp),
	}, {
		metric: fmt.Sprintf("  instructions of the whole process, %d / %d inv (millions); OTLP requests of the %d", a.small, a.large, a.large),
		agent:  fmt.Sprintf("%.1f / %.1f; %d", float64(a.cSmall.Ir)/1e6, float64(a.cLarge.Ir)/1e6, a.requests),
		floor:  fmt.Sprintf("%.1f / %.1f", float64(f.cSmall.Ir)/1e6, float64(f.cLarge.Ir)/1e6),
		ratio:  "—", target: "—", result: "—",
	}}
	if !a.perf {
		return append(rows, row{metric: "  system calls per invocation: perf stat cannot count raw_syscalls:sys_enter here",
			agent: "—", floor: "—", ratio: "—", target: "—", result: "—"})
	}
	cell := func(r instrRun) string {
		return fmt.Sprintf("%.1f (%.1f), %.1f",
			r.per(func(c counts) int64 { return c.Syscalls }), r.per(func(c counts) int64 { return c.Futex }), r.per(func(c counts) int64 { return c.CtxSw }))
	}
	sa, sf := a.per(func(c counts) int64 { return c.Syscalls }), f.per(func(c counts) int64 { return c.Syscalls })
	return append(rows, row{
		metric: fmt.Sprintf("  system calls (futex), context switches per invocation, native under perf stat, %s", d),
		agent:  cell(a), floor: cell(f), ratio: ratio(sa, sf), target: "—", result: "—",
	})
}
