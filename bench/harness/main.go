// Command harness compares MetaStore with etcd on one machine, in one run.
//
// For every workload it starts each system fresh — MetaStore durable,
// MetaStore in-memory, real etcd v3.7, and a "ceiling" gRPC server that
// stores nothing — drives it with etcd's own bin/benchmark, records
// throughput, latency percentiles, the server's CPU per request and peak
// RSS, and stops it. It then times a restart of the durable systems with N
// keys loaded. Results go to a JSON file and to docs/benchmarks.md.
//
//	go run ./bench/harness --quick      # or: make bench-compare-quick
//	go run ./bench/harness              # or: make bench-compare
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	quick         bool
	scale         float64
	rounds        int
	systems       []string
	workloads     []string
	restartKeys   int
	valSize       int
	keySpace      int
	mixedKeySpace int
	mixedLimit    int
	shards        int
	binDir        string
	workDir       string
	keepData      bool
	outPath       string
	docPath       string
	startTimeout  time.Duration
	stopTimeout   time.Duration
	benchTimeout  time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == ceilingSubcommand {
		if err := runCeiling(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ceiling:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./bench/harness [flags]\n\nCompares MetaStore (durable and in-memory), etcd and a no-storage ceiling server\nwith bin/benchmark. Run `make build tools` first.\n\nWorkloads: %s\nSystems:   %s\n\nFlags:\n",
			strings.Join(workloadNames, ","), strings.Join(systemNames, ","))
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.quick, "quick", false, "small request totals and 100,000 restart keys (a smoke run of a few minutes)")
	fs.Float64Var(&o.scale, "scale", 1, "multiply every workload's request total by this")
	fs.IntVar(&o.rounds, "rounds", 1, "repeat the whole sweep this many times; tables show the median round")
	sysList := fs.String("systems", strings.Join(systemNames, ","), "systems to run, in this order")
	wlList := fs.String("workloads", strings.Join(workloadNames, ","), "workloads to run, in this order (none: only the restart test)")
	fs.IntVar(&o.restartKeys, "restart-keys", 1000000, "keys to load for the restart test (100000 with --quick unless set; 0 skips it)")
	fs.IntVar(&o.valSize, "val-size", 256, "value size in bytes of every write")
	fs.IntVar(&o.keySpace, "key-space", 100000, "key space of the put and txn-put workloads (random keys)")
	fs.IntVar(&o.mixedKeySpace, "mixed-key-space", 1000, "key space of txn-mixed's writes")
	fs.IntVar(&o.mixedLimit, "mixed-limit", 100, "limit of txn-mixed's prefix reads")
	fs.IntVar(&o.shards, "shards", 0, "MetaStore --shards (0: its default)")
	fs.StringVar(&o.binDir, "bin", "bin", "directory holding metastore, etcd and benchmark")
	fs.StringVar(&o.workDir, "work-dir", "", "parent of the servers' data dirs (default: the system temp dir); all systems use it, so the same filesystem")
	fs.BoolVar(&o.keepData, "keep-data", false, "keep the data dirs and server logs")
	fs.StringVar(&o.outPath, "out", "", "JSON output path (default bench/results/<timestamp>.json)")
	fs.StringVar(&o.docPath, "doc", "docs/benchmarks.md", "Markdown report to update (empty: none)")
	fs.DurationVar(&o.startTimeout, "start-timeout", 5*time.Minute, "longest wait for a server to answer after exec")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", time.Minute, "longest wait for a server to exit after SIGTERM")
	fs.DurationVar(&o.benchTimeout, "bench-timeout", 30*time.Minute, "longest run of one bin/benchmark")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	restartKeysSet := false
	fs.Visit(func(f *flag.Flag) { restartKeysSet = restartKeysSet || f.Name == "restart-keys" })
	if o.quick && !restartKeysSet {
		o.restartKeys = 100000
	}
	if o.rounds < 1 || o.restartKeys < 0 || o.scale <= 0 || o.valSize < 0 || o.keySpace < 1 || o.mixedKeySpace < 1 {
		return nil, errors.New("--rounds, --scale, --key-space and --mixed-key-space must be positive, --restart-keys and --val-size not negative")
	}
	var err error
	if o.systems, err = pickList(*sysList, systemNames); err != nil {
		return nil, fmt.Errorf("--systems: %w", err)
	}
	// "none" runs only the restart test.
	if *wlList != "none" {
		if o.workloads, err = pickList(*wlList, workloadNames); err != nil {
			return nil, fmt.Errorf("--workloads: %w", err)
		}
	}
	return o, nil
}

// pickList splits a comma list and checks every name is known.
func pickList(list string, known []string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		ok := false
		for _, k := range known {
			ok = ok || k == n
		}
		if !ok {
			return nil, fmt.Errorf("unknown %q (known: %s)", n, strings.Join(known, ","))
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func run(ctx context.Context, o *options) error {
	for _, b := range []string{"metastore", "etcd", "benchmark"} {
		if _, err := os.Stat(filepath.Join(o.binDir, b)); err != nil {
			return fmt.Errorf("%v: run `make build tools` first", err)
		}
	}
	// Absolute, so logs and error messages name the binaries unambiguously.
	var err error
	if o.binDir, err = filepath.Abs(o.binDir); err != nil {
		return err
	}
	base, err := os.MkdirTemp(o.workDir, "metastore-bench-")
	if err != nil {
		return err
	}
	o.workDir = base
	if !o.keepData {
		defer os.RemoveAll(base)
	}

	started := time.Now()
	if o.outPath == "" {
		o.outPath = filepath.Join("bench", "results", started.Format("20060102-150405")+".json")
	}
	res := &results{
		Started: started,
		Command: commandLine(),
		Machine: describeMachine(o),
		Options: map[string]any{
			"quick": o.quick, "scale": o.scale, "rounds": o.rounds, "restart_keys": o.restartKeys,
			"val_size": o.valSize, "key_space": o.keySpace, "mixed_key_space": o.mixedKeySpace,
			"mixed_limit": o.mixedLimit, "metastore_shards": o.shards,
		},
		Systems: o.systems,
	}
	if o.shards == 0 {
		res.Options["metastore_shards"] = "default"
	}
	allW := workloads()
	for _, n := range o.workloads {
		w := allW[n]
		res.Workloads = append(res.Workloads, workloadInfo{Name: w.name, Desc: w.desc, Clients: w.clients, Conns: w.conns, Total: w.total(o)})
	}
	if o.keepData {
		res.Notes = append(res.Notes, "data dirs and server logs kept in "+base)
	}

	sweepErr := sweep(ctx, o, res)
	res.Finished = time.Now()
	if sweepErr != nil {
		// Keep what was measured, but leave docs/benchmarks.md alone: a
		// partial table would read as a complete one.
		res.Notes = append(res.Notes, "interrupted: "+sweepErr.Error())
		if err := writeJSON(o.outPath, res); err != nil {
			return errors.Join(sweepErr, err)
		}
		fmt.Fprintf(os.Stderr, "wrote partial results to %s\n", o.outPath)
		return sweepErr
	}

	if err := writeJSON(o.outPath, res); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", o.outPath)
	if o.docPath != "" {
		if err := writeDoc(o.docPath, res, o.outPath); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "updated %s\n", o.docPath)
	}
	fmt.Print(markdown(res, o.outPath))
	return nil
}

// sweep runs every round: each workload on every system in order
// (A,B,C,D,A,B,...), so drift over the run hits all systems alike, then the
// restart test of the durable systems.
func sweep(ctx context.Context, o *options, res *results) error {
	allW, allS := workloads(), systems()
	for round := 1; round <= o.rounds; round++ {
		for _, wn := range o.workloads {
			for _, sn := range o.systems {
				if err := ctx.Err(); err != nil {
					return err
				}
				c := runCell(ctx, o, allS[sn], allW[wn], round)
				logCell(c)
				res.Cells = append(res.Cells, c)
			}
		}
		if o.restartKeys == 0 {
			continue
		}
		for _, sn := range o.systems {
			if !allS[sn].durable {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rr := runRestart(ctx, o, allS[sn], round)
			logRestart(rr)
			res.Restarts = append(res.Restarts, rr)
		}
	}
	return ctx.Err()
}

// commandLine is how this run was invoked, as a command to paste: os.Args[0]
// of `go run` is a temporary binary, so it is replaced.
func commandLine() string {
	parts := []string{"go run ./bench/harness"}
	for _, a := range os.Args[1:] {
		if a == "" || strings.ContainsAny(a, " \t'\"$*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// cellDirs makes a fresh data dir for one server run and names its log.
func cellDirs(o *options, name string) (dir, logPath string, err error) {
	dir = filepath.Join(o.workDir, name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", "", err
	}
	// etcd and MetaStore create the data dir themselves; it must not exist
	// yet so each starts as a brand-new member.
	return dir, dir + ".log", nil
}

// cleanupDir removes a cell's data dir as soon as the cell is done, so a
// full run does not fill the disk with a data dir per cell.
func cleanupDir(o *options, dir string) {
	if !o.keepData {
		os.RemoveAll(dir)
	}
}

func logCell(c cellResult) {
	status := "ok"
	if c.Failure != "" {
		status = "FAILED: " + c.Failure
	}
	fmt.Fprintf(os.Stderr, "%-10s %-14s round %d: %9.0f req/s  cpu %.3f s/1k  rss %.0f MiB  errors %d  %s\n",
		c.Workload, c.System, c.Round, c.RPS, c.CPUPer1k, mib(c.PeakRSSBytes), c.Errors, status)
}

func logRestart(r restartResult) {
	status := "ok"
	if r.Failure != "" {
		status = "FAILED: " + r.Failure
	}
	fmt.Fprintf(os.Stderr, "restart    %-14s round %d: %d keys, load %.0f req/s, restart %.2fs, rss %.0f MiB, %d keys back  %s\n",
		r.System, r.Round, r.Keys, r.LoadRPS, r.RestartSeconds, mib(r.RSSAfterRestartBytes), r.KeysAfterRestart, status)
}
