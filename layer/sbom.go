package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
	"time"
)

// The SPDX 2.3 JSON format (https://spdx.github.io/spdx-spec/v2.3/), the
// fields a bill of materials of a Go binary needs. Package URLs follow
// https://github.com/package-url/purl-spec (type golang).
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name                  string         `json:"name"`
	SPDXID                string         `json:"SPDXID"`
	VersionInfo           string         `json:"versionInfo"`
	DownloadLocation      string         `json:"downloadLocation"`
	FilesAnalyzed         bool           `json:"filesAnalyzed"`
	LicenseConcluded      string         `json:"licenseConcluded"`
	LicenseDeclared       string         `json:"licenseDeclared"`
	CopyrightText         string         `json:"copyrightText"`
	PrimaryPackagePurpose string         `json:"primaryPackagePurpose,omitempty"`
	Checksums             []spdxChecksum `json:"checksums,omitempty"`
	ExternalRefs          []spdxRef      `json:"externalRefs,omitempty"`
	Comment               string         `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

const (
	repository = "https://github.com/slipstream-otel/slipstream"
	noAssert   = "NOASSERTION"
)

// notIDChar is what an SPDX identifier may not hold (idstring in the
// specification: letters, digits, '.' and '-').
var notIDChar = regexp.MustCompile(`[^A-Za-z0-9.-]`)

// spdxDocument returns the SPDX JSON bill of materials of the agent's
// binary for one architecture: the agent (described by the document), the
// Go toolchain that built it, and every module linked into it, as the
// binary's build information lists them (what `go version -m` prints).
// binSHA256 is the binary's checksum.
func spdxDocument(info *debug.BuildInfo, version, arch, binSHA256 string, created time.Time) ([]byte, error) {
	goos, goarch := "linux", ""
	var settings []string
	for _, s := range info.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
		settings = append(settings, s.Key+"="+s.Value)
	}
	main := spdxPackage{
		Name:                  "slipstream",
		SPDXID:                "SPDXRef-Package-slipstream",
		VersionInfo:           version,
		DownloadLocation:      repository,
		LicenseConcluded:      "Apache-2.0",
		LicenseDeclared:       "Apache-2.0",
		CopyrightText:         noAssert,
		PrimaryPackagePurpose: "APPLICATION",
		Checksums:             []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: binSHA256}},
		ExternalRefs:          []spdxRef{purl(info.Main.Path, version, "goos="+goos+"&goarch="+goarch)},
		Comment:               "The extension binary extensions/slipstream of the layer; build settings: " + strings.Join(settings, " "),
	}
	toolchain := spdxPackage{
		Name:             "go",
		SPDXID:           "SPDXRef-Package-go",
		VersionInfo:      info.GoVersion,
		DownloadLocation: "https://go.dev/dl/",
		LicenseConcluded: noAssert,
		LicenseDeclared:  noAssert,
		CopyrightText:    noAssert,
		ExternalRefs:     []spdxRef{purl("stdlib", info.GoVersion, "")},
		Comment:          "The Go toolchain and standard library linked into the binary.",
	}
	doc := spdxDoc{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              "slipstream-" + version + "-" + arch,
		DocumentNamespace: repository + "/spdx/slipstream-" + version + "-" + arch + "-" + binSHA256,
		CreationInfo: spdxCreationInfo{
			Created:  created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: slipstream-layer (go run ./layer)", "Organization: Slipstream"},
		},
		Packages: []spdxPackage{main, toolchain},
		Relationships: []spdxRelationship{
			{"SPDXRef-DOCUMENT", "DESCRIBES", main.SPDXID},
			{toolchain.SPDXID, "BUILD_TOOL_OF", main.SPDXID},
		},
	}
	seen := map[string]bool{main.SPDXID: true, toolchain.SPDXID: true}
	for _, dep := range info.Deps {
		path, ver, comment := dep.Path, dep.Version, ""
		if dep.Replace != nil {
			comment = "replaces " + dep.Path + " " + dep.Version
			path, ver = dep.Replace.Path, dep.Replace.Version
		}
		id := "SPDXRef-Package-go-" + notIDChar.ReplaceAllString(path+"-"+ver, "-")
		if seen[id] {
			return nil, fmt.Errorf("bill of materials: two modules map to the identifier %s", id)
		}
		seen[id] = true
		doc.Packages = append(doc.Packages, spdxPackage{
			Name:             path,
			SPDXID:           id,
			VersionInfo:      ver,
			DownloadLocation: noAssert,
			LicenseConcluded: noAssert,
			LicenseDeclared:  noAssert,
			CopyrightText:    noAssert,
			ExternalRefs:     []spdxRef{purl(path, ver, "")},
			Comment:          comment,
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{main.SPDXID, "DEPENDS_ON", id})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("bill of materials: %w", err)
	}
	return append(b, '\n'), nil
}

// purl returns the package URL of a Go module (pkg:golang/<path>@<version>).
func purl(path, version, qualifiers string) spdxRef {
	loc := "pkg:golang/" + path + "@" + version
	if qualifiers != "" {
		loc += "?" + qualifiers
	}
	return spdxRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: loc}
}
