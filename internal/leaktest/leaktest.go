// Package leaktest finds the goroutines a test's subject left running after
// it shut down. It is for tests only, as the standard library's
// internal/testenv is.
//
// A goroutine belongs to the subject when a frame of its stack, or the
// frame that created it, runs a function of one of the subject's packages
// from a file that is not a _test.go file. The test's own goroutines, the
// testing package's and the runtime's never match. Goroutines that are
// ending need a moment after Close or Shutdown returns, so [Check] looks
// again, with a growing pause, until none is left or its deadline passes:
// only a goroutine still there at the deadline is reported.
package leaktest

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Timeout is how long Check waits for the subject's goroutines to end. A
// goroutine that ends normally does so within microseconds of its owner's
// shutdown; the bound only matters on a busy machine, or for a real leak.
const Timeout = 10 * time.Second

// Check fails t, listing their stacks, when goroutines running code of
// pkgs are still there once Timeout has passed. A package is an import
// path ("github.com/slipstream-otel/slipstream/exporter"); one ending in
// "/..." stands for that package and every package below it, as in the go
// command's patterns. Call Check after the subject has shut down.
func Check(t testing.TB, pkgs ...string) {
	t.Helper()
	if left := Wait(Timeout, pkgs...); len(left) > 0 {
		t.Errorf("%d goroutines left after shutdown:\n\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

// Wait looks for goroutines running code of pkgs, other than the caller's,
// until there are none (it returns nil) or timeout has passed (it returns
// their stacks).
func Wait(timeout time.Duration, pkgs ...string) []string {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		left := Find(pkgs...)
		if len(left) == 0 || !time.Now().Before(deadline) {
			return left
		}
		// A bounded poll, not synchronization: nothing here tells when an
		// unrelated goroutine returns.
		t := time.NewTimer(min(pause, time.Until(deadline)))
		<-t.C
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Find returns the stacks of the goroutines, other than the caller's, that
// run code of pkgs now.
func Find(pkgs ...string) []string {
	self := goroutineHeader(stack(false))
	var out []string
	for g := range strings.SplitSeq(string(stack(true)), "\n\n") {
		g = strings.TrimSpace(g)
		if g == "" || goroutineHeader([]byte(g)) == self {
			continue
		}
		if belongs(g, pkgs) {
			out = append(out, g)
		}
	}
	return out
}

// stack returns runtime.Stack's whole dump.
func stack(all bool) []byte {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, all)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineHeader returns "goroutine N" from a dump's first line.
func goroutineHeader(g []byte) string {
	line, _, _ := bytes.Cut(g, []byte("\n"))
	id, _, _ := bytes.Cut(line, []byte(" ["))
	return string(id)
}

// belongs reports whether one goroutine's dump (header, then a function
// line and a file line per frame, then "created by" and its file line)
// runs or was created by a function of pkgs in a non-test file.
func belongs(g string, pkgs []string) bool {
	lines := strings.Split(g, "\n")
	if len(lines) > 1 && strings.HasPrefix(lines[1], "runtime.goexit1(") {
		return false // its function has returned: the runtime is tearing it down
	}
	for i := 1; i+1 < len(lines); i += 2 {
		fn := strings.TrimPrefix(lines[i], "created by ")
		file := strings.TrimSpace(lines[i+1])
		if file, _, _ = strings.Cut(file, ":"); strings.HasSuffix(file, "_test.go") {
			continue
		}
		for _, p := range pkgs {
			if inPackage(fn, p) {
				return true
			}
		}
	}
	return false
}

// inPackage reports whether the frame's function fn ("pkg.F(...)",
// "pkg.(*T).M(...)", "pkg.F.func1()") is in the package with import path
// pkg, not in one whose path merely starts with it; with a "/..." suffix,
// in that package or one below it.
func inPackage(fn, pkg string) bool {
	if base, tree := strings.CutSuffix(pkg, "/..."); tree {
		rest, ok := strings.CutPrefix(fn, base)
		return ok && (strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "/"))
	}
	rest, ok := strings.CutPrefix(fn, pkg)
	return ok && strings.HasPrefix(rest, ".")
}
