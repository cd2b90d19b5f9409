package test

// HashKV is how etcd members prove they hold the same MVCC history: a
// CRC-32C over the key bucket's revision keys and encoded KeyValues up to a
// revision, leaving out what a compaction drops (etcd's
// server/storage/mvcc/hash.go). These tests write one history, request by
// request, to two servers started empty (MetaStore on a data dir and etcd;
// or two of the one backend METASTORE_BACKENDS selects, which must agree
// just the same), so their revisions line up, and after every request ask
// both for the hash at every revision: the answers must be equal, field by
// field and error by error. Each answer is also held to what etcd itself
// does, so a single backend is checked too:
//   - revision 0 is the current revision; a revision above it is refused as
//     a future revision, one below the compact revision as compacted;
//   - the compact_revision of an answer is the last compaction's revision
//     (-1 before any), except at a compaction's own revision: etcd answers
//     with the hash its compaction computed and stored, which began at the
//     compaction before it, and it does so even once a later compaction
//     has passed that revision;
//   - an answer at a revision does not change while no compaction happens,
//     however much is written after that revision.

import (
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/status"
)

// Leases of hkHistory. Their IDs are chosen by the test, not the server:
// a KeyValue's lease is part of what HashKV hashes.
const (
	// hkLeaseRevoked has two keys and is revoked before the compaction.
	hkLeaseRevoked = 0x4b01
	// hkLeaseKept has keys attached before and after the compaction.
	hkLeaseKept = 0x4b02
	// hkLeaseBare never has a key.
	hkLeaseBare = 0x4b03
)

// hkLeaseTTLs are the granted TTLs of hkHistory's leases: long enough that
// none expires during a test.
var hkLeaseTTLs = map[int64]int64{hkLeaseRevoked: 300, hkLeaseKept: 600, hkLeaseBare: 900}

// hkOp is one request of a history. do sends it to tg and returns the
// revision it produced: the header revision, or for a compaction the
// compacted revision.
type hkOp struct {
	name    string
	compact bool
	do      func(t testing.TB, tg *Target) int64
}

func hkPut(k, v string, lease int64) hkOp {
	return hkPutReq(&pb.PutRequest{Key: []byte(k), Value: []byte(v), Lease: lease})
}

func hkPutReq(r *pb.PutRequest) hkOp {
	return hkOp{name: fmt.Sprintf("put %q (%d bytes) lease %#x ignore value %v lease %v", r.Key, len(r.Value), r.Lease, r.IgnoreValue, r.IgnoreLease),
		do: func(t testing.TB, tg *Target) int64 {
			resp, err := tg.KV.Put(reqCtx(t), r)
			if err != nil {
				t.Fatalf("put %q: %v", r.Key, err)
			}
			return resp.Header.Revision
		}}
}

// hkDel deletes [k, end), or k alone if end is "".
func hkDel(k, end string) hkOp {
	return hkOp{name: fmt.Sprintf("delete %s..%s", k, end), do: func(t testing.TB, tg *Target) int64 {
		r := &pb.DeleteRangeRequest{Key: []byte(k)}
		if end != "" {
			r.RangeEnd = []byte(end)
		}
		resp, err := tg.KV.DeleteRange(reqCtx(t), r)
		if err != nil {
			t.Fatalf("delete %q..%q: %v", k, end, err)
		}
		return resp.Header.Revision
	}}
}

// hkTxn is a Txn without compares: every op runs, in one revision.
func hkTxn(name string, ops ...*pb.RequestOp) hkOp {
	return hkOp{name: "txn " + name, do: func(t testing.TB, tg *Target) int64 {
		resp, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: ops})
		if err != nil {
			t.Fatalf("txn %s: %v", name, err)
		}
		return resp.Header.Revision
	}}
}

func hkOpTxn(ops ...*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: ops}}}
}

func hkOpDel(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k)}}}
}

func hkGrant(id int64) hkOp {
	return hkOp{name: fmt.Sprintf("grant %#x", id), do: func(t testing.TB, tg *Target) int64 {
		return ltGrant(t, tg, id, hkLeaseTTLs[id]).Header.Revision
	}}
}

func hkRevoke(id int64) hkOp {
	return hkOp{name: fmt.Sprintf("revoke %#x", id), do: func(t testing.TB, tg *Target) int64 {
		return ltRevoke(t, tg, id).Header.Revision
	}}
}

// hkCompactHere compacts at the current revision and waits for the
// compaction to finish (physical), so that etcd has stored its hash.
func hkCompactHere() hkOp {
	return hkOp{name: "compact here", compact: true, do: func(t testing.TB, tg *Target) int64 {
		rev := tg.currentRev(t)
		if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: rev, Physical: true}); err != nil {
			t.Fatalf("compact at %d: %v", rev, err)
		}
		return rev
	}}
}

// hkHistory is a history under p with everything that shapes a hash:
// overwrites; Txns writing several keys (sub revisions above 0), one of
// them through a nested Txn; a Txn mixing puts and deletes; a range delete
// of several keys in one revision; a key deleted and created again; keys
// with leases, and a lease revoke deleting two of them in one revision;
// puts that keep the value or the lease (ignore_value, ignore_lease); an
// empty value, a binary key and a value larger than one snapshot message
// (32 KiB); a key deleted before the compact revision and a tombstone at
// exactly the compact revision; then, after the compaction, more
// overwrites, re-creations, deletes and leased keys, and a lease's key put
// again without the lease.
func hkHistory(p string) []hkOp {
	return []hkOp{
		hkPut(p+"a", "1", 0),
		hkPut(p+"a", "2", 0),
		hkPut(p+"b", "1", 0),
		hkTxn("puts c d e", ltOpPut(p+"c", "1", 0), ltOpPut(p+"d", "1", 0), ltOpPut(p+"e", "1", 0)),
		hkTxn("puts and deletes", ltOpPut(p+"a", "3", 0), hkOpDel(p+"b"), ltOpPut(p+"f", "1", 0), hkOpDel(p+"missing")),
		hkDel(p+"c", p+"e"),
		hkPut(p+"c", "2", 0),
		hkGrant(hkLeaseRevoked),
		hkGrant(hkLeaseKept),
		hkGrant(hkLeaseBare),
		hkPut(p+"g", "1", hkLeaseRevoked),
		hkTxn("leased puts", ltOpPut(p+"h", "1", hkLeaseRevoked), ltOpPut(p+"i", "1", hkLeaseKept)),
		hkRevoke(hkLeaseRevoked),
		hkTxn("nested", ltOpPut(p+"n1", "1", 0), hkOpTxn(ltOpPut(p+"n2", "1", hkLeaseKept), ltOpPut(p+"n3", "", 0)), hkOpDel(p+"e")),
		hkPutReq(&pb.PutRequest{Key: []byte(p + "n2"), IgnoreValue: true}),
		hkPutReq(&pb.PutRequest{Key: []byte(p + "n2"), Value: []byte("2"), IgnoreLease: true}),
		hkPut(p+"\x00\xff", strings.Repeat("v", 40<<10), 0),
		hkPut(p+"x", "1", 0),
		hkDel(p+"x", ""),
		hkPut(p+"t", "1", 0),
		hkDel(p+"t", ""),
		hkCompactHere(),
		hkPut(p+"a", "4", 0),
		hkTxn("lease dropped and attached", ltOpPut(p+"i", "2", 0), ltOpPut(p+"j", "1", hkLeaseKept)),
		hkPut(p+"t", "2", 0),
		hkDel(p+"f", ""),
		hkTxn("delete and puts", hkOpDel(p+"a"), ltOpPut(p+"k", "1", hkLeaseKept), ltOpPut(p+"c", "3", 0)),
	}
}

// hkResult is one HashKV answer, or its refusal, with what is comparable
// between two servers (not the cluster and member IDs or the raft term).
type hkResult struct {
	hash                     uint32
	compact, hashRev, hdrRev int64
	// err is "<code>: <message>" of a refusal, "" for an answer.
	err string
}

func (r hkResult) String() string {
	if r.err != "" {
		return "refused " + r.err
	}
	return fmt.Sprintf("hash %d compact_revision %d hash_revision %d header revision %d", r.hash, r.compact, r.hashRev, r.hdrRev)
}

func hkFromResp(resp *pb.HashKVResponse, err error) hkResult {
	if err != nil {
		// clientv3 turns the status into an EtcdError with the same
		// code and message.
		var ee rpctypes.EtcdError
		if errors.As(err, &ee) {
			return hkResult{err: fmt.Sprintf("%v: %s", ee.Code(), ee.Error())}
		}
		s := status.Convert(err)
		return hkResult{err: fmt.Sprintf("%v: %s", s.Code(), s.Message())}
	}
	return hkResult{hash: resp.Hash, compact: resp.CompactRevision, hashRev: resp.HashRevision, hdrRev: resp.Header.GetRevision()}
}

// hkErr is how hkResult writes the refusal want, an rpctypes.ErrGRPC* value.
func hkErr(want error) string {
	return hkFromResp(nil, want).err
}

// hkRaw asks tg for the hash at rev through the raw Maintenance service.
func hkRaw(t testing.TB, tg *Target, rev int64) hkResult {
	t.Helper()
	return hkFromResp(pb.NewMaintenanceClient(tg.Conn).HashKV(reqCtx(t), &pb.HashKVRequest{Revision: rev}))
}

// hkClient asks tg for the hash at rev through clientv3, as etcdctl does.
func hkClient(t testing.TB, tg *Target, rev int64) hkResult {
	t.Helper()
	resp, err := tg.Client.HashKV(reqCtx(t), tg.Endpoint, rev)
	return hkFromResp((*pb.HashKVResponse)(resp), err)
}

// hkWant is what etcd answers at rev when the store is at cur and has been
// compacted at compactions, in order, of which the server has the hashes
// of stored (those since it started; see the file comment).
func hkWant(rev, cur int64, compactions, stored []int64) hkResult {
	last := int64(-1)
	if len(compactions) > 0 {
		last = compactions[len(compactions)-1]
	}
	if i := slices.Index(compactions, rev); i >= 0 && slices.Contains(stored, rev) {
		prev := int64(-1)
		if i > 0 {
			prev = compactions[i-1]
		}
		return hkResult{compact: prev, hashRev: rev, hdrRev: cur}
	}
	switch {
	case rev > cur:
		return hkResult{err: hkErr(rpctypes.ErrGRPCFutureRev)}
	case rev > 0 && rev < last:
		return hkResult{err: hkErr(rpctypes.ErrGRPCCompacted)}
	case rev == 0:
		return hkResult{compact: last, hashRev: cur, hdrRev: cur}
	default:
		return hkResult{compact: last, hashRev: rev, hdrRev: cur}
	}
}

// hkMatches reports whether got is want, the hash aside (want has none).
func hkMatches(got, want hkResult) bool {
	got.hash = 0
	return got == want
}

// hkPairNames are the backends of the two servers a comparison runs on:
// the first two METASTORE_BACKENDS selects, or the one it selects twice.
func hkPairNames(t *testing.T) []string {
	t.Helper()
	names := selectedBackends(t)
	if len(names) == 1 {
		names = append(names, names[0])
	}
	return names[:2]
}

// hkPair starts the two servers a comparison runs on. MetaStore runs on a
// data dir (HashKV needs one).
func hkPair(t *testing.T) [2]*Target {
	t.Helper()
	var tgs [2]*Target
	for i, n := range hkPairNames(t) {
		tgs[i] = connect(t, fmt.Sprintf("%s#%d", n, i), startBackend(t, n, withDataDir(), withErrorLog()))
	}
	return tgs
}

// hkChecker compares the two servers' hashes after each request of a
// history.
type hkChecker struct {
	t   *testing.T
	tgs [2]*Target
	// compactions are the compacted revisions so far, in order; stored
	// are those since the servers started, whose hashes they keep.
	compactions, stored []int64
	// seen holds each server's answers at each revision since the last
	// compaction, which later writes must not change.
	seen [2]map[int64]hkResult
}

func newHKChecker(t *testing.T, tgs [2]*Target) *hkChecker {
	return &hkChecker{t: t, tgs: tgs, seen: [2]map[int64]hkResult{{}, {}}}
}

// apply runs op on both servers and then checks every revision's hash.
func (c *hkChecker) apply(op hkOp) {
	c.t.Helper()
	c.write(op)
	c.check(op.name)
}

// write runs op on both servers, which must produce the same revision.
func (c *hkChecker) write(op hkOp) {
	c.t.Helper()
	var revs [2]int64
	for i, tg := range c.tgs {
		revs[i] = op.do(c.t, tg)
	}
	if revs[0] != revs[1] {
		c.t.Fatalf("%s: revision %d on %s, %d on %s", op.name, revs[0], c.tgs[0].Name, revs[1], c.tgs[1].Name)
	}
	if op.compact {
		c.compactions = append(c.compactions, revs[0])
		c.stored = append(c.stored, revs[0])
		c.seen = [2]map[int64]hkResult{{}, {}}
	}
}

// restarted takes the servers started again on the same data dirs: they
// have lost the compactions' stored hashes (etcd keeps them in memory), so
// their answers at those revisions change.
func (c *hkChecker) restarted(tgs [2]*Target) {
	c.tgs = tgs
	c.stored = nil
	c.seen = [2]map[int64]hkResult{{}, {}}
}

// check asks both servers for the hash at every revision from 0 to two
// past the current one and compares.
func (c *hkChecker) check(after string) {
	c.t.Helper()
	cur := c.tgs[0].currentRev(c.t)
	if other := c.tgs[1].currentRev(c.t); other != cur {
		c.t.Fatalf("after %s: current revision %d on %s, %d on %s", after, cur, c.tgs[0].Name, other, c.tgs[1].Name)
	}
	for rev := int64(0); rev <= cur+2; rev++ {
		var got [2]hkResult
		for i, tg := range c.tgs {
			got[i] = hkRaw(c.t, tg, rev)
			want := hkWant(rev, cur, c.compactions, c.stored)
			if !hkMatches(got[i], want) {
				c.t.Errorf("after %s: %s hashes revision %d (current %d, compactions %v): got %v, want %v",
					after, tg.Name, rev, cur, c.compactions, got[i], want)
			}
			if rev == 0 || got[i].err != "" {
				continue
			}
			// The header revision is the current one and moves on.
			stable := got[i]
			stable.hdrRev = 0
			if before, ok := c.seen[i][rev]; ok && before != stable {
				c.t.Errorf("after %s: %s's hash at revision %d changed from %v to %v with no compaction between",
					after, tg.Name, rev, before, stable)
			}
			c.seen[i][rev] = stable
		}
		if got[0] != got[1] {
			c.t.Errorf("after %s: hash at revision %d differs:\n  %s: %v\n  %s: %v",
				after, rev, c.tgs[0].Name, got[0], c.tgs[1].Name, got[1])
		}
	}
	if c.t.Failed() {
		c.t.FailNow()
	}
}

// checkClient checks that clientv3's HashKV (a connection of its own to
// the endpoint) answers as the raw service does, at every revision.
func (c *hkChecker) checkClient() {
	c.t.Helper()
	for _, tg := range c.tgs {
		for rev := range tg.currentRev(c.t) + 3 {
			if viaClient, raw := hkClient(c.t, tg, rev), hkRaw(c.t, tg, rev); viaClient != raw {
				c.t.Errorf("%s answers clientv3 at revision %d with %v, raw gRPC with %v", tg.Name, rev, viaClient, raw)
			}
		}
	}
}

// ctlHashKV runs `etcdctl endpoint hashkv` (at rev, if not 0) and returns
// its line without the endpoint: "<hash>, <hash revision>".
func ctlHashKV(c *ctl, rev int64) string {
	c.t.Helper()
	args := []string{"endpoint", "hashkv"}
	if rev != 0 {
		args = append(args, "--rev="+strconv.FormatInt(rev, 10))
	}
	out := c.ok(args...)
	rest, ok := strings.CutPrefix(strings.TrimSuffix(out, "\n"), c.endpoint+", ")
	if !ok || strings.Contains(rest, "\n") {
		c.t.Fatalf("etcdctl %q printed %q, want one line %q", args, out, c.endpoint+", <hash>, <revision>")
	}
	return rest
}

// checkCtl checks that `etcdctl endpoint hashkv` prints the same hash on
// both servers, and the hash of the raw answer, now and at each compaction.
func (c *hkChecker) checkCtl() {
	c.t.Helper()
	bin := buildBinary(c.t, etcdctlCmd)
	for _, rev := range append([]int64{0}, c.compactions...) {
		var lines [2]string
		for i, tg := range c.tgs {
			lines[i] = ctlHashKV(&ctl{t: c.t, backend: tg.Name, bin: bin, endpoint: tg.Endpoint}, rev)
			raw := hkRaw(c.t, tg, rev)
			if want := fmt.Sprintf("%d, %d", raw.hash, raw.hashRev); lines[i] != want {
				c.t.Errorf("etcdctl endpoint hashkv --rev=%d on %s prints %q, raw HashKV says %q", rev, tg.Name, lines[i], want)
			}
		}
		if lines[0] != lines[1] {
			c.t.Errorf("etcdctl endpoint hashkv --rev=%d: %s prints %q, %s prints %q", rev, c.tgs[0].Name, lines[0], c.tgs[1].Name, lines[1])
		}
	}
	// And the refusals, as etcdctl prints them.
	for _, tg := range c.tgs {
		cl := &ctl{t: c.t, backend: tg.Name, bin: bin, endpoint: tg.Endpoint}
		cl.fails(1, "Error: "+rpctypes.ErrFutureRev.Error(), "endpoint", "hashkv", "--rev="+strconv.FormatInt(tg.currentRev(c.t)+1, 10))
		if len(c.compactions) > 0 && c.compactions[0] > 1 {
			cl.fails(1, "Error: "+rpctypes.ErrCompacted.Error(), "endpoint", "hashkv", "--rev=1")
		}
	}
}

// TestHashKV writes histories to two servers and compares their HashKV at
// every revision after every request, and `etcdctl endpoint hashkv`.
func TestHashKV(t *testing.T) {
	p := "/hashkv/"
	cases := []struct {
		name string
		ops  []hkOp
	}{
		{name: "mixed history", ops: append(hkHistory(p),
			// A second compaction: the first one's revision is below
			// it now, yet etcd still answers there from the hash it
			// stored.
			hkCompactHere(),
			hkPut(p+"z", "1", hkLeaseKept),
		)},
		{name: "only deletes", ops: []hkOp{
			hkPut(p+"a", "1", 0),
			hkPut(p+"b", "1", 0),
			hkDel(p+"a", ""),
			// A tombstone at the compact revision.
			hkCompactHere(),
			// Every key deleted: etcd's set of revisions to keep is
			// empty, and then it also hashes the records at or below
			// the compact revision (b's put).
			hkDel(p+"b", ""),
			hkPut(p+"c", "1", 0),
			hkPut(p+"d", "1", 0),
			// Two tombstones at the next compact revision.
			hkDel(p+"a", p+"z"),
			hkCompactHere(),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newHKChecker(t, hkPair(t))
			c.check("start")
			for _, op := range tc.ops {
				c.apply(op)
			}
			c.checkClient()
			c.checkCtl()
		})
	}
}

// TestHashKVEmptyStore checks the hash of a store nobody wrote to, at
// revision 1: etcd's hash starts from the key bucket's name, and an empty
// bucket adds nothing to it.
func TestHashKVEmptyStore(t *testing.T) {
	empty := crc32.Checksum([]byte("key"), crc32.MakeTable(crc32.Castagnoli))
	forEachBackend(t, func(t *testing.T, tg *Target) {
		for rev := range int64(3) {
			want := hkWant(rev, 1, nil, nil)
			if want.err == "" {
				want.hash = empty
			}
			if got := hkRaw(t, tg, rev); got != want {
				t.Errorf("HashKV of an empty store at revision %d: got %v, want %v", rev, got, want)
			}
		}
	}, withDataDir())
}

// hkStartOn starts backend name on the data dir dir, in-process, and
// returns its target and a func that stops it (the test's cleanup stops it
// too).
func hkStartOn(t *testing.T, name, dir string) (*Target, func()) {
	t.Helper()
	if name == "metastore" {
		ds := durStart(t, durConfig(dir, 4))
		return ds.Target, func() { ds.close(t) }
	}
	endpoint, stop := etcdStartOn(t, dir, "default")
	tg := connect(t, name, endpoint)
	return tg, func() {
		_ = tg.Client.Close()
		_ = tg.Conn.Close()
		stop()
	}
}

// TestHashKVRestart writes a history with two compactions to two servers,
// restarts both on their data dirs, and compares their hashes at every
// revision: at the compaction revisions they now compute afresh (the
// earlier one is refused as compacted); a compaction after the restart
// stores a hash that begins at the last one before it.
func TestHashKVRestart(t *testing.T) {
	p := "/hashkv-restart/"
	names := hkPairNames(t)
	dirs := [2]string{t.TempDir(), t.TempDir()}
	var stops [2]func()
	start := func() [2]*Target {
		var tgs [2]*Target
		for i, n := range names {
			tgs[i], stops[i] = hkStartOn(t, n, dirs[i])
			tgs[i].Name = fmt.Sprintf("%s#%d", n, i)
		}
		return tgs
	}
	c := newHKChecker(t, start())
	for _, op := range append(hkHistory(p), hkCompactHere(), hkPut(p+"z", "1", hkLeaseKept)) {
		c.write(op)
	}
	c.check("the history")
	for _, stop := range stops {
		stop()
	}
	c.restarted(start())
	c.check("the restart")
	c.apply(hkPut(p+"y", "1", 0))
	c.apply(hkCompactHere())
	c.apply(hkDel(p+"y", ""))
}
