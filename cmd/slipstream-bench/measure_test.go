package main

import (
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		ds := make([]time.Duration, len(vs))
		for i, v := range vs {
			ds[i] = time.Duration(v) * time.Millisecond
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"no values give zero", nil, 50, 0},
		{"one value is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"the median of an odd count is the middle value", ms(3, 1, 2), 50, 2 * time.Millisecond},
		{"the median of an even count is the lower middle (nearest rank)", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 values is the 99th smallest", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the maximum", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 200 values ignores the single largest outlier", append(ms(hundred...), append(ms(hundred...)[1:], 5000*time.Millisecond)...), 99, 99 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.p, got, tt.want)
			}
		})
	}
	t.Run("the input is not reordered", func(t *testing.T) {
		in := ms(3, 1, 2)
		percentile(in, 50)
		if in[0] != 3*time.Millisecond {
			t.Errorf("input changed: %v", in)
		}
	})
}

func TestMean(t *testing.T) {
	if got := mean(nil); got != 0 {
		t.Errorf("mean(nil) = %v", got)
	}
	if got := mean([]time.Duration{1, 2, 3, 6}); got != 3 {
		t.Errorf("mean = %v, want 3", got)
	}
}

// A GODEBUG=inittrace=1 report of Go 1.26, mixed with the program's own stderr.
const inittrace = `init internal/bytealg @0 ms, 0 ms clock, 0 bytes, 0 allocs
init internal/runtime/gc/scan @0.009 ms, 0 ms clock, 0 bytes, 0 allocs
init runtime @0.015 ms, 0.060 ms clock, 0 bytes, 0 allocs
init crypto/internal/fips140deps/cpu @0.21 ms, 0.004 ms clock, 0 bytes, 0 allocs
init math @0.25 ms, 0.003 ms clock, 0 bytes, 0 allocs
init google.golang.org/protobuf/types/known/anypb @2.1 ms, 1.5 ms clock, 12288 bytes, 150 allocs
{"level":"ERROR","msg":"AWS_LAMBDA_RUNTIME_API is not set: init x @1 ms, 1 ms clock"}
init broken @x ms, 1 ms clock, 0 bytes, 0 allocs
slipstream-floor: register: unsupported protocol scheme ""
`

func TestParseInitTrace(t *testing.T) {
	got, err := parseInitTrace(strings.NewReader(inittrace))
	if err != nil {
		t.Fatal(err)
	}
	want := initTrace{Packages: 6, ClockMs: 1.567, EndMs: 3.6, Bytes: 12288, Allocs: 150}
	if got.Packages != want.Packages || got.Bytes != want.Bytes || got.Allocs != want.Allocs ||
		!near(got.ClockMs, want.ClockMs) || !near(got.EndMs, want.EndMs) {
		t.Errorf("parseInitTrace = %+v, want %+v", got, want)
	}

	t.Run("output without init lines sums to zero", func(t *testing.T) {
		got, err := parseInitTrace(strings.NewReader("hello\n"))
		if err != nil || got != (initTrace{}) {
			t.Errorf("parseInitTrace = %+v, %v", got, err)
		}
	})
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestParseStatCPU(t *testing.T) {
	// utime 150 and stime 50 ticks; the command name holds a space and a ')'.
	stat := "4242 (slip stream)) S 1 4242 4242 0 -1 4194560 1375 0 0 0 150 50 0 0 20 0 9 0 123 1000 2000"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * time.Second; got != want {
		t.Errorf("parseStatCPU = %v, want %v", got, want)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Error("a short stat line parsed without error")
	}
}

func TestStatusKiB(t *testing.T) {
	status := "Name:\tslipstream\nVmPeak:\t  800000 kB\nVmHWM:\t   23040 kB\nVmRSS:\t 20000 kB\nRssAnon:\t    9000 kB\n"
	if got, err := statusKiB(status, "VmHWM"); err != nil || got != 23040 {
		t.Errorf("statusKiB(VmHWM) = %d, %v; want 23040", got, err)
	}
	if got, err := statusKiB(status, "RssAnon"); err != nil || got != 9000 {
		t.Errorf("statusKiB(RssAnon) = %d, %v; want 9000", got, err)
	}
	if _, err := statusKiB("Name:\tzombie\n", "VmHWM"); err == nil {
		t.Error("a status without VmHWM parsed without error")
	}
}

func TestFloodLine(t *testing.T) {
	tests := []struct {
		body string
		n    int
		ok   bool
	}{
		{"flood line 17", 17, true},
		{"flood line 100 large xxxx", 100, true},
		{"example log line 1 of 5", 0, false},
		{"flood line x", 0, false},
	}
	for _, tt := range tests {
		n, ok := floodLine(tt.body)
		if n != tt.n || ok != tt.ok {
			t.Errorf("floodLine(%q) = %d, %v; want %d, %v", tt.body, n, ok, tt.n, tt.ok)
		}
	}
}
