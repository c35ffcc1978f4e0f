package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of ds by the
// nearest-rank method: the smallest value with at least p % of the values at
// or below it. It returns 0 for no values.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// mean returns the arithmetic mean of ds, 0 for no values.
func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// initTrace is the sum of a GODEBUG=inittrace=1 report.
type initTrace struct {
	Packages int     // init lines counted
	ClockMs  float64 // Σ "X ms clock"
	EndMs    float64 // max of "@T ms" + its clock: when the last init ended, from process start
	Bytes    int64   // Σ "N bytes"
	Allocs   int64   // Σ "N allocs"
}

// parseInitTrace sums the lines the Go runtime prints for GODEBUG=inittrace=1,
//
//	init internal/bytealg @0.008 ms, 0.004 ms clock, 0 bytes, 0 allocs
//
// ignoring every other line (the program's own output).
func parseInitTrace(r io.Reader) (initTrace, error) {
	var t initTrace
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "init ")
		if !ok {
			continue
		}
		_, rest, ok = strings.Cut(rest, " @")
		if !ok {
			continue
		}
		parts := strings.Split(rest, ", ")
		if len(parts) != 4 {
			continue
		}
		at, ok0 := cutUnit(parts[0], " ms")
		clock, ok1 := cutUnit(parts[1], " ms clock")
		bytes, ok2 := cutUnit(parts[2], " bytes")
		allocs, ok3 := cutUnit(parts[3], " allocs")
		if !ok0 || !ok1 || !ok2 || !ok3 {
			continue
		}
		t0, err0 := strconv.ParseFloat(at, 64)
		c, err1 := strconv.ParseFloat(clock, 64)
		b, err2 := strconv.ParseInt(bytes, 10, 64)
		a, err3 := strconv.ParseInt(allocs, 10, 64)
		if err0 != nil || err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		t.EndMs = max(t.EndMs, t0+c)
		t.Packages++
		t.ClockMs += c
		t.Bytes += b
		t.Allocs += a
	}
	if err := sc.Err(); err != nil {
		return t, fmt.Errorf("read inittrace: %w", err)
	}
	return t, nil
}

func cutUnit(s, unit string) (string, bool) {
	return strings.CutSuffix(strings.TrimSpace(s), unit)
}

// procCPU returns the user+system CPU time of pid (all its threads) from
// /proc/<pid>/stat, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// userHZ is the unit of /proc/<pid>/stat times (sysconf(_SC_CLK_TCK)).
const userHZ = 100

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat
// line. The command name (field 2) may hold spaces and parentheses, so
// fields are counted after its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat: no command field")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat: %d fields after the command", len(f))
	}
	// f[0] is field 3 (state): utime is f[11], stime f[12].
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(u+s) * time.Second / userHZ, nil
}

// memory is what /proc/<pid>/status tells of a process's memory, in KiB.
type memory struct {
	HWM, RssAnon, RssFile int64
}

// procMemory reads /proc/<pid>/status.
func procMemory(pid int) (memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memory{}, err
	}
	var m memory
	if m.HWM, err = statusKiB(string(b), "VmHWM"); err != nil {
		return m, err
	}
	m.RssAnon, _ = statusKiB(string(b), "RssAnon") // absent on old kernels: 0
	m.RssFile, _ = statusKiB(string(b), "RssFile")
	return m, nil
}

// procHWM returns VmHWM (peak resident set) of pid in KiB.
func procHWM(pid int) (int64, error) {
	m, err := procMemory(pid)
	return m.HWM, err
}

// statusKiB reads the "key:   N kB" line of a /proc/<pid>/status file.
func statusKiB(status, key string) (int64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("parse status: no %s line", key)
}

// floodLine returns the line number of a log body written by the example
// function's flood action ("flood line N" or "flood line N large xxx…").
func floodLine(body string) (int, bool) {
	rest, ok := strings.CutPrefix(body, "flood line ")
	if !ok {
		return 0, false
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest))
	return n, err == nil
}

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

// mib formats KiB as MiB with one decimal.
func mib(kib int64) string { return strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64) }
