package main

import (
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
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
	rangeRepeats  int
	valSize       int
	keySpace      int
	mixedKeySpace int
	mixedLimit    int
	// knobs are MetaStore's --shards and --max-batch for every run except
	// where a sweep varies one of them.
	knobs        knobs
	sweepShards  []int
	sweepBatch   bool
	sweepMailbox bool
	// secure: compare the systems in the clear, with auth on and over TLS
	// (secureModes) instead of the full comparison.
	secure       bool
	secureModes  []string
	profileDir   string
	binDir       string
	workDir      string
	keepData     bool
	outPath      string
	docPath      string
	startTimeout time.Duration
	stopTimeout  time.Duration
	benchTimeout time.Duration
}

// sweeping says whether this run sweeps MetaStore's knobs instead of
// comparing systems.
func (o *options) sweeping() bool { return len(o.sweepShards) > 0 || o.sweepBatch || o.sweepMailbox }

// Sweeps study MetaStore alone, on the write workloads where sharding and
// batching matter; --systems and --workloads narrow them further.
var (
	sweepSystemNames   = []string{"metastore", "metastore-mem"}
	sweepWorkloadNames = []string{"put-100", "txn-put"}
)

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: bin/harness [flags]   (make harness builds it; run it from the repository root)

Compares MetaStore (durable and in-memory), etcd and a no-storage ceiling server
with bin/benchmark; the watch workloads (not on the ceiling) also run
`+"`harness watchers`"+`, which holds watchers beside or instead of it, and the
lease workloads (not on the ceiling) `+"`harness leases` and `harness locks`"+`. With
--sweep-shards or --sweep-batch it instead runs MetaStore alone (default:
durable and in-memory on put-100 and txn-put) across shard counts and with
write batching on and off. With --secure it instead runs MetaStore and etcd
(default: durable, on put-100 and range-l) in the clear, with auth on (simple
token) and over mutual TLS, side by side. Run `+"`make build tools`"+` first.

Workloads: %s
           (groups: kv: %s; watches: %s; leases: %s)
Systems:   %s

Flags:
`, strings.Join(workloadNames, ","), strings.Join(kvWorkloadNames, ","), strings.Join(watchWorkloadNames, ","),
			strings.Join(leaseGroupNames, ","), strings.Join(systemNames, ","))
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.quick, "quick", false, "small request totals and 100,000 restart keys (a smoke run of a few minutes)")
	fs.Float64Var(&o.scale, "scale", 1, "multiply every workload's request total by this")
	fs.IntVar(&o.rounds, "rounds", 1, "repeat the whole run this many times; tables show the median round")
	sysList := fs.String("systems", strings.Join(systemNames, ","), "systems to run, in this order (sweeps: "+strings.Join(sweepSystemNames, ",")+")")
	wlList := fs.String("workloads", strings.Join(workloadNames, ","), "workloads or groups (kv, watches, leases) to run, in this order (none: only the restart test; sweeps: "+strings.Join(sweepWorkloadNames, ",")+")")
	fs.IntVar(&o.restartKeys, "restart-keys", 1000000, "keys to load for the restart test (100000 with --quick unless set; 0 skips it; sweeps never run it)")
	fs.IntVar(&o.rangeRepeats, "range-repeats", 1, "after the restart test, time etcdctl's full range and a --limit 10 descending range this many times each, cold and warm (0 skips them)")
	fs.IntVar(&o.valSize, "val-size", 256, "value size in bytes of every write")
	fs.IntVar(&o.keySpace, "key-space", 100000, "key space of the put and txn-put workloads (random keys)")
	fs.IntVar(&o.mixedKeySpace, "mixed-key-space", 1000, "key space of txn-mixed's writes")
	fs.IntVar(&o.mixedLimit, "mixed-limit", 100, "limit of txn-mixed's prefix reads")
	fs.IntVar(&o.knobs.Shards, "shards", 0, "MetaStore --shards outside the shard sweep (0: its default)")
	fs.IntVar(&o.knobs.MaxBatch, "max-batch", 0, "MetaStore --max-batch outside the batching sweep (0: its default)")
	shardList := fs.String("sweep-shards", "", "sweep MetaStore --shards over this comma `list` (e.g. 1,2,4,8,16,32)")
	fs.BoolVar(&o.sweepBatch, "sweep-batch", false, fmt.Sprintf("sweep MetaStore --max-batch over %s (batching on and off)", joinInts(batchSettings)))
	fs.BoolVar(&o.sweepMailbox, "sweep-mailbox", false, fmt.Sprintf("sweep MetaStore --mailbox-dispatcher/--mailbox-queue over %s", strings.Join(mailboxSettings, ", ")))
	fs.BoolVar(&o.secure, "secure", false, "compare the systems (default: "+strings.Join(secureSystemNames, ",")+" on "+strings.Join(secureWorkloadNames, ",")+
		") in each of --secure-modes instead of running the full comparison")
	modeList := fs.String("secure-modes", strings.Join(secureModeNames, ","), "with --secure: the modes, in this order (plain: as in the comparison; auth: auth on, bin/benchmark --user root; tls: https with client certificates)")
	fs.StringVar(&o.profileDir, "profile", "", "save CPU and allocation profiles of every MetaStore run, with go tool pprof -top summaries, in directory `DIR`")
	fs.StringVar(&o.binDir, "bin", "bin", "directory holding metastore, etcd and benchmark")
	fs.StringVar(&o.workDir, "work-dir", "", "parent of the servers' data dirs (default: the system temp dir); all systems use it, so the same filesystem")
	fs.BoolVar(&o.keepData, "keep-data", false, "keep the data dirs and server logs")
	fs.StringVar(&o.outPath, "out", "", "JSON output path (default bench/results/<timestamp>.json)")
	fs.StringVar(&o.docPath, "doc", "docs/benchmarks.md", "Markdown report to update, charts go to img/ beside it (empty: neither)")
	fs.DurationVar(&o.startTimeout, "start-timeout", 5*time.Minute, "longest wait for a server to answer after exec")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", time.Minute, "longest wait for a server to exit after SIGTERM")
	fs.DurationVar(&o.benchTimeout, "bench-timeout", 30*time.Minute, "longest run of one bin/benchmark")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var err error
	if *shardList != "" {
		if o.sweepShards, err = parseSettings(*shardList); err != nil {
			return nil, fmt.Errorf("--sweep-shards: %w", err)
		}
	}
	if o.quick && !set["restart-keys"] {
		o.restartKeys = 100000
	}
	if o.sweeping() {
		if set["restart-keys"] {
			return nil, errors.New("--restart-keys: sweeps do not run the restart test")
		}
		o.restartKeys = 0
		if !set["systems"] {
			*sysList = strings.Join(sweepSystemNames, ",")
		}
		if !set["workloads"] {
			*wlList = strings.Join(sweepWorkloadNames, ",")
		}
	}
	if o.secure {
		if o.sweeping() {
			return nil, errors.New("--secure: a secure run and a sweep are separate runs")
		}
		if set["restart-keys"] {
			return nil, errors.New("--restart-keys: secure runs do not run the restart test")
		}
		o.restartKeys = 0
		if !set["systems"] {
			*sysList = strings.Join(secureSystemNames, ",")
		}
		if !set["workloads"] {
			*wlList = strings.Join(secureWorkloadNames, ",")
		}
		if o.secureModes, err = pickList(*modeList, secureModeNames); err != nil {
			return nil, fmt.Errorf("--secure-modes: %w", err)
		}
	} else if set["secure-modes"] {
		return nil, errors.New("--secure-modes: only with --secure")
	}
	if o.rounds < 1 || o.restartKeys < 0 || o.rangeRepeats < 0 || o.scale <= 0 || o.valSize < 0 || o.keySpace < 1 || o.mixedKeySpace < 1 {
		return nil, errors.New("--rounds, --scale, --key-space and --mixed-key-space must be positive, --restart-keys, --range-repeats and --val-size not negative")
	}
	if o.knobs.Shards < 0 || o.knobs.MaxBatch < 0 {
		return nil, errors.New("--shards and --max-batch must not be negative")
	}
	if o.systems, err = pickList(*sysList, systemNames); err != nil {
		return nil, fmt.Errorf("--systems: %w", err)
	}
	if o.sweeping() {
		for _, s := range o.systems {
			if !systems()[s].metastore {
				return nil, fmt.Errorf("--systems: %s has no knobs to sweep (sweeps run %s)", s, strings.Join(sweepSystemNames, ","))
			}
		}
	}
	if o.secure {
		for _, s := range o.systems {
			if systems()[s].noSecurity {
				return nil, fmt.Errorf("--systems: %s serves neither auth nor TLS", s)
			}
		}
	}
	// "none" runs only the restart test.
	if *wlList != "none" {
		if o.workloads, err = pickList(expandGroups(*wlList, workloadGroups()), workloadNames); err != nil {
			return nil, fmt.Errorf("--workloads: %w", err)
		}
	} else if o.sweeping() || o.secure {
		return nil, errors.New("--workloads: a sweep or a secure run needs at least one workload")
	}
	if o.secure {
		// The watch and lease workloads dial the server with tools of
		// their own, in the clear.
		for _, wn := range o.workloads {
			if !slices.Contains(kvWorkloadNames, wn) {
				return nil, fmt.Errorf("--workloads: %s is not a KV workload (secure runs take %s)", wn, strings.Join(kvWorkloadNames, ","))
			}
		}
	}
	if o.profileDir != "" {
		// Profiles are merged and summarised by `go tool pprof`; better to
		// find out now than after the first workload.
		if _, err := exec.LookPath("go"); err != nil {
			return nil, fmt.Errorf("--profile needs the go command: %w", err)
		}
	}
	return o, nil
}

// workloadGroups name sets of workloads for --workloads.
func workloadGroups() map[string][]string {
	return map[string][]string{
		"kv":      kvWorkloadNames,
		"watches": watchWorkloadNames,
		"leases":  leaseGroupNames,
	}
}

// expandGroups replaces each group name in a comma list by its members.
func expandGroups(list string, groups map[string][]string) string {
	var out []string
	for _, n := range strings.Split(list, ",") {
		if g, ok := groups[strings.TrimSpace(n)]; ok {
			out = append(out, g...)
		} else {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// pickList splits a comma list and checks every name is known. A name
// given twice (stm is in the kv and the leases groups) is kept the first
// time.
func pickList(list string, known []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n == "" || seen[n] {
			continue
		}
		seen[n] = true
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

// parseSettings reads a comma list of distinct positive integers.
func parseSettings(list string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		if seen[v] {
			return nil, fmt.Errorf("%d appears twice", v)
		}
		seen[v] = true
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}
