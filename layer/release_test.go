package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// checkSPDX fails t when doc is not a consistent SPDX 2.3 document:
// required fields, identifiers unique and well formed, every relationship
// between known elements, one package described.
func checkSPDX(t *testing.T, raw []byte) spdxDoc {
	t.Helper()
	var doc spdxDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("bill of materials is not JSON: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" || doc.Name == "" || doc.DocumentNamespace == "" {
		t.Errorf("document header = %+v", doc)
	}
	if _, err := time.Parse(time.RFC3339, doc.CreationInfo.Created); err != nil || len(doc.CreationInfo.Creators) == 0 {
		t.Errorf("creationInfo = %+v (%v)", doc.CreationInfo, err)
	}
	id := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	ids := map[string]bool{doc.SPDXID: true}
	for _, p := range doc.Packages {
		if !id.MatchString(p.SPDXID) || ids[p.SPDXID] {
			t.Errorf("package %s: identifier %q malformed or repeated", p.Name, p.SPDXID)
		}
		ids[p.SPDXID] = true
		if p.Name == "" || p.VersionInfo == "" || p.DownloadLocation == "" || p.LicenseConcluded == "" || p.CopyrightText == "" {
			t.Errorf("package %+v lacks a required field", p)
		}
		if len(p.ExternalRefs) != 1 || !strings.HasPrefix(p.ExternalRefs[0].ReferenceLocator, "pkg:golang/") {
			t.Errorf("package %s: externalRefs = %+v, want one golang purl", p.Name, p.ExternalRefs)
		}
	}
	described := 0
	for _, r := range doc.Relationships {
		if !ids[r.SPDXElementID] || !ids[r.RelatedSPDXElement] {
			t.Errorf("relationship %+v names an unknown element", r)
		}
		if r.RelationshipType == "DESCRIBES" {
			described++
		}
	}
	if described != 1 {
		t.Errorf("%d DESCRIBES relationships, want 1", described)
	}
	return doc
}

func TestSPDXDocument(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/slipstream-otel/slipstream", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "go.opentelemetry.io/otel", Version: "v1.38.0", Sum: "h1:x"},
			{Path: "golang.org/x/sync", Version: "v0.17.0", Replace: &debug.Module{Path: "example.com/fork/sync", Version: "v0.17.1"}},
		},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}, {Key: "-trimpath", Value: "true"}},
	}
	raw, err := spdxDocument(info, "v1.2.3", "arm64", strings.Repeat("ab", 32), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	doc := checkSPDX(t, raw)
	byName := map[string]spdxPackage{}
	for _, p := range doc.Packages {
		byName[p.Name] = p
	}
	for _, tc := range []struct {
		name, pkg, purl string
	}{
		{"the agent carries the release version, not (devel)", "slipstream", "pkg:golang/github.com/slipstream-otel/slipstream@v1.2.3?goos=linux&goarch=arm64"},
		{"the toolchain is listed as the standard library", "go", "pkg:golang/stdlib@go1.26.8"},
		{"a module is listed with its version", "go.opentelemetry.io/otel", "pkg:golang/go.opentelemetry.io/otel@v1.38.0"},
		{"a replaced module is listed as what was linked", "example.com/fork/sync", "pkg:golang/example.com/fork/sync@v0.17.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := byName[tc.pkg]
			if !ok {
				t.Fatalf("no package %s in %+v", tc.pkg, doc.Packages)
			}
			if got := p.ExternalRefs[0].ReferenceLocator; got != tc.purl {
				t.Errorf("purl = %q, want %q", got, tc.purl)
			}
		})
	}
	t.Run("the agent's checksum is the binary's", func(t *testing.T) {
		if c := byName["slipstream"].Checksums; len(c) != 1 || c[0].Algorithm != "SHA256" || c[0].ChecksumValue != strings.Repeat("ab", 32) {
			t.Errorf("checksums = %+v", c)
		}
	})
	t.Run("the agent depends on every module", func(t *testing.T) {
		n := 0
		for _, r := range doc.Relationships {
			if r.RelationshipType == "DEPENDS_ON" && r.SPDXElementID == "SPDXRef-Package-slipstream" {
				n++
			}
		}
		if n != len(info.Deps) {
			t.Errorf("%d DEPENDS_ON relationships, want %d", n, len(info.Deps))
		}
	})
}

func TestWriteRelease(t *testing.T) {
	// The test binary stands in for the agent: a Go binary with build information.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dist, "arm64"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dist, "arm64", "slipstream"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := buildLayer(dist, "arm64"); err != nil {
		t.Fatal(err)
	}
	files, err := writeRelease(dist, "v0.1.0", []string{"arm64"}, time.Now())
	if err != nil {
		t.Fatalf("writeRelease: %v", err)
	}
	rel := filepath.Join(dist, "release")
	want := []string{"slipstream-v0.1.0-arm64.spdx.json", "slipstream-v0.1.0-arm64.zip", "SHA256SUMS"}
	if len(files) != len(want) {
		t.Fatalf("wrote %q, want %q", files, want)
	}
	for i, w := range want {
		if files[i] != filepath.Join(rel, w) {
			t.Errorf("file %d = %q, want %q", i, files[i], filepath.Join(rel, w))
		}
	}
	t.Run("SHA256SUMS lists every other file with its checksum", func(t *testing.T) {
		f, err := os.Open(filepath.Join(rel, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			sum, name, ok := strings.Cut(sc.Text(), "  ")
			got, err := fileSHA256(filepath.Join(rel, name))
			if !ok || err != nil || got != sum {
				t.Errorf("line %q: file's checksum %s (%v)", sc.Text(), got, err)
			}
			n++
		}
		if n != 2 {
			t.Errorf("%d lines, want 2", n)
		}
	})
	t.Run("the bill of materials is read from the binary's build information", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(rel, "slipstream-v0.1.0-arm64.spdx.json"))
		if err != nil {
			t.Fatal(err)
		}
		doc := checkSPDX(t, raw)
		var goVersion string
		for _, p := range doc.Packages {
			if p.Name == "go" {
				goVersion = p.VersionInfo
			}
		}
		if goVersion != runtime.Version() {
			t.Errorf("toolchain version %q, want %q", goVersion, runtime.Version())
		}
	})
	t.Run("a version that cannot name a file is refused", func(t *testing.T) {
		for _, v := range []string{"", "../v1", "v1 2", "-v1"} {
			if _, err := writeRelease(dist, v, []string{"arm64"}, time.Now()); err == nil {
				t.Errorf("version %q accepted", v)
			}
		}
	})
}
