package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// workload is one bin/benchmark invocation.
type workload struct {
	name string
	// what the table says about it
	desc string
	// full and quick are the request totals of the two modes.
	full, quick int
	// clients and conns of bin/benchmark.
	clients, conns int
	// args are the sub-command and its flags, without --total.
	args func(o *options) []string
	// prefill runs against the fresh server before the workload.
	prefill func(ctx context.Context, c *clientv3.Client, o *options) error
	// fixed: --quick and --scale leave the total alone.
	fixed bool
	// watch: the workload needs etcd's Watch service, which the ceiling
	// does not serve; the report gives the watch workloads a section of
	// their own.
	watch bool
	// totalFlag is the bin/benchmark flag the total goes to; empty:
	// --total (the watch sub-commands call theirs --put-total).
	totalFlag string
	// holder, when set, is a `harness watchers` process holding watchers
	// on the server while the workload runs; a workload without args is
	// the holder alone (total is its watchers).
	holder func(o *options, total int) holderSpec
	// lease: the workload needs etcd's Lease service, which the ceiling
	// does not serve; the report gives the lease workloads a section of
	// their own.
	lease bool
	// tool, when set, runs the workload instead of bin/benchmark: the
	// harness re-executed as one of its measuring subcommands (`harness
	// leases`, `harness locks`); it returns the subcommand and its flags,
	// without --endpoint and --server-pid.
	tool func(total int) []string
	// hold: the tool holds what it made (`harness leases --hold`) while
	// the server's RSS is read, like watchers-idle-100k's holder.
	hold bool
}

// rangeKey is the key the range workloads read.
const rangeKey = "range-key"

// kvWorkloadNames are the workloads of etcd's KV service, in order.
var kvWorkloadNames = []string{
	"put-1", "put-16", "put-100", "put-1000",
	"range-l", "range-s", "txn-put", "txn-mixed", "stm",
}

// workloadNames is the default order of the workloads: the KV ones, then
// the watch ones, except put-100-watched, which runs right after put-100,
// its baseline, so that drift of the machine between them is small, then
// the lease ones.
var workloadNames = func() []string {
	var out []string
	for _, n := range kvWorkloadNames {
		out = append(out, n)
		if n == "put-100" {
			out = append(out, "put-100-watched")
		}
	}
	for _, n := range watchWorkloadNames {
		if n != "put-100-watched" {
			out = append(out, n)
		}
	}
	return append(out, leaseWorkloadNames...)
}()

// putArgs are the put workloads' bin/benchmark arguments.
func putArgs(o *options) []string {
	return []string{"put", "--key-size=8", valSizeFlag(o), fmt.Sprintf("--key-space-size=%d", o.keySpace)}
}

func workloads() map[string]workload {
	put := func(clients, conns, full, quick int) workload {
		return workload{
			name: fmt.Sprintf("put-%d", clients), full: full, quick: quick, clients: clients, conns: conns,
			desc: "put to random keys of the key space",
			args: putArgs,
		}
	}
	prefillRangeKey := func(ctx context.Context, c *clientv3.Client, o *options) error {
		_, err := c.Put(ctx, rangeKey, strings.Repeat("v", o.valSize))
		return err
	}
	ranged := func(consistency string, label string) workload {
		return workload{
			name: "range-" + consistency, full: 200000, quick: 10000, clients: 100, conns: 100,
			desc:    "get of one existing key, " + label,
			args:    func(*options) []string { return []string{"range", rangeKey, "--consistency=" + consistency} },
			prefill: prefillRangeKey,
		}
	}
	all := []workload{
		put(1, 1, 20000, 1000),
		put(16, 16, 100000, 5000),
		put(100, 100, 200000, 10000),
		put(1000, 100, 200000, 10000),
		ranged("l", "linearizable"),
		ranged("s", "serializable"),
		{
			name: "txn-put", full: 100000, quick: 5000, clients: 100, conns: 100,
			desc: "txn holding one put, keys in turn over the key space",
			args: func(o *options) []string {
				return []string{"txn-put", "--txn-ops=1", "--key-size=8", valSizeFlag(o), fmt.Sprintf("--key-space-size=%d", o.keySpace)}
			},
		},
		{
			name: "txn-mixed", full: 100000, quick: 5000, clients: 100, conns: 100,
			desc: "txn holding one put or one limited read of all keys (1:1), linearizable",
			args: func(o *options) []string {
				return []string{"txn-mixed", "--consistency=l", "--rw-ratio=1", "--key-size=8", valSizeFlag(o),
					fmt.Sprintf("--key-space-size=%d", o.mixedKeySpace), fmt.Sprintf("--limit=%d", o.mixedLimit)}
			},
		},
		{
			name: "stm", full: 50000, quick: 2000, clients: 100, conns: 100,
			desc: "STM (clientv3 concurrency), repeatable reads, 2 of 1000 keys per txn, one of them written",
			args: func(o *options) []string {
				return []string{"stm", "--isolation=r", "--keys=1000", "--keys-per-txn=2", "--txn-wr-percent=50", valSizeFlag(o)}
			},
		},
	}
	all = append(all, watchWorkloads()...)
	all = append(all, leaseWorkloads()...)
	m := make(map[string]workload, len(all))
	for _, w := range all {
		m[w.name] = w
	}
	return m
}

func valSizeFlag(o *options) string { return fmt.Sprintf("--val-size=%d", o.valSize) }

func (w workload) total(o *options) int {
	t := w.full
	if w.fixed {
		return t
	}
	if o.quick {
		t = w.quick
	}
	return max(1, int(float64(t)*o.scale))
}

// benchArgs is the complete bin/benchmark command line for a workload.
func benchArgs(o *options, endpoint string, clients, conns, total int, sub []string) []string {
	return benchArgsTotal(o, endpoint, clients, conns, "--total", total, sub)
}

// benchArgsTotal is benchArgs with the total given to totalFlag.
func benchArgsTotal(o *options, endpoint string, clients, conns int, totalFlag string, total int, sub []string) []string {
	args := []string{
		"--endpoints=" + endpoint,
		fmt.Sprintf("--clients=%d", clients),
		fmt.Sprintf("--conns=%d", conns),
		"--precise", // full float precision: 4 decimals of seconds hide sub-ms latencies
	}
	args = append(args, sub...)
	return append(args, fmt.Sprintf("%s=%d", totalFlag, total))
}

// cellResult is one system × workload × round.
type cellResult struct {
	System   string       `json:"system"`
	Workload string       `json:"workload"`
	Round    int          `json:"round"`
	Clients  int          `json:"clients"`
	Conns    int          `json:"conns"`
	Total    int          `json:"total"`
	Command  string       `json:"benchmark_command"`
	Parts    []partResult `json:"parts"`
	// Requests and RPS are over all parts (txn-mixed's reads and writes).
	Requests int     `json:"requests"`
	RPS      float64 `json:"requests_per_second"`
	Errors   int     `json:"errors"`
	// ServerCPUSeconds is utime+stime of the server process during the
	// workload; CPUPer1k divides it, less AuthenticateCPUSeconds, by the
	// successful requests / 1000.
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	CPUPer1k         float64 `json:"server_cpu_seconds_per_1k_requests"`
	PeakRSSBytes     int64   `json:"server_peak_rss_bytes"`
	WallSeconds      float64 `json:"wall_seconds"`
	// ServerLogProblems counts error/warning lines in the server's log.
	ServerLogProblems int      `json:"server_log_problems"`
	ServerLogSamples  []string `json:"server_log_samples,omitempty"`
	Failure           string   `json:"failure,omitempty"`
	// Sweep is the sweep the cell belongs to ("shards" or "batch"; empty in
	// the comparison) and Knobs the MetaStore flags it ran with.
	Sweep string `json:"sweep,omitempty"`
	Knobs knobs  `json:"metastore_knobs,omitzero"`
	// Security is the mode of a secure run (plain, auth or tls; empty in
	// the other runs).
	Security string `json:"security,omitempty"`
	// In auth mode bin/benchmark authenticates each of its connections
	// (Authenticates of them) before it starts timing, so its bcrypt
	// checks fall into ServerCPUSeconds but not into its requests; the
	// harness measures the server CPU of as many Authenticates just
	// before the workload (AuthenticateCPUSeconds) and leaves it out of
	// CPUPer1k.
	Authenticates          int     `json:"authenticates,omitempty"`
	AuthenticateCPUSeconds float64 `json:"authenticate_cpu_seconds,omitempty"`
	// Profiles are the files --profile saved for this cell; a profile
	// that failed does not fail the measurement, it is noted here.
	Profiles     []string `json:"profiles,omitempty"`
	ProfileError string   `json:"profile_error,omitempty"`
	// Watch is what the watcher holder saw (put-100-watched,
	// watchers-idle-100k).
	Watch *watchStats `json:"watch,omitempty"`
	// Leases is what the lease holder saw (leases-held-100k).
	Leases *leaseStats `json:"leases,omitempty"`
}

// p99 is the cell's p99 latency in ms (a watch benchmark's: its events');
// 0 for txn-mixed, whose reads and writes have separate distributions.
func (c cellResult) p99() float64 {
	parts := countedParts(c.Parts)
	if len(parts) != 1 {
		return 0
	}
	return parts[0].P99ms
}

// cell names one run: a workload on a system, in a round, with MetaStore's
// knobs (and the sweep that set them) and, in a secure run, its mode.
type cell struct {
	sys   system
	w     workload
	round int
	sweep string
	knobs knobs
	sec   security
}

// name identifies the cell in data dir and profile names.
func (c cell) name() string {
	n := c.sys.name + "-" + c.w.name
	if c.sweep != "" {
		k := sweepByName(c.sweep)
		if k.names != nil {
			n += "-" + c.sweep + "-" + strings.ReplaceAll(k.of(c.knobs), "/", "-") // metastore-put-100-mailbox-pinned-ring
		} else {
			n += "-" + c.sweep + k.of(c.knobs) // metastore-put-100-shards8
		}
	}
	if c.sec.mode != "" {
		n += "-" + c.sec.mode // etcd-range-l-tls
	}
	return n
}

// runCell starts the cell's system fresh, prefills, runs one workload,
// samples the server's /proc before and after, and stops it. With
// --profile, a MetaStore server is profiled during the workload.
func runCell(ctx context.Context, o *options, c cell) (res cellResult) {
	// res is a named result: the deferred stop below records its error and
	// the log's problems in it after the body has returned.
	sys, w := c.sys, c.w
	res = cellResult{System: sys.name, Workload: w.name, Round: c.round, Clients: w.clients, Conns: w.conns, Total: w.total(o), Sweep: c.sweep, Security: c.sec.mode}
	dir, logPath, err := cellDirs(o, fmt.Sprintf("%s-r%d", c.name(), c.round))
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	defer cleanupDir(o, dir)
	l := launch{dataDir: dir, sec: c.sec}
	if sys.metastore {
		res.Knobs, l.knobs = c.knobs, c.knobs
		if o.profileDir != "" {
			port, err := freePort()
			if err != nil {
				res.Failure = err.Error()
				return res
			}
			l.pprofAddr = fmt.Sprintf("127.0.0.1:%d", port)
		}
	}
	srv, _, err := startServer(o, sys, l, logPath)
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	fail := func(err error) {
		if res.Failure == "" && err != nil {
			res.Failure = err.Error()
		}
	}
	defer func() {
		_, err := srv.stop(o.stopTimeout)
		fail(err)
		res.ServerLogProblems, res.ServerLogSamples = logProblems(logPath, 0, srv.logAtStop, 5)
		res.Failure = c.sec.redact(res.Failure)
	}()

	if c.sec.auth() {
		if err := enableAuth(ctx, srv); err != nil {
			fail(fmt.Errorf("enable auth: %w", err))
			return res
		}
	}
	if w.prefill != nil {
		if err := withConfig(ctx, srv.clientConfig(true), func(ctx context.Context, c *clientv3.Client) error { return w.prefill(ctx, c, o) }); err != nil {
			fail(fmt.Errorf("prefill: %w", err))
			return res
		}
	}
	var args []string
	if w.tool != nil {
		args, res.Command = toolArgs(w, res.Total, srv.endpoint(), srv.pid())
	} else if w.args != nil {
		totalFlag := w.totalFlag
		if totalFlag == "" {
			totalFlag = "--total"
		}
		args = benchArgsTotal(o, srv.benchEndpoint(), w.clients, w.conns, totalFlag, res.Total, w.args(o))
		args = append(args, c.sec.benchFlags()...)
		res.Command = c.sec.redact("bin/benchmark " + strings.Join(args, " "))
	}
	var spec holderSpec
	if w.holder != nil {
		spec = w.holder(o, res.Total)
	}
	if w.watch {
		if err := probeWatch(ctx, srv.endpoint()); err != nil {
			fail(fmt.Errorf("no Watch: %w", err))
			return res
		}
	}
	// Watchers held beside bin/benchmark are opened before the baseline is
	// sampled, so their creation is not charged to the workload. They are
	// closed before the server is stopped (defers run last first).
	var h *holder
	if w.holder != nil && w.args != nil {
		if h, err = startHolder(ctx, srv.endpoint(), spec, dir+".watchers.log"); err != nil {
			fail(err)
			return res
		}
		defer func() { fail(h.close()) }()
		res.Watch = &h.stats
	}
	var prof *profiler
	if l.pprofAddr != "" {
		name := c.name()
		if c.round > 1 {
			name += fmt.Sprintf("-r%d", c.round)
		}
		// Its data sits beside the data dir, so --keep-data keeps it too.
		if prof, err = newProfiler(ctx, l.pprofAddr, o.profileDir, name, dir+".prof"); err != nil {
			res.ProfileError = err.Error()
		}
		defer cleanupDir(o, dir+".prof")
	}
	// bin/benchmark's own Authenticates fall into the workload's CPU:
	// measure as many first, to leave them out of CPUPer1k.
	if c.sec.auth() && w.args != nil {
		res.Authenticates = w.conns
		if res.AuthenticateCPUSeconds, err = authenticateCPU(ctx, srv, w.conns); err != nil {
			fail(fmt.Errorf("authenticate: %w", err))
			return res
		}
	}
	// The baseline is sampled after the profiler's forced GC, so that GC
	// is not charged to the workload.
	before, err := sampleProc(srv.pid())
	if err != nil {
		fail(err)
		return res
	}
	if prof != nil {
		prof.startCPU(ctx)
	}
	limit := w.limit(o)
	bctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	// bin/benchmark retries a dead endpoint forever; stop it at once if the
	// server exits under load.
	go func() {
		select {
		case <-srv.exited:
			cancel()
		case <-bctx.Done():
		}
	}()
	start := time.Now()
	var out benchOutput
	var benchErr error
	switch {
	case w.hold:
		// The holder alone is the workload: Requests are its leases.
		res.Leases, benchErr = holdLeases(bctx, srv, args, res.Command, res.Total, dir+".leases.log")
		if l := res.Leases; l != nil {
			l.Clients, l.Conns = w.clients, w.conns
			if l.GrantSeconds > 0 {
				res.Requests, res.RPS = l.Leases, float64(l.Leases)/l.GrantSeconds
			}
		}
	case w.tool != nil:
		out, benchErr = runTool(bctx, args, dir+".tool.log")
	case w.args == nil:
		// The holder alone is the workload: Requests are its watchers.
		res.Watch, benchErr = holdIdle(bctx, srv, spec, dir+".watchers.log")
		if res.Watch != nil {
			res.Command = res.Watch.Command
			if res.Watch.CreateSeconds > 0 {
				res.Requests, res.RPS = res.Watch.Watchers, float64(res.Watch.Watchers)/res.Watch.CreateSeconds
			}
		}
	default:
		out, benchErr = runBenchmark(bctx, o, args)
	}
	res.WallSeconds = time.Since(start).Seconds()
	if !srv.alive() {
		fail(fmt.Errorf("server exited during the workload: %v (log: %s)", srv.waitErr, tail(logPath, 5)))
	}
	if benchErr != nil && errors.Is(bctx.Err(), context.DeadlineExceeded) {
		why := ""
		if w.watch && w.args != nil {
			why = " (bin/benchmark watch and watch-latency wait for every event)"
		}
		benchErr = fmt.Errorf("did not finish within %v%s: %w", limit, why, benchErr)
	}
	if w.args != nil || (w.tool != nil && !w.hold) {
		// The raw report stays beside the server log (kept with --keep-data).
		_ = os.WriteFile(dir+".bench.txt", []byte(res.Command+"\n"+out.Stdout), 0o644)
	}
	fail(benchErr)
	res.Parts = out.Parts
	for _, p := range out.Parts {
		res.Errors += p.Errors
	}
	for _, p := range countedParts(out.Parts) {
		res.Requests += p.Requests
		res.RPS += p.RPS
	}
	if h != nil && benchErr == nil {
		// Every successful put is an event of one watcher; wait for the
		// last of them before the server's CPU is sampled.
		fail(h.waitEvents(ctx, int64(res.Requests), eventTimeout))
	}
	after, afterErr := sampleProc(srv.pid())
	// Profiles are finished after the sample: fetching the allocation
	// profile forces a GC that is not the workload's.
	if prof != nil {
		files, err := prof.finish(ctx)
		res.Profiles = files
		if err != nil {
			res.ProfileError = err.Error()
		}
	}
	if afterErr != nil {
		fail(fmt.Errorf("server gone after the workload: %w (log: %s)", afterErr, tail(logPath, 5)))
		return res
	}
	res.ServerCPUSeconds = after.cpuSeconds - before.cpuSeconds
	if res.Requests > 0 {
		res.CPUPer1k = max(0, res.ServerCPUSeconds-res.AuthenticateCPUSeconds) / float64(res.Requests) * 1000
	}
	res.PeakRSSBytes = after.hwmBytes
	return res
}

// limit is the longest one run of w may take.
func (w workload) limit(o *options) time.Duration {
	switch {
	case w.hold || (w.watch && w.args == nil):
		// The holder alone: opening its watchers or granting its leases
		// is the workload.
		return min(o.benchTimeout, holderTimeout+time.Minute)
	case w.lease && o.quick:
		return min(o.benchTimeout, leaseRunLimitQuick)
	case w.lease:
		return min(o.benchTimeout, leaseRunLimit)
	case !w.watch:
		return o.benchTimeout
	}
	if o.quick {
		return min(o.benchTimeout, watchRunLimitQuick)
	}
	return min(o.benchTimeout, watchRunLimit)
}

// countedParts are the parts whose requests a cell counts: a watch
// benchmark's events (not its puts or watch creations), every part of
// any other.
func countedParts(parts []partResult) []partResult {
	for _, p := range parts {
		if p.Name == eventsPart {
			return []partResult{p}
		}
	}
	return parts
}

// withClient runs f with an etcd client of the endpoint.
func withClient(ctx context.Context, endpoint string, f func(context.Context, *clientv3.Client) error) error {
	return withConfig(ctx, clientv3.Config{Endpoints: []string{endpoint}}, f)
}

// withConfig runs f with an etcd client configured by cfg.
func withConfig(ctx context.Context, cfg clientv3.Config, f func(context.Context, *clientv3.Client) error) error {
	cfg.DialTimeout, cfg.Logger = 5*time.Second, zap.NewNop()
	c, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return f(cctx, c)
}

// median returns the cell whose RPS is the median of cells (the lower
// middle one for an even count), so a reported row is one real run rather
// than a mix of runs.
func median(cells []cellResult) cellResult {
	sorted := append([]cellResult(nil), cells...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].RPS < sorted[j].RPS })
	return sorted[(len(sorted)-1)/2]
}
