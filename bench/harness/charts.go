package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// throughputChart is the comparison's chart, under imgDir.
const throughputChart = "throughput.png"

// chartDPI makes a 10-inch chart 960 pixels wide: sharp on a page without
// bloating the repository.
const chartDPI = 96

// Colours from Okabe and Ito's palette, which stays distinguishable to
// colour-blind readers; a system keeps its colour across charts.
var (
	systemColors = map[string]color.Color{
		"metastore":     color.RGBA{0x00, 0x72, 0xb2, 0xff}, // blue
		"metastore-mem": color.RGBA{0x56, 0xb4, 0xe9, 0xff}, // sky blue
		"etcd":          color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // orange
		"ceiling":       color.RGBA{0x99, 0x99, 0x99, 0xff}, // grey
	}
	settingColors = []color.Color{
		color.RGBA{0x00, 0x9e, 0x73, 0xff}, // green
		color.RGBA{0xd5, 0x5e, 0x00, 0xff}, // vermilion
		color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // purple
		color.RGBA{0xf0, 0xe4, 0x42, 0xff}, // yellow
	}
)

func colorAt(cs []color.Color, i int) color.Color {
	if i < len(cs) {
		return cs[i]
	}
	return plotutil.Color(i)
}

// writeCharts draws the charts of what the run measured into dir.
func writeCharts(dir string, r *results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	// The watch and lease workloads have tables of their own, in other
	// units.
	if kv, _, _ := splitSections(r); len(r.Cells) > 0 && len(kv.Workloads) > 0 {
		errs = append(errs, saveChart(dir, throughputChart, func() (figure, error) { return throughputFigure(kv) }))
	}
	for _, k := range ranSweeps(r) {
		errs = append(errs, saveChart(dir, k.chart, func() (figure, error) { return sweepFigure(r, k) }))
	}
	return errors.Join(errs...)
}

func saveChart(dir, name string, build func() (figure, error)) error {
	f, err := build()
	if err == nil {
		err = f.save(filepath.Join(dir, name))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// figure is panels side by side with one legend in a strip at their right,
// where it cannot hide data however the numbers fall.
type figure struct {
	width, height, legendWidth vg.Length
	panels                     []*plot.Plot
	legend                     plot.Legend
}

func (f figure) save(path string) error {
	headroom(f.panels...)
	img := vgimg.NewWith(vgimg.UseWH(f.width, f.height), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	pad := vg.Points(8)
	tiles := draw.Tiles{Rows: 1, Cols: len(f.panels), PadX: vg.Points(24), PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad}
	canvases := plot.Align([][]*plot.Plot{f.panels}, tiles, draw.Crop(dc, 0, -f.legendWidth, 0, 0))
	for i, p := range f.panels {
		p.Draw(canvases[0][i])
	}
	f.legend.Top, f.legend.Left = true, true
	f.legend.Padding = vg.Points(5)
	// Level with the top of the panels' data, below their titles.
	f.legend.Draw(draw.Crop(dc, f.width-f.legendWidth, 0, 0, -pad-vg.Points(28)))

	out, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(out)
	return errors.Join(err, out.Close())
}

// newPanel is a plot with a title, a y label and horizontal grid lines.
func newPanel(title, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	p.Y.Tick.Marker = kTicks{}
	g := plotter.NewGrid()
	g.Vertical.Width = 0
	g.Horizontal.Color = color.Gray{0xdd}
	p.Add(g)
	return p
}

// kTicks are gonum's default ticks labelled without trailing zeros (25,
// not 25.00), and in thousands (12k) on a scale that reaches 10,000.
type kTicks struct{}

func (kTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		switch {
		case ts[i].Label == "":
		case ts[i].Value == 0:
			ts[i].Label = "0"
		case hi >= 10000:
			ts[i].Label = fmt.Sprintf("%gk", ts[i].Value/1000)
		default:
			ts[i].Label = fmt.Sprintf("%g", ts[i].Value)
		}
	}
	return ts
}

// headroom raises the top of each panel's y axis a little above the data,
// which gonum would otherwise let touch the frame.
func headroom(panels ...*plot.Plot) {
	for _, p := range panels {
		p.Y.Max *= 1.08
	}
}

// barGroups adds grouped bars to p: values[b][g] is bar b of group g,
// bars side by side around each group's tick.
func barGroups(p *plot.Plot, legend *plot.Legend, groups []string, bars []string, colors []color.Color, values [][]float64, barWidth vg.Length) error {
	for b := range bars {
		bc, err := plotter.NewBarChart(plotter.Values(values[b]), barWidth)
		if err != nil {
			return err
		}
		bc.Color = colors[b]
		bc.LineStyle.Width = 0
		bc.Offset = vg.Length(float64(b)-float64(len(bars)-1)/2) * barWidth
		p.Add(bc)
		if legend != nil {
			legend.Add(bars[b], bc)
		}
	}
	p.NominalX(groups...)
	// Half a group of room at either end, so the outer bars clear the axes.
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	return nil
}

// throughputFigure: req/s of every system on every workload, the median
// round of each. txn-mixed counts its reads and writes together.
func throughputFigure(r *results) (figure, error) {
	f := figure{width: 10 * vg.Inch, height: 4.5 * vg.Inch, legendWidth: 2.2 * vg.Inch, legend: plot.NewLegend()}
	p := newPanel("Throughput by workload (bin/benchmark, same machine)", "req/s")
	cells := groupCells(r.Cells)
	var groups, bars []string
	var colors []color.Color
	for _, w := range r.Workloads {
		groups = append(groups, w.Name)
	}
	values := make([][]float64, len(r.Systems))
	for i, s := range r.Systems {
		bars = append(bars, systems()[s].label)
		colors = append(colors, systemColors[s])
		for _, w := range r.Workloads {
			v := 0.0
			if cs := cells[key{s, w.Name}]; len(cs) > 0 {
				v = median(cs).RPS
			}
			values[i] = append(values[i], v)
		}
	}
	if err := barGroups(p, &f.legend, groups, bars, colors, values, barWidth(f, len(groups), len(bars))); err != nil {
		return f, err
	}
	f.panels = []*plot.Plot{p}
	return f, nil
}

// barWidth fills 80% of each group's share of the panels' width, capped so
// few bars do not turn into blocks.
func barWidth(f figure, groups, bars int) vg.Length {
	panels := max(1, len(f.panels))
	// About an inch of each panel goes to its axis and padding.
	perGroup := (f.width - f.legendWidth - vg.Inch*vg.Length(panels)) / vg.Length(panels*groups)
	return min(perGroup*0.8/vg.Length(bars), 0.35*vg.Inch)
}

// sweepFigure: req/s and p99 of each system × workload by setting. Shard
// counts are lines on a log2 axis; the two batching settings are bars.
func sweepFigure(r *results, k sweepKind) (figure, error) {
	f := figure{width: 11 * vg.Inch, height: 4.2 * vg.Inch, legendWidth: 2.7 * vg.Inch, legend: plot.NewLegend()}
	rps := newPanel("req/s by "+k.knob, "req/s")
	p99 := newPanel("p99 latency by "+k.knob, "p99 ms")
	f.panels = []*plot.Plot{rps, p99}
	ss := sweepSeries(sweepPoints(r, k))
	if len(ss) == 0 {
		return f, errors.New("no points")
	}
	draw := sweepLines
	if k.barChart {
		draw = sweepBars
	}
	err := draw(&f, ss, k)
	return f, err
}

// sweepLines draws a line per series; colour is the system, dashes and
// marker the workload.
func sweepLines(f *figure, ss []series, k sweepKind) error {
	wlIndex := map[string]int{}
	settings := map[int]bool{}
	for _, s := range ss {
		if _, ok := wlIndex[s.points[0].workload]; !ok {
			wlIndex[s.points[0].workload] = len(wlIndex)
		}
		for _, p := range s.points {
			settings[p.setting] = true
		}
	}
	for _, s := range ss {
		sys, wl := s.points[0].system, wlIndex[s.points[0].workload]
		var rpsXY, p99XY plotter.XYs
		for _, p := range s.points {
			if p.cell.RPS > 0 {
				rpsXY = append(rpsXY, plotter.XY{X: float64(p.setting), Y: p.cell.RPS})
			}
			if v := p.cell.p99(); v > 0 {
				p99XY = append(p99XY, plotter.XY{X: float64(p.setting), Y: v})
			}
		}
		for i, xy := range []plotter.XYs{rpsXY, p99XY} {
			if len(xy) == 0 {
				continue
			}
			l, pts, err := plotter.NewLinePoints(xy)
			if err != nil {
				return err
			}
			l.Color, l.Width, l.Dashes = systemColors[sys], vg.Points(1.5), plotutil.Dashes(wl)
			pts.Color, pts.Shape, pts.Radius = systemColors[sys], plotutil.Shape(wl), vg.Points(3)
			f.panels[i].Add(l, pts)
			if i == 0 {
				f.legend.Add(s.label, l, pts)
			}
		}
	}
	var ticks []plot.Tick
	lo, hi := math.Inf(1), math.Inf(-1)
	for v := range settings {
		ticks = append(ticks, plot.Tick{Value: float64(v), Label: fmt.Sprint(v)})
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	for _, p := range f.panels {
		p.X.Label.Text = k.knob
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		// Room around the first and last points, in log space.
		p.X.Min, p.X.Max = lo/1.25, hi*1.25
	}
	return nil
}

// sweepBars draws a group per series (workload and system) and a bar per
// setting in it.
func sweepBars(f *figure, ss []series, k sweepKind) error {
	settings := []int{}
	for _, p := range ss[0].points {
		settings = append(settings, p.setting)
	}
	var groups, bars []string
	var colors []color.Color
	for _, s := range ss {
		p := s.points[0]
		groups = append(groups, p.workload+"\n"+strings.TrimPrefix(systems()[p.system].label, "MetaStore "))
	}
	// The server's default first: batching's is its largest setting, so
	// "on, off"; the mailbox's its first.
	if k.defaultLast {
		slices.Reverse(settings)
	}
	rpsVals := make([][]float64, len(settings))
	p99Vals := make([][]float64, len(settings))
	for b, v := range settings {
		bars = append(bars, k.settingLabel(v))
		colors = append(colors, colorAt(settingColors, b))
		for _, s := range ss {
			var c cellResult
			for _, p := range s.points {
				if p.setting == v {
					c = p.cell
				}
			}
			rpsVals[b] = append(rpsVals[b], c.RPS)
			p99Vals[b] = append(p99Vals[b], c.p99())
		}
	}
	w := barWidth(*f, len(groups), len(bars))
	if err := barGroups(f.panels[0], &f.legend, groups, bars, colors, rpsVals, w); err != nil {
		return err
	}
	return barGroups(f.panels[1], nil, groups, bars, colors, p99Vals, w)
}
