//go:build profile

package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"
)

// startProfile writes a CPU profile of the whole process to the file named
// by SLIPSTREAM_DEV_CPUPROFILE followed by "." and the process ID (every
// environment of a benchmark starts its own agent), for benchmarks only: this file is compiled
// with the build tag "profile" (go run ./cmd/slipstream-bench -tags
// grpcnotrace,profile -agent-env SLIPSTREAM_DEV_CPUPROFILE=/tmp/cpu.pprof);
// release builds do not contain it. With SLIPSTREAM_DEV_STATS set, it
// also rewrites the file named by it followed by "." and the process ID
// with the goroutine count and the live heap every 20 ms (the leak step of
// slipstream-bench reads it; the sampler is one goroutine of its own).
func startProfile() (stop func()) {
	stopStats := startStats(os.Getenv("SLIPSTREAM_DEV_STATS"))
	path := os.Getenv("SLIPSTREAM_DEV_CPUPROFILE")
	if path == "" {
		return stopStats
	}
	f, err := os.Create(path + "." + strconv.Itoa(os.Getpid()))
	if err != nil {
		return stopStats
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return stopStats
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		stopStats()
	}
}

func startStats(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	path += "." + strconv.Itoa(os.Getpid())
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&m)
			line := fmt.Sprintf("goroutines %d heap_alloc %d\n", runtime.NumGoroutine(), m.HeapAlloc)
			_ = os.WriteFile(path, []byte(line), 0o644) // a dev sample; the next tick writes again
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}
