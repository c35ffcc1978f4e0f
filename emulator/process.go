package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one child of the environment: the runtime (function bootstrap)
// or an external extension. Its stdout and stderr are read line by line and
// become `function` or `extension` telemetry records (Telemetry schema).
type process struct {
	name string // file name (Extensions API: the extension name)
	cmd  *exec.Cmd
	pid  int
	// startedAt is when the process was started (exec).
	startedAt time.Time

	exited   chan struct{} // closed after Wait returned
	exitedAt time.Time     // valid after exited is closed
	exitErr  error         // valid after exited is closed
	readers  sync.WaitGroup

	syncMu sync.Mutex // guards the fields below
	// syncW are the emulator's own copies of the stdout/stderr write ends,
	// used to write sync markers (see sync); closed when the process exits.
	syncW    [2]*os.File
	syncSeq  int
	syncWait map[string]chan struct{}
}

// syncMarker starts a line the emulator writes into a child's output pipe;
// the reader swallows it, so seeing it proves everything written before was
// emitted.
const syncMarker = "\x00emulator-sync:"

// lineFunc receives one output line of a child (without the newline).
type lineFunc func(line string)

// maxLine bounds one captured line; longer lines are split (Lambda splits too).
const maxLine = 256 * 1024

// startProcess starts path with env in its own process group (so freeze and
// kill reach its children) and pipes its output to onLine and echo. With
// cgroupFD >= 0 (cgroup v2) the child is cloned into that cgroup; with
// cgroupProcs set (cgroup v1) its PID is written there right after start.
func startProcess(path string, env []string, cgroupFD int, cgroupProcs string, onLine lineFunc, stdout, stderr io.Writer) (*process, error) {
	cmd := exec.Command(path)
	cmd.Env = env
	cmd.Dir = filepath.Dir(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgroupFD
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	if err != nil {
		for _, f := range []*os.File{outR, outW, errR, errW} {
			f.Close()
		}
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	if cgroupProcs != "" {
		if err := joinCgroup(cgroupProcs, cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill() // the start failed; Wait below reaps it
			_ = cmd.Wait()         // its error is the kill we just sent
			for _, f := range []*os.File{outR, outW, errR, errW} {
				f.Close()
			}
			return nil, fmt.Errorf("start %s: join cgroup: %w", path, err)
		}
	}
	// The child holds its own copies of the write ends; ours serve sync.
	p := &process{name: filepath.Base(path), cmd: cmd, pid: cmd.Process.Pid, startedAt: time.Now(),
		exited: make(chan struct{}), syncW: [2]*os.File{outW, errW}, syncWait: map[string]chan struct{}{}}
	p.readers.Add(2)
	go p.readLines(outR, onLine, stdout)
	go p.readLines(errR, onLine, stderr)
	go func() {
		err := cmd.Wait()
		p.exitedAt = time.Now()
		p.exitErr = err
		p.syncMu.Lock()
		for i, f := range p.syncW {
			f.Close() // lets the readers reach EOF
			p.syncW[i] = nil
		}
		p.syncMu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) readLines(r *os.File, onLine lineFunc, echo io.Writer) {
	defer p.readers.Done()
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	sc.Split(scanLinesOrChunks)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, syncMarker); i >= 0 {
			p.syncSeen(line[i:])
			if line = line[:i]; line == "" {
				continue
			}
		}
		if echo != nil {
			fmt.Fprintf(echo, "%s\n", line) // best effort echo; a failing writer must not stop capture
		}
		onLine(line)
	}
}

// scanLinesOrChunks is bufio.ScanLines that emits a full buffer as a record
// instead of failing on an over-long line.
func scanLinesOrChunks(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte("\r")), nil
	}
	if len(data) >= maxLine || (atEOF && len(data) > 0) {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// sync returns once every line the process wrote before the call has been
// passed to onLine (or after d, or at once when the process exited and its
// readers finished). It orders function log records before platform events
// generated after the write, like Lambda's log capture.
func (p *process) sync(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	p.syncMu.Lock()
	if p.syncW[0] == nil {
		p.syncMu.Unlock()
		done := make(chan struct{})
		go func() { p.readers.Wait(); close(done) }() // ends with the readers
		select {
		case <-done:
		case <-t.C:
		}
		return
	}
	p.syncSeq++
	var chans []chan struct{}
	for i, f := range p.syncW {
		tok := fmt.Sprintf("%s%d.%d", syncMarker, p.syncSeq, i)
		ch := make(chan struct{})
		p.syncWait[tok] = ch
		chans = append(chans, ch)
		if _, err := f.WriteString(tok + "\n"); err != nil {
			delete(p.syncWait, tok)
			close(ch)
		}
	}
	p.syncMu.Unlock()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

func (p *process) syncSeen(tok string) {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	if ch, ok := p.syncWait[tok]; ok {
		delete(p.syncWait, tok)
		close(ch)
	}
}

func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the process group; errors for an exited group are expected.
func (p *process) signal(sig syscall.Signal) {
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		// The group may be gone already; fall back to the process itself.
		_ = syscall.Kill(p.pid, sig) // ESRCH after exit is the only expected failure
	}
}

// waitExit waits until the process exited or the timer fires.
func (p *process) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// kill SIGKILLs the group and waits for the exit (bounded).
func (p *process) kill() {
	p.signal(syscall.SIGKILL)
	p.waitExit(5 * time.Second)
}

// File system magics of linux/magic.h.
const (
	cgroup1Magic = 0x27e0eb   // CGROUP_SUPER_MAGIC
	cgroup2Magic = 0x63677270 // CGROUP2_SUPER_MAGIC
)

// isCgroup1 reports whether dir is on a cgroup v1 file system.
func isCgroup1(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == cgroup1Magic
}

// joinCgroup moves pid into the cgroup v1 whose cgroup.procs file is procs.
func joinCgroup(procs string, pid int) error {
	f, err := os.OpenFile(procs, os.O_WRONLY, 0) // never create: it must be a cgroup's file
	if err != nil {
		return err
	}
	_, werr := f.WriteString(strconv.Itoa(pid))
	return errors.Join(werr, f.Close())
}

// maxMemoryUsedMB reads VmHWM (peak resident set) of pid from /proc and
// rounds it up to MiB (Telemetry schema ReportMetrics: MB are MiB). 0 when unknown.
func maxMemoryUsedMB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return int((kb + 1023) / 1024)
		}
	}
	return 0
}
