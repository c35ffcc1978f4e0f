// Package privdir keeps the agent's files on disk (spill and spool files,
// which hold telemetry) out of reach of other users: a directory is used
// only when it is not a symbolic link, belongs to the agent's user (or to
// root, as /tmp does) and is not writable by others unless sticky; files
// are created 0600 and opened without following a symbolic link.
//
// It follows the usual rules for private temporary directories (see
// open(2) O_NOFOLLOW and the sticky bit in inode(7)). Its functions are
// safe for concurrent use; they keep no state.
package privdir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Errors returned by Check, wrapped with the directory's path.
var (
	ErrSymlink     = errors.New("is a symbolic link")
	ErrNotDir      = errors.New("is not a directory")
	ErrOwner       = errors.New("belongs to another user")
	ErrOpenToOther = errors.New("is writable by other users and not sticky")
)

// Prepare creates dir (mode 0700, parents too) when it does not exist,
// then checks it (Check).
func Prepare(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return err
		}
		// Mkdir, not MkdirAll: it fails if someone created dir (or a link
		// named dir) meanwhile, and Check then looks at what is there.
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return Check(dir)
}

// Check reports why dir must not hold the agent's files, or nil.
func Check(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s %w", dir, ErrSymlink)
	case !fi.IsDir():
		return fmt.Errorf("%s %w", dir, ErrNotDir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := uint32(os.Getuid()); st.Uid != uid && st.Uid != 0 {
			return fmt.Errorf("%s %w (uid %d, the agent runs as %d)", dir, ErrOwner, st.Uid, uid)
		}
	}
	if fi.Mode().Perm()&0o002 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("%s %w", dir, ErrOpenToOther)
	}
	return nil
}

// Create creates a new file, 0600, that must not exist (a symbolic link in
// its place makes it fail).
func Create(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
}

// ReadFile reads a regular file without following a symbolic link.
func ReadFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return io.ReadAll(f)
}
