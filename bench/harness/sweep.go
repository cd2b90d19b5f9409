package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
)

// batchSettings are the --max-batch values of the batching sweep: the
// server's default, and 1, which turns batching off. The smallest setting
// is each sweep's baseline, so "batching on / off" reads as a speed-up.
var batchSettings = []int{512, 1}

// mailboxSettings are the mailbox kinds of the mailbox sweep, as
// "dispatcher/queue": every pair of the server's --mailbox-dispatcher and
// --mailbox-queue values (actors.Mailboxes in the server's module), its
// default first. The harness runs the server as a binary, so it lists the
// flag values itself; a kind the server no longer knows fails its cells,
// as the server refuses to start. A sweep setting is an index into it, from 1, so the default
// is the baseline.
var mailboxSettings = []string{"pinned/ring", "pinned/mpsc", "goroutine/ring", "goroutine/mpsc"}

// sweepKind is one MetaStore knob varied over settings.
type sweepKind struct {
	name  string // "shards", "batch" or "mailbox": JSON, file names and doc sections
	knob  string // the server flag it varies
	title string // heading in docs/benchmarks.md
	chart string // PNG file name under docs/img
	// barChart: a few settings compare best as bars side by side; many
	// (shard counts) as lines.
	barChart bool
	// defaultLast: the server's default is the largest setting, so bars
	// run from the largest down and the default comes first.
	defaultLast bool
	// names, if set, name the settings: setting v is names[v-1].
	names []string
	get   func(knobs) int // 0: the server's default
	set   func(knobs, int) knobs
}

var sweepKinds = []sweepKind{
	{
		name: "shards", knob: "--shards", title: "Shard sweep", chart: "shards.png",
		get: func(k knobs) int { return k.Shards },
		set: func(k knobs, v int) knobs { k.Shards = v; return k },
	},
	{
		name: "batch", knob: "--max-batch", title: "Batching sweep", chart: "batching.png", barChart: true, defaultLast: true,
		get: func(k knobs) int { return k.MaxBatch },
		set: func(k knobs, v int) knobs { k.MaxBatch = v; return k },
	},
	{
		name: "mailbox", knob: "--mailbox-dispatcher/--mailbox-queue", title: "Mailbox sweep", chart: "mailbox.png", barChart: true,
		names: mailboxSettings,
		get:   func(k knobs) int { return slices.Index(mailboxSettings, k.Mailbox) + 1 },
		set:   func(k knobs, v int) knobs { k.Mailbox = mailboxSettings[v-1]; return k },
	},
}

// of is the setting knobs hold for this kind, as tables show it.
func (k sweepKind) of(kn knobs) string { return k.format(k.get(kn)) }

// format is how tables show setting v.
func (k sweepKind) format(v int) string {
	if k.names != nil {
		return k.names[v-1]
	}
	return strconv.Itoa(v)
}

// settingLabel names a setting in a chart legend.
func (k sweepKind) settingLabel(v int) string {
	switch {
	case k.names != nil:
		return k.format(v)
	case k.name == "batch" && v == 1:
		return fmt.Sprintf("%s %d (batching off)", k.knob, v)
	}
	return fmt.Sprintf("%s %d", k.knob, v)
}

// settings are the settings a sweep of this kind runs by default: every
// named one (the others' lists come from flags).
func (k sweepKind) settings() []int {
	out := make([]int, len(k.names))
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func sweepByName(name string) sweepKind {
	for _, k := range sweepKinds {
		if k.name == name {
			return k
		}
	}
	panic("unknown sweep " + name) // names come from sweepKinds only
}

// plannedSweep is a sweep this run makes, with its settings in order.
type plannedSweep struct {
	sweepKind
	settings []int
}

func (o *options) sweeps() []plannedSweep {
	var ps []plannedSweep
	if len(o.sweepShards) > 0 {
		ps = append(ps, plannedSweep{sweepByName("shards"), o.sweepShards})
	}
	if o.sweepBatch {
		ps = append(ps, plannedSweep{sweepByName("batch"), batchSettings})
	}
	if o.sweepMailbox {
		k := sweepByName("mailbox")
		ps = append(ps, plannedSweep{k, k.settings()})
	}
	return ps
}

// runSweeps runs every sweep once per round. The settings are the
// innermost loop, so they alternate (1,2,4,…,1,2,4,…) and slow drift of
// the machine hits all of them alike rather than the last ones most; even
// rounds run them in reverse so no setting always runs first after a
// change of workload or system.
func runSweeps(ctx context.Context, o *options, res *results) error {
	allW, allS := workloads(), systems()
	for round := 1; round <= o.rounds; round++ {
		for _, sw := range o.sweeps() {
			settings := slices.Clone(sw.settings)
			if round%2 == 0 {
				slices.Reverse(settings)
			}
			for _, wn := range o.workloads {
				for _, sn := range o.systems {
					for _, v := range settings {
						if err := ctx.Err(); err != nil {
							return err
						}
						c := runCell(ctx, o, cell{sys: allS[sn], w: allW[wn], round: round, sweep: sw.name, knobs: sw.set(o.knobs, v)})
						logCell(c)
						res.Sweeps = append(res.Sweeps, c)
					}
				}
			}
		}
	}
	return ctx.Err()
}

// sweepPoint is the median round of one sweep setting for one system and
// workload.
type sweepPoint struct {
	system, workload string
	setting          int
	cell             cellResult
}

// sweepPoints groups a sweep's cells into points, ordered by workload and
// system as the run listed them and by setting ascending.
func sweepPoints(r *results, kind sweepKind) []sweepPoint {
	type pk struct {
		system, workload string
		setting          int
	}
	groups := map[pk][]cellResult{}
	var order []pk
	for _, c := range r.Sweeps {
		if c.Sweep != kind.name {
			continue
		}
		k := pk{c.System, c.Workload, kind.get(c.Knobs)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], c)
	}
	rank := func(list []string, s string) int { return slices.Index(list, s) }
	var wls []string
	for _, w := range r.Workloads {
		wls = append(wls, w.Name)
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.workload != b.workload {
			return rank(wls, a.workload) < rank(wls, b.workload)
		}
		if a.system != b.system {
			return rank(r.Systems, a.system) < rank(r.Systems, b.system)
		}
		return a.setting < b.setting
	})
	pts := make([]sweepPoint, 0, len(order))
	for _, k := range order {
		pts = append(pts, sweepPoint{k.system, k.workload, k.setting, median(groups[k])})
	}
	return pts
}

// series is one line (or bar group) of a sweep chart: a system on a
// workload, its points in ascending setting.
type series struct {
	label  string
	points []sweepPoint
}

func sweepSeries(pts []sweepPoint) []series {
	var out []series
	for _, p := range pts {
		label := fmt.Sprintf("%s, %s", systems()[p.system].label, p.workload)
		if n := len(out); n > 0 && out[n-1].label == label {
			out[n-1].points = append(out[n-1].points, p)
			continue
		}
		out = append(out, series{label: label, points: []sweepPoint{p}})
	}
	return out
}

// ranSweeps are the sweeps with cells in the results, in sweepKinds order.
func ranSweeps(r *results) []sweepKind {
	var out []sweepKind
	for _, k := range sweepKinds {
		for _, c := range r.Sweeps {
			if c.Sweep == k.name {
				out = append(out, k)
				break
			}
		}
	}
	return out
}
