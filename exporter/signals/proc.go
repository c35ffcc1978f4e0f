package signals

import (
	"bufio"
	"bytes"
	"io/fs"
	"strconv"
)

// ProcSample is a reading of the execution environment's counters.
type ProcSample struct {
	CPUSeconds float64 // user+nice+system time of all CPUs
	NetBytes   int64   // received+transmitted bytes of all interfaces but lo
}

// ProcSampler reads ProcSample; ok is false when the counters are not
// readable. faas.cpu_usage and faas.net_io are the difference between the
// samples taken when platform.start and platform.runtimeDone are consumed,
// so they are approximate: events are consumed in batches, after the fact.
type ProcSampler interface {
	Sample() (s ProcSample, ok bool)
}

// ProcReader samples /proc/stat and /proc/net/dev from FS (os.DirFS("/proc")
// in production, fstest.MapFS in tests).
type ProcReader struct {
	FS fs.FS
	// TicksPerSecond is USER_HZ (100 on Linux).
	TicksPerSecond float64
}

// Sample implements ProcSampler.
func (p ProcReader) Sample() (ProcSample, bool) {
	var s ProcSample
	stat, err := fs.ReadFile(p.FS, "stat")
	if err != nil {
		return s, false
	}
	hz := p.TicksPerSecond
	if hz <= 0 {
		hz = 100
	}
	line, _, _ := bytes.Cut(stat, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) < 4 || string(f[0]) != "cpu" {
		return s, false
	}
	var ticks float64
	for _, v := range f[1:4] { // user nice system
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return s, false
		}
		ticks += float64(n)
	}
	s.CPUSeconds = ticks / hz
	if dev, err := fs.ReadFile(p.FS, "net/dev"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(dev))
		for sc.Scan() {
			name, rest, ok := bytes.Cut(sc.Bytes(), []byte{':'})
			if !ok || string(bytes.TrimSpace(name)) == "lo" {
				continue
			}
			f := bytes.Fields(rest)
			if len(f) < 9 {
				continue
			}
			rx, err1 := strconv.ParseInt(string(f[0]), 10, 64)
			tx, err2 := strconv.ParseInt(string(f[8]), 10, 64)
			if err1 == nil && err2 == nil {
				s.NetBytes += rx + tx
			}
		}
	}
	return s, true
}
