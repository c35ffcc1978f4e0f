package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the benchmark's sizes.
type options struct {
	quick       bool
	starts      int           // environment starts per extension for the ready time
	initTraces  int           // runs of GODEBUG=inittrace=1 per binary
	invocations int           // invocations per post-runtime run
	rssInv      int           // invocations of the peak RSS run (target: 100)
	cpuInv      int           // invocations per function-duration run, per round
	cpuRounds   int           // rounds of the function-duration runs (none, floor, agent each)
	warmup      int           // first invocations left out of the function duration
	pace        time.Duration // pause between paced invocations
	floodLines  int           // lines of the flood (target: 20,000)
	floodBytes  int           // size of every 100th flood line (target: 64 KB)
	agentLog    string
	only        map[string]bool // steps to run; nil runs all
	agentBin    string          // run this agent binary instead of the stripped build (profiling)
	tags        string          // build tags for the agent (go build -tags)
	agentEnv    []string        // extra KEY=value variables for the environments that run the agent
}

func defaultOptions(quick bool) options {
	o := options{quick: quick, starts: 10, initTraces: 5, invocations: 500, rssInv: 100,
		cpuInv: 200, cpuRounds: 2, warmup: 5, pace: 50 * time.Millisecond, floodLines: 20_000, floodBytes: 64 << 10}
	if quick {
		o.starts, o.initTraces, o.invocations, o.cpuInv, o.cpuRounds = 3, 2, 50, 40, 1
	}
	return o
}

func main() {
	quick := flag.Bool("quick", false, "fewer iterations (a rough table in about a minute)")
	agentLog := flag.String("agent-log", "", "file for the function's and extensions' own output (default: discarded)")
	only := flag.String("only", "", "comma-separated steps to run (init,ready,post,rss,flood,fn,hang; default all)")
	agentBin := flag.String("agent-bin", "", "run this agent binary (e.g. an unstripped build for perf) instead of the stripped build; sizes stay those of the stripped build")
	agentEnv := flag.String("agent-env", "", "comma-separated KEY=value variables added to the environments that run the agent (e.g. SLIPSTREAM_GOGC=200)")
	tags := flag.String("tags", "grpcnotrace", "build tags for the agent, as for go build -tags (the release build uses grpcnotrace)")
	flag.Parse()
	o := defaultOptions(*quick)
	o.agentLog, o.agentBin, o.tags = *agentLog, *agentBin, *tags
	if *agentEnv != "" {
		for kv := range strings.SplitSeq(*agentEnv, ",") {
			if !strings.Contains(kv, "=") {
				fmt.Fprintf(os.Stderr, "slipstream-bench: -agent-env %q: want KEY=value\n", kv)
				os.Exit(2)
			}
			o.agentEnv = append(o.agentEnv, kv)
		}
	}
	if *only != "" {
		o.only = map[string]bool{}
		for s := range strings.SplitSeq(*only, ",") {
			o.only[strings.TrimSpace(s)] = true
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "slipstream-bench:", err)
		stop()
		cancel()
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, stdout, progress io.Writer) error {
	b, err := newBench(ctx, o, progress)
	if err != nil {
		return err
	}
	defer b.close()
	rep, err := b.measure(ctx)
	if err != nil {
		return err
	}
	return rep.print(stdout)
}
