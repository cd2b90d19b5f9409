package main

import "fmt"

// leaseSystems are the systems of r that serve Lease, in r's order.
func leaseSystems(r *results) []string {
	var out []string
	for _, s := range r.Systems {
		if !systems()[s].noLease {
			out = append(out, s)
		}
	}
	return out
}

// cpuPer1k is a part's server CPU seconds per 1,000 of its operations,
// formatted; "–" when the tool did not measure it.
func cpuPer1k(p partResult) string {
	if p.ServerCPUSeconds <= 0 || p.Requests == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f", p.ServerCPUSeconds/float64(p.Requests)*1000)
}

// writeLeases renders the lease workloads of r (r.Workloads holds only
// them): what each ran, a table for each, and the targets, stm's among
// them (its rows are in the KV tables).
func writeLeases(w printer, r *results) {
	ran := map[string]bool{}
	for _, wl := range r.Workloads {
		ran[wl.Name] = true
	}
	get := cellGetter(r)
	syss := leaseSystems(r)

	w("\n### Leases\n\n")
	w("The lease workloads run on every system but the ceiling, which serves no Lease. " +
		"`harness leases` and `harness locks` are the harness binary re-executed as its own process, measuring with clientv3 " +
		"(one operation in flight per client) and reading the server's utime+stime from /proc around each measured phase; " +
		"bin/benchmark has no mode for them. The locks are clientv3's concurrency.Mutex, what users of etcd's locks run " +
		"(etcd's v3lock service runs the same Mutex behind a gRPC call). ")
	if rounds := maxRound(r.Cells); rounds > 1 {
		w("Each row is the round with the median rate of %d rounds. ", rounds)
	}
	w("Latencies in ms; CPU is the server's utime+stime; RSS its peak (VmHWM).\n\n")
	w("| workload | what | clients / conns | operations | command |\n|---|---|--:|--:|---|\n")
	for _, wl := range r.Workloads {
		cmd := ""
		for _, c := range r.Cells {
			if c.Workload == wl.Name && c.Command != "" {
				cmd = "`" + reEndpoint.ReplaceAllString(c.Command, "--endpoints=HOST:PORT") + "`"
				break
			}
		}
		w("| %s | %s | %d / %d | %d | %s |\n", wl.Name, wl.Desc, wl.Clients, wl.Conns, wl.Total, cmd)
	}

	// simple is the table of a workload measured as one part: its rate,
	// latencies, CPU and RSS.
	simple := func(wl, title, note, unit string) {
		if !ran[wl] {
			return
		}
		w("\n#### %s (%s)\n\n%s\n\n", title, wl, note)
		w("| system | %s/s | p50 | p99 | p99.9 | CPU s/1k %s | peak RSS MiB | errors |\n|---|--:|--:|--:|--:|--:|--:|--:|\n", unit, unit)
		for _, s := range syss {
			c := get(s, wl)
			if c == nil {
				continue
			}
			label := systems()[s].label
			if cellFailed(c) {
				failRow(w, label, c, 8)
				continue
			}
			p := partNamed(c, "all")
			cpu := cpuPer1k(p)
			if cpu == "–" {
				cpu = fmt.Sprintf("%.3f", c.CPUPer1k)
			}
			w("| %s | %.0f | %s | %s | %s | %s | %.0f | %s |\n", label, p.RPS, ms(p.P50ms), ms(p.P99ms), ms(p.P999ms), cpu, mib(c.PeakRSSBytes), errCol(c))
		}
	}
	simple("lease-keepalive", "Keep-alives", "bin/benchmark lease-keepalive: one LeaseKeepAlive stream per keep-alive (clientv3 KeepAliveOnce), so each one also opens and closes a stream.", "keep-alives")
	if ran["lease-grant-revoke"] {
		w("\n#### Grants and revokes (lease-grant-revoke)\n\n")
		w("The leases are granted, then every one granted is revoked; each phase's rate is its successful operations over its time, its CPU the server's during it. The leases have no keys.\n\n")
		w("| system | grants/s | grant p50 | grant p99 | CPU s/1k grants | revokes/s | revoke p50 | revoke p99 | CPU s/1k revokes | peak RSS MiB | errors |\n")
		w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range syss {
			c := get(s, "lease-grant-revoke")
			if c == nil {
				continue
			}
			label := systems()[s].label
			if cellFailed(c) {
				failRow(w, label, c, 11)
				continue
			}
			g, v := partNamed(c, "grant"), partNamed(c, "revoke")
			w("| %s | %.0f | %s | %s | %s | %.0f | %s | %s | %s | %.0f | %s |\n", label, g.RPS, ms(g.P50ms), ms(g.P99ms), cpuPer1k(g),
				v.RPS, ms(v.P50ms), ms(v.P99ms), cpuPer1k(v), mib(c.PeakRSSBytes), errCol(c))
		}
	}
	simple("lock", "Lock and unlock", fmt.Sprintf("A cycle is concurrency.Mutex Lock then Unlock, timed from the Lock call to Unlock's return; a client whose lock name is held waits for it (%d clients picking among %d names often collide). Opening the sessions is not in the rate or the CPU.", workloads()["lock"].clients, lockNames), "cycles")
	if ran["leases-held-100k"] {
		w("\n#### Leases held (leases-held-100k)\n\n")
		w("The server's VmRSS before the leases, its VmRSS and VmHWM after they were granted and held idle %v, "+
			"the CPU it spent granting them, and how many of the leases checked with TimeToLive afterwards still had a TTL.\n\n", idleSettle)
		w("| system | leases / clients / conns | grant s | grants/s | RSS before MiB | RSS holding MiB | peak RSS MiB | CPU s to grant | alive / checked | errors |\n")
		w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range syss {
			c := get(s, "leases-held-100k")
			if c == nil {
				continue
			}
			label := systems()[s].label
			if cellFailed(c) || c.Leases == nil {
				failRow(w, label, c, 10)
				continue
			}
			l := c.Leases
			rate := "–"
			if l.GrantSeconds > 0 {
				rate = fmt.Sprintf("%.0f", float64(l.Leases)/l.GrantSeconds)
			}
			w("| %s | %d / %d / %d | %.2f | %s | %.0f | %.0f | %.0f | %.2f | %d / %d | %s |\n", label, l.Leases, l.Clients, l.Conns,
				l.GrantSeconds, rate, mib(l.RSSBeforeBytes), mib(l.RSSHoldingBytes), mib(l.HWMHoldingBytes), l.GrantCPUSeconds,
				l.Alive, l.Checked, errCol(c))
		}
	}
	note := "Ratios of this run, not asserted: a system against etcd. stm is bin/benchmark's STM workload of the KV tables above."
	if len(syss) > 0 && get(syss[0], "stm") == nil {
		note += " It did not run, so its target is missing: run it too (`--workloads leases` includes it)."
	}
	writeTargets(w, "Lease targets", note, syss, leaseGoals, get)
}

// rateOf is a value of a goal: the req/s of a workload that did not fail.
func rateOf(wl string) func(get func(sys, wl string) *cellResult, sys string) float64 {
	return func(get func(sys, wl string) *cellResult, sys string) float64 {
		if c := get(sys, wl); c != nil && c.Failure == "" {
			return c.RPS
		}
		return 0
	}
}

var leaseGoals = []goal{
	{name: "keep-alives a second at least 2× etcd's (lease-keepalive)", ref: "etcd", bound: 2, value: rateOf("lease-keepalive")},
	{name: "lock and unlock cycles a second at least etcd's (lock)", ref: "etcd", bound: 1, value: rateOf("lock")},
	{name: "STM transactions a second at least etcd's (stm)", ref: "etcd", bound: 1, value: rateOf("stm")},
	{
		name: "peak RSS with 100,000 leases held at most etcd's (leases-held-100k)", ref: "etcd", bound: 1, lower: true,
		value: func(get func(sys, wl string) *cellResult, sys string) float64 {
			if c := get(sys, "leases-held-100k"); c != nil && c.Failure == "" && c.Leases != nil {
				return float64(c.Leases.HWMHoldingBytes)
			}
			return 0
		},
	},
}
