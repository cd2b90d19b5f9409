// Command harness compares MetaStore with etcd on one machine, in one run.
//
// For every workload it starts each system fresh — MetaStore durable,
// MetaStore in-memory, real etcd v3.7, and a "ceiling" gRPC server that
// stores nothing — drives it with etcd's own bin/benchmark, records
// throughput, latency percentiles, the server's CPU per request and peak
// RSS, and stops it. The watch workloads (all but the ceiling, which serves
// no Watch) measure event latency and events a second with bin/benchmark,
// and put-100 beside 1,000 watchers and the server's memory with 100,000
// idle watchers with `harness watchers`, the harness re-executed as a
// watcher holder. The lease workloads (not on the ceiling either) measure
// keep-alives a second with bin/benchmark, and grants and revokes a
// second, lock and unlock cycles a second (clientv3's concurrency.Mutex)
// and the server's memory with 100,000 leases held with `harness leases`
// and `harness locks`, the harness re-executed again. It then times a
// restart of the durable systems with N keys loaded. Results go to a JSON
// file and to docs/benchmarks.md, with charts in docs/img/.
//
// With --sweep-shards and --sweep-batch it instead runs MetaStore alone
// across shard counts and with write batching on and off, to show what
// each buys on this machine. With --secure it instead runs MetaStore and
// etcd on put-100 and range-l in the clear, with auth on (simple token)
// and over mutual TLS, to show what each costs each system. --profile
// saves the server's CPU and allocation profiles of every MetaStore run.
//
// It is its own Go module, so that its plotting libraries stay out of the
// server's go.mod; it runs the server as a binary and imports none of its
// packages. `make harness` builds it into bin/harness; run it from the
// repository root (the default paths of --bin, --doc and --out are
// relative to it):
//
//	bin/harness --quick      # or: make bench-quick
//	bin/harness              # or: make bench
//	bin/harness --quick --sweep-shards 1,2,4,8,16,32 --sweep-batch
//	                         # or: make bench-sweep-quick
//	bin/harness --quick --secure   # or: make bench-secure-quick
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

func main() {
	if len(os.Args) > 1 && os.Args[1] == ceilingSubcommand {
		if err := runCeiling(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ceiling:", err)
			os.Exit(1)
		}
		return
	}
	subcommands := map[string]func([]string) error{
		watchersSubcommand: runWatchers,
		leasesSubcommand:   runLeases,
		locksSubcommand:    runLocks,
		metricsSubcommand:  runMetrics,
	}
	if len(os.Args) > 1 && subcommands[os.Args[1]] != nil {
		if err := subcommands[os.Args[1]](os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
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

func run(ctx context.Context, o *options) error {
	bins := []string{"metastore", "etcd", "benchmark"}
	if o.restartKeys > 0 && o.rangeRepeats > 0 {
		bins = append(bins, "etcdctl")
	}
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(o.binDir, b)); err != nil {
			return fmt.Errorf("%v: run `make build tools` first", err)
		}
	}
	// Absolute, so logs and error messages name the binaries unambiguously.
	var err error
	if o.binDir, err = filepath.Abs(o.binDir); err != nil {
		return err
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	base, err := os.MkdirTemp(o.workDir, "metastore-bench-")
	if err != nil {
		return err
	}
	o.workDir = base
	if !o.keepData {
		defer os.RemoveAll(base)
	}

	res := newResults(o, time.Now())
	if o.keepData {
		res.Notes = append(res.Notes, "data dirs and server logs kept in "+base)
	}
	measure := runComparison
	switch {
	case o.sweeping():
		measure = runSweeps
	case o.secure:
		measure = runSecure
	}
	measureErr := measure(ctx, o, res)
	res.Finished = time.Now()
	if measureErr != nil {
		// Keep what was measured, but leave docs/benchmarks.md alone: a
		// partial table would read as a complete one.
		res.Notes = append(res.Notes, "interrupted: "+measureErr.Error())
		if err := writeJSON(o.outPath, res); err != nil {
			return errors.Join(measureErr, err)
		}
		fmt.Fprintf(os.Stderr, "wrote partial results to %s\n", o.outPath)
		return measureErr
	}

	if err := writeJSON(o.outPath, res); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", o.outPath)
	sections := reportSections(res, o.outPath)
	if o.docPath != "" {
		if err := writeReport(o.docPath, res, sections); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "updated %s and its charts\n", o.docPath)
	}
	for _, s := range sections {
		fmt.Print(s.body)
	}
	return nil
}

// newResults starts the JSON document of a run: what ran, where, and how.
func newResults(o *options, started time.Time) *results {
	if o.outPath == "" {
		o.outPath = filepath.Join("bench", "results", started.Format("20060102-150405")+".json")
	}
	res := &results{
		Started: started,
		Command: commandLine(),
		Machine: describeMachine(o),
		Options: map[string]any{
			"quick": o.quick, "scale": o.scale, "rounds": o.rounds, "restart_keys": o.restartKeys, "range_repeats": o.rangeRepeats,
			"val_size": o.valSize, "key_space": o.keySpace, "mixed_key_space": o.mixedKeySpace,
			"mixed_limit": o.mixedLimit, "metastore_shards": knobValue(o.knobs.Shards),
			"metastore_max_batch": knobValue(o.knobs.MaxBatch),
		},
		Systems: o.systems,
	}
	if len(o.sweepShards) > 0 {
		res.Options["sweep_shards"] = o.sweepShards
	}
	if o.sweepBatch {
		res.Options["sweep_max_batch"] = batchSettings
	}
	if o.sweepMailbox {
		res.Options["sweep_mailbox"] = mailboxSettings
	}
	if o.secure {
		res.Options["secure_modes"] = o.secureModes
	}
	if o.profileDir != "" {
		res.Options["profile_dir"] = o.profileDir
		res.Notes = append(res.Notes, "MetaStore servers were profiled (`--profile "+o.profileDir+"`): their numbers include the profiler's cost")
	}
	allW := workloads()
	for _, n := range o.workloads {
		w := allW[n]
		res.Workloads = append(res.Workloads, workloadInfo{Name: w.name, Desc: w.desc, Clients: w.clients, Conns: w.conns, Total: w.total(o)})
	}
	return res
}

// knobValue is how the JSON shows a knob: 0 means the server's default.
func knobValue(v int) any {
	if v == 0 {
		return "default"
	}
	return v
}

// runComparison runs every round: each workload on every system in order
// (A,B,C,D,A,B,...), so drift over the run hits all systems alike, then the
// restart test of the durable systems.
func runComparison(ctx context.Context, o *options, res *results) error {
	allW, allS := workloads(), systems()
	for round := 1; round <= o.rounds; round++ {
		for _, wn := range o.workloads {
			for _, sn := range o.systems {
				if err := ctx.Err(); err != nil {
					return err
				}
				if !allS[sn].serves(allW[wn]) {
					continue
				}
				c := runCell(ctx, o, cell{sys: allS[sn], w: allW[wn], round: round, knobs: o.knobs})
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

// commandLine is how this run was invoked, as a command to paste from the
// repository root: os.Args[0] as typed (make runs bin/harness), except the
// temporary binary of `go run`, which is replaced.
func commandLine() string {
	self := os.Args[0]
	if strings.Contains(self, string(filepath.Separator)+"go-build") {
		self = "(cd bench/harness && go run .)"
	}
	parts := []string{self}
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
	setting := ""
	if c.Sweep != "" {
		setting = c.Sweep + " " + sweepByName(c.Sweep).of(c.Knobs)
	}
	if c.Security != "" {
		setting = c.Security
	}
	fmt.Fprintf(os.Stderr, "%-10s %-14s %-10s round %d: %9.0f req/s  p99 %7.2f ms  cpu %.3f s/1k  rss %.0f MiB  errors %d  %s\n",
		c.Workload, c.System, setting, c.Round, c.RPS, c.p99(), c.CPUPer1k, mib(c.PeakRSSBytes), c.Errors, status)
	if ws := c.Watch; ws != nil {
		fmt.Fprintf(os.Stderr, "           watchers %d on %d streams opened in %.2fs; events %d of %d, %d watchers got some, %d lost\n",
			ws.Watchers, ws.Streams, ws.CreateSeconds, ws.EventsReceived, ws.EventsExpected, ws.WatchersWithEvents, ws.LostWatchers)
	}
	if l := c.Leases; l != nil {
		fmt.Fprintf(os.Stderr, "           leases %d granted in %.2fs (server cpu %.2fs), rss %.0f MiB held, peak %.0f MiB; %d of %d checked alive\n",
			l.Leases, l.GrantSeconds, l.GrantCPUSeconds, mib(l.RSSHoldingBytes), mib(l.HWMHoldingBytes), l.Alive, l.Checked)
	}
	if c.Workload == "lease-grant-revoke" {
		for _, p := range c.Parts {
			fmt.Fprintf(os.Stderr, "           %-6s %9.0f /s  p99 %7.2f ms  server cpu %.2fs  errors %d\n", p.Name, p.RPS, p.P99ms, p.ServerCPUSeconds, p.Errors)
		}
	}
	for _, p := range c.Profiles {
		// The -top summary sits beside each profile.
		fmt.Fprintf(os.Stderr, "           profile %s (top %d: %s.top.txt)\n", p, topNodes, strings.TrimSuffix(p, ".pprof"))
	}
	if c.ProfileError != "" {
		fmt.Fprintf(os.Stderr, "           profile FAILED: %s\n", c.ProfileError)
	}
}

func logRestart(r restartResult) {
	status := "ok"
	if r.Failure != "" {
		status = "FAILED: " + r.Failure
	}
	fmt.Fprintf(os.Stderr, "restart    %-14s round %d: %d keys, load %.0f req/s, restart %.2fs, rss %.0f MiB, %d keys back  %s\n",
		r.System, r.Round, r.Keys, r.LoadRPS, r.RestartSeconds, mib(r.RSSAfterRestartBytes), r.KeysAfterRestart, status)
	for _, t := range r.Ranges {
		status := "ok"
		if t.Failure != "" {
			status = "FAILED: " + t.Failure
		}
		fmt.Fprintf(os.Stderr, "range      %-14s round %d: %-14s repeat %d: cold %.2fs (server cpu %.2fs), warm %.2fs (server cpu %.2fs), %d bytes  %s\n",
			r.System, r.Round, t.Query, t.Repeat, t.ColdSeconds, t.ColdCPUSeconds, t.WarmSeconds, t.WarmCPUSeconds, t.OutputBytes, status)
	}
}
