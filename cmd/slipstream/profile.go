//go:build profile

package main

import (
	"os"
	"runtime/pprof"
	"strconv"
)

// startProfile writes a CPU profile of the whole process to the file named
// by SLIPSTREAM_DEV_CPUPROFILE followed by "." and the process ID (every
// environment of a benchmark starts its own agent), for benchmarks only: this file is compiled
// with the build tag "profile" (go run ./cmd/slipstream-bench -tags
// grpcnotrace,profile -agent-env SLIPSTREAM_DEV_CPUPROFILE=/tmp/cpu.pprof);
// release builds do not contain it.
func startProfile() (stop func()) {
	path := os.Getenv("SLIPSTREAM_DEV_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + "." + strconv.Itoa(os.Getpid()))
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
