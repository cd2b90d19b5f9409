package main

import (
	"errors"
	"image/color"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// metricsSmooth is how many scrape intervals a plotted rate spans (1 s at
// the default 250 ms): a rate over one interval is mostly the jitter of
// when the scrape landed.
const metricsSmooth = 4

// kindColors gives each actor kind (and the committer) one colour across
// the panels.
var kindColors = map[string]color.Color{
	"shards":      color.RGBA{0x00, 0x72, 0xb2, 0xff}, // blue
	"coordinator": color.RGBA{0xd5, 0x5e, 0x00, 0xff}, // vermilion
	"sequencer":   color.RGBA{0x00, 0x9e, 0x73, 0xff}, // green
	"committer":   color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // orange
	"watch":       color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // purple
	"lease":       color.RGBA{0x56, 0xb4, 0xe9, 0xff}, // sky blue
	"process":     color.Gray{0x88},
}

// metricsLine is one line of a panel: a value per window.
type metricsLine struct {
	label string
	color color.Color
	value func(w window, cpu float64) float64
}

// figure draws six panels of the run over time: throughput, where the
// actors' time goes, their queues, batch and commit sizes, latencies, and
// the revisions stamped but not yet visible.
func (r *metricsRun) figure() (grid, error) {
	busy := func(kind string) metricsLine {
		return metricsLine{kind, kindColors[kind], func(w window, _ float64) float64 {
			return w.rate("metastore_actor_message_duration_seconds_sum", ofKind(kind))
		}}
	}
	depth := func(kind string) metricsLine {
		return metricsLine{kind, kindColors[kind], func(w window, _ float64) float64 {
			return w.b.sum("metastore_actor_mailbox_depth", ofKind(kind))
		}}
	}
	panels := []struct {
		title, y string
		lines    []metricsLine
	}{
		{"Throughput (Put and Txn answered)", "req/s", []metricsLine{
			{"req/s", kindColors["shards"], func(w window, _ float64) float64 {
				return w.rate("grpc_server_handled_total", writeRPCs)
			}},
		}},
		{"Busy time: seconds spent per second", "s/s (cores)", []metricsLine{
			{"server CPU", kindColors["process"], func(w window, cpu float64) float64 { return cpu }},
			busy("shards"), busy("coordinator"), busy("sequencer"),
			{"committer (sync)", kindColors["committer"], func(w window, _ float64) float64 {
				return w.rate("metastore_sequencer_commit_duration_seconds_sum", nil)
			}},
			busy("watch"), busy("lease"),
		}},
		{"Waiting: mailboxes and write queues", "messages, writes", []metricsLine{
			depth("shards"), depth("coordinator"), depth("sequencer"), depth("watch"),
			{"shards' write queues", color.Black, func(w window, _ float64) float64 {
				return w.b.sum("metastore_write_queue_writes", ofKind("shards"))
			}},
			{"commit queue (groups)", kindColors["committer"], func(w window, _ float64) float64 {
				return w.b.sum("metastore_sequencer_commit_queue_groups", nil)
			}},
		}},
		{"Batching: mean writes per", "writes", []metricsLine{
			{"shard batch", kindColors["shards"], func(w window, _ float64) float64 {
				return w.mean("metastore_shard_batch_writes", nil)
			}},
			{"storage commit", kindColors["committer"], func(w window, _ float64) float64 {
				return w.mean("metastore_sequencer_commit_writes", nil)
			}},
		}},
		{"Latency: mean", "ms", []metricsLine{
			{"request (gRPC handling)", kindColors["shards"], func(w window, _ float64) float64 {
				return 1000 * w.mean("grpc_server_handling_seconds", writeRPCs)
			}},
			{"storage commit (write + sync)", kindColors["committer"], func(w window, _ float64) float64 {
				return 1000 * w.mean("metastore_sequencer_commit_duration_seconds", nil)
			}},
		}},
		{"Revisions stamped, not yet visible", "revisions", []metricsLine{
			{"lag", kindColors["sequencer"], func(w window, _ float64) float64 {
				return w.b.sum("metastore_sequencer_revision_lag", nil)
			}},
		}},
	}
	g := grid{cols: 3, width: 15 * vg.Inch, height: 8.5 * vg.Inch}
	t0 := r.scrapes[0].at
	for _, spec := range panels {
		p := newPanel(spec.title, spec.y)
		p.X.Label.Text = "seconds"
		p.X.Tick.Marker, p.Y.Tick.Marker = shortTicks{}, shortTicks{p.Y.Tick.Marker}
		p.Legend.Top = true
		p.Legend.TextStyle.Font.Size = vg.Points(9)
		for _, l := range spec.lines {
			var xy plotter.XYs
			for i := metricsSmooth; i < len(r.scrapes); i++ {
				w := window{r.scrapes[i-metricsSmooth], r.scrapes[i]}
				cpu := (r.cpu[i] - r.cpu[i-metricsSmooth]) / w.seconds()
				xy = append(xy, plotter.XY{X: w.b.at.Sub(t0).Seconds(), Y: l.value(w, cpu)})
			}
			line, err := plotter.NewLine(xy)
			if err != nil {
				return g, err
			}
			line.Color, line.Width = l.color, vg.Points(1.5)
			p.Add(line)
			p.Legend.Add(l.label, line)
		}
		r.markPhases(p)
		g.panels = append(g.panels, p)
	}
	return g, nil
}

// markPhases draws a dashed line where each phase starts, numbered as in
// the table.
func (r *metricsRun) markPhases(p *plot.Plot) {
	t0 := r.scrapes[0].at
	for i, s := range r.starts {
		p.Add(phaseMark{x: s.Sub(t0).Seconds(), label: strconv.Itoa(i + 1)})
	}
}

// phaseMark is a dashed vertical line across the whole panel, whatever its
// y range, with the phase's number at its top.
type phaseMark struct {
	x     float64
	label string
}

func (m phaseMark) Plot(c draw.Canvas, p *plot.Plot) {
	x := c.X(p.X.Norm(m.x))
	style := draw.LineStyle{Color: color.Gray{0xaa}, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(3), vg.Points(3)}}
	c.StrokeLine2(style, x, c.Min.Y, x, c.Max.Y)
	text := p.X.Label.TextStyle
	text.Color = color.Gray{0x66}
	text.Font.Size = vg.Points(10)
	c.FillText(text, vg.Point{X: x + vg.Points(3), Y: c.Max.Y - vg.Points(12)}, m.label)
}

// shortTicks labels ticks with at most three significant digits (gonum's
// own would print 1.2000000000000002), in thousands past 10,000.
type shortTicks struct{ plot.Ticker }

func (s shortTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	if s.Ticker != nil {
		ts = s.Ticker.Ticks(lo, hi)
	} else {
		ts = plot.DefaultTicks{}.Ticks(lo, hi)
	}
	for i := range ts {
		switch v := ts[i].Value; {
		case ts[i].Label == "":
		case hi >= 10000 && v != 0:
			ts[i].Label = short(v/1000) + "k"
		default:
			ts[i].Label = short(v)
		}
	}
	return ts
}

// short is v rounded to three significant digits, without an exponent.
func short(v float64) string {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// grid is panels in rows of cols, each with its own legend.
type grid struct {
	cols          int
	width, height vg.Length
	panels        []*plot.Plot
}

func (g grid) save(path string) error {
	if len(g.panels) == 0 {
		return errors.New("no panels")
	}
	// Room above the data for each panel's legend.
	for _, p := range g.panels {
		p.Y.Max *= 1.45
	}
	rows := (len(g.panels) + g.cols - 1) / g.cols
	cells := make([][]*plot.Plot, rows)
	for i, p := range g.panels {
		cells[i/g.cols] = append(cells[i/g.cols], p)
	}
	for len(cells[rows-1]) < g.cols {
		cells[rows-1] = append(cells[rows-1], nil)
	}
	img := vgimg.NewWith(vgimg.UseWH(g.width, g.height), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	pad := vg.Points(8)
	tiles := draw.Tiles{Rows: rows, Cols: g.cols, PadX: vg.Points(24), PadY: vg.Points(24), PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad}
	canvases := plot.Align(cells, tiles, dc)
	for i, row := range cells {
		for j, p := range row {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(out)
	return errors.Join(err, out.Close())
}
