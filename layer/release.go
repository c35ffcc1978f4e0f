package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// validVersion is what a release version may hold: it names files.
var validVersion = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// writeRelease writes, for each Go architecture, a copy of the layer zip
// named with the version (slipstream-<version>-<arch>.zip) and an SPDX
// bill of materials read from the binary's build information
// (slipstream-<version>-<arch>.spdx.json) into <dist>/release, then
// SHA256SUMS over them in the format `sha256sum -c` reads. It returns the
// paths written. created is the SPDX document's creation time.
func writeRelease(dist, version string, goarches []string, created time.Time) ([]string, error) {
	if !validVersion.MatchString(version) {
		return nil, fmt.Errorf("release version %q: want letters, digits and . _ + - only", version)
	}
	dir := filepath.Join(dist, "release")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("release directory: %w", err)
	}
	var names []string
	for _, goarch := range goarches {
		arch, ok := lambdaArch[goarch]
		if !ok {
			return nil, fmt.Errorf("invalid architecture %q: want amd64 or arm64", goarch)
		}
		base := "slipstream-" + version + "-" + arch
		zipName := base + ".zip"
		if err := copyFile(filepath.Join(dist, "slipstream-"+arch+".zip"), filepath.Join(dir, zipName)); err != nil {
			return nil, err
		}
		binPath := filepath.Join(dist, goarch, "slipstream")
		info, err := buildinfo.ReadFile(binPath)
		if err != nil {
			return nil, fmt.Errorf("read build information of %s: %w", binPath, err)
		}
		binSum, err := fileSHA256(binPath)
		if err != nil {
			return nil, err
		}
		doc, err := spdxDocument(info, version, arch, binSum, created)
		if err != nil {
			return nil, err
		}
		sbomName := base + ".spdx.json"
		if err := writeFileAtomic(filepath.Join(dir, sbomName), doc); err != nil {
			return nil, err
		}
		names = append(names, zipName, sbomName)
	}
	slices.Sort(names)
	var sums strings.Builder
	for _, n := range names {
		sum, err := fileSHA256(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, n)
	}
	if err := writeFileAtomic(filepath.Join(dir, "SHA256SUMS"), []byte(sums.String())); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(names)+1)
	for _, n := range append(names, "SHA256SUMS") {
		paths = append(paths, filepath.Join(dir, n))
	}
	return paths, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("release: %w (run make layer first)", err)
	}
	return writeFileAtomic(to, b)
}

// writeFileAtomic writes b to a temporary file beside path and renames it
// into place, so that a reader never sees half a file.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
