package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// spool is the handoff's overflow on disk: the handlers append the bodies
// that find no room in memory to one unlinked file, and the decode
// goroutine reads each back, in queue order, into a fresh buffer. The file
// is created on first use and emptied whenever everything written has been
// read back.
type spool struct {
	dir   string
	bound int64 // bytes written and not yet read back, at most
	log   *slog.Logger

	// mu guards f, end, used, off and closed. Writes happen under it, so
	// that end, used and the file's length change together.
	mu     sync.Mutex
	f      *os.File // nil until first use; already unlinked
	end    int64    // offset of the next write
	used   int64    // bytes written and not yet read back
	off    bool     // creating, writing or emptying the file failed: no more writes
	closed bool
}

// newSpool returns nil, no spool, unless dir is set and bound > 0.
func newSpool(dir string, bound int64, log *slog.Logger) *spool {
	if dir == "" || bound <= 0 {
		return nil
	}
	return &spool{dir: dir, bound: bound, log: log}
}

// write appends body and returns its offset. It reports false, having
// written nothing, when the spool has no room for body, is disabled or
// closed, or fails now (one warning, then it stays disabled).
func (s *spool) write(body []byte) (off int64, ok bool) {
	n := int64(len(body))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.off || s.closed || s.used+n > s.bound {
		return 0, false
	}
	if s.f == nil {
		f, err := createSpoolFile(s.dir)
		if err != nil {
			s.disable(err)
			return 0, false
		}
		s.f = f
	}
	if _, err := s.f.WriteAt(body, s.end); err != nil {
		s.disable(fmt.Errorf("write telemetry spool: %w", err))
		return 0, false
	}
	off = s.end
	s.end += n
	s.used += n
	return off, true
}

// createSpoolFile creates the spool file in dir and unlinks it at once, so
// that it never outlives the process.
func createSpoolFile(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create telemetry spool: %w", err)
	}
	f, err := os.CreateTemp(dir, "telemetry-spool-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create telemetry spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		return nil, fmt.Errorf("create telemetry spool: %w", errors.Join(err, f.Close()))
	}
	return f, nil
}

// disable stops further writes and logs why, once. s.mu is held.
func (s *spool) disable(err error) {
	if s.off {
		return
	}
	s.off = true
	s.log.Warn("telemetry spool disabled: POSTs wait for room in memory instead", "dir", s.dir, "error", err)
}

// read returns a new copy of the size bytes written at off. Only the decode
// goroutine calls it, before release and before close.
func (s *spool) read(off, size int64) ([]byte, error) {
	s.mu.Lock()
	f := s.f
	s.mu.Unlock()
	if f == nil {
		return nil, errors.New("read telemetry spool: no file")
	}
	buf := make([]byte, size) // events keep sub-slices: never reused
	if n, err := f.ReadAt(buf, off); n < len(buf) {
		return nil, fmt.Errorf("read telemetry spool: %w", err)
	}
	return buf, nil
}

// release forgets size bytes that were read back or abandoned. When none
// are left, the file is emptied so that its disk blocks are freed.
func (s *spool) release(size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used -= size
	if s.used > 0 || s.end == 0 || s.closed {
		return
	}
	s.end = 0
	if err := s.f.Truncate(0); err != nil {
		s.disable(fmt.Errorf("empty telemetry spool: %w", err))
	}
}

// close closes the file; later writes report false. It runs once the
// decode goroutine is done, so nothing is read afterwards.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.f == nil {
		return nil
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("close telemetry spool: %w", err)
	}
	return nil
}
