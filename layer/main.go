package main

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// entryName is where Lambda looks for external extensions inside a layer
// (the layer is extracted to /opt).
const entryName = "extensions/slipstream"

// modified is the fixed timestamp of every zip entry, for reproducible zips.
var modified = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// lambdaArch maps Go's GOARCH to the architecture names Lambda uses
// (https://docs.aws.amazon.com/lambda/latest/dg/foundation-arch.html), which
// name the zips.
var lambdaArch = map[string]string{"amd64": "x86_64", "arm64": "arm64"}

func main() {
	dist := flag.String("dist", "dist", "directory holding <goarch>/slipstream; the zips are written there")
	arches := flag.String("arch", "amd64,arm64", "Go architectures to package, separated by commas or spaces")
	release := flag.String("release", "", "also write the release files of this version into <dist>/release: versioned zips, SPDX bills of materials, SHA256SUMS")
	flag.Parse()
	var built []string
	for _, arch := range strings.FieldsFunc(*arches, func(r rune) bool { return r == ',' || r == ' ' }) {
		out, err := buildLayer(*dist, arch)
		if err != nil {
			fmt.Fprintln(os.Stderr, "layer:", err)
			os.Exit(1)
		}
		fmt.Println(out)
		built = append(built, arch)
	}
	if *release == "" {
		return
	}
	// SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/)
	// dates the bills of materials; make release sets it to the commit's time.
	created := time.Now()
	if sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		created = time.Unix(sec, 0)
	}
	files, err := writeRelease(*dist, *release, built, created)
	if err != nil {
		fmt.Fprintln(os.Stderr, "layer:", err)
		os.Exit(1)
	}
	for _, f := range files {
		fmt.Println(f)
	}
}

// buildLayer zips dist/<goarch>/slipstream into dist/slipstream-<arch>.zip,
// <arch> being Lambda's name for it (x86_64, arm64), and returns the zip's
// path.
func buildLayer(dist, goarch string) (string, error) {
	arch, ok := lambdaArch[goarch]
	if !ok {
		return "", fmt.Errorf("invalid architecture %q: want amd64 or arm64", goarch)
	}
	bin, err := os.Open(filepath.Join(dist, goarch, "slipstream"))
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
