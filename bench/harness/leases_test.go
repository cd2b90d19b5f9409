package main

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseToolOutput(t *testing.T) {
	out := "some chatter\n" +
		`part {"name":"grant","requests":3000,"total_seconds":0.75,"requests_per_second":4000,"p50_ms":12.5,"p99_ms":191.7,"p99_9_ms":216.9,"errors":2,"error_counts":{"etcdserver: too many requests":2},"server_cpu_seconds":0.32}` + "\n" +
		`part {"name":"revoke","requests":3000,"total_seconds":0.5,"requests_per_second":6000,"p99_ms":40.4}` + "\n"
	parts, err := parseToolOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Name != "grant" || parts[1].Name != "revoke" {
		t.Fatalf("parts %+v", parts)
	}
	g := parts[0]
	if g.Requests != 3000 || g.RPS != 4000 || g.P99ms != 191.7 || g.P999ms != 216.9 || g.Errors != 2 ||
		g.ErrorCounts["etcdserver: too many requests"] != 2 || g.ServerCPUSeconds != 0.32 {
		t.Errorf("grant %+v", g)
	}
	if got := cpuPer1k(g); got != "0.107" {
		t.Errorf("cpu per 1k %s", got)
	}
	if got := cpuPer1k(parts[1]); got != "–" {
		t.Errorf("cpu per 1k of a part without CPU: %s", got)
	}
	for _, bad := range []string{"", "ready 1 2\n", "part {\n", `part {"requests":1}` + "\n"} {
		if _, err := parseToolOutput(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestPrintPartRoundTrip(t *testing.T) {
	p := partResult{Name: "all", Requests: 10, TotalSec: 1, RPS: 10, P50ms: 1, P99ms: 2, Errors: 1, ErrorCounts: map[string]int{"lock: boom": 1}, ServerCPUSeconds: 0.5}
	var b bytes.Buffer
	if err := printPart(&b, p); err != nil {
		t.Fatal(err)
	}
	parts, err := parseToolOutput(b.String())
	if err != nil || len(parts) != 1 || !reflect.DeepEqual(parts[0], p) {
		t.Errorf("%q: %+v %v", b.String(), parts, err)
	}
}

func TestSummarizeOps(t *testing.T) {
	var lats []time.Duration
	for i := 100; i >= 1; i-- {
		lats = append(lats, time.Duration(i)*time.Millisecond)
	}
	p := summarizeOps("grant", lats, map[string]int{"x": 3}, 2*time.Second, 0.4)
	if p.Requests != 100 || p.RPS != 50 || p.P50ms != 50 || p.P99ms != 99 || p.P999ms != 0 || p.SlowestMs != 100 ||
		p.AvgMs != 50.5 || p.Errors != 3 || p.ServerCPUSeconds != 0.4 {
		t.Errorf("%+v", p)
	}
	lats = lats[:0]
	for i := 1; i <= 1000; i++ {
		lats = append(lats, time.Duration(i)*time.Microsecond)
	}
	if p := summarizeOps("all", lats, nil, time.Second, 0); p.P999ms != 0.999 || p.P99ms != 0.99 || p.ErrorCounts != nil {
		t.Errorf("%+v", p)
	}
	// Every operation failed: errors, no rate.
	if p := summarizeOps("all", nil, map[string]int{"x": 5}, time.Second, 0); p.Requests != 0 || p.RPS != 0 || p.Errors != 5 {
		t.Errorf("%+v", p)
	}
	if percentile(nil, 99) != 0 || percentile([]time.Duration{7}, 99.9) != 7 || percentile([]time.Duration{1, 2}, 0) != 1 {
		t.Error("percentile of small samples")
	}
}

func TestRunOps(t *testing.T) {
	seen := make([]int, 50)
	p := runOps(context.Background(), "all", 4, 50, func() float64 { return 0 }, func(ctx context.Context, g, i int) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("operation without a deadline")
		}
		seen[i]++ // each i is given to one goroutine only
		if i%10 == 0 {
			return errors.New("boom")
		}
		return nil
	})
	if p.Requests != 45 || p.Errors != 5 || p.ErrorCounts["boom"] != 5 || p.RPS <= 0 {
		t.Errorf("%+v", p)
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("operation %d ran %d times", i, n)
		}
	}
}

func TestCheckLines(t *testing.T) {
	if n, err := parseCheck("check 100"); err != nil || n != 100 {
		t.Errorf("%d %v", n, err)
	}
	if a, c, err := parseAlive("alive 99 100"); err != nil || a != 99 || c != 100 {
		t.Errorf("%d %d %v", a, c, err)
	}
	for _, bad := range []string{"", "check", "check -1", "check x", "alive 1", "alive 2 1", "alive -1 3", "ready 1 2"} {
		_, err1 := parseCheck(bad)
		_, _, err2 := parseAlive(bad)
		if err1 == nil || err2 == nil {
			t.Errorf("%q: %v, %v", bad, err1, err2)
		}
	}
}

func TestLeaseWorkloadArgs(t *testing.T) {
	all := workloads()
	args, shown := toolArgs(all["lease-grant-revoke"], 5000, "h:1", 42)
	if got := strings.Join(args, " "); got != "leases --clients 100 --conns 100 --ttl 600 --leases 5000 --endpoint h:1 --server-pid 42" {
		t.Errorf("args %s", got)
	}
	if shown != "harness leases --clients 100 --conns 100 --ttl 600 --leases 5000 --endpoint HOST:PORT --server-pid PID" {
		t.Errorf("shown %s", shown)
	}
	if _, shown := toolArgs(all["leases-held-100k"], 100000, "h:1", 42); !strings.Contains(shown, "--clients 100 --conns 10 --ttl 600 --leases 100000 --hold ") {
		t.Errorf("hold %s", shown)
	}
	if _, shown := toolArgs(all["lock"], 2000, "h:1", 42); shown != "harness locks --clients 100 --conns 100 --names 100 --ttl 60 --total 2000 --endpoint HOST:PORT --server-pid PID" {
		t.Errorf("lock %s", shown)
	}
	o := &options{valSize: 256}
	w := all["lease-keepalive"]
	if got := strings.Join(benchArgs(o, "h:1", w.clients, w.conns, 10000, w.args(o)), " "); got != "--endpoints=h:1 --clients=100 --conns=100 --precise lease-keepalive --total=10000" {
		t.Errorf("keepalive %s", got)
	}
	// 100,000 leases whatever --quick and --scale say; the others scale.
	if w := all["leases-held-100k"]; w.total(&options{quick: true, scale: 0.5}) != 100000 || !w.hold {
		t.Error("leases-held-100k scaled")
	}
	if w := all["lock"]; w.total(&options{quick: true, scale: 1}) != 2000 {
		t.Error("lock quick total")
	}
	ceiling, etcd := systems()["ceiling"], systems()["etcd"]
	for _, n := range leaseWorkloadNames {
		if !all[n].lease || ceiling.serves(all[n]) || !etcd.serves(all[n]) {
			t.Errorf("%s: lease %v, on the ceiling %v", n, all[n].lease, ceiling.serves(all[n]))
		}
	}
	if !ceiling.serves(all["stm"]) || ceiling.serves(all["watch"]) {
		t.Error("ceiling serves stm, not watch")
	}
}

func TestLeaseGroup(t *testing.T) {
	o, err := parseFlags([]string{"--workloads", "leases"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.workloads, ","); got != "lease-keepalive,lease-grant-revoke,lock,stm,leases-held-100k" {
		t.Errorf("leases: %s", got)
	}
	// stm is in both groups: it runs once, where kv puts it.
	o, err = parseFlags([]string{"--workloads", "kv,leases"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.workloads, ","); !strings.HasSuffix(got, ",txn-mixed,stm,lease-keepalive,lease-grant-revoke,lock,leases-held-100k") || strings.Count(got, "stm") != 1 {
		t.Errorf("kv,leases: %s", got)
	}
	// The default runs every lease workload, last.
	o, err = parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.workloads, ","); !strings.HasSuffix(got, ",watchers-idle-100k,lease-keepalive,lease-grant-revoke,lock,leases-held-100k") {
		t.Errorf("default: %s", got)
	}
}

// TestLeaseMarkdown renders the lease section of made-up results:
// MetaStore twice as fast as etcd and half its memory.
func TestLeaseMarkdown(t *testing.T) {
	r := &results{
		Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Finished: time.Date(2026, 1, 2, 3, 6, 0, 0, time.UTC),
		Systems: []string{"metastore", "etcd", "ceiling"}, Options: map[string]any{"val_size": 256},
	}
	all := workloads()
	for _, n := range leaseGroupNames {
		w := all[n]
		r.Workloads = append(r.Workloads, workloadInfo{Name: n, Desc: w.desc, Clients: w.clients, Conns: w.conns, Total: 10})
	}
	add := func(c cellResult) { c.Round = 1; r.Cells = append(r.Cells, c) }
	for _, s := range []struct {
		sys string
		f   float64
	}{{"metastore", 2}, {"etcd", 1}} {
		f := s.f
		add(cellResult{System: s.sys, Workload: "lease-keepalive", Command: "bin/benchmark --endpoints=127.0.0.1:5 --clients=100 lease-keepalive --total=10",
			RPS: 10000 * f, CPUPer1k: 0.1 / f, PeakRSSBytes: 50 << 20, Parts: []partResult{{Name: "all", RPS: 10000 * f, P50ms: 5, P99ms: 20 / f}}})
		add(cellResult{System: s.sys, Workload: "lease-grant-revoke", Command: "harness leases --leases 10 --endpoint HOST:PORT --server-pid PID",
			RPS: 9000 * f, Parts: []partResult{
				{Name: "grant", Requests: 1000, RPS: 4000 * f, P50ms: 10, P99ms: 30, ServerCPUSeconds: 0.5 / f},
				{Name: "revoke", Requests: 1000, RPS: 5000 * f, P50ms: 8, P99ms: 20, ServerCPUSeconds: 0.4 / f}}})
		add(cellResult{System: s.sys, Workload: "lock", Command: "harness locks --total 10 --endpoint HOST:PORT --server-pid PID", RPS: 2000 * f,
			Parts: []partResult{{Name: "all", Requests: 2000, RPS: 2000 * f, P50ms: 40, P99ms: 200, ServerCPUSeconds: 1}}})
		add(cellResult{System: s.sys, Workload: "stm", RPS: 3000 / f, Parts: []partResult{{Name: "all", RPS: 3000 / f}}})
		add(cellResult{System: s.sys, Workload: "leases-held-100k", Command: "harness leases --hold", RPS: 10000, Requests: 100000,
			Leases: &leaseStats{Command: "harness leases --hold", Leases: 100000, Clients: 100, Conns: 10, GrantSeconds: 10, GrantCPUSeconds: 4,
				Checked: 100, Alive: 100, RSSBeforeBytes: 30 << 20, RSSHoldingBytes: 60 << 20 / int64(f), HWMHoldingBytes: 80 << 20 / int64(f)}})
	}
	add(cellResult{System: "ceiling", Workload: "stm", RPS: 5000, Parts: []partResult{{Name: "all", RPS: 5000}}})
	md := markdown(r, "x.json")
	for _, want := range []string{
		"### Leases\n",
		"| lease-keepalive | " + all["lease-keepalive"].desc + " | 100 / 100 | 10 | `bin/benchmark --endpoints=HOST:PORT --clients=100 lease-keepalive --total=10` |",
		"| lock | " + all["lock"].desc + " | 100 / 100 | 10 | `harness locks --total 10 --endpoint HOST:PORT --server-pid PID` |",
		"#### Keep-alives (lease-keepalive)",
		"| MetaStore (durable) | 20000 | 5.00 | 10.00 | – | 0.050 | 50 | 0 |",
		"| etcd v3.7 (durable) | 4000 | 10.00 | 30.00 | 0.500 | 5000 | 8.00 | 20.00 | 0.400 | 0 | 0 |",
		"| MetaStore (durable) | 4000 | 40.00 | 200.00 | – | 0.500 | 0 | 0 |",
		"| MetaStore (durable) | 100000 / 100 / 10 | 10.00 | 10000 | 30 | 30 | 40 | 4.00 | 100 / 100 | 0 |",
		"#### Lease targets",
		"| target | MetaStore (durable) | etcd v3.7 (durable) |",
		"| keep-alives a second at least 2× etcd's (lease-keepalive) | 2.00 (met) | – |",
		"| lock and unlock cycles a second at least etcd's (lock) | 2.00 (met) | – |",
		"| STM transactions a second at least etcd's (stm) | 0.50 (not met) | – |",
		"| peak RSS with 100,000 leases held at most etcd's (leases-held-100k) | 0.50 (met) | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("lease section lacks %q:\n%s", want, md)
		}
	}
	// stm stays in the KV tables, the lease workloads out of them; the
	// ceiling has no lease rows.
	if !strings.Contains(md, "| stm | ceiling (no storage) | 5000 |") || strings.Contains(md, "| lock | MetaStore") ||
		strings.Contains(md, "\n| ceiling (no storage) |") {
		t.Errorf("KV tables:\n%s", md)
	}
	if strings.Contains(md, "It did not run") {
		t.Errorf("stm reported missing:\n%s", md)
	}

	// A failed holder: its row says so and its target is left out.
	for i := range r.Cells {
		if c := &r.Cells[i]; c.System == "metastore" && c.Workload == "leases-held-100k" {
			c.Leases.Alive = 90
			c.Failure = "10 of 100 held leases checked were gone"
		}
	}
	md = markdown(r, "x.json")
	if !strings.Contains(md, "| 4.00 | 90 / 100 | 0 ⚠ 10 of 100 held leases checked were gone |") ||
		strings.Contains(md, "(leases-held-100k) |") {
		t.Errorf("failed holder:\n%s", md)
	}
}
