package test

// Lease durability, against MetaStore alone: these tests stop a server and
// start another on its data dir, gracefully (durStart) or by killing the
// process with SIGKILL (durStartProc), which the in-process etcd backend
// is not built for; what they expect is what etcd does across a restart. A
// granted lease comes back with its TTL and its keys, and its countdown
// starts again from the full TTL (etcd refreshes every lease when a member
// becomes leader), also for a lease whose deadline passed while the server
// was down; a revoked lease stays revoked; a lease that expires after the
// restart still deletes its keys at one revision.

import (
	"slices"
	"strconv"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

const (
	// ltDurTTL is the TTL of the leases that must outlive the restart.
	ltDurTTL = 30
	// ltDurShortTTL is the TTL of the lease that expires after the restart:
	// the binary's default minimum.
	ltDurShortTTL = 2
	// ltDurChosenID is the ID of the lease the client names.
	ltDurChosenID = 0x2468
	// ltDurDown is how long the server stays down: longer than
	// ltDurShortTTL, so that the short lease's first deadline passes while
	// nobody can revoke it.
	ltDurDown = 3 * time.Second
)

// ltDurLeases are the leases made before the restart, and their keys.
type ltDurLeases struct {
	p string
	// kept has keys and outlives the restart; chosen has a client-chosen
	// ID, TTL ltDurTTL-10 and no keys; revoked had keys and was revoked;
	// short has keys and expires after the restart.
	kept, chosen, revoked, short int64
	keptKeys, shortKeys          []string
	// shortRev is the revision that attached short's keys.
	shortRev int64
}

// ltDurMake grants and attaches the leases, revokes one, and checks the
// revoke took its keys.
func ltDurMake(t *testing.T, tg *Target) ltDurLeases {
	t.Helper()
	l := ltDurLeases{p: "/lease-durability/"}
	l.kept = ltGrant(t, tg, 0, ltDurTTL).ID
	l.keptKeys = ltKeys(l.p+"kept/", 6)
	for _, k := range l.keptKeys[1:] {
		ltPut(t, tg, k, "v", l.kept)
	}
	// One key through a Txn, which runs on the coordinator.
	tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{ltOpPut(l.keptKeys[0], "v", l.kept)}})
	l.chosen = ltGrant(t, tg, ltDurChosenID, ltDurTTL-10).ID

	l.revoked = ltGrant(t, tg, 0, ltDurTTL).ID
	for _, k := range ltKeys(l.p+"revoked/", 3) {
		ltPut(t, tg, k, "v", l.revoked)
	}
	ltRevoke(t, tg, l.revoked)

	l.short = ltGrant(t, tg, 0, ltDurShortTTL).ID
	l.shortKeys = ltKeys(l.p+"short/", 4)
	var ops []*pb.RequestOp
	for _, k := range l.shortKeys {
		ops = append(ops, ltOpPut(k, "v", l.short))
	}
	l.shortRev = tg.txn(t, &pb.TxnRequest{Success: ops}).Header.Revision
	ltWantLeaseOf(t, tg, l.p+"revoked/", map[string]int64{})
	return l
}

// ltDurCheck checks the leases on the server restarted at restarted, then
// revokes kept there.
func ltDurCheck(t *testing.T, tg *Target, l ltDurLeases, restarted time.Time) {
	t.Helper()
	h := wtHeadersOf(t, tg)
	// The short lease's deletes, whether before or after the watcher is
	// made, come from the watch history.
	ws := wtOpen(t, tg)
	ws.create(&pb.WatchCreateRequest{Key: []byte(l.p + "short/"), RangeEnd: []byte(prefixEnd(l.p + "short/")), StartRevision: l.shortRev + 1})
	if r := ws.recv(); !r.Created || r.Canceled {
		t.Fatalf("watch of the short lease's keys: %s", wtSummary(r))
	}

	// Found with their TTLs and keys, deadlines from the full TTL.
	short := ltTimeToLive(t, tg, l.short, true)
	if age := time.Since(restarted); age < ltDurShortTTL*time.Second {
		ltWantRemaining(t, short, l.short, ltDurShortTTL, 0, age)
		ltWantKeys(t, short, l.shortKeys...)
	} else {
		t.Logf("short lease not checked before its deadline: the restart took %v", age)
	}
	kept := ltTimeToLive(t, tg, l.kept, true)
	ltWantRemaining(t, kept, l.kept, ltDurTTL, 0, time.Since(restarted))
	ltWantKeys(t, kept, l.keptKeys...)
	want := map[string]int64{}
	for _, k := range l.keptKeys {
		want[k[len(l.p+"kept/"):]] = l.kept
	}
	ltWantLeaseOf(t, tg, l.p+"kept/", want)
	chosen := ltTimeToLive(t, tg, l.chosen, true)
	ltWantRemaining(t, chosen, l.chosen, ltDurTTL-10, 0, time.Since(restarted))
	ltWantKeys(t, chosen)

	// Still revoked: not found, no keys, cannot be attached.
	if resp := ltTimeToLive(t, tg, l.revoked, true); resp.TTL != -1 {
		t.Fatalf("revoked lease after the restart: %v", resp)
	}
	ltWantLeaseOf(t, tg, l.p+"revoked/", map[string]int64{})
	_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(l.p + "revoked/again"), Lease: l.revoked})
	wantRPCErr(t, err, rpctypes.ErrGRPCLeaseNotFound)

	// The short lease runs out no sooner than its full TTL after the
	// restart, though its first deadline passed while the server was down.
	ltWaitDeletes(t, ws, h, 0, restarted.Add(ltDurShortTTL*time.Second), l.shortKeys...)
	if gone := time.Since(restarted); gone < ltDurShortTTL*time.Second {
		t.Fatalf("short lease's keys deleted %v after the restart began, before its %ds TTL", gone, ltDurShortTTL)
	}
	if resp := ltTimeToLive(t, tg, l.short, true); resp.TTL != -1 {
		t.Fatalf("expired lease: %v", resp)
	}
	if got, want := slices.Sorted(slices.Values(ltLeaseIDs(t, tg))), slices.Sorted(slices.Values([]int64{l.kept, l.chosen})); !slices.Equal(got, want) {
		t.Fatalf("leases after the restart and the expiry: %v, want %v", got, want)
	}

	// New grants get IDs of their own.
	for range 5 {
		id := ltGrant(t, tg, 0, ltDurTTL).ID
		if id == l.kept || id == l.chosen {
			t.Fatalf("new grant got the ID %d of a restored lease", id)
		}
	}
	// And a restored lease revokes its keys at one revision.
	cur := tg.currentRev(t)
	if rev := ltRevoke(t, tg, l.kept).Header.Revision; rev != cur+1 {
		t.Fatalf("revoke of a restored lease at %d, want %d", rev, cur+1)
	}
	ltWantLeaseOf(t, tg, l.p+"kept/", map[string]int64{})
}

// TestLeaseDurableRestart stops the in-process server gracefully, keeps it
// down past the short lease's TTL and starts it again on the same data
// dir; a second restart finds the revoke made after the first.
func TestLeaseDurableRestart(t *testing.T) {
	dir := t.TempDir()
	ds := durStart(t, durConfig(dir, 4))
	l := ltDurMake(t, ds.Target)
	ds.close(t)
	time.Sleep(ltDurDown)

	restarted := time.Now()
	ds = durStart(t, durConfig(dir, 4))
	ltDurCheck(t, ds.Target, l, restarted)
	leases := ltLeaseIDs(t, ds.Target)
	ds.close(t)

	ds = durStart(t, durConfig(dir, 4))
	if got := ltLeaseIDs(t, ds.Target); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(leases))) {
		t.Fatalf("leases after a second restart: %v, want %v", got, leases)
	}
	if resp := ltTimeToLive(t, ds.Target, l.kept, true); resp.TTL != -1 {
		t.Fatalf("lease revoked before the second restart: %v", resp)
	}
}

// TestLeaseDurableKill is TestLeaseDurableRestart with the metastore binary
// killed by SIGKILL right after the last lease write was acknowledged: an
// acknowledged grant or revoke is durable.
func TestLeaseDurableKill(t *testing.T) {
	args := []string{"--data-dir", t.TempDir(), "--shards", strconv.Itoa(4)}
	p := durStartProc(t, args...)
	tg := connect(t, "metastore", p.endpoint)
	l := ltDurMake(t, tg)
	p.kill()
	ltDurClose(tg)
	time.Sleep(ltDurDown)

	restarted := time.Now()
	p = durStartProc(t, args...)
	ltDurCheck(t, connect(t, "metastore", p.endpoint), l, restarted)
}

// ltDurClose closes tg's clients, so that they stop redialing a server
// that is gone (the next one may get its port).
func ltDurClose(tg *Target) {
	_ = tg.Client.Close()
	_ = tg.Conn.Close()
}
