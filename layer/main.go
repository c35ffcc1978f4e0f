package main

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// entryName is where Lambda looks for external extensions inside a layer
// (the layer is extracted to /opt).
const entryName = "extensions/slipstream"

// modified is the fixed timestamp of every zip entry, for reproducible zips.
var modified = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	dist := flag.String("dist", "dist", "directory holding <arch>/slipstream; the zips are written there")
	arches := flag.String("arch", "amd64,arm64", "architectures to package, separated by commas or spaces")
	flag.Parse()
	for _, arch := range strings.FieldsFunc(*arches, func(r rune) bool { return r == ',' || r == ' ' }) {
		out, err := buildLayer(*dist, arch)
		if err != nil {
			fmt.Fprintln(os.Stderr, "layer:", err)
			os.Exit(1)
		}
		fmt.Println(out)
	}
}

// buildLayer zips dist/<arch>/slipstream into dist/slipstream-<arch>.zip
// and returns the zip's path.
func buildLayer(dist, arch string) (string, error) {
	if arch == "" || strings.ContainsAny(arch, `/\.`) {
		return "", fmt.Errorf("invalid architecture %q", arch)
	}
	bin, err := os.Open(filepath.Join(dist, arch, "slipstream"))
	if err != nil {
		return "", fmt.Errorf("open binary (run make build first): %w", err)
	}
	defer bin.Close()

	out := filepath.Join(dist, "slipstream-"+arch+".zip")
	tmp, err := os.CreateTemp(dist, ".slipstream-"+arch+"-*.zip")
	if err != nil {
		return "", fmt.Errorf("create zip: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := writeLayer(tmp, bin); err != nil {
		return "", errors.Join(fmt.Errorf("write %s: %w", out, err), tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close zip: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fmt.Errorf("chmod zip: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("rename zip: %w", err)
	}
	return out, nil
}

// writeLayer writes a layer zip holding the directory extensions/ and the
// executable extensions/slipstream (mode 0755) read from bin.
func writeLayer(w io.Writer, bin io.Reader) error {
	zw := zip.NewWriter(w)
	dir := &zip.FileHeader{Name: "extensions/", Method: zip.Store, Modified: modified}
	dir.SetMode(os.ModeDir | 0o755)
	if _, err := zw.CreateHeader(dir); err != nil {
		return fmt.Errorf("add directory: %w", err)
	}
	fh := &zip.FileHeader{Name: entryName, Method: zip.Deflate, Modified: modified}
	fh.SetMode(0o755)
	f, err := zw.CreateHeader(fh)
	if err != nil {
		return fmt.Errorf("add %s: %w", entryName, err)
	}
	if _, err := io.Copy(f, bin); err != nil {
		return fmt.Errorf("copy %s: %w", entryName, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("finish zip: %w", err)
	}
	return nil
}
