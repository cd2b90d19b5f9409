package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeResults is a comparison and every sweep with made-up numbers.
func fakeResults() *results {
	r := &results{
		Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Finished: time.Date(2026, 1, 2, 3, 6, 0, 0, time.UTC),
		Command: "go run ./bench/harness --quick", Systems: []string{"metastore", "metastore-mem"},
		Options: map[string]any{"val_size": 256},
	}
	for i, wl := range []string{"put-100", "txn-put"} {
		r.Workloads = append(r.Workloads, workloadInfo{Name: wl, Desc: "test", Clients: 100, Conns: 100, Total: 1000})
		for j, sys := range r.Systems {
			cell := func(rps float64) cellResult {
				return cellResult{System: sys, Workload: wl, Round: 1, RPS: rps, Requests: 1000, CPUPer1k: 0.1,
					Parts: []partResult{{Name: "all", RPS: rps, P50ms: 5, P99ms: 100000 / rps}}}
			}
			r.Cells = append(r.Cells, cell(float64(5000+1000*i+2000*j)))
			for _, n := range []int{1, 2, 4, 8, 16, 32} {
				c := cell(float64(3000 + 1000*i + 1500*j + 400*n))
				c.Sweep, c.Knobs = "shards", knobs{Shards: n}
				r.Sweeps = append(r.Sweeps, c)
			}
			for _, b := range batchSettings {
				c := cell(float64(2000 + 1000*i + 1500*j + 8*b))
				c.Sweep, c.Knobs = "batch", knobs{MaxBatch: b}
				r.Sweeps = append(r.Sweeps, c)
			}
			for m, name := range mailboxSettings {
				c := cell(float64(4000 + 1000*i + 1500*j - 500*m))
				c.Sweep, c.Knobs = "mailbox", knobs{Mailbox: name}
				r.Sweeps = append(r.Sweeps, c)
			}
		}
	}
	return r
}

func TestSweepMarkdown(t *testing.T) {
	r := fakeResults()
	md := sweepMarkdown(r, sweepByName("shards"), "x.json")
	for _, want := range []string{
		"## Shard sweep of 2026-01-02 03:04 UTC",
		"`--shards` set to each of 1, 2, 4, 8, 16, 32; `--max-batch` is the server's default",
		"![req/s and p99 latency by --shards](img/shards.png)",
		"| put-100 | MetaStore (durable) | 1 | 3400 | 1.00 |",
		"| put-100 | MetaStore (durable) | 32 | 15800 | 4.65 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("shard sweep lacks %q:\n%s", want, md)
		}
	}
	md = sweepMarkdown(r, sweepByName("batch"), "x.json")
	// Rows ascend by setting, so batching off (1) is the baseline.
	if !strings.Contains(md, "| txn-put | MetaStore (--in-memory) | 1 | 4508 | 1.00 |") ||
		!strings.Contains(md, "| txn-put | MetaStore (--in-memory) | 512 | 8596 | 1.91 |") {
		t.Errorf("batching sweep rows:\n%s", md)
	}
	md = sweepMarkdown(r, sweepByName("mailbox"), "x.json")
	// Rows follow mailboxSettings, so the server's default is the baseline.
	for _, want := range []string{
		"set to each of pinned/ring, pinned/mpsc, goroutine/ring, goroutine/mpsc; `--shards` is the server's default, `--max-batch` is the server's default.",
		"| put-100 | MetaStore (durable) | pinned/ring | 4000 | 1.00 |",
		"| put-100 | MetaStore (durable) | goroutine/mpsc | 2500 | 0.62 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("mailbox sweep lacks %q:\n%s", want, md)
		}
	}
}

// TestMetastoreArgs checks that each knob reaches the server as its flags,
// and that an unset knob leaves its flag out.
func TestMetastoreArgs(t *testing.T) {
	o := &options{binDir: "bin"}
	cases := []struct {
		knobs knobs
		want  string
	}{
		{knobs{}, "--data-dir d --listen-client-urls http://127.0.0.1:7"},
		{knobs{Shards: 8, MaxBatch: 1}, "--data-dir d --listen-client-urls http://127.0.0.1:7 --shards 8 --max-batch 1"},
		{knobs{Mailbox: "goroutine/mpsc"}, "--data-dir d --listen-client-urls http://127.0.0.1:7 --mailbox-dispatcher goroutine --mailbox-queue mpsc"},
	}
	for _, tc := range cases {
		bin, args := metastoreArgs(o, launch{port: 7, dataDir: "d", knobs: tc.knobs}, false)
		if got := strings.Join(args, " "); bin != filepath.Join("bin", "metastore") || got != tc.want {
			t.Errorf("%+v: %s %s, want bin/metastore %s", tc.knobs, bin, got, tc.want)
		}
	}
}

func TestUpdateDocKeepsOtherSections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	r := fakeResults()
	if err := updateDoc(path, []docSection{comparisonSection("\ncomparison one\n")}); err != nil {
		t.Fatal(err)
	}
	if err := updateDoc(path, reportSections(r, "x.json")); err != nil {
		t.Fatal(err)
	}
	if err := updateDoc(path, []docSection{comparisonSection("\ncomparison two\n")}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{"## How to run", "comparison two", "## Shard sweep of", "## Batching sweep of"} {
		if !strings.Contains(doc, want) {
			t.Errorf("doc lacks %q", want)
		}
	}
	if strings.Contains(doc, "comparison one") || strings.Contains(doc, "No shard sweep yet") {
		t.Error("a section was not replaced")
	}
	// Sections keep the intro's order: comparison, shards, batching.
	if i, j := strings.Index(doc, "comparison two"), strings.Index(doc, "## Shard sweep"); i > j {
		t.Error("sections out of order")
	}
}

func TestCharts(t *testing.T) {
	dir := os.Getenv("HARNESS_CHART_DIR") // set it to look at the charts
	if dir == "" {
		dir = t.TempDir()
	}
	if err := writeCharts(dir, fakeResults()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{throughputChart, "shards.png", "batching.png", "mailbox.png"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.Size() < 1000 {
			t.Errorf("%s: %v, %v", name, info, err)
		}
	}
}

// The prose of docs/benchmarks.md is intro.md's: a new report starts from
// intro.md, so an edit to one belongs in the other.
func TestIntroMatchesDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/benchmarks.md")
	if err != nil {
		t.Skip(err)
	}
	prose := func(s string) string { return s[:strings.Index(s, beginMarker)] }
	if prose(string(doc)) != prose(docIntro) {
		t.Error("docs/benchmarks.md's prose differs from bench/harness/intro.md's")
	}
}

// TestCellName checks the names that data dirs and profiles take: a
// named setting must not put a "/" in a file name.
func TestCellName(t *testing.T) {
	sys, wl := systems()["metastore"], workloads()["put-100"]
	cases := []struct {
		c    cell
		want string
	}{
		{cell{sys: sys, w: wl}, "metastore-put-100"},
		{cell{sys: sys, w: wl, sweep: "shards", knobs: knobs{Shards: 8}}, "metastore-put-100-shards8"},
		{cell{sys: sys, w: wl, sweep: "mailbox", knobs: knobs{Mailbox: "goroutine/mpsc"}}, "metastore-put-100-mailbox-goroutine-mpsc"},
	}
	for _, tc := range cases {
		if got := tc.c.name(); got != tc.want {
			t.Errorf("name %q, want %q", got, tc.want)
		}
	}
}
