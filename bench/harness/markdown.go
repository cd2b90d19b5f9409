package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Markers around the generated part of docs/benchmarks.md: a rerun replaces
// only what lies between them, so prose written around them survives.
const (
	beginMarker = "<!-- BEGIN GENERATED RESULTS (go run ./bench/harness) -->"
	endMarker   = "<!-- END GENERATED RESULTS -->"
)

// writeDoc puts the Markdown report into path between the markers, or
// creates the file with the default prose around it.
func writeDoc(path string, r *results, jsonPath string) error {
	gen := beginMarker + "\n" + markdown(r, jsonPath) + endMarker + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	var doc string
	if i >= 0 && j > i {
		doc = s[:i] + gen + strings.TrimPrefix(s[j+len(endMarker):], "\n")
	} else {
		doc = docIntro + gen
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// markdown renders the results: machine, command, one table of every
// system × workload, the ratios, the restart table and the errors seen.
func markdown(r *results, jsonPath string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	writeHeader(w, r, jsonPath)
	if len(r.Workloads) > 0 {
		writeWorkloads(w, r)
		writeRatios(w, r)
	}
	if len(r.Restarts) > 0 {
		writeRestarts(w, r)
	}
	writeProblems(w, r)
	w("\n")
	return b.String()
}

// printer is fmt.Fprintf bound to the report being built.
type printer func(format string, a ...any)

func writeHeader(w printer, r *results, jsonPath string) {
	m := r.Machine
	w("\n## Results of %s\n\n", r.Started.Format("2006-01-02 15:04 MST"))
	w("- Machine: %d CPUs, %s, %s RAM, Linux %s\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel)
	w("- Data dirs: `%s`, %s (all systems on the same filesystem)\n", m.DataDir, m.Filesystem)
	w("- Go: %s; %s\n", m.GoVersion, m.Versions)
	w("- Load average at start: %s\n", m.LoadAvg)
	w("- Command: `%s` (took %s)\n", r.Command, r.Finished.Sub(r.Started).Round(time.Second))
	w("- Raw results: `%s`\n", jsonPath)
	for _, n := range r.Notes {
		w("- Note: %s\n", n)
	}
}

func writeWorkloads(w printer, r *results) {
	cells := groupCells(r.Cells)
	w("\n### Workloads\n\n| workload | what | clients / conns | requests | bin/benchmark arguments |\n|---|---|--:|--:|---|\n")
	for _, wl := range r.Workloads {
		args := ""
		for _, c := range r.Cells {
			if c.Workload == wl.Name && c.Command != "" {
				args = reEndpoint.ReplaceAllString(strings.TrimPrefix(c.Command, "bin/benchmark "), "--endpoints=HOST:PORT")
				break
			}
		}
		w("| %s | %s | %d / %d | %d | `%s` |\n", wl.Name, wl.Desc, wl.Clients, wl.Conns, wl.Total, args)
	}

	w("\n### Throughput, latency and server cost\n\n")
	w("Latencies are bin/benchmark's, in ms. CPU is the server process's utime+stime per 1,000 requests; RSS is its peak (VmHWM) during the workload.")
	if rounds := maxRound(r.Cells); rounds > 1 {
		w(" Each row is the round with the median req/s of %d rounds.", rounds)
	}
	w("\n\n| workload | system | req/s | p50 | p99 | p99.9 | CPU s/1k req | peak RSS MiB | errors |\n")
	w("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, wl := range r.Workloads {
		for _, sys := range r.Systems {
			cs := cells[key{sys, wl.Name}]
			if len(cs) == 0 {
				continue
			}
			c := median(cs)
			label := systems()[sys].label
			if c.Failure != "" && len(c.Parts) == 0 {
				w("| %s | %s | failed: %s | | | | | | |\n", wl.Name, label, mdEscape(truncate(c.Failure, 160)))
				continue
			}
			for _, p := range c.Parts {
				name := wl.Name
				if p.Name != "all" {
					name += " (" + p.Name + ")"
				}
				errs := fmt.Sprint(p.Errors)
				if c.Failure != "" {
					errs += " ⚠ " + mdEscape(truncate(c.Failure, 120))
				}
				w("| %s | %s | %.0f | %s | %s | %s | %.3f | %.0f | %s |\n",
					name, label, p.RPS, ms(p.P50ms), ms(p.P99ms), ms(p.P999ms), c.CPUPer1k, mib(c.PeakRSSBytes), errs)
			}
		}
	}

}

func writeRatios(w printer, r *results) {
	cells := groupCells(r.Cells)
	w("\n### Ratios\n\n")
	w("req/s of MetaStore divided by req/s of etcd and of the ceiling (above 1 means MetaStore is faster); CPU/1k ratio below 1 means MetaStore spends less CPU per request.\n\n")
	w("| workload | durable / etcd req/s | in-memory / etcd req/s | durable / ceiling req/s | in-memory / ceiling req/s | durable / etcd p99 | durable / etcd CPU/1k |\n")
	w("|---|--:|--:|--:|--:|--:|--:|\n")
	for _, wl := range r.Workloads {
		get := func(sys string) *cellResult {
			cs := cells[key{sys, wl.Name}]
			if len(cs) == 0 {
				return nil
			}
			c := median(cs)
			if c.RPS == 0 {
				return nil
			}
			return &c
		}
		dur, mem, etcd, ceil := get("metastore"), get("metastore-mem"), get("etcd"), get("ceiling")
		rps := func(a, b *cellResult) string {
			if a == nil || b == nil {
				return "–"
			}
			return fmt.Sprintf("%.2f", a.RPS/b.RPS)
		}
		p99 := "–"
		if dur != nil && etcd != nil && len(dur.Parts) == 1 && len(etcd.Parts) == 1 && etcd.Parts[0].P99ms > 0 {
			p99 = fmt.Sprintf("%.2f", dur.Parts[0].P99ms/etcd.Parts[0].P99ms)
		}
		cpu := "–"
		if dur != nil && etcd != nil && etcd.CPUPer1k > 0 {
			cpu = fmt.Sprintf("%.2f", dur.CPUPer1k/etcd.CPUPer1k)
		}
		w("| %s | %s | %s | %s | %s | %s | %s |\n", wl.Name, rps(dur, etcd), rps(mem, etcd), rps(dur, ceil), rps(mem, ceil), p99, cpu)
	}

}

func writeRestarts(w printer, r *results) {
	w("\n### Restart with %d keys of %v bytes\n\n", r.Restarts[0].Keys, r.Options["val_size"])
	for _, rr := range r.Restarts {
		if rr.Command != "" {
			w("Keys loaded with `%s`. ", rr.Command)
			break
		}
	}
	w("Restart is exec to the first answered Get on the same data dir; RSS after restart is taken at that moment. " +
		"bin/benchmark writes the same random value to every key, so a store that compresses (pebble does) gets a small data dir.\n\n")
	w("| system | round | load req/s | stop s | restart s | RSS after load MiB | peak RSS during load MiB | RSS after restart MiB | data dir MiB | keys after restart |\n")
	w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, rr := range r.Restarts {
		label := systems()[rr.System].label
		if rr.Failure != "" && rr.RestartSeconds == 0 {
			w("| %s | %d | failed: %s | | | | | | | |\n", label, rr.Round, mdEscape(truncate(rr.Failure, 160)))
			continue
		}
		keys := fmt.Sprint(rr.KeysAfterRestart)
		if rr.Failure != "" {
			keys += " ⚠ " + mdEscape(truncate(rr.Failure, 120))
		}
		w("| %s | %d | %.0f | %.2f | %.2f | %.0f | %.0f | %.0f | %.0f | %s |\n", label, rr.Round, rr.LoadRPS,
			rr.StopSeconds, rr.RestartSeconds, mib(rr.RSSAfterLoadBytes), mib(rr.PeakRSSAfterLoad),
			mib(rr.RSSAfterRestartBytes), mib(rr.DataDirBytes), keys)
	}
	durable := map[string]restartResult{}
	for _, rr := range r.Restarts {
		if rr.Failure == "" {
			durable[rr.System] = rr
		}
	}
	if m, ok := durable["metastore"]; ok {
		if e, ok := durable["etcd"]; ok && e.RestartSeconds > 0 && e.RSSAfterRestartBytes > 0 {
			w("\nMetaStore / etcd (last round): restart time %.2f×, RSS after restart %.2f×, data dir %.2f×.\n",
				m.RestartSeconds/e.RestartSeconds, float64(m.RSSAfterRestartBytes)/float64(e.RSSAfterRestartBytes),
				float64(m.DataDirBytes)/float64(e.DataDirBytes))
		}
	}
}

// writeProblems lists every error a client saw and every error or warning
// line a server logged before it was asked to stop.
func writeProblems(w printer, r *results) {
	var problems []string
	for _, c := range r.Cells {
		for _, p := range c.Parts {
			for msg, n := range p.ErrorCounts {
				problems = append(problems, fmt.Sprintf("%s / %s round %d: %d × `%s`", c.System, c.Workload, c.Round, n, mdEscape(msg)))
			}
		}
		if c.ServerLogProblems > 0 {
			problems = append(problems, fmt.Sprintf("%s / %s round %d: %d error/warning lines in the server log, e.g. `%s`",
				c.System, c.Workload, c.Round, c.ServerLogProblems, mdEscape(c.ServerLogSamples[0])))
		}
	}
	for _, rr := range r.Restarts {
		if rr.ServerLogProblems > 0 {
			problems = append(problems, fmt.Sprintf("%s / restart round %d: %d error/warning lines in the server log, e.g. `%s`",
				rr.System, rr.Round, rr.ServerLogProblems, mdEscape(rr.ServerLogSamples[0])))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		w("\n### Errors\n\n")
		for _, p := range problems {
			w("- %s\n", p)
		}
	}
}

// reEndpoint matches the per-run port in a recorded bin/benchmark command.
var reEndpoint = regexp.MustCompile(`--endpoints=\S+`)

type key struct{ system, workload string }

func groupCells(cells []cellResult) map[key][]cellResult {
	m := map[key][]cellResult{}
	for _, c := range cells {
		k := key{c.System, c.Workload}
		m[k] = append(m[k], c)
	}
	return m
}

func maxRound(cells []cellResult) int {
	n := 0
	for _, c := range cells {
		n = max(n, c.Round)
	}
	return n
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// ms formats a latency; bin/benchmark prints no percentile its sample is too
// small for (p99.9 of fewer than 1,000 requests), which parses as 0.
func ms(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "`", "'")
	return strings.ReplaceAll(s, "\n", " ")
}

// docIntro is the prose of a new docs/benchmarks.md.
const docIntro = `# Benchmarks: MetaStore against etcd

This page is written by the comparison harness, ` + "`bench/harness`" + `. It runs
etcd's own load generator, ` + "`bin/benchmark`" + ` (etcd tools/benchmark v3.6.8), against
four servers on one machine, in one run:

| system | what it is |
|---|---|
| MetaStore (durable) | ` + "`bin/metastore --data-dir D`" + `: pebble data dir, group commit with fsync |
| MetaStore (--in-memory) | ` + "`bin/metastore --in-memory`" + `: the same server, nothing written to disk |
| etcd v3.7 (durable) | ` + "`bin/etcd`" + ` (real etcd v3.7.3, single member), fresh data dir on the same filesystem |
| ceiling (no storage) | ` + "`harness ceiling`" + ` (the harness binary re-executed as its own process): etcd's KV Put/Range/Txn over the same gRPC server options as MetaStore, answering fixed responses without storing — the most any server speaking this protocol can do here, given the same client |

## How to run

    make bench-compare-quick   # small totals, 100,000 keys for the restart test (under 3 minutes)
    make bench-compare         # full totals, 1,000,000 keys for the restart test

or ` + "`go run ./bench/harness --help`" + ` for every flag (workloads, systems, rounds,
totals, key counts, output paths). Both targets build ` + "`bin/metastore`" + ` and the
tools first. The JSON of every run lands in ` + "`bench/results/`" + `; the section below
is replaced by each run.

## Method

- Every system × workload cell starts the server **fresh** (new process, new
  data dir in a temp dir), prefills what the workload reads, runs
  ` + "`bin/benchmark`" + ` once, and stops the server with SIGTERM. Memory peaks and CPU
  therefore belong to that workload alone.
- Systems run in the same order for every workload (MetaStore durable,
  MetaStore in-memory, etcd, ceiling, then the next workload), so drift of the
  machine hits all of them alike. ` + "`--rounds N`" + ` repeats the whole sweep and
  reports the round with the median req/s.
- **CPU s/1k req** is the server process's utime+stime (from ` + "`/proc/<pid>/stat`" + `)
  during the workload, divided by thousands of successful requests. The
  client runs on the same machine, so on a small machine client and server
  compete for the cores: compare systems, not absolute numbers.
- **peak RSS** is the server's VmHWM at the end of the workload.
- txn-mixed reports reads and writes separately (as ` + "`bin/benchmark`" + ` does); its
  CPU and ratios use both together.
- **Restart**: load N keys of 256 bytes (sequential keys, every key written
  once), stop cleanly, start on the same data dir and time exec → first
  answered Get; then count the keys to check they all came back. **data
  dir** is the apparent size of its files: etcd's includes a preallocated
  64 MiB WAL segment, and bin/benchmark writes one random value to every key,
  which pebble's compression shrinks.
- Errors: bin/benchmark's error distribution per workload, plus every
  error or warning line a server logged before it was asked to stop (etcd
  logs errors while shutting down; those are left out).
- The ceiling answers single-key reads with one 256-byte KV and ranged reads
  with up to 1,000 fixed KVs (limited by the request's limit), so its
  responses are as large as a real store's.

`
