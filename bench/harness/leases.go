package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// The lease workloads measure etcd's Lease service and the locks built on
// it: keep-alives a second (bin/benchmark lease-keepalive), grants and
// revokes a second (`harness leases`), lock and unlock cycles a second
// (`harness locks`, clientv3's concurrency.Mutex), and the memory 100,000
// held leases take (`harness leases --hold`). bin/benchmark has no mode
// for the last three. The ceiling serves no Lease, so they run on the
// other systems only.
var leaseWorkloadNames = []string{"lease-keepalive", "lease-grant-revoke", "lock", "leases-held-100k"}

// leaseGroupNames is the "leases" group of --workloads: the lease
// workloads and stm (a KV workload, in the KV tables), whose target the
// lease section reports too. A workload named twice runs once.
var leaseGroupNames = []string{"lease-keepalive", "lease-grant-revoke", "lock", "stm", "leases-held-100k"}

// The harness subcommands of the lease workloads.
const (
	leasesSubcommand = "leases"
	locksSubcommand  = "locks"
)

// Lease workload parameters.
const (
	// leaseTTL is the TTL in seconds of the leases `harness leases` grants:
	// long enough that none expires while they are measured or held.
	leaseTTL = 600
	// heldLeases are granted by heldClients goroutines over heldConns
	// connections and held idle for idleSettle before the server's RSS is
	// read; then leaseChecks of them are checked with TimeToLive.
	heldLeases  = 100000
	heldClients = 100
	heldConns   = 10
	leaseChecks = 100
	// lockNames is how many lock names the lock workload's clients pick
	// from, at random for each cycle; lockSessionTTL is the TTL of each
	// client's session lease.
	lockNames      = 100
	lockSessionTTL = 60
	// toolOpTimeout bounds one operation of `harness leases` and `harness
	// locks` (a lock that is never granted is an error, not a hang).
	toolOpTimeout = 30 * time.Second
	// leaseRunLimit bounds one run of a lease workload (quick:
	// leaseRunLimitQuick).
	leaseRunLimit      = 10 * time.Minute
	leaseRunLimitQuick = 2 * time.Minute
)

// leaseWorkloads: the totals keep each full run to tens of seconds on a
// small machine; etcd revokes about 500 leases a second here whatever the
// number of leases (it is its slowest part: 50,000 revokes take it 100 s).
func leaseWorkloads() []workload {
	return []workload{
		{
			name: "lease-keepalive", full: 100000, quick: 10000, clients: 100, conns: 100, lease: true,
			desc: "each client grants a lease (TTL 100 s), then renews it with one keep-alive after another (clientv3 KeepAliveOnce: a LeaseKeepAlive stream each); keep-alives a second",
			args: func(*options) []string { return []string{"lease-keepalive"} },
		},
		{
			name: "lease-grant-revoke", full: 50000, quick: 2000, clients: 100, conns: 100, lease: true,
			desc: fmt.Sprintf("`harness leases`: the clients grant the leases (TTL %d s), then revoke every one of them; grants a second, then revokes a second", leaseTTL),
			tool: leasesTool(100, 100, false),
		},
		{
			name: "lock", full: 20000, quick: 2000, clients: 100, conns: 100, lease: true,
			desc: fmt.Sprintf("`harness locks`: each client holds a clientv3 concurrency.Session (TTL %d s) and loops concurrency.Mutex Lock then Unlock on one of %d lock names, picked at random each time; cycles a second, latency of a whole cycle",
				lockSessionTTL, lockNames),
			tool: func(total int) []string {
				return []string{locksSubcommand, "--clients", "100", "--conns", "100", "--names", strconv.Itoa(lockNames),
					"--ttl", strconv.Itoa(lockSessionTTL), "--total", strconv.Itoa(total)}
			},
		},
		{
			name: "leases-held-100k", full: heldLeases, quick: heldLeases, fixed: true, clients: heldClients, conns: heldConns, lease: true, hold: true,
			desc: fmt.Sprintf("`harness leases --hold` grants 100,000 leases (TTL %d s) from %d clients on %d connections and holds them idle; the server's peak RSS; then %d of them are checked with TimeToLive",
				leaseTTL, heldClients, heldConns, leaseChecks),
			tool: leasesTool(heldClients, heldConns, true),
		},
	}
}

// leasesTool is the command line of `harness leases`, without --endpoint
// and --server-pid.
func leasesTool(clients, conns int, hold bool) func(total int) []string {
	return func(total int) []string {
		a := []string{leasesSubcommand, "--clients", strconv.Itoa(clients), "--conns", strconv.Itoa(conns),
			"--ttl", strconv.Itoa(leaseTTL), "--leases", strconv.Itoa(total)}
		if hold {
			a = append(a, "--hold")
		}
		return a
	}
}

// leaseStats is what `harness leases --hold` saw in one cell.
type leaseStats struct {
	Command string `json:"holder_command"`
	Leases  int    `json:"leases"`
	Clients int    `json:"clients"`
	Conns   int    `json:"conns"`
	// GrantSeconds is the holder's time to grant them all, and
	// GrantCPUSeconds the server's utime+stime meanwhile.
	GrantSeconds    float64 `json:"grant_seconds"`
	GrantCPUSeconds float64 `json:"server_cpu_seconds_to_grant"`
	// Checked leases were asked their TTL after the RSS was read; Alive of
	// them had one.
	Checked int `json:"checked"`
	Alive   int `json:"alive"`
	// The server's VmRSS before the holder started, and its VmRSS and
	// VmHWM after the leases had been held idle a moment.
	RSSBeforeBytes  int64 `json:"server_rss_before_leases_bytes"`
	RSSHoldingBytes int64 `json:"server_rss_with_leases_bytes"`
	HWMHoldingBytes int64 `json:"server_peak_rss_with_leases_bytes"`
}

// toolArgs are a tool workload's full command line on srv, and the one the
// report shows.
func toolArgs(w workload, total int, endpoint string, pid int) (args []string, shown string) {
	args = append(w.tool(total), "--endpoint", endpoint, "--server-pid", strconv.Itoa(pid))
	shown = "harness " + strings.Join(append(w.tool(total), "--endpoint", "HOST:PORT", "--server-pid", "PID"), " ")
	return args, shown
}

// runTool runs the harness binary as one of its measuring subcommands
// (args[0]) and reads the parts it reports. Its stderr goes to logPath.
func runTool(ctx context.Context, args []string, logPath string) (benchOutput, error) {
	self, err := os.Executable()
	if err != nil {
		return benchOutput{}, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return benchOutput{}, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, self, args...)
	var stdout strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, logf
	err = cmd.Run()
	out := benchOutput{Stdout: stdout.String()}
	if err != nil {
		return out, fmt.Errorf("harness %s: %w (log: %s)", args[0], err, tail(logPath, 3))
	}
	out.Parts, err = parseToolOutput(out.Stdout)
	return out, err
}

// holdLeases is leases-held-100k: `harness leases --hold` grants the
// leases; they are held idle, the server's RSS is read, then some are
// checked with TimeToLive.
func holdLeases(ctx context.Context, srv *server, args []string, shown string, want int, logPath string) (*leaseStats, error) {
	before, err := sampleProc(srv.pid())
	if err != nil {
		return nil, err
	}
	h, ready, err := startSelf(ctx, args, logPath)
	if err != nil {
		return nil, err
	}
	defer h.close() //nolint:errcheck // the first error is the one to report
	granted, err := sampleProc(srv.pid())
	if err != nil {
		return nil, err
	}
	s := &leaseStats{Command: shown, Leases: ready.count, GrantSeconds: ready.seconds,
		GrantCPUSeconds: granted.cpuSeconds - before.cpuSeconds, RSSBeforeBytes: before.rssBytes}
	if ready.count < want {
		return s, fmt.Errorf("granted %d of %d leases (log: %s)", ready.count, want, tail(logPath, 3))
	}
	select {
	case <-time.After(idleSettle):
	case <-ctx.Done():
		return s, ctx.Err()
	}
	held, err := sampleProc(srv.pid())
	if err != nil {
		return s, err
	}
	s.RSSHoldingBytes, s.HWMHoldingBytes = held.rssBytes, held.hwmBytes
	if _, err := fmt.Fprintf(h.stdin, "check %d\n", leaseChecks); err != nil {
		return s, fmt.Errorf("%s: %w (log: %s)", h.name, err, tail(logPath, 3))
	}
	line, err := h.readLine(ctx, toolOpTimeout+30*time.Second)
	if err != nil {
		return s, fmt.Errorf("%s: %w (log: %s)", h.name, err, tail(logPath, 3))
	}
	if s.Alive, s.Checked, err = parseAlive(line); err != nil {
		return s, err
	}
	if s.Alive < s.Checked {
		return s, fmt.Errorf("%d of %d held leases checked were gone (log: %s)", s.Checked-s.Alive, s.Checked, tail(logPath, 3))
	}
	return s, h.close()
}

// The tools' side. `harness leases` and `harness locks` print one line
// "part <JSON of a partResult>" for each thing they measured, and exit.
// `harness leases --hold` instead prints "ready <leases> <seconds to grant
// them>", then answers "check <n>" lines on stdin with "alive <alive>
// <checked>" (n of the leases, spread over them all, asked their TTL), and
// exits when its stdin closes.

// partPrefix starts a tool's report line.
const partPrefix = "part "

// parseToolOutput reads the part lines of a tool's output; other lines
// are ignored. There must be at least one.
func parseToolOutput(out string) ([]partResult, error) {
	var parts []partResult
	for _, line := range strings.Split(out, "\n") {
		j, ok := strings.CutPrefix(strings.TrimSpace(line), partPrefix)
		if !ok {
			continue
		}
		var p partResult
		if err := json.Unmarshal([]byte(j), &p); err != nil {
			return parts, fmt.Errorf("bad part line %q: %w", truncate(line, 200), err)
		}
		if p.Name == "" {
			return parts, fmt.Errorf("part line without a name: %q", truncate(line, 200))
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("no part lines in the tool's output: %q", lastLines(out, 5))
	}
	return parts, nil
}

func printPart(out io.Writer, p partResult) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s%s\n", partPrefix, b)
	return err
}

// parseCheck reads "check <n>".
func parseCheck(line string) (int, error) {
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "check" {
		return 0, fmt.Errorf("want \"check <n>\", got %q", line)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad check line %q", line)
	}
	return n, nil
}

// parseAlive reads "alive <alive> <checked>".
func parseAlive(line string) (alive, checked int, err error) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "alive" {
		return 0, 0, fmt.Errorf("want \"alive <alive> <checked>\", got %q", line)
	}
	var err1, err2 error
	alive, err1 = strconv.Atoi(f[1])
	checked, err2 = strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil || alive < 0 || alive > checked {
		return 0, 0, fmt.Errorf("bad alive line %q", line)
	}
	return alive, checked, nil
}

// summarizeOps is the partResult of one measured phase: its successful
// operations' latencies, its errors, how long it took and the server CPU
// it cost (0: not measured).
func summarizeOps(name string, lats []time.Duration, errs map[string]int, elapsed time.Duration, cpu float64) partResult {
	p := partResult{Name: name, TotalSec: elapsed.Seconds(), Requests: len(lats), ServerCPUSeconds: cpu}
	for _, n := range errs {
		p.Errors += n
	}
	if len(errs) > 0 {
		p.ErrorCounts = errs
	}
	if len(lats) == 0 {
		return p
	}
	sorted := append([]time.Duration(nil), lats...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var sum time.Duration
	for _, l := range sorted {
		sum += l
	}
	msOf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if p.TotalSec > 0 {
		p.RPS = float64(len(lats)) / p.TotalSec
	}
	p.AvgMs = msOf(sum) / float64(len(sorted))
	p.SlowestMs = msOf(sorted[len(sorted)-1])
	p.P50ms = msOf(percentile(sorted, 50))
	p.P99ms = msOf(percentile(sorted, 99))
	if len(sorted) >= 1000 {
		// Like bin/benchmark, no p99.9 of a smaller sample.
		p.P999ms = msOf(percentile(sorted, 99.9))
	}
	return p
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, pct float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps a rank that is a whole number in exact arithmetic
	// (99.9% of 1,000) from rounding up past it in floating point.
	i := int(math.Ceil(pct/100*float64(len(sorted))-1e-9)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// cpuMeter reads the server's utime+stime in seconds; 0 without a pid.
func cpuMeter(pid int) func() float64 {
	return func() float64 {
		if pid <= 0 {
			return 0
		}
		s, err := sampleProc(pid)
		if err != nil {
			return 0
		}
		return s.cpuSeconds
	}
}

// runOps runs op(ctx, g, i) for every i below total from clients
// goroutines (g is the goroutine), each operation bounded by
// toolOpTimeout, and summarizes them as the part name.
func runOps(ctx context.Context, name string, clients, total int, cpu func() float64, op func(ctx context.Context, g, i int) error) partResult {
	var mu sync.Mutex
	var lats []time.Duration
	errs := map[string]int{}
	next := make(chan int)
	go func() {
		defer close(next)
		for i := 0; i < total; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	cpu0 := cpu()
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			myErrs := map[string]int{}
			for i := range next {
				octx, cancel := context.WithTimeout(ctx, toolOpTimeout)
				st := time.Now()
				err := op(octx, g, i)
				took := time.Since(st)
				cancel()
				if err != nil {
					myErrs[truncate(err.Error(), 200)]++
				} else {
					mine = append(mine, took)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lats = append(lats, mine...)
			for e, n := range myErrs {
				errs[e] += n
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	used := cpu() - cpu0
	return summarizeOps(name, lats, errs, elapsed, max(used, 0))
}

// dialClients opens conns clients of endpoint.
func dialClients(endpoint string, conns int) ([]*clientv3.Client, error) {
	var cs []*clientv3.Client
	for i := 0; i < conns; i++ {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			closeClients(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func closeClients(cs []*clientv3.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// toolFlags are the flags every lease tool takes.
type toolFlags struct {
	endpoint       string
	clients, conns int
	ttl            int
	serverPID      int
}

func (t *toolFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.endpoint, "endpoint", "127.0.0.1:2379", "server to measure")
	fs.IntVar(&t.clients, "clients", 100, "concurrent clients (goroutines, each with one operation in flight)")
	fs.IntVar(&t.conns, "conns", 100, "gRPC connections (clientv3 Clients) the clients share, client i on connection i % conns")
	fs.IntVar(&t.serverPID, "server-pid", 0, "the server's pid, to report its CPU during each measured phase (0: not reported)")
}

func (t *toolFlags) check() error {
	if t.clients < 1 || t.conns < 1 || t.ttl < 1 {
		return errors.New("--clients, --conns and --ttl must be positive")
	}
	return nil
}

// runLeases is `harness leases`.
func runLeases(args []string) error {
	var t toolFlags
	var n int
	var hold bool
	fs := flag.NewFlagSet(leasesSubcommand, flag.ContinueOnError)
	t.register(fs)
	fs.IntVar(&t.ttl, "ttl", leaseTTL, "TTL in seconds of the leases")
	fs.IntVar(&n, "leases", 10000, "leases to grant")
	fs.BoolVar(&hold, "hold", false, "hold the leases instead of revoking them: print \"ready <leases> <seconds>\", answer \"check <n>\" on stdin with \"alive <alive> <checked>\", exit when stdin closes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := t.check(); err != nil {
		return err
	}
	if n < 1 {
		return errors.New("--leases must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cs, err := dialClients(t.endpoint, t.conns)
	if err != nil {
		return err
	}
	defer closeClients(cs)
	cpu := cpuMeter(t.serverPID)
	ids := make([]clientv3.LeaseID, n)
	grant := runOps(ctx, "grant", t.clients, n, cpu, func(ctx context.Context, g, i int) error {
		resp, err := cs[g%len(cs)].Grant(ctx, int64(t.ttl))
		if err == nil {
			ids[i] = resp.ID
		}
		return err
	})
	var granted []clientv3.LeaseID
	for _, id := range ids {
		if id != 0 {
			granted = append(granted, id)
		}
	}
	if hold {
		for e, k := range grant.ErrorCounts {
			fmt.Fprintf(os.Stderr, "grant: %d × %s\n", k, e)
		}
		fmt.Printf("ready %d %.6f\n", len(granted), grant.TotalSec)
		return serveChecks(ctx, cs[0], granted, os.Stdin, os.Stdout)
	}
	if err := printPart(os.Stdout, grant); err != nil {
		return err
	}
	revoke := runOps(ctx, "revoke", t.clients, len(granted), cpu, func(ctx context.Context, g, i int) error {
		_, err := cs[g%len(cs)].Revoke(ctx, granted[i])
		return err
	})
	return printPart(os.Stdout, revoke)
}

// serveChecks answers "check <n>" lines: n of the leases, spread over
// them, are asked their TTL; alive are those that still have one.
func serveChecks(ctx context.Context, c *clientv3.Client, ids []clientv3.LeaseID, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		n, err := parseCheck(sc.Text())
		if err != nil {
			return err
		}
		n = min(n, len(ids))
		alive := 0
		for k := 0; k < n; k++ {
			id := ids[k*len(ids)/n]
			cctx, cancel := context.WithTimeout(ctx, toolOpTimeout)
			resp, err := c.TimeToLive(cctx, id)
			cancel()
			if err != nil {
				fmt.Fprintf(os.Stderr, "TimeToLive %x: %v\n", id, err)
				continue
			}
			if resp.TTL > 0 {
				alive++
			} else {
				fmt.Fprintf(os.Stderr, "lease %x: TTL %d\n", id, resp.TTL)
			}
		}
		if _, err := fmt.Fprintf(out, "alive %d %d\n", alive, n); err != nil {
			return err
		}
	}
	return sc.Err()
}

// runLocks is `harness locks`: concurrency.Mutex, what users of etcd's
// locks run (etcd's v3lock service is the same Mutex behind a gRPC call).
func runLocks(args []string) error {
	var t toolFlags
	var names, total int
	var seed int64
	fs := flag.NewFlagSet(locksSubcommand, flag.ContinueOnError)
	t.register(fs)
	fs.IntVar(&t.ttl, "ttl", lockSessionTTL, "TTL in seconds of each client's session lease")
	fs.IntVar(&names, "names", lockNames, "lock names the clients pick from, at random for each cycle")
	fs.IntVar(&total, "total", 10000, "lock and unlock cycles")
	fs.Int64Var(&seed, "seed", 1, "seed of the clients' choices of lock names")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := t.check(); err != nil {
		return err
	}
	if names < 1 || total < 1 {
		return errors.New("--names and --total must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cs, err := dialClients(t.endpoint, t.conns)
	if err != nil {
		return err
	}
	defer closeClients(cs)
	// One session (a lease kept alive) per client, opened in parallel.
	sessions := make([]*concurrency.Session, t.clients)
	errc := make(chan error, t.clients)
	var wg sync.WaitGroup
	for g := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := concurrency.NewSession(cs[g%len(cs)], concurrency.WithTTL(t.ttl), concurrency.WithContext(ctx))
			if err != nil {
				errc <- fmt.Errorf("session %d: %w", g, err)
				return
			}
			sessions[g] = s
		}()
	}
	wg.Wait()
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
	}()
	select {
	case err := <-errc:
		return err
	default:
	}
	rngs := make([]*rand.Rand, t.clients)
	for g := range rngs {
		rngs[g] = rand.New(rand.NewSource(seed + int64(g)))
	}
	cycles := runOps(ctx, "all", t.clients, total, cpuMeter(t.serverPID), func(ctx context.Context, g, _ int) error {
		m := concurrency.NewMutex(sessions[g], lockName(rngs[g].Intn(names)))
		if err := m.Lock(ctx); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if err := m.Unlock(ctx); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		return nil
	})
	return printPart(os.Stdout, cycles)
}

// lockName is the prefix of lock i (concurrency.Mutex adds the session's
// lease to it).
func lockName(i int) string { return fmt.Sprintf("/harness-lock/%03d", i) }
