package emulator

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// freeze stops every child with SIGSTOP once the runtime and all extensions
// have called next (Lambda lifecycle "Freeze/thaw"); telemetry delivery pauses too,
// so a report produced before the freeze reaches subscribers after the thaw.
func (e *Emulator) freeze() {
	if !e.cfg.Freeze {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.frozen {
		return
	}
	e.frozen = true
	for _, s := range e.subs {
		s.setFrozen(true)
	}
	procs := e.procsLocked()
	for _, p := range procs {
		p.signal(syscall.SIGSTOP)
	}
	// SIGSTOP is asynchronous: return once the kernel reports every process
	// stopped, so "frozen" holds when Invoke returns (bounded wait).
	for _, p := range procs {
		for i := 0; i < 200 && p.alive() && procState(p.pid) != 'T'; i++ {
			time.Sleep(time.Millisecond)
		}
	}
}

// procState returns the state letter of pid from /proc/<pid>/stat (0 if unknown).
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// thaw resumes every child with SIGCONT (next invoke or shutdown). With
// holdTelemetry, telemetry delivery stays paused until releaseTelemetry.
func (e *Emulator) thaw(holdTelemetry bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if holdTelemetry {
		for _, s := range e.subs {
			s.setFrozen(true)
		}
	}
	if !e.frozen {
		return
	}
	e.frozen = false
	for _, p := range e.procsLocked() {
		p.signal(syscall.SIGCONT)
	}
	if !holdTelemetry {
		for _, s := range e.subs {
			s.setFrozen(false)
		}
	}
}

// releaseTelemetry resumes telemetry delivery paused by thaw(true).
func (e *Emulator) releaseTelemetry() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.subs {
		s.setFrozen(false)
	}
}

func (e *Emulator) procsLocked() []*process {
	var ps []*process
	if e.runtime != nil && e.runtime.alive() {
		ps = append(ps, e.runtime)
	}
	for _, p := range e.launched {
		if p.alive() {
			ps = append(ps, p)
		}
	}
	return ps
}
