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

// instrRun is the instruction count of one extension under valgrind: two
// environments that differ only in their number of invocations, so that
// the difference is what the extra invocations cost (Init, the first
// invocations and the shutdown cancel out).
type instrRun struct {
	tool         string
	small, large int   // invocations of the two environments
	irSmall      int64 // instructions (Ir) of the whole process, small run
	irLarge      int64
	requests     int64 // OTLP requests that reached the backend during the large run
}

// perInvocation returns the instructions per extra invocation.
func (r instrRun) perInvocation() float64 {
	if r.large <= r.small {
		return 0
	}
	return float64(r.irLarge-r.irSmall) / float64(r.large-r.small)
}

// instrWarmup is the invocations of the small run: the first invocations
// (connections, lazily built state) are left out of the difference.
const instrWarmup = 10

// measureInstructions runs the floor and the agent under valgrind
// (cachegrind without cache simulation, or callgrind), each in two
// environments of instrWarmup and instrWarmup+n invocations of the 5 log
// lines payload (default flush, healthy backend), and keeps the
// instructions each process executed. Instruction counts do not depend on
// the machine's load, unlike CPU time; they count user space only (not the
// kernel's share of a system call), and valgrind runs the extension about
// 50 times slower with its threads serialized, so timers fire more often
// per invocation than in a native run.
func (b *bench) measureInstructions(ctx context.Context, rep *report) error {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return fmt.Errorf("instr: valgrind not found (apt-get install valgrind): %w", err)
	}
	n := b.o.instrInv
	for _, x := range []struct {
		name, path string
		env        []string
		dst        *instrRun
	}{{floorName, b.floor, nil, &rep.instrFloor}, {agentName, b.agent, b.o.agentEnv, &rep.instrAgent}} {
		b.step(fmt.Sprintf("instructions: %s under valgrind --tool=%s, %d and %d invocations", x.name, b.o.valgrind, instrWarmup, instrWarmup+n))
		r := instrRun{tool: b.o.valgrind, small: instrWarmup, large: instrWarmup + n}
		for _, inv := range []struct {
			count int
			dst   *int64
		}{{r.small, &r.irSmall}, {r.large, &r.irLarge}} {
			ir, reqs, err := b.runValgrind(ctx, x.name, x.path, x.env, inv.count)
			if err != nil {
				return err
			}
			*inv.dst, r.requests = ir, reqs
		}
		*x.dst = r
	}
	return nil
}

// runValgrind runs one environment with the extension at path wrapped in
// valgrind and returns the instructions the extension executed and the
// OTLP requests that reached the backend.
func (b *bench) runValgrind(ctx context.Context, name, path string, env []string, invocations int) (ir, requests int64, err error) {
	dir, err := os.MkdirTemp(b.dir, "valgrind-")
	if err != nil {
		return 0, 0, err
	}
	out := filepath.Join(dir, b.o.valgrind+".out")
	args := []string{"valgrind", "-q", "--tool=" + b.o.valgrind}
	switch b.o.valgrind {
	case "cachegrind":
		args = append(args, "--cache-sim=no", "--cachegrind-out-file="+out)
	case "callgrind":
		// Callgrind asserts on the signals of Go's asynchronous preemption.
		env = append(env, "GODEBUG=asyncpreemptoff=1")
		args = append(args, "--callgrind-out-file="+out)
	default:
		return 0, 0, fmt.Errorf("instr: -valgrind %q: want cachegrind or callgrind", b.o.valgrind)
	}
	// The extension registers with its file name (its argv[0]'s base name),
	// so the wrapper carries the same name and execs the binary by its path.
	wrapper := filepath.Join(dir, name)
	script := "#!/bin/sh\nexec " + shellQuote(append(args, path)) + "\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return 0, 0, err
	}
	be, err := startBackend("healthy")
	if err != nil {
		return 0, 0, err
	}
	run, err := b.runEnv(ctx, envSpec{ext: wrapper, backend: be, env: env, timeout: 30 * time.Second, slow: true},
		repeat(logPayload, invocations))
	be.close()
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
	ap, fp := a.perInvocation(), f.perInvocation()
	return []row{{
		metric: fmt.Sprintf("instructions per invocation, valgrind %s, (Ir of %d − Ir of %d inv) / %d (thousands)", a.tool, a.large, a.small, a.large-a.small),
		agent:  fmt.Sprintf("%.0f", ap/1e3), floor: fmt.Sprintf("%.0f", fp/1e3), ratio: ratio(ap, fp),
		target: "≤ 1.25×", result: verdict(fp > 0 && ap <= 1.25*fp),
	}, {
		metric: fmt.Sprintf("  instructions of the whole process, %d / %d inv (millions); OTLP requests of the %d", a.small, a.large, a.large),
		agent:  fmt.Sprintf("%.1f / %.1f; %d", float64(a.irSmall)/1e6, float64(a.irLarge)/1e6, a.requests),
		floor:  fmt.Sprintf("%.1f / %.1f", float64(f.irSmall)/1e6, float64(f.irLarge)/1e6),
		ratio:  "—", target: "—", result: "—",
	}}
}
