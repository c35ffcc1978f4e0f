package privdir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheck(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	private := mk("private", 0o700)
	sticky := mk("sticky", 0o777|os.ModeSticky)
	open := mk("open", 0o777)
	link := filepath.Join(base, "link")
	if err := os.Symlink(private, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		want error
	}{
		{"a private directory is accepted", private, nil},
		{"a world-writable sticky directory is accepted", sticky, nil},
		{"a world-writable directory without the sticky bit is refused", open, ErrOpenToOther},
		{"a symbolic link to a private directory is refused", link, ErrSymlink},
		{"a file is refused", file, ErrNotDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.dir)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("Prepare creates a missing directory 0700", func(t *testing.T) {
		d := filepath.Join(base, "new", "spill")
		if err := Prepare(d); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(d)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("mode = %v, %v", fi.Mode(), err)
		}
	})
}

func TestFilesDoNotFollowLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("other's data"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	t.Run("Create refuses a name that is a symbolic link", func(t *testing.T) {
		if f, err := Create(link); err == nil {
			f.Close()
			t.Error("Create succeeded")
		}
	})
	t.Run("ReadFile refuses a symbolic link", func(t *testing.T) {
		if _, err := ReadFile(link); err == nil {
			t.Error("ReadFile succeeded")
		}
	})
	t.Run("Create makes a file only its owner can read", func(t *testing.T) {
		f, err := Create(filepath.Join(dir, "new"))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		fi, _ := os.Lstat(filepath.Join(dir, "new"))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode = %v", fi.Mode())
		}
		if b, err := ReadFile(target); err != nil || string(b) != "other's data" {
			t.Errorf("ReadFile(regular) = %q, %v", b, err)
		}
	})
}
