package main

import (
	"fmt"
	"slices"
	"strings"
)

// sweepMarkdown renders one sweep: machine, workloads, a chart and a table
// of every system × workload × setting, and the errors seen.
func sweepMarkdown(r *results, kind sweepKind, jsonPath string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	var cells []cellResult
	for _, c := range r.Sweeps {
		if c.Sweep == kind.name {
			cells = append(cells, c)
		}
	}
	pts := sweepPoints(r, kind)
	writeHeader(w, kind.title, r, jsonPath)
	writeWorkloadList(w, r, cells)

	w("\n### req/s, latency and server cost by `%s`\n\n", kind.knob)
	var fixed []string
	for _, other := range sweepKinds {
		if other.name == kind.name {
			continue
		}
		v := "the server's default"
		if s := other.get(cells[0].Knobs); s > 0 {
			v = other.format(s)
		}
		fixed = append(fixed, fmt.Sprintf("`%s` is %s", other.knob, v))
	}
	w("MetaStore with `%s` set to each of %s; %s. ", kind.knob, settingList(pts, kind), strings.Join(fixed, ", "))
	w("Latencies are bin/benchmark's, in ms; CPU is the server's utime+stime per 1,000 requests; **× smallest** is req/s divided by that of the smallest setting.")
	if rounds := maxRound(cells); rounds > 1 {
		w(" Each row is the round with the median req/s of %d rounds.", rounds)
	}
	w("\n\n![req/s and p99 latency by %s](%s/%s)\n\n", kind.knob, imgDir, kind.chart)
	w("| workload | system | %s | req/s | × smallest | p50 | p99 | CPU s/1k req | peak RSS MiB | errors |\n", kind.knob)
	w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, s := range sweepSeries(pts) {
		base := s.points[0].cell.RPS // points ascend, so this is the smallest setting
		for _, p := range s.points {
			c := p.cell
			label := systems()[p.system].label
			if c.Failure != "" && len(c.Parts) == 0 {
				w("| %s | %s | %s | failed: %s | | | | | | |\n", p.workload, label, kind.format(p.setting), mdEscape(truncate(c.Failure, 160)))
				continue
			}
			ratio := "–"
			if base > 0 {
				ratio = fmt.Sprintf("%.2f", c.RPS/base)
			}
			errs := fmt.Sprint(c.Errors)
			if c.Failure != "" {
				errs += " ⚠ " + mdEscape(truncate(c.Failure, 120))
			}
			// p50 and p99 only where there is one distribution (not txn-mixed).
			p50, p99 := 0.0, c.p99()
			if len(c.Parts) == 1 {
				p50 = c.Parts[0].P50ms
			}
			w("| %s | %s | %s | %.0f | %s | %s | %s | %.3f | %.0f | %s |\n",
				p.workload, label, kind.format(p.setting), c.RPS, ratio, ms(p50), ms(p99), c.CPUPer1k, mib(c.PeakRSSBytes), errs)
		}
	}
	writeProblems(w, cells, nil)
	w("\n")
	return b.String()
}

// settingList is the settings a sweep ran, ascending, as "1, 2, 4" (or
// their names).
func settingList(pts []sweepPoint, kind sweepKind) string {
	var vs []int
	for _, p := range pts {
		if !slices.Contains(vs, p.setting) {
			vs = append(vs, p.setting)
		}
	}
	slices.Sort(vs)
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = kind.format(v)
	}
	return strings.Join(names, ", ")
}
