package telemetry

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/slipstream-otel/slipstream/internal/privdir"
)

// spool is the handoff's overflow on disk: the handlers append the bodies
// that find no room in memory to an unlinked file, and the decode
// goroutine reads each back, in queue order, into a fresh buffer. A file
// is emptied whenever everything written to it has been read back; one
// that reaches the bound while bodies in it still wait is left to drain
// and a new one takes the writes, so the disk holds at most two files of
// about the bound (items are read in order: a file is drained before any
// body of the next one is read).
type spool struct {
	dir   string
	bound int64 // bytes written and not yet read back, at most
	log   *slog.Logger

	// mu guards f, cur, end, used, off, closed and the segments' pending.
	// Writes happen under it, so that end, used and the file's length
	// change together.
	mu     sync.Mutex
	f      *os.File  // the file written to; nil until first use; already unlinked
	cur    *spoolSeg // f's segment
	end    int64     // offset of the next write in f
	used   int64     // bytes written and not yet read back, all files
	off    bool      // creating, writing or emptying a file failed: no more writes
	closed bool
}

// spoolSeg is one spool file and the bytes in it not yet read back.
type spoolSeg struct {
	f       *os.File
	pending int64
}

// newSpool returns nil, no spool, unless dir is set and bound > 0.
func newSpool(dir string, bound int64, log *slog.Logger) *spool {
	if dir == "" || bound <= 0 {
		return nil
	}
	return &spool{dir: dir, bound: bound, log: log}
}

// write appends body and hands its file and offset to push, under the
// spool's lock, so that concurrent writes are queued in the order of the
// file. written is false, nothing written, when the spool has no room for
// body, is disabled or closed, or fails now (one warning, then it stays
// disabled); pushed is push's answer (false: the body is forgotten).
func (s *spool) write(body []byte, push func(seg *spoolSeg, off int64) bool) (written, pushed bool) {
	n := int64(len(body))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.off || s.closed || s.used+n > s.bound {
		return false, false
	}
	if s.f != nil && s.end > 0 && s.end+n > s.bound {
		// The file is as large as the bound and still holds bodies to read
		// (an emptied one is truncated at once): leave it to drain.
		s.f, s.cur, s.end = nil, nil, 0
	}
	if s.f == nil {
		f, err := createSpoolFile(s.dir)
		if err != nil {
			s.disable(err)
			return false, false
		}
		s.f, s.cur, s.end = f, &spoolSeg{f: f}, 0
	}
	if _, err := s.f.WriteAt(body, s.end); err != nil {
		s.disable(fmt.Errorf("write telemetry spool: %w", err))
		return false, false
	}
	if !push(s.cur, s.end) {
		return true, false // the space after end is reused by the next write
	}
	s.end += n
	s.used += n
	s.cur.pending += n
	return true, true
}

// createSpoolFile creates a spool file in dir and unlinks it at once, so
// that it never outlives the process.
func createSpoolFile(dir string) (*os.File, error) {
	// Not a link, ours, not open to others: the spool holds telemetry as
	// received, before redaction.
	if err := privdir.Prepare(dir); err != nil {
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

// read returns a new copy of the size bytes written at off in seg. Only the
// decode goroutine calls it, before release and before close.
func (s *spool) read(seg *spoolSeg, off, size int64) ([]byte, error) {
	if seg == nil || seg.f == nil {
		return nil, errors.New("read telemetry spool: no file")
	}
	buf := make([]byte, size) // events keep sub-slices: never reused
	if n, err := seg.f.ReadAt(buf, off); n < len(buf) {
		return nil, fmt.Errorf("read telemetry spool: %w", err)
	}
	return buf, nil
}

// release forgets size bytes of seg that were read back or abandoned. A
// file with none left is emptied (the current one, so that its disk blocks
// are freed) or closed (an older one, unlinked: its blocks go with it).
func (s *spool) release(seg *spoolSeg, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used -= size
	seg.pending -= size
	if seg.pending > 0 {
		return
	}
	if seg != s.cur {
		if err := seg.f.Close(); err != nil {
			s.log.Debug("telemetry spool file not closed cleanly", "error", err)
		}
		return
	}
	if s.end == 0 || s.closed {
		return
	}
	s.end = 0
	if err := s.f.Truncate(0); err != nil {
		s.disable(fmt.Errorf("empty telemetry spool: %w", err))
	}
}

// close closes the current file; later writes report false. It runs once
// the decode goroutine is done (every older file was released and closed),
// so nothing is read afterwards.
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
