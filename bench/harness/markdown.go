package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// markdown renders the results: machine, command, one table of every
// system × workload, the ratios, the restart table and the errors seen.
func markdown(r *results, jsonPath string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	writeHeader(w, "Results", r, jsonPath)
	kv, watch, lease := splitSections(r)
	if len(kv.Workloads) > 0 {
		writeWorkloadList(w, kv, kv.Cells)
		writeWorkloads(w, kv)
		writeRatios(w, kv)
	}
	if len(watch.Workloads) > 0 {
		writeWatch(w, watch)
	}
	if len(lease.Workloads) > 0 {
		writeLeases(w, lease)
	}
	if len(r.Restarts) > 0 {
		writeRestarts(w, r)
		writeRanges(w, r)
	}
	writeProblems(w, r.Cells, r.Restarts)
	w("\n")
	return b.String()
}

// printer is fmt.Fprintf bound to the report being built.
type printer func(format string, a ...any)

// writeHeader opens a section: its title and date, then where and how the
// numbers were taken.
func writeHeader(w printer, title string, r *results, jsonPath string) {
	m := r.Machine
	w("\n## %s of %s\n\n", title, r.Started.Format("2006-01-02 15:04 MST"))
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

// writeWorkloadList says what each workload is, with the bin/benchmark
// arguments one of cells ran it with.
func writeWorkloadList(w printer, r *results, cells []cellResult) {
	w("\n### Workloads\n\n| workload | what | clients / conns | requests | bin/benchmark arguments |\n|---|---|--:|--:|---|\n")
	for _, wl := range r.Workloads {
		args := ""
		for _, c := range cells {
			if c.Workload == wl.Name && c.Command != "" {
				args = reEndpoint.ReplaceAllString(strings.TrimPrefix(c.Command, "bin/benchmark "), "--endpoints=HOST:PORT")
				break
			}
		}
		w("| %s | %s | %d / %d | %d | `%s` |\n", wl.Name, wl.Desc, wl.Clients, wl.Conns, wl.Total, args)
	}
}

func writeWorkloads(w printer, r *results) {
	cells := groupCells(r.Cells)
	w("\n### Throughput, latency and server cost\n\n")
	w("![req/s of every system on every workload](%s/%s)\n\n", imgDir, throughputChart)
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

// writeProblems lists every error a client saw, every error or warning
// line a server logged before it was asked to stop, and profiles that
// failed.
func writeProblems(w printer, cells []cellResult, restarts []restartResult) {
	var problems []string
	for _, c := range cells {
		where := fmt.Sprintf("%s / %s round %d", c.System, c.Workload, c.Round)
		if c.Sweep != "" {
			k := sweepByName(c.Sweep)
			where = fmt.Sprintf("%s / %s %s %s round %d", c.System, c.Workload, k.knob, k.of(c.Knobs), c.Round)
		}
		if c.Security != "" {
			where = fmt.Sprintf("%s / %s %s round %d", c.System, c.Workload, c.Security, c.Round)
		}
		for _, p := range c.Parts {
			for msg, n := range p.ErrorCounts {
				problems = append(problems, fmt.Sprintf("%s: %d × `%s`", where, n, mdEscape(msg)))
			}
		}
		if c.ServerLogProblems > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d error/warning lines in the server log, e.g. `%s`",
				where, c.ServerLogProblems, mdEscape(c.ServerLogSamples[0])))
		}
		if c.ProfileError != "" {
			problems = append(problems, fmt.Sprintf("%s: profile: `%s`", where, mdEscape(truncate(c.ProfileError, 300))))
		}
	}
	for _, rr := range restarts {
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
