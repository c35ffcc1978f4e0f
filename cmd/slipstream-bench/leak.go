package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// leakSample is what the agent holds after a run of invocations.
type leakSample struct {
	invocations int
	fds         int   // open file descriptors (/proc/<pid>/fd)
	threads     int   // OS threads (/proc/<pid>/status Threads)
	rssAnonKiB  int64 // RssAnon
	goroutines  int   // from the profile build's SLIPSTREAM_DEV_STATS; -1 without it
	heapAlloc   int64 // bytes of live heap, idem
}

// leakInvocations are the two run lengths compared.
var leakInvocations = []int{300, 3000}

// measureLeak runs the agent for 300 and for 3,000 invocations of the 5
// log lines payload (default flush, healthy backend) and, after the last
// invocation, reads its file descriptors, threads and anonymous memory,
// and, when the agent is built with the profile tag (-tags
// grpcnotrace,profile), its goroutines and live heap. Flat figures from
// one run to the other show that nothing grows per invocation.
func (b *bench) measureLeak(ctx context.Context, rep *report) error {
	profile := strings.Contains(","+b.o.tags+",", ",profile,")
	for _, n := range leakInvocations {
		b.step(fmt.Sprintf("leak check: %d invocations", n))
		be, err := startBackend("healthy")
		if err != nil {
			return err
		}
		stats := filepath.Join(b.dir, fmt.Sprintf("stats-%d", n))
		var env []string
		if profile {
			env = append(env, "SLIPSTREAM_DEV_STATS="+stats)
		}
		s := leakSample{invocations: n, goroutines: -1}
		settled := func(pid int) {
			if fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd"); err == nil {
				s.fds = len(fds)
			}
			if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
				t, _ := statusKiB(string(st), "Threads") // a count: the parser trims a "kB" only where there is one
				s.threads = int(t)
				s.rssAnonKiB, _ = statusKiB(string(st), "RssAnon")
			}
			if b, err := os.ReadFile(stats + "." + strconv.Itoa(pid)); err == nil {
				fmt.Sscanf(string(b), "goroutines %d heap_alloc %d", &s.goroutines, &s.heapAlloc)
			}
		}
		_, err = b.runEnv(ctx, envSpec{ext: b.agent, backend: be, env: append(env, b.o.agentEnv...), settled: settled},
			repeat(logPayload, n))
		be.close()
		if err != nil {
			return err
		}
		rep.leak = append(rep.leak, s)
	}
	return nil
}

func (r *report) leakRows() []row {
	if len(r.leak) != 2 {
		return nil
	}
	a, z := r.leak[0], r.leak[1]
	g := "— (build with -tags grpcnotrace,profile)"
	if a.goroutines >= 0 && z.goroutines >= 0 {
		g = fmt.Sprintf("%d → %d; %s → %s", a.goroutines, z.goroutines, mib(a.heapAlloc>>10), mib(z.heapAlloc>>10))
	}
	return []row{{
		metric: fmt.Sprintf("after %d → %d invocations: file descriptors; threads; RSS anon (MiB)", a.invocations, z.invocations),
		agent:  fmt.Sprintf("%d → %d; %d → %d; %s → %s", a.fds, z.fds, a.threads, z.threads, mib(a.rssAnonKiB), mib(z.rssAnonKiB)),
		floor:  "—", ratio: "—", target: "flat", result: verdict(z.fds <= a.fds && z.threads <= a.threads),
	}, {
		metric: "  goroutines; live heap (MiB)",
		agent:  g, floor: "—", ratio: "—", target: "flat",
		result: verdict(a.goroutines < 0 || z.goroutines <= a.goroutines),
	}}
}
