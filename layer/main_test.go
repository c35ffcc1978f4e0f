package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteLayer(t *testing.T) {
	payload := []byte("\x7fELF not really a binary")
	var buf bytes.Buffer
	if err := writeLayer(&buf, bytes.NewReader(payload)); err != nil {
		t.Fatalf("writeLayer: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("read zip: %v", err)
	}
	tests := []struct {
		name  string
		entry string
		mode  os.FileMode
	}{
		{"the extensions directory is listed first", "extensions/", os.ModeDir | 0o755},
		{"the binary is an executable under extensions/", "extensions/slipstream", 0o755},
	}
	if len(zr.File) != len(tests) {
		t.Fatalf("zip has %d entries, want %d", len(zr.File), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := zr.File[i]
			if f.Name != tt.entry {
				t.Errorf("entry %d is %q, want %q", i, f.Name, tt.entry)
			}
			if f.Mode() != tt.mode {
				t.Errorf("mode of %s = %v, want %v", f.Name, f.Mode(), tt.mode)
			}
			if !f.Modified.Equal(modified) {
				t.Errorf("modified = %v, want the fixed %v", f.Modified, modified)
			}
		})
	}
	t.Run("the binary's content is kept byte for byte", func(t *testing.T) {
		rc, err := zr.File[1].Open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("content = %q, %v; want %q", got, err, payload)
		}
	})
}

func TestBuildLayer(t *testing.T) {
	t.Run("the zip is written beside the arch directory and is reproducible", func(t *testing.T) {
		dist := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dist, "arm64"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dist, "arm64", "slipstream"), []byte("binary"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := buildLayer(dist, "arm64")
		if err != nil {
			t.Fatalf("buildLayer: %v", err)
		}
		if want := filepath.Join(dist, "slipstream-arm64.zip"); out != want {
			t.Errorf("zip path = %q, want %q", out, want)
		}
		first, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := buildLayer(dist, "arm64"); err != nil {
			t.Fatal(err)
		}
		second, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(first, second) {
			t.Errorf("two builds differ (err %v)", err)
		}
		entries, err := os.ReadDir(dist)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("temporary file %s left behind", e.Name())
			}
		}
	})
	t.Run("a missing binary is an error that says to build first", func(t *testing.T) {
		_, err := buildLayer(t.TempDir(), "arm64")
		if err == nil || !strings.Contains(err.Error(), "make build") {
			t.Errorf("err = %v, want one mentioning make build", err)
		}
	})
	t.Run("an amd64 build is named x86_64, as Lambda names the architecture", func(t *testing.T) {
		dist := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dist, "amd64"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dist, "amd64", "slipstream"), []byte("binary"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := buildLayer(dist, "amd64")
		if want := filepath.Join(dist, "slipstream-x86_64.zip"); err != nil || out != want {
			t.Errorf("buildLayer = %q, %v; want %q", out, err, want)
		}
	})
	for _, arch := range []string{"../x", "x86_64", "386", ""} {
		t.Run(fmt.Sprintf("the architecture %q is refused", arch), func(t *testing.T) {
			if _, err := buildLayer(t.TempDir(), arch); err == nil {
				t.Error("err = nil, want an error")
			}
		})
	}
}
