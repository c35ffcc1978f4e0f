package exporter

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipstream-otel/slipstream/config"
)

func TestSpillDirIsCheckedBeforeUse(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, base string) string // returns SLIPSTREAM_SPILL_DIR
		spill bool
	}{
		{"a missing directory is created private and used", func(t *testing.T, base string) string {
			return filepath.Join(base, "spill")
		}, true},
		{"a symbolic link is refused and nothing is written through it", func(t *testing.T, base string) string {
			target := filepath.Join(base, "elsewhere")
			if err := os.Mkdir(target, 0o700); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(base, "spill")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, false},
		{"a directory writable by others without the sticky bit is refused", func(t *testing.T, base string) string {
			d := filepath.Join(base, "spill")
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
			base := t.TempDir()
			cfg := testConfig(t, "http://collector.invalid", config.FlushAsync)
			cfg.SpillDir = tt.setup(t, base)
			h := newHarness(t, cfg, knobs{HTTPClient: &http.Client{Transport: refusedRT()}})
			errors := h.logs.count(`"level":"ERROR","msg":"SLIPSTREAM_SPILL_DIR cannot hold spill files`)
			h.p.Enqueue(context.Background(), invocation("c1", 1, time.Now()))
			if err := h.p.Close(context.Background()); err != nil && tt.spill {
				t.Fatal(err)
			}
			var files []string
			filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					files = append(files, p)
				}
				return nil
			})
			if !tt.spill {
				if errors != 1 || len(files) != 0 {
					t.Errorf("ERROR lines = %d, files = %v; want 1 and none", errors, files)
				}
				return
			}
			if errors != 0 || len(files) != 1 {
				t.Fatalf("ERROR lines = %d, files = %v; want 0 and one spill file", errors, files)
			}
			for _, p := range []string{cfg.SpillDir, files[0]} {
				fi, err := os.Lstat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s has mode %v: readable by others", p, fi.Mode())
				}
			}
		})
	}
}
