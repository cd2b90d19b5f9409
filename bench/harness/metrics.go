package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// metricsSubcommand draws MetaStore's own metrics under load
// (docs/metrics.md): `harness metrics` starts bin/metastore, runs a
// sequence of bin/benchmark loads against it while it scrapes /metrics
// every --interval, then renders what it saw into one PNG and prints a
// table per phase.
const metricsSubcommand = "metrics"

// metricsPhase is one load of the sequence.
type metricsPhase struct {
	label          string
	clients, conns int
	total          int
	args           []string // bin/benchmark sub-command and flags, without --total
}

// metricsRun is what one `harness metrics` saw.
type metricsRun struct {
	phases  []metricsPhase
	scrapes []scrape
	// starts and ends are when each phase began and ended; cpu the
	// server's CPU seconds at each scrape (same index as scrapes).
	starts, ends []time.Time
	cpu          []float64
	rps          []float64 // bin/benchmark's req/s of each phase
}

func runMetrics(args []string) error {
	o := &options{startTimeout: 2 * time.Minute, stopTimeout: time.Minute, benchTimeout: 30 * time.Minute}
	fs := flag.NewFlagSet(metricsSubcommand, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: bin/harness metrics [flags]   (run from the repository root after make build tools harness)

Starts bin/metastore (durable), runs put with 100 clients, put with 1,000
clients and txn-put of 4 keys (cross-shard) with bin/benchmark, one after
another, scrapes /metrics all along, and draws MetaStore's own series
(docs/metrics.md) into a PNG.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.binDir, "bin", "bin", "directory holding metastore and benchmark")
	out := fs.String("out", "docs/img/metrics-load.png", "PNG to write")
	interval := fs.Duration("interval", 250*time.Millisecond, "time between two scrapes of /metrics")
	scale := fs.Float64("scale", 1, "multiply every phase's request total by this")
	fs.IntVar(&o.valSize, "val-size", 256, "value size in bytes of every write")
	fs.IntVar(&o.keySpace, "key-space", 100000, "key space of the writes (random keys)")
	fs.IntVar(&o.knobs.Shards, "shards", 0, "MetaStore --shards (0: its default)")
	fs.StringVar(&o.workDir, "work-dir", "", "parent of the server's data dir (default: the system temp dir)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 || *scale <= 0 || *interval <= 0 {
		return fmt.Errorf("usage: harness metrics [flags] (see --help): --scale and --interval must be positive, and there are no arguments")
	}
	for _, b := range []string{"metastore", "benchmark"} {
		if _, err := os.Stat(filepath.Join(o.binDir, b)); err != nil {
			return fmt.Errorf("%v: run `make build tools` first", err)
		}
	}
	var err error
	if o.binDir, err = filepath.Abs(o.binDir); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run, err := measureMetrics(ctx, o, metricsPhases(o, *scale), *interval)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	g, err := run.figure()
	if err == nil {
		err = g.save(*out)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *out, err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	fmt.Print(run.table())
	return nil
}

// metricsPhases are the loads, in order: single-shard puts at two client
// counts, then Txns of 4 random keys, which span shards and go through the
// coordinator.
func metricsPhases(o *options, scale float64) []metricsPhase {
	total := func(n int) int { return max(1, int(float64(n)*scale)) }
	txn := []string{"txn-put", "--txn-ops=4", "--key-size=8", valSizeFlag(o), fmt.Sprintf("--key-space-size=%d", o.keySpace)}
	return []metricsPhase{
		{label: "put, 100 clients", clients: 100, conns: 100, total: total(100000), args: putArgs(o)},
		{label: "put, 1,000 clients", clients: 1000, conns: 100, total: total(100000), args: putArgs(o)},
		{label: "txn-put of 4 keys, 100 clients", clients: 100, conns: 100, total: total(20000), args: txn},
	}
}

// metricsGap separates the phases, so that each starts from a server at
// rest and the picture shows where one ends.
const metricsGap = 2 * time.Second

func measureMetrics(ctx context.Context, o *options, phases []metricsPhase, interval time.Duration) (*metricsRun, error) {
	dir, err := os.MkdirTemp(o.workDir, "metastore-metrics-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, _, err := startServer(o, systems()["metastore"], launch{dataDir: filepath.Join(dir, "data"), knobs: o.knobs}, filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	run := &metricsRun{phases: phases}
	url := "http://" + srv.endpoint() + "/metrics"
	client := &http.Client{Timeout: 5 * time.Second}

	var mu sync.Mutex
	var scrapeErr error
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			s, err := fetchMetrics(client, url)
			ps, perr := sampleProc(srv.pid())
			mu.Lock()
			if err = errors.Join(err, perr); err != nil {
				scrapeErr = err
			} else {
				run.scrapes = append(run.scrapes, s)
				run.cpu = append(run.cpu, ps.cpuSeconds)
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()

	var runErr error
	for i, p := range phases {
		if err := sleepCtx(ctx, metricsGap); err != nil {
			runErr = err
			break
		}
		fmt.Fprintf(os.Stderr, "phase %d/%d: %s, %d requests\n", i+1, len(phases), p.label, p.total)
		bctx, cancel := context.WithTimeout(ctx, o.benchTimeout)
		start := time.Now()
		res, err := runBenchmark(bctx, o, benchArgs(o, srv.endpoint(), p.clients, p.conns, p.total, p.args))
		cancel()
		if err != nil {
			runErr = err
			break
		}
		run.starts = append(run.starts, start)
		run.ends = append(run.ends, time.Now())
		rps := 0.0
		for _, part := range res.Parts {
			rps += part.RPS
		}
		run.rps = append(run.rps, rps)
	}
	if runErr == nil {
		runErr = sleepCtx(ctx, metricsGap)
	}
	close(done)
	<-stopped
	_, stopErr := srv.stop(o.stopTimeout)
	if err := errors.Join(runErr, scrapeErr, stopErr); err != nil {
		return nil, err
	}
	if len(run.scrapes) < 3 {
		return nil, fmt.Errorf("only %d scrapes of %s", len(run.scrapes), url)
	}
	return run, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// actorKinds groups the actors' series: every shard together, every watch
// actor together.
var actorKinds = []string{"shards", "coordinator", "sequencer", "watch", "lease"}

func actorKind(actor string) string {
	switch {
	case strings.HasPrefix(actor, "shard-"):
		return "shards"
	case strings.HasPrefix(actor, "watch-"):
		return "watch"
	}
	return actor
}

func ofKind(kind string) func(map[string]string) bool {
	return func(l map[string]string) bool { return actorKind(l["actor"]) == kind }
}

// writeRPCs keeps the gRPC series of the write methods the loads call.
func writeRPCs(l map[string]string) bool {
	return l["grpc_service"] == "etcdserverpb.KV" && (l["grpc_method"] == "Put" || l["grpc_method"] == "Txn")
}

// window is what happened between two scrapes.
type window struct{ a, b scrape }

func (w window) seconds() float64 { return w.b.at.Sub(w.a.at).Seconds() }

// rate is how fast the counter name (summed over keep) grew, per second.
func (w window) rate(name string, keep func(map[string]string) bool) float64 {
	return (w.b.sum(name, keep) - w.a.sum(name, keep)) / w.seconds()
}

// mean is a histogram's mean observation over the window (0 if none).
func (w window) mean(name string, keep func(map[string]string) bool) float64 {
	n := w.b.sum(name+"_count", keep) - w.a.sum(name+"_count", keep)
	if n <= 0 {
		return 0
	}
	return (w.b.sum(name+"_sum", keep) - w.a.sum(name+"_sum", keep)) / n
}

// phaseWindow is the window from the last scrape before phase i started to
// the first after it ended.
func (r *metricsRun) phaseWindow(i int) (window, int, int) {
	a, b := 0, len(r.scrapes)-1
	for j, s := range r.scrapes {
		if !s.at.After(r.starts[i]) {
			a = j
		}
	}
	for j := len(r.scrapes) - 1; j >= 0; j-- {
		if !r.scrapes[j].at.Before(r.ends[i]) {
			b = j
		}
	}
	return window{r.scrapes[a], r.scrapes[b]}, a, b
}

// table is a Markdown table of each phase: throughput, where the actors'
// time went, and the sizes of batches and commits.
func (r *metricsRun) table() string {
	var b strings.Builder
	b.WriteString("| phase | req/s | server CPU (cores) | busy: shards | coordinator | sequencer | committer (sync) | watch | lease | writes/batch | writes/commit | commit ms | request ms | max mailbox (shards) | max lag |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, p := range r.phases {
		w, ia, ib := r.phaseWindow(i)
		fmt.Fprintf(&b, "| %s | %.0f | %.2f |", p.label, r.rps[i], (r.cpu[ib]-r.cpu[ia])/w.seconds())
		for _, k := range actorKinds[:3] {
			fmt.Fprintf(&b, " %.2f |", w.rate("metastore_actor_message_duration_seconds_sum", ofKind(k)))
		}
		fmt.Fprintf(&b, " %.2f |", w.rate("metastore_sequencer_commit_duration_seconds_sum", nil))
		for _, k := range actorKinds[3:] {
			fmt.Fprintf(&b, " %.2f |", w.rate("metastore_actor_message_duration_seconds_sum", ofKind(k)))
		}
		maxDepth, maxLag := 0.0, 0.0
		for _, s := range r.scrapes[ia : ib+1] {
			maxDepth = max(maxDepth, s.sum("metastore_actor_mailbox_depth", ofKind("shards")))
			maxLag = max(maxLag, s.sum("metastore_sequencer_revision_lag", nil))
		}
		fmt.Fprintf(&b, " %.1f | %.1f | %.2f | %.2f | %.0f | %.0f |\n",
			w.mean("metastore_shard_batch_writes", nil), w.mean("metastore_sequencer_commit_writes", nil),
			1000*w.mean("metastore_sequencer_commit_duration_seconds", nil), 1000*w.mean("grpc_server_handling_seconds", writeRPCs),
			maxDepth, maxLag)
	}
	return b.String()
}
