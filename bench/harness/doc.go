package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// docIntro is a new report: the prose, and an empty section for each kind
// of run, so the sections keep this order whichever kind runs first.
//
//go:embed intro.md
var docIntro string

// imgDir is where the charts go, relative to the Markdown report; the
// report links them by this relative path.
const imgDir = "img"

// docSection is a generated part of docs/benchmarks.md between markers of
// its own: a comparison run and each sweep replace only their section, so
// one kind of run does not wipe out the others' results.
type docSection struct {
	begin, end string
	body       string
}

// The markers keep the text they had before sweeps existed and before the
// harness became its own module (it is no longer `go run ./bench/harness`
// from the root), so existing reports update in place.
const (
	beginMarker = "<!-- BEGIN GENERATED RESULTS (go run ./bench/harness) -->"
	endMarker   = "<!-- END GENERATED RESULTS -->"
)

func comparisonSection(body string) docSection {
	return docSection{beginMarker, endMarker, body}
}

func sweepSection(kind sweepKind, body string) docSection {
	return docSection{
		fmt.Sprintf("<!-- BEGIN GENERATED %s SWEEP (go run ./bench/harness) -->", strings.ToUpper(kind.name)),
		fmt.Sprintf("<!-- END GENERATED %s SWEEP -->", strings.ToUpper(kind.name)),
		body,
	}
}

func secureSection(body string) docSection {
	return docSection{
		"<!-- BEGIN GENERATED AUTH AND TLS (go run ./bench/harness) -->",
		"<!-- END GENERATED AUTH AND TLS -->",
		body,
	}
}

// reportSections renders what this run measured: the comparison, each
// sweep that ran, or the secure run.
func reportSections(r *results, jsonPath string) []docSection {
	if len(r.Secure) > 0 {
		return []docSection{secureSection(secureMarkdown(r, jsonPath))}
	}
	if len(r.Sweeps) == 0 {
		return []docSection{comparisonSection(markdown(r, jsonPath))}
	}
	var out []docSection
	for _, k := range ranSweeps(r) {
		out = append(out, sweepSection(k, sweepMarkdown(r, k, jsonPath)))
	}
	return out
}

// writeReport draws the charts into img/ beside the report, then puts the
// sections into it.
func writeReport(docPath string, r *results, sections []docSection) error {
	if err := writeCharts(filepath.Join(filepath.Dir(docPath), imgDir), r); err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	return updateDoc(docPath, sections)
}

// updateDoc replaces each section of the report at path, creating the
// report from docIntro when it does not exist.
func updateDoc(path string, sections []docSection) error {
	old, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		old, err = []byte(docIntro), nil
	}
	if err != nil {
		return err
	}
	doc := string(old)
	for _, s := range sections {
		doc = s.replaceIn(doc)
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// replaceIn puts the section between its markers in doc, or appends it
// when doc has none: hand-written prose around the markers survives.
func (s docSection) replaceIn(doc string) string {
	gen := s.text()
	i, j := strings.Index(doc, s.begin), strings.Index(doc, s.end)
	if i >= 0 && j > i {
		return doc[:i] + gen + strings.TrimPrefix(doc[j+len(s.end):], "\n")
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + gen
}

// text is the section with its markers.
func (s docSection) text() string { return s.begin + "\n" + s.body + s.end + "\n" }
