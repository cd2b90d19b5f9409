package test

// etcdctl's lease, lock and elect commands end to end, against every
// selected backend (see etcdctl_test.go for the harness). Each server picks
// its own lease IDs, and the lock and election keys are named after them,
// so the transcripts record every lease ID by name instead (lecNames: L1,
// L2, ... in the order the scenario meets them). Remaining TTLs depend on
// when a command runs, so only their bounds are asserted and recorded.
//
// The commands that run until stopped (keep-alive, lock, elect) run in the
// background (ewProc, from etcdctl_watch_test.go); lecStop ends one with
// SIGTERM, as a user's Ctrl-C does, after which lock unlocks and elect
// resigns. Every wait is bounded.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lecExpiryTimeout bounds the wait for a lease of a few seconds to expire
// and its keys to go; etcd checks for expired leases every 500 ms.
const lecExpiryTimeout = 20 * time.Second

// lecNames names lease IDs in the order a scenario first meets them.
type lecNames struct {
	names map[int64]string
}

// name is id's name, given now if id is new.
func (n *lecNames) name(id int64) string {
	if n.names == nil {
		n.names = map[int64]string{}
	}
	if s, ok := n.names[id]; ok {
		return s
	}
	s := "L" + strconv.Itoa(len(n.names)+1)
	n.names[id] = s
	return s
}

// lecHexID matches a lease ID as the lease commands print it: 16 hex digits.
var lecHexID = regexp.MustCompile(`\b[0-9a-f]{16}\b`)

// text replaces every lease ID that s prints by its name, in angle brackets.
func (n *lecNames) text(s string) string {
	return lecHexID.ReplaceAllStringFunc(s, func(h string) string {
		id, err := strconv.ParseUint(h, 16, 64)
		if err != nil {
			return h
		}
		return "<" + n.name(int64(id)) + ">"
	})
}

// key replaces the lease ID in a lock or election key, <name>/<lease in
// hex, unpadded>, by its name. A key of another shape is returned as it is,
// for the assertions to show.
func (n *lecNames) key(name, key string) string {
	h, ok := strings.CutPrefix(key, name+"/")
	id, err := strconv.ParseUint(h, 16, 64)
	if !ok || err != nil {
		return key
	}
	return name + "/<" + n.name(int64(id)) + ">"
}

// lecHex is a lease ID as etcdctl takes it on the command line.
func lecHex(id int64) string { return fmt.Sprintf("%016x", id) }

// lecWant runs etcdctl, requires success and exactly the stdout want, and
// records the command and its output with the lease IDs by name.
func lecWant(c *ctl, ids *lecNames, want string, args ...string) {
	c.t.Helper()
	out := c.exec("", args...)
	if out.code != 0 || out.stdout != want {
		c.t.Errorf("etcdctl %q: exit %d, stdout %q, stderr %q; want stdout %q", args, out.code, out.stdout, out.stderr, want)
	}
	c.record(ids.text(strings.Join(args, " ")), ids.text(out.stdout))
}

// lecGrantRE is `lease grant`'s output.
var lecGrantRE = regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n$`)

// lecGrant runs `lease grant ttl`, requires that the lease got TTL
// wantTTL, records the output and returns the lease's ID.
func lecGrant(c *ctl, ids *lecNames, ttl string, wantTTL int64) int64 {
	c.t.Helper()
	out := c.exec("", "lease", "grant", ttl)
	m := lecGrantRE.FindStringSubmatch(out.stdout)
	if out.code != 0 || m == nil || m[2] != strconv.FormatInt(wantTTL, 10) {
		c.t.Fatalf("lease grant %s: exit %d, stdout %q, stderr %q; want a lease with TTL(%ds)", ttl, out.code, out.stdout, out.stderr, wantTTL)
	}
	id, _ := strconv.ParseUint(m[1], 16, 64)
	c.record("lease grant "+ttl, ids.text(out.stdout))
	return int64(id)
}

// lecTTLRE is `lease timetolive`'s output for a lease that exists.
var lecTTLRE = regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\), remaining\((-?\d+)s\)(, attached keys\(\[(.*)\]\))?\n$`)

// lecTimeToLive runs `lease timetolive [--keys]` for a lease that exists,
// and requires its granted TTL, a remaining TTL above 0 and at most the
// granted one, and with --keys the keys want, in any order (etcd keeps
// them in a map). It records all but the remaining TTL.
func lecTimeToLive(c *ctl, ids *lecNames, id int64, granted int64, keys bool, want ...string) {
	c.t.Helper()
	args := []string{"lease", "timetolive", lecHex(id)}
	if keys {
		args = append(args, "--keys")
	}
	out := c.exec("", args...)
	m := lecTTLRE.FindStringSubmatch(out.stdout)
	if out.code != 0 || m == nil || m[1] != lecHex(id) || (m[4] != "") != keys {
		c.t.Fatalf("etcdctl %q: exit %d, stdout %q, stderr %q; want the lease's TTLs", args, out.code, out.stdout, out.stderr)
	}
	remaining, _ := strconv.ParseInt(m[3], 10, 64)
	if m[2] != strconv.FormatInt(granted, 10) || remaining <= 0 || remaining > granted {
		c.t.Errorf("etcdctl %q: %q, want granted TTL %d s and a remaining TTL in 1..%d", args, out.stdout, granted, granted)
	}
	got := "granted " + m[2]
	if keys {
		attached := strings.Fields(m[5])
		slices.Sort(attached)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(attached, want) {
			c.t.Errorf("etcdctl %q: attached keys %q, want %q", args, attached, want)
		}
		got += fmt.Sprintf(", keys %q", attached)
	}
	c.record(ids.text(strings.Join(args, " ")), got)
}

// lecList runs `lease list` and requires exactly the leases want, in any
// order, and records them by name, sorted; TestEtcdctlLeaseListOrder
// checks the order on its own.
func lecList(c *ctl, ids *lecNames, want ...int64) {
	c.t.Helper()
	out := c.exec("", "lease", "list")
	lines := strings.Split(strings.TrimSuffix(out.stdout, "\n"), "\n")
	got := slices.Sorted(slices.Values(lines[1:]))
	var wantHex []string
	for _, id := range want {
		wantHex = append(wantHex, lecHex(id))
	}
	slices.Sort(wantHex)
	if out.code != 0 || lines[0] != fmt.Sprintf("found %d leases", len(want)) || !slices.Equal(got, wantHex) {
		c.t.Errorf("lease list: exit %d, stdout %q, stderr %q; want %d leases %q", out.code, out.stdout, out.stderr, len(want), wantHex)
	}
	var names []string
	for _, h := range got {
		names = append(names, ids.text(h))
	}
	slices.Sort(names)
	c.record("lease list", lines[0]+" "+strings.Join(names, " "))
}

// lecGetLease reads key with -w json and returns the lease it is attached
// to (0 for none), recording the normalized kv with the lease by name.
func lecGetLease(c *ctl, ids *lecNames, key string) int64 {
	c.t.Helper()
	var r ctlRangeResp
	c.jsonOut(&r, "get", key)
	if len(r.Kvs) != 1 {
		c.t.Fatalf("get %s: %d kvs, want 1", key, len(r.Kvs))
	}
	kv := c.nkv(r.Kvs[0])
	lease := ""
	if kv.Lease != 0 {
		lease = ids.name(kv.Lease)
	}
	kv.Lease = 0
	c.record("get -w json "+key, fmt.Sprintf("%+v on lease %q", kv, lease))
	return r.Kvs[0].Lease
}

// TestEtcdctlLease covers `lease grant`, `put --lease`, `lease timetolive`
// with and without --keys, `lease list`, `lease keep-alive --once` and
// `lease revoke`, the errors for a lease that does not exist, and a lease
// that expires. Granting and revoking a lease without keys takes no
// revision; revoking one with keys deletes them all at one revision.
func TestEtcdctlLease(t *testing.T) {
	const p = "ctl-lease/"
	ctlEachBackend(t, func(c *ctl) {
		ids := &lecNames{}
		l1 := lecGrant(c, ids, "300", 300)
		l2 := lecGrant(c, ids, "100", 100)
		l3 := lecGrant(c, ids, "200", 200)
		if rev := c.currentRev(); rev != c.base {
			c.t.Errorf("grants moved the revision from %d to %d", c.base, rev)
		}

		c.want("OK\n", "put", "--lease="+lecHex(l1), p+"a", "1") // rev 1
		c.want("OK\n", "put", "--lease="+lecHex(l1), p+"b", "2") // rev 2
		c.want("OK\n", "put", "--lease="+lecHex(l2), p+"c", "3") // rev 3
		if got := lecGetLease(c, ids, p+"a"); got != l1 {
			c.t.Errorf("%sa is on lease %x, want %x", p, got, l1)
		}
		lecTimeToLive(c, ids, l1, 300, false)
		lecTimeToLive(c, ids, l1, 300, true, p+"a", p+"b")
		lecTimeToLive(c, ids, l3, 200, true)
		lecList(c, ids, l1, l2, l3)
		lecWant(c, ids, fmt.Sprintf("lease %s keepalived with TTL(300)\n", lecHex(l1)), "lease", "keep-alive", "--once", lecHex(l1))

		// A put moves a key to its lease, or to none.
		c.want("OK\n", "put", "--lease="+lecHex(l3), p+"a", "1b") // rev 4
		c.want("OK\n", "put", p+"b", "2b")                        // rev 5
		lecTimeToLive(c, ids, l1, 300, true)
		lecTimeToLive(c, ids, l3, 200, true, p+"a")
		if got := lecGetLease(c, ids, p+"b"); got != 0 {
			c.t.Errorf("%sb is on lease %x after a put without one", p, got)
		}

		// Revoking l3 deletes its key at one revision; revoking l1, which
		// has none left, takes no revision.
		lecWant(c, ids, fmt.Sprintf("lease %s revoked\n", lecHex(l3)), "lease", "revoke", lecHex(l3)) // rev 6
		c.want(ctlSimpleKVs(p+"b", "2b", p+"c", "3"), "get", "--prefix", p)
		lecWant(c, ids, fmt.Sprintf("lease %s revoked\n", lecHex(l1)), "lease", "revoke", lecHex(l1))
		if rev := c.currentRev(); rev != c.rev(6) {
			c.t.Errorf("after the revokes the revision is base+%d, want base+6", rev-c.base)
		}
		lecList(c, ids, l2)

		// A lease that is gone.
		lecWant(c, ids, fmt.Sprintf("lease %s already expired\n", lecHex(l3)), "lease", "timetolive", lecHex(l3))
		c.fails(1, "Error: failed to revoke lease (etcdserver: requested lease not found)", "lease", "revoke", lecHex(l3))
		c.fails(2, "Error: etcdserver: requested lease not found", "lease", "keep-alive", "--once", lecHex(l3))
		c.fails(1, "Error: etcdserver: requested lease not found", "put", "--lease="+lecHex(l3), p+"d", "4")
		// A keep-alive of it ends at the first answer.
		lecWant(c, ids, fmt.Sprintf("lease %s expired or revoked.\n", lecHex(l3)), "lease", "keep-alive", lecHex(l3))

		// TTLs: below the minimum (1 s on these servers) one gets the
		// minimum; above etcd's maximum (9,000,000,000 s) none.
		short := lecGrant(c, ids, "0", 1)
		c.fails(1, "Error: failed to grant lease (etcdserver: too large lease TTL)", "lease", "grant", "9000000001")

		// A lease nobody keeps alive expires and takes its keys along.
		l4 := lecGrant(c, ids, "3", 3)
		c.want("OK\n", "put", "--lease="+lecHex(l4), p+"e", "5") // rev 7
		deadline := time.Now().Add(lecExpiryTimeout)
		for c.exec("", "get", p+"e").stdout != "" {
			if time.Now().After(deadline) {
				c.t.Fatalf("%se still there %v after its lease of 3 s was granted", p, lecExpiryTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.record("expiry", "the key is gone")
		lecWant(c, ids, fmt.Sprintf("lease %s already expired\n", lecHex(l4)), "lease", "timetolive", lecHex(l4))
		lecWant(c, ids, fmt.Sprintf("lease %s already expired\n", lecHex(short)), "lease", "timetolive", lecHex(short))
		lecList(c, ids, l2)
	})
}

// TestEtcdctlLeaseListOrder: etcd lists leases by expiry, soonest first
// (its lessor sorts them so), not in the order they were granted. The API
// promises no order, but this is the one etcdctl users see.
func TestEtcdctlLeaseListOrder(t *testing.T) {
	ctlEachBackend(t, func(c *ctl) {
		ids := &lecNames{}
		l1 := lecGrant(c, ids, "300", 300)
		l2 := lecGrant(c, ids, "100", 100)
		l3 := lecGrant(c, ids, "200", 200)
		l4 := lecGrant(c, ids, "100", 100) // l2's TTL, granted later: expires between l2 and l3
		want := "found 4 leases\n"
		for _, id := range []int64{l2, l4, l3, l1} {
			want += lecHex(id) + "\n"
		}
		lecWant(c, ids, want, "lease", "list")
	})
}

// lecGrantJSON is `lease grant -w json`: clientv3's LeaseGrantResponse,
// which embeds the header, so its fields sit at the top level.
type lecGrantJSON struct {
	ctlHeader
	ID  int64 `json:"ID"`
	TTL int64 `json:"TTL"`
}

// lecTTLJSON is `lease timetolive -w json`: clientv3's
// LeaseTimeToLiveResponse, with the header embedded too, and json tags of
// its own.
type lecTTLJSON struct {
	ctlHeader
	ID         int64    `json:"id"`
	TTL        int64    `json:"ttl"`
	GrantedTTL int64    `json:"granted-ttl"`
	Keys       [][]byte `json:"keys"`
}

// TestEtcdctlLeaseJSON checks the lease responses' fields and headers, as
// -w json prints them: a grant and a revoke without keys answer the
// current revision, a revoke with keys the revision that deleted them, and
// timetolive of a lease that is gone TTL -1 and nothing else.
func TestEtcdctlLeaseJSON(t *testing.T) {
	const p = "ctl-leasejson/"
	ctlEachBackend(t, func(c *ctl) {
		ids := &lecNames{}
		var g lecGrantJSON
		c.jsonOut(&g, "lease", "grant", "60")
		c.record("lease grant 60 -w json", fmt.Sprintf("%s TTL %d at rev %d", ids.name(g.ID), g.TTL, c.hdrRev(&g.ctlHeader)))
		if g.TTL != 60 || g.ID == 0 || c.hdrRev(&g.ctlHeader) != 0 {
			c.t.Errorf("lease grant 60 -w json: %+v, want TTL 60, an ID and revision base+0", g)
		}
		c.want("OK\n", "put", "--lease="+lecHex(g.ID), p+"a", "1") // rev 1
		c.want("OK\n", "put", "--lease="+lecHex(g.ID), p+"b", "2") // rev 2

		var ttl lecTTLJSON
		c.jsonOut(&ttl, "lease", "timetolive", "--keys", lecHex(g.ID))
		var keys []string
		for _, k := range ttl.Keys {
			keys = append(keys, string(k))
		}
		slices.Sort(keys)
		c.record("lease timetolive --keys -w json", fmt.Sprintf("%s granted %d keys %q at rev %d", ids.name(ttl.ID), ttl.GrantedTTL, keys, c.hdrRev(&ttl.ctlHeader)))
		if ttl.ID != g.ID || ttl.GrantedTTL != 60 || ttl.TTL <= 0 || ttl.TTL > 60 || !slices.Equal(keys, []string{p + "a", p + "b"}) || c.hdrRev(&ttl.ctlHeader) != 2 {
			c.t.Errorf("lease timetolive --keys -w json: %+v, want the lease's TTLs, its two keys and revision base+2", ttl)
		}

		var rv struct {
			Header *ctlHeader `json:"header"`
		}
		c.jsonOut(&rv, "lease", "revoke", lecHex(g.ID)) // rev 3
		c.record("lease revoke -w json (with keys)", c.hdrRev(rv.Header))
		if c.hdrRev(rv.Header) != 3 {
			c.t.Errorf("lease revoke of a lease with keys answered revision base+%d, want base+3", c.hdrRev(rv.Header))
		}
		c.jsonOut(&g, "lease", "grant", "60")
		rv.Header = nil // the next response must bring its own
		c.jsonOut(&rv, "lease", "revoke", lecHex(g.ID))
		c.record("lease revoke -w json (without keys)", c.hdrRev(rv.Header))
		if c.hdrRev(rv.Header) != 3 {
			c.t.Errorf("lease revoke of a lease without keys answered revision base+%d, want base+3", c.hdrRev(rv.Header))
		}

		ttl = lecTTLJSON{}
		c.jsonOut(&ttl, "lease", "timetolive", "--keys", lecHex(g.ID))
		c.record("lease timetolive -w json, gone", fmt.Sprintf("%s TTL %d granted %d keys %d at rev %d", ids.name(ttl.ID), ttl.TTL, ttl.GrantedTTL, len(ttl.Keys), c.hdrRev(&ttl.ctlHeader)))
		if ttl.ID != g.ID || ttl.TTL != -1 || ttl.GrantedTTL != 0 || len(ttl.Keys) != 0 {
			c.t.Errorf("lease timetolive -w json of a revoked lease: %+v, want its ID and TTL -1 only", ttl)
		}
	})
}

// lecStop ends a background etcdctl with SIGTERM and requires that it
// exits with code 0 and prints nothing more.
func lecStop(p *ewProc) {
	p.c.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.c.t.Fatalf("etcdctl %s: SIGTERM: %v", p.label, err)
	}
	lecExit(p, 0)
}

// lecExit waits for a background etcdctl to exit by itself, requires exit
// code code, and that it printed nothing it was not read for.
func lecExit(p *ewProc, code int) {
	p.c.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(ewLineTimeout):
		p.c.t.Fatalf("etcdctl %s still running %v later", p.label, ewLineTimeout)
	}
	got := p.cmd.ProcessState.ExitCode()
	if got != code {
		p.c.t.Errorf("etcdctl %s: exit %d, want %d; stderr:\n%s", p.label, got, code, p.stderr)
	}
	p.c.record(p.label+": exit", got)
	p.finish()
}

// TestEtcdctlLeaseKeepAlive runs `lease keep-alive` in the background. It
// renews the lease every third of its TTL and prints each renewal; while
// it runs, the lease and its key outlive the TTL several times over. A
// revoke ends it: the next renewal finds no lease, and etcdctl says so and
// exits 0. Killed instead, it stops renewing and the lease expires.
func TestEtcdctlLeaseKeepAlive(t *testing.T) {
	const p = "ctl-keepalive/"
	const ttl = 2
	ctlEachBackend(t, func(c *ctl) {
		ids := &lecNames{}
		renewed := func(id int64) string { return fmt.Sprintf("lease %s keepalived with TTL(%d)", lecHex(id), ttl) }

		l1 := lecGrant(c, ids, strconv.Itoa(ttl), ttl)
		c.want("OK\n", "put", "--lease="+lecHex(l1), p+"a", "1")
		ka := c.ewStart("lease", "keep-alive", lecHex(l1))
		end := time.Now().Add(3 * ttl * time.Second)
		for n := 0; n < 3 || time.Now().Before(end); n++ {
			if l := ka.next("a renewal"); l != renewed(l1) {
				c.t.Fatalf("keep-alive printed %q, want %q", l, renewed(l1))
			}
		}
		c.record("keep-alive: renewals past 3 TTLs", ids.text(renewed(l1)))
		c.want(ctlSimpleKVs(p+"a", "1"), "get", p+"a")
		lecTimeToLive(c, ids, l1, ttl, true, p+"a")

		lecWant(c, ids, fmt.Sprintf("lease %s revoked\n", lecHex(l1)), "lease", "revoke", lecHex(l1))
		gone := fmt.Sprintf("lease %s expired or revoked.", lecHex(l1))
		for i := 0; ; i++ {
			l := ka.next("the end of the lease")
			if l == gone {
				break
			}
			// Renewals already on their way when the revoke ran.
			if l != renewed(l1) || i > 10 {
				c.t.Fatalf("keep-alive printed %q, want %q", l, gone)
			}
		}
		c.record("keep-alive after the revoke", ids.text(gone))
		lecExit(ka, 0)

		l2 := lecGrant(c, ids, strconv.Itoa(ttl), ttl)
		c.want("OK\n", "put", "--lease="+lecHex(l2), p+"b", "2")
		ka = c.ewStart("lease", "keep-alive", lecHex(l2))
		if l := ka.next("the first renewal"); l != renewed(l2) {
			c.t.Fatalf("keep-alive printed %q, want %q", l, renewed(l2))
		}
		c.record("keep-alive: the first renewal", ids.text(renewed(l2)))
		ka.kill()
		deadline := time.Now().Add(lecExpiryTimeout)
		for c.exec("", "get", p+"b").stdout != "" {
			if time.Now().After(deadline) {
				c.t.Fatalf("%sb still there %v after its keep-alive was killed", p, lecExpiryTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.record("expiry after the keep-alive was killed", "the key is gone")
		lecWant(c, ids, fmt.Sprintf("lease %s already expired\n", lecHex(l2)), "lease", "timetolive", lecHex(l2))
	})
}

// lecWaitKeys waits until exactly n keys exist under prefix and returns
// them, in create order (the queue of a lock or an election).
func lecWaitKeys(c *ctl, prefix string, n int) []string {
	c.t.Helper()
	deadline := time.Now().Add(lecExpiryTimeout)
	for {
		out := c.exec("", "get", "--prefix", "--keys-only", "--order=ASCEND", "--sort-by=CREATE", prefix)
		var keys []string
		for _, l := range strings.Split(out.stdout, "\n") {
			if l != "" {
				keys = append(keys, l)
			}
		}
		if out.code == 0 && len(keys) == n {
			return keys
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d keys under %q after %v, want %d: exit %d, stdout %q", len(keys), prefix, lecExpiryTimeout, n, out.code, out.stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lecHolds reads the two lines `lock` and `elect` print once they hold the
// lock or lead: the key, and its value. The key must be under name.
func lecHolds(p *ewProc, ids *lecNames, name, value, label string) string {
	p.c.t.Helper()
	key := p.next("the key held")
	if v := p.next("the value held"); v != value || !strings.HasPrefix(key, name+"/") {
		p.c.t.Fatalf("etcdctl %s printed %q, %q; want a key under %s/ and value %q", p.label, key, v, name, value)
	}
	p.c.record(p.label+": "+label, ids.key(name, key)+" = "+value)
	return key
}

// lecQuiet requires that a background etcdctl prints nothing for elQuietFor.
func lecQuiet(p *ewProc, why string) {
	p.c.t.Helper()
	if l, ok := p.within(elQuietFor); ok {
		p.c.t.Fatalf("etcdctl %s printed %q, but %s", p.label, l, why)
	}
}

// TestEtcdctlLock runs `etcdctl lock`. With a command, it runs the command
// while it holds the lock, with ETCD_LOCK_KEY and ETCD_LOCK_REV set, then
// unlocks and exits with the command's exit code. Without one it prints
// the lock key and holds it until stopped; a second lock waits meanwhile
// and gets it when the first unlocks on SIGTERM, or when the first is
// killed and its session's lease expires.
func TestEtcdctlLock(t *testing.T) {
	const name = "ctl-lock"
	ctlEachBackend(t, func(c *ctl) {
		ids := &lecNames{}
		// The command lists the lock's keys with a nested etcdctl, to show
		// that it runs while the lock is held.
		script := `echo "key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV"; "$1" --endpoints="$2" get --prefix --keys-only "$3/"`
		args := []string{"lock", name, "--", "sh", "-c", script, "sh", c.bin, c.endpoint, name}
		out := c.exec("", args...)
		lines := strings.Split(out.stdout, "\n")
		key, rev, ok := strings.Cut(strings.TrimPrefix(lines[0], "key="), " rev=")
		if out.code != 0 || !ok || len(lines) != 4 || lines[1] != key || lines[2] != "" || rev != c.revArg(1) {
			c.t.Errorf("lock with a command: exit %d, stdout %q, stderr %q; want its key and rev %s, then the same key from the nested get",
				out.code, out.stdout, out.stderr, c.revArg(1))
		}
		c.record("lock with a command", fmt.Sprintf("exit %d, key %s, rev is base+1: %v, listed by the nested get: %v",
			out.code, ids.key(name, key), rev == c.revArg(1), len(lines) == 4 && lines[1] == key))
		c.want("", "get", "--prefix", name+"/") // unlocked when the command ended
		c.fails(3, "Error: exit status 3", "lock", name, "--", "sh", "-c", "exit 3")
		c.want("", "get", "--prefix", name+"/")

		// A holder with a short session, and a waiter.
		h1 := c.ewStart("lock", "--ttl=1", name)
		k1 := lecHolds(h1, ids, name, "", "holds")
		h2 := c.ewStart("lock", name)
		if keys := lecWaitKeys(c, name+"/", 2); keys[0] != k1 {
			c.t.Fatalf("lock queue %q, want the holder's %q first", keys, k1)
		}
		// Three times the holder's TTL: its keep-alives keep the lock.
		for range 6 {
			lecQuiet(h2, "the first lock is held")
		}
		c.record("the waiter waits", "nothing printed")

		// Killed, the holder cannot unlock: its lease has to expire.
		h1.kill()
		k2 := lecHolds(h2, ids, name, "", "holds after the holder was killed")
		if k2 == k1 {
			c.t.Fatalf("the waiter holds the killed holder's key %q", k1)
		}
		h3 := c.ewStart("lock", name)
		lecWaitKeys(c, name+"/", 2)
		lecQuiet(h3, "the second lock is held")
		lecStop(h2) // unlocks
		lecHolds(h3, ids, name, "", "holds after the holder unlocked")
		lecStop(h3)
		c.want("", "get", "--prefix", name+"/")
	})
}

// TestEtcdctlElect runs `etcdctl elect`: a candidate prints its key and
// proposal once it leads and resigns on SIGTERM; `elect -l` prints every
// leader with its proposal, from the current one on.
func TestEtcdctlElect(t *testing.T) {
	const name = "ctl-elect"
	ctlEachBackend(t, func(c *ctl) {
		ids := &lecNames{}
		obs := c.ewStart("elect", "-l", name)
		lecQuiet(obs, "no one leads yet")

		e1 := c.ewStart("elect", name, "p1")
		k1 := lecHolds(e1, ids, name, "p1", "leads")
		if got := lecHolds(obs, ids, name, "p1", "sees the first leader"); got != k1 {
			c.t.Errorf("the observer sees %q lead, want %q", got, k1)
		}
		e2 := c.ewStart("elect", name, "p2")
		if keys := lecWaitKeys(c, name+"/", 2); keys[0] != k1 {
			c.t.Fatalf("election queue %q, want the leader's %q first", keys, k1)
		}
		lecQuiet(e2, "the first candidate leads")

		// An observer started now sees the current leader at once.
		late := c.ewStart("elect", "-l", name)
		lecHolds(late, ids, name, "p1", "sees the current leader")
		lecStop(late)

		lecStop(e1) // resigns
		k2 := lecHolds(e2, ids, name, "p2", "leads after the first resigned")
		if got := lecHolds(obs, ids, name, "p2", "sees the second leader"); got != k2 || k2 == k1 {
			c.t.Errorf("the observer sees %q lead, want %q (not %q)", got, k2, k1)
		}
		lecStop(e2)
		c.want("", "get", "--prefix", name+"/")
		lecQuiet(obs, "no one leads any more")
		lecStop(obs)
	})
}
