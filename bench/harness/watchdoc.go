package main

import (
	"fmt"
	"strings"
)

// splitSections divides a comparison into its KV, watch and lease
// workloads: each part is r with only those workloads listed (the cells
// are shared; tables look cells up by workload).
func splitSections(r *results) (kv, watch, lease *results) {
	k, w, l := *r, *r, *r
	k.Workloads, w.Workloads, l.Workloads = nil, nil, nil
	all := workloads()
	for _, wl := range r.Workloads {
		switch {
		case all[wl.Name].watch:
			w.Workloads = append(w.Workloads, wl)
		case all[wl.Name].lease:
			l.Workloads = append(l.Workloads, wl)
		default:
			k.Workloads = append(k.Workloads, wl)
		}
	}
	return &k, &w, &l
}

// watchSystems are the systems of r that serve Watch, in r's order.
func watchSystems(r *results) []string {
	var out []string
	for _, s := range r.Systems {
		if !systems()[s].noWatch {
			out = append(out, s)
		}
	}
	return out
}

// cellGetter looks up the median round of a system's workload in r's
// cells (nil: it did not run).
func cellGetter(r *results) func(sys, wl string) *cellResult {
	cells := groupCells(r.Cells)
	return func(sys, wl string) *cellResult {
		cs := cells[key{sys, wl}]
		if len(cs) == 0 {
			return nil
		}
		c := median(cs)
		return &c
	}
}

// cellFailed: the cell measured nothing.
func cellFailed(c *cellResult) bool {
	return c.Failure != "" && len(c.Parts) == 0 && c.Watch == nil && c.Leases == nil
}

// failRow is a table row of cols columns for a cell that measured nothing.
func failRow(w printer, label string, c *cellResult, cols int) {
	w("| %s | failed: %s |%s\n", label, mdEscape(truncate(c.Failure, 160)), strings.Repeat(" |", cols-2))
}

// errCol is a cell's errors column: its client errors and its failure.
func errCol(c *cellResult) string {
	s := fmt.Sprint(c.Errors)
	if c.Failure != "" {
		s += " ⚠ " + mdEscape(truncate(c.Failure, 120))
	}
	return s
}

// partNamed is the cell's part of that name (zero if none).
func partNamed(c *cellResult, name string) partResult {
	for _, p := range c.Parts {
		if p.Name == name {
			return p
		}
	}
	return partResult{}
}

// writeWatch renders the watch workloads of r (r.Workloads holds only
// them): what each ran, a table for each, and the targets.
func writeWatch(w printer, r *results) {
	cells := groupCells(r.Cells)
	ran := map[string]bool{}
	for _, wl := range r.Workloads {
		ran[wl.Name] = true
	}
	get := cellGetter(r)
	syss := watchSystems(r)

	w("\n### Watch\n\n")
	w("The watch workloads run on every system but the ceiling, which serves no Watch. " +
		"`harness watchers` is the harness binary re-executed as its own process: it opens watchers with clientv3 " +
		"(Watch returns once the server has created the watch), counts the events they receive, and says whether every expected one came. ")
	if rounds := maxRound(r.Cells); rounds > 1 {
		w("Each row is the round with the median rate of %d rounds. ", rounds)
	}
	w("Latencies in ms; CPU is the server's utime+stime; RSS its peak (VmHWM).\n\n")
	w("| workload | what | puts (watchers) | commands |\n|---|---|--:|---|\n")
	for _, wl := range r.Workloads {
		var cmds []string
		for _, c := range r.Cells {
			if c.Workload != wl.Name || (c.Command == "" && c.Watch == nil) {
				continue
			}
			if strings.HasPrefix(c.Command, "bin/benchmark ") {
				cmds = append(cmds, "`"+reEndpoint.ReplaceAllString(c.Command, "--endpoints=HOST:PORT")+"`")
			}
			if c.Watch != nil {
				cmds = append(cmds, "`"+c.Watch.Command+"`")
			}
			break
		}
		w("| %s | %s | %d | %s |\n", wl.Name, wl.Desc, wl.Total, strings.Join(cmds, " with "))
	}

	if ran["watch-latency"] {
		w("\n#### Event latency (watch-latency)\n\n")
		w("From a put's response to each watcher's event (bin/benchmark counts an event that beats the response as 0). CPU per 1,000 events; the puts are in it.\n\n")
		w("| system | event p50 | event p99 | event p99.9 | put p99 | events | CPU s/1k events | peak RSS MiB | errors |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range syss {
			c := get(s, "watch-latency")
			if c == nil {
				continue
			}
			label := systems()[s].label
			if cellFailed(c) {
				failRow(w, label, c, 9)
				continue
			}
			e, p := partNamed(c, eventsPart), partNamed(c, putPart)
			w("| %s | %s | %s | %s | %s | %d | %.3f | %.0f | %s |\n", label, ms(e.P50ms), ms(e.P99ms), ms(e.P999ms), ms(p.P99ms),
				e.Requests, c.CPUPer1k, mib(c.PeakRSSBytes), errCol(c))
		}
	}
	if ran["watch"] {
		w("\n#### Events delivered (watch)\n\n")
		w("Events a second: the events every watcher received, over the time from the first put to the last event.\n\n")
		w("| system | events/s | events | watch creation p99 | CPU s/1k events | peak RSS MiB | errors |\n|---|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range syss {
			c := get(s, "watch")
			if c == nil {
				continue
			}
			label := systems()[s].label
			if cellFailed(c) {
				failRow(w, label, c, 7)
				continue
			}
			e, cr := partNamed(c, eventsPart), partNamed(c, createPart)
			w("| %s | %.0f | %d | %s | %.3f | %.0f | %s |\n", label, e.RPS, e.Requests, ms(cr.P99ms), c.CPUPer1k, mib(c.PeakRSSBytes), errCol(c))
		}
	}
	if ran["put-100-watched"] {
		w("\n#### put-100 with %s watchers (put-100-watched)\n\n", thousands(watchedPutWatchers))
		w("put-100 of this run beside put-100 with the watchers held; the watchers were opened before the workload, so their creation is not in its CPU. " +
			"Events: what the watchers received of the one event each successful put raises.")
		if len(syss) > 0 && len(cells[key{syss[0], "put-100"}]) == 0 {
			w(" put-100 did not run, so there is nothing to compare with: run it too (`--workloads put-100,put-100-watched`).")
		}
		w("\n\n")
		w("| system | put-100 req/s | with watchers req/s | with / without | p99 without | p99 with | CPU s/1k req without | CPU s/1k req with | events received / puts | watchers that got events | peak RSS MiB with | errors |\n")
		w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range syss {
			c := get(s, "put-100-watched")
			if c == nil {
				continue
			}
			label := systems()[s].label
			if cellFailed(c) {
				failRow(w, label, c, 12)
				continue
			}
			base, ratio, p99, cpu := "–", "–", "–", "–"
			if b := get(s, "put-100"); b != nil && b.RPS > 0 {
				base, p99, cpu = fmt.Sprintf("%.0f", b.RPS), ms(b.p99()), fmt.Sprintf("%.3f", b.CPUPer1k)
				ratio = fmt.Sprintf("%.2f", c.RPS/b.RPS)
			}
			events, with := "–", "–"
			if c.Watch != nil {
				events = fmt.Sprintf("%d / %d", c.Watch.EventsReceived, c.Watch.EventsExpected)
				with = fmt.Sprintf("%d of %d", c.Watch.WatchersWithEvents, c.Watch.Watchers)
			}
			w("| %s | %s | %.0f | %s | %s | %s | %s | %.3f | %s | %s | %.0f | %s |\n", label, base, c.RPS, ratio, p99, ms(c.p99()),
				cpu, c.CPUPer1k, events, with, mib(c.PeakRSSBytes), errCol(c))
		}
	}
	if ran["watchers-idle-100k"] {
		w("\n#### Idle watchers (watchers-idle-100k)\n\n")
		w("The server's VmRSS before the watchers, its VmRSS and VmHWM after they were opened and held idle %v, "+
			"the CPU it spent opening them, and the events of the probe puts that followed.\n\n", idleSettle)
		w("| system | watchers / streams / conns | open s | RSS before MiB | RSS holding MiB | peak RSS MiB | CPU s to open | probe events | errors |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range syss {
			c := get(s, "watchers-idle-100k")
			if c == nil {
				continue
			}
			label := systems()[s].label
			if cellFailed(c) || c.Watch == nil {
				failRow(w, label, c, 9)
				continue
			}
			ws := c.Watch
			w("| %s | %d / %d / %d | %.2f | %.0f | %.0f | %.0f | %.2f | %d / %d | %s |\n", label, ws.Watchers, ws.Streams, ws.Conns,
				ws.CreateSeconds, mib(ws.RSSBeforeBytes), mib(ws.RSSWatchingBytes), mib(ws.HWMWatchingBytes), c.ServerCPUSeconds,
				ws.EventsReceived, ws.EventsExpected, errCol(c))
		}
	}
	writeWatchTargets(w, r, get)
}

// goal is one target of the watch or the lease service: a ratio of a
// system to a reference, and the bound it should meet.
type goal struct {
	name string
	// value of one cell (0: unknown); lower says whether lower is better.
	value func(get func(sys, wl string) *cellResult, sys string) float64
	// ref is the system compared with (empty: the system itself, as in
	// put-100-watched against put-100).
	ref   string
	bound float64
	lower bool
}

var watchGoals = []goal{
	{
		name: "event latency p99 at most etcd's (watch-latency)", ref: "etcd", bound: 1, lower: true,
		value: func(get func(sys, wl string) *cellResult, sys string) float64 {
			if c := get(sys, "watch-latency"); c != nil && c.Failure == "" {
				return c.p99()
			}
			return 0
		},
	},
	{
		name: "events a second at least 2× etcd's (watch)", ref: "etcd", bound: 2,
		value: func(get func(sys, wl string) *cellResult, sys string) float64 {
			if c := get(sys, "watch"); c != nil && c.Failure == "" {
				return c.RPS
			}
			return 0
		},
	},
	{
		name: fmt.Sprintf("put-100 with %s watchers at least 90%% of put-100 without (put-100-watched / put-100)", thousands(watchedPutWatchers)), bound: 0.9,
		value: func(get func(sys, wl string) *cellResult, sys string) float64 {
			c, b := get(sys, "put-100-watched"), get(sys, "put-100")
			if c == nil || b == nil || c.Failure != "" || b.RPS == 0 {
				return 0
			}
			return c.RPS / b.RPS
		},
	},
	{
		name: "peak RSS with 100,000 idle watchers at most etcd's (watchers-idle-100k)", ref: "etcd", bound: 1, lower: true,
		value: func(get func(sys, wl string) *cellResult, sys string) float64 {
			if c := get(sys, "watchers-idle-100k"); c != nil && c.Failure == "" && c.Watch != nil {
				return float64(c.Watch.HWMWatchingBytes)
			}
			return 0
		},
	},
}

// writeWatchTargets gives each target's ratio for every watch system.
func writeWatchTargets(w printer, r *results, get func(sys, wl string) *cellResult) {
	writeTargets(w, "Watch targets", "Ratios of this run, not asserted: a system against etcd, or put-100 with watchers against put-100 without on the same system.",
		watchSystems(r), watchGoals, get)
}

// writeTargets is a table of each goal's ratio for every system of syss,
// headed title; a goal against etcd is left out of etcd's own column, a
// goal no system has a value for is left out.
func writeTargets(w printer, title, note string, syss []string, goals []goal, get func(sys, wl string) *cellResult) {
	var rows []string
	for _, g := range goals {
		cols := make([]string, len(syss))
		some := false
		for i, s := range syss {
			cols[i] = "–"
			v := g.value(get, s)
			if g.ref == s || v == 0 {
				continue
			}
			ratio := v
			if g.ref != "" {
				ref := g.value(get, g.ref)
				if ref == 0 {
					continue
				}
				ratio = v / ref
			}
			met := ratio >= g.bound
			if g.lower {
				met = ratio <= g.bound
			}
			cols[i] = fmt.Sprintf("%.2f (%s)", ratio, map[bool]string{true: "met", false: "not met"}[met])
			some = true
		}
		if some {
			rows = append(rows, fmt.Sprintf("| %s | %s |\n", g.name, strings.Join(cols, " | ")))
		}
	}
	if len(rows) == 0 {
		return
	}
	w("\n#### %s\n\n%s\n\n", title, note)
	w("| target |")
	for _, s := range syss {
		w(" %s |", systems()[s].label)
	}
	w("\n|---|%s\n", strings.Repeat("--:|", len(syss)))
	for _, row := range rows {
		w("%s", row)
	}
}
