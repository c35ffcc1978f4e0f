package telemetry

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestSpoolRefusesADirectoryItCannotTrust(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, base string) string
		want  bool
	}{
		{"a private directory takes the spool", func(t *testing.T, base string) string { return filepath.Join(base, "spool") }, true},
		{"a symbolic link does not", func(t *testing.T, base string) string {
			target := filepath.Join(base, "target")
			if err := os.Mkdir(target, 0o700); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(base, "spool")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, false},
		{"a directory writable by others without the sticky bit does not", func(t *testing.T, base string) string {
			d := filepath.Join(base, "spool")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
			return d
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSpool(tt.setup(t, t.TempDir()), 1<<20, slog.New(slog.DiscardHandler))
			written, _ := s.write([]byte(`[]`), func(*spoolSeg, int64) bool { return true })
			if written != tt.want {
				t.Errorf("written = %v, want %v", written, tt.want)
			}
			if err := s.close(); err != nil {
				t.Error(err)
			}
		})
	}
}
