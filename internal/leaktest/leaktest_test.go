package leaktest

import (
	"runtime"
	"strings"
	"sync"
	"testing"
)

const (
	agent = "github.com/slipstream-otel/slipstream/telemetry"
	// A dump as runtime.Stack writes it, with the file lines shortened.
	blocked = `goroutine 31 [select]:
github.com/slipstream-otel/slipstream/telemetry.(*handoff).pop(0xc000124000)
	/src/telemetry/listener.go:593 +0x9d
github.com/slipstream-otel/slipstream/telemetry.(*Listener).decodeLoop(0xc000122000)
	/src/telemetry/listener.go:620 +0x45
created by github.com/slipstream-otel/slipstream/telemetry.(*Listener).Start in goroutine 7
	/src/telemetry/listener.go:254 +0x2d0`
	createdOnly = `goroutine 40 [IO wait]:
internal/poll.runtime_pollWait(0x7f0c, 0x72)
	/usr/local/go/src/runtime/netpoll.go:351 +0x85
net/http.(*Server).Serve(0xc0001b2000, {0x9a3c40, 0xc0000a6048})
	/usr/local/go/src/net/http/server.go:3454 +0x485
github.com/slipstream-otel/slipstream/telemetry.(*Listener).Start.func2()
	/src/telemetry/listener.go:259 +0x5c
created by github.com/slipstream-otel/slipstream/telemetry.(*Listener).Start in goroutine 7
	/src/telemetry/listener.go:257 +0x31f`
	testOnly = `goroutine 12 [chan receive]:
github.com/slipstream-otel/slipstream/telemetry.(*blockingSink).Enqueue(0xc0000b4000, {0x0, 0x0, 0x0})
	/src/telemetry/listener_test.go:512 +0x3c
created by github.com/slipstream-otel/slipstream/telemetry.TestListenerLifecycle.func3 in goroutine 9
	/src/telemetry/listener_test.go:455 +0x1d8`
	prefixOnly = `goroutine 13 [chan receive]:
github.com/slipstream-otel/slipstream/telemetryx.run()
	/src/telemetryx/run.go:3 +0x3c
created by github.com/slipstream-otel/slipstream/telemetryx.Start in goroutine 9
	/src/telemetryx/run.go:9 +0x1d8`
	ending = `goroutine 14 [running]:
runtime.goexit1()
	/usr/local/go/src/runtime/proc.go:4300 +0x1c
github.com/slipstream-otel/slipstream/telemetry.(*Listener).Start.func1()
	/src/telemetry/listener.go:252 +0x5c`
	testingOnly = `goroutine 1 [chan receive]:
testing.(*T).Run(0xc000003a40, {0x8a3f1e, 0x8}, 0x8c5e40)
	/usr/local/go/src/testing/testing.go:2109 +0x4e5
main.main()
	_testmain.go:46 +0x9b`
)

func TestBelongs(t *testing.T) {
	tests := []struct {
		name string
		dump string
		want bool
	}{
		{"a goroutine blocked in the package's code belongs to it", blocked, true},
		{"a goroutine in the standard library that the package started belongs to it", createdOnly, true},
		{"a goroutine running the package's test files only does not", testOnly, false},
		{"a package whose path merely starts with the package's does not", prefixOnly, false},
		{"a goroutine whose function has returned does not", ending, false},
		{"the testing package's goroutines do not", testingOnly, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := belongs(tt.dump, []string{agent}); got != tt.want {
				t.Errorf("belongs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInPackage(t *testing.T) {
	tests := []struct {
		name, fn, pkg string
		want          bool
	}{
		{"a method of the package is in it", "example.com/m/exporter.(*worker).run(0xc0)", "example.com/m/exporter", true},
		{"a closure of the package is in it", "example.com/m/exporter.New.func1()", "example.com/m/exporter", true},
		{"a subpackage is not in the package", "example.com/m/exporter/signals.(*Mapper).Map(0xc0)", "example.com/m/exporter", false},
		{"a package sharing a prefix is not in it", "example.com/m/exporterx.F()", "example.com/m/exporter", false},
		{"a subpackage is in the tree", "example.com/m/exporter/signals.(*Mapper).Map(0xc0)", "example.com/m/exporter/...", true},
		{"the package itself is in its tree", "example.com/m/exporter.F()", "example.com/m/exporter/...", true},
		{"a package sharing a prefix is not in the tree", "example.com/m/exporterx.F()", "example.com/m/exporter/...", false},
		{"a dotted module path is in its tree", "go.opentelemetry.io/otel/sdk/trace.(*batchSpanProcessor).processQueue(0xc0)", "go.opentelemetry.io/otel/sdk/...", true},
		{"another module is not in the tree", "go.opentelemetry.io/otel/exporters/otlp.F()", "go.opentelemetry.io/otel/sdk/...", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inPackage(tt.fn, tt.pkg); got != tt.want {
				t.Errorf("inPackage(%q, %q) = %v, want %v", tt.fn, tt.pkg, got, tt.want)
			}
		})
	}
}

func TestWait(t *testing.T) {
	// A goroutine blocked in sync.WaitGroup.Wait runs code of package sync
	// (sync/waitgroup.go); nothing else in this test binary does.
	t.Run("a goroutine still blocked at the deadline is reported with its stack", func(t *testing.T) {
		var gate sync.WaitGroup
		gate.Add(1)
		done := make(chan struct{})
		go func() { defer close(done); gate.Wait() }()
		defer func() { gate.Done(); <-done }()
		waitFor(t, "sync")
		got := Wait(0, "sync")
		if len(got) != 1 || !strings.Contains(got[0], "sync.(*WaitGroup).Wait") {
			t.Errorf("reported %q, want the blocked goroutine", got)
		}
	})
	t.Run("a goroutine that ends while Wait looks is not reported", func(t *testing.T) {
		var gate sync.WaitGroup
		gate.Add(1)
		done := make(chan struct{})
		go func() { defer close(done); gate.Wait() }()
		waitFor(t, "sync")
		gate.Done()
		if got := Wait(Timeout, "sync"); len(got) != 0 {
			t.Errorf("reported %q", got)
		}
		<-done
	})
	t.Run("the caller's own goroutine is never reported", func(t *testing.T) {
		self := goroutineHeader(stack(false))
		for _, g := range Find("testing") { // the caller runs testing.tRunner
			if goroutineHeader([]byte(g)) == self {
				t.Errorf("the caller was reported:\n%s", g)
			}
		}
	})
}

// waitFor yields until a goroutine of pkg shows in the dump.
func waitFor(t *testing.T, pkg string) {
	t.Helper()
	for len(Find(pkg)) == 0 {
		if t.Context().Err() != nil {
			t.Fatal("the blocked goroutine never showed")
		}
		runtime.Gosched()
	}
}
