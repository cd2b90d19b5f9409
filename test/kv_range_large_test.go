package test

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/rpc"
)

// largeKeys is how many keys TestRangeLargeDurable writes: enough that a
// full range is a scan for a small value cache, and that a range's values
// lie far apart in the data dir.
const largeKeys = 2000

// largeWrite writes the history every server of TestRangeLargeDurable gets,
// the same on each, so that revisions agree. Keys are written in a random
// order, so that key order is not the data dir's (revision) order, with
// values of random sizes; then a third of them are updated, a run of them
// is deleted, and one is deleted and written again. It returns a revision
// from the middle of the history.
func largeWrite(t *testing.T, tg *Target) (mid int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 1))
	value := func() string {
		b := make([]byte, rng.IntN(700))
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	order := rng.Perm(largeKeys)
	for len(order) > 0 {
		var ops []*pb.RequestOp
		for _, i := range order[:min(100, len(order))] {
			ops = append(ops, opPut(fmt.Sprintf("big/%04d", i), value()))
		}
		order = order[min(100, len(order)):]
		tg.txn(t, &pb.TxnRequest{Success: ops})
	}
	mid = tg.currentRev(t)
	for round := range 10 {
		var ops []*pb.RequestOp
		for i := round; i < largeKeys; i += 30 {
			ops = append(ops, opPut(fmt.Sprintf("big/%04d", rng.IntN(largeKeys)), value()))
		}
		slices.SortFunc(ops, func(a, b *pb.RequestOp) int {
			return slices.Compare(a.GetRequestPut().Key, b.GetRequestPut().Key)
		})
		ops = slices.CompactFunc(ops, func(a, b *pb.RequestOp) bool {
			return string(a.GetRequestPut().Key) == string(b.GetRequestPut().Key)
		})
		tg.txn(t, &pb.TxnRequest{Success: ops})
	}
	if _, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte("big/0500"), RangeEnd: []byte("big/0600")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte("big/1234")}); err != nil {
		t.Fatal(err)
	}
	tg.put(t, "big/1234", "again")
	return mid
}

// TestRangeLargeDurable reads large ranges of every shape from a durable
// MetaStore whose values are all in its data dir (it was restarted after
// the writes), with no value cache, a cache small enough that a full range
// is a scan that must leave it alone, and the default cache; each range is
// read twice (a cold cache, then a warm one) and through a Txn and
// RangeStream too, and every answer must equal etcd's for the same history
// (or, when etcd is not selected, an in-memory MetaStore's).
func TestRangeLargeDurable(t *testing.T) {
	selected := selectedBackends(t)
	if !slices.Contains(selected, "metastore") {
		t.Skipf("%s does not select metastore", backendsEnv)
	}
	oracleName := "metastore"
	if slices.Contains(selected, "etcd") {
		oracleName = "etcd"
	}
	oracle := connect(t, oracleName, startBackend(t, oracleName))
	mid := largeWrite(t, oracle)
	last := oracle.currentRev(t)

	all := &pb.RangeRequest{Key: []byte("big/"), RangeEnd: []byte("big0")}
	with := func(f func(r *pb.RangeRequest)) *pb.RangeRequest {
		r := proto.Clone(all).(*pb.RangeRequest)
		f(r)
		return r
	}
	queries := []struct {
		name string
		req  *pb.RangeRequest
	}{
		{"all", all},
		{"all from the empty key", &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}},
		{"from a key", &pb.RangeRequest{Key: []byte("big/1500"), RangeEnd: []byte{0}}},
		{"single key", &pb.RangeRequest{Key: []byte("big/0042")}},
		{"limit 10", with(func(r *pb.RangeRequest) { r.Limit = 10 })},
		{"descending, limit 10", with(func(r *pb.RangeRequest) { r.SortOrder, r.Limit = pb.RangeRequest_DESCEND, 10 })},
		{"descending", with(func(r *pb.RangeRequest) { r.SortOrder = pb.RangeRequest_DESCEND })},
		{"by mod descending, limit 25", with(func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder, r.Limit = pb.RangeRequest_MOD, pb.RangeRequest_DESCEND, 25
		})},
		{"by create", with(func(r *pb.RangeRequest) { r.SortTarget, r.SortOrder = pb.RangeRequest_CREATE, pb.RangeRequest_ASCEND })},
		{"by version descending, limit 100", with(func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder, r.Limit = pb.RangeRequest_VERSION, pb.RangeRequest_DESCEND, 100
		})},
		{"by value, limit 50", with(func(r *pb.RangeRequest) { r.SortTarget, r.Limit = pb.RangeRequest_VALUE, 50 })},
		{"by value descending, keys only", with(func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder, r.KeysOnly = pb.RangeRequest_VALUE, pb.RangeRequest_DESCEND, true
		})},
		{"keys only", with(func(r *pb.RangeRequest) { r.KeysOnly = true })},
		{"count only", with(func(r *pb.RangeRequest) { r.CountOnly = true })},
		{"mod filter, limit 30", with(func(r *pb.RangeRequest) { r.MinModRevision, r.Limit = mid+1, 30 })},
		{"create filter, descending", with(func(r *pb.RangeRequest) {
			r.MaxCreateRevision, r.SortOrder = mid/2, pb.RangeRequest_DESCEND
		})},
		{"at the middle revision", with(func(r *pb.RangeRequest) { r.Revision = mid })},
		{"at the middle revision, descending, limit 10", with(func(r *pb.RangeRequest) {
			r.Revision, r.SortOrder, r.Limit = mid, pb.RangeRequest_DESCEND, 10
		})},
	}
	// etcd's sort is unstable: its order among ties is unspecified, and a
	// limit may cut a run of ties at a different key. So the answers
	// wanted are built from etcd's full state, with MetaStore's order
	// among ties (key order, docs/compatibility.md), and etcd's own answers
	// are held to them only up to ties.
	want := make([]*pb.RangeResponse, len(queries))
	for i, q := range queries {
		rev := q.req.Revision
		if rev == 0 {
			rev = last
		}
		full := oracle.rangeKV(t, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
		want[i] = expectRange(full.Kvs, q.req)
		if got := oracle.rangeKV(t, q.req); !sameUpToTies(got, want[i], q.req.SortTarget) {
			t.Fatalf("%s on %s: %s", q.name, oracleName, rangeDiff(got, want[i]))
		}
	}
	// A read-only Txn of several ranges is answered by the same code.
	txn := &pb.TxnRequest{Success: []*pb.RequestOp{opRange(queries[0].req), opRange(queries[5].req), opRange(queries[10].req)}}
	wantTxn := []*pb.RangeResponse{want[0], want[5], want[10]}

	for _, cache := range []struct {
		name  string
		bytes int64
	}{
		{"no cache", 0},
		{"64 KiB cache", 64 << 10},
		{"default cache", rpc.DefaultValueCacheBytes},
	} {
		t.Run(cache.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := durConfig(dir, 4)
			cfg.ValueCacheBytes = cache.bytes
			ds := durStart(t, cfg)
			if got := largeWrite(t, ds.Target); got != mid || ds.currentRev(t) != last {
				t.Fatalf("history reached revisions %d and %d, the oracle %d and %d", got, ds.currentRev(t), mid, last)
			}
			ds.close(t)
			ds = durStart(t, cfg)
			for pass := range 2 {
				for i, q := range queries {
					got := ds.rangeKV(t, q.req)
					if !sameRange(got, want[i]) {
						t.Fatalf("pass %d, %s: %s", pass, q.name, rangeDiff(got, want[i]))
					}
					if streamable(q.req) {
						chunks, err := ds.rangeStream(t, q.req)
						if err != nil {
							t.Fatalf("pass %d, %s: RangeStream: %v", pass, q.name, err)
						}
						if got := mergeChunks(chunks); !sameRange(got, want[i]) {
							t.Fatalf("pass %d, %s: RangeStream: %s", pass, q.name, rangeDiff(got, want[i]))
						}
					}
				}
				got := ds.txn(t, txn)
				for i, r := range got.Responses {
					if g, w := r.GetResponseRange(), wantTxn[i]; !sameRange(g, w) {
						t.Fatalf("pass %d, txn op %d: %s", pass, i, rangeDiff(g, w))
					}
				}
			}
		})
	}
}

// expectRange answers r from full, every key-value at r's revision in key
// order, as etcd does (docs/compatibility.md, Range), with ties of a sort
// kept in key order.
func expectRange(full []*mvccpb.KeyValue, r *pb.RangeRequest) *pb.RangeResponse {
	var kvs []*mvccpb.KeyValue
	for _, kv := range full {
		k := string(kv.Key)
		switch {
		case len(r.RangeEnd) == 0 && k != string(r.Key),
			k < string(r.Key),
			len(r.RangeEnd) > 0 && string(r.RangeEnd) != "\x00" && k >= string(r.RangeEnd):
			continue
		}
		kvs = append(kvs, proto.Clone(kv).(*mvccpb.KeyValue))
	}
	resp := &pb.RangeResponse{Count: int64(len(kvs))}
	if r.CountOnly {
		return resp
	}
	filtered := r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
	kvs = slices.DeleteFunc(kvs, func(kv *mvccpb.KeyValue) bool {
		return (r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision) ||
			(r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision) ||
			(r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision) ||
			(r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision)
	})
	order := r.SortOrder
	if order == pb.RangeRequest_NONE && r.Limit > 0 && !filtered && int64(len(kvs)) > r.Limit+1 {
		// etcd reads limit+1 keys before it sorts when the order is NONE.
		kvs = kvs[:r.Limit+1]
	}
	if order == pb.RangeRequest_NONE && r.SortTarget != pb.RangeRequest_KEY {
		order = pb.RangeRequest_ASCEND
	}
	if order != pb.RangeRequest_NONE {
		c := sortTargetCompare(r.SortTarget)
		if order == pb.RangeRequest_DESCEND {
			asc := c
			c = func(a, b *mvccpb.KeyValue) int { return asc(b, a) }
		}
		slices.SortStableFunc(kvs, c)
	}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, resp.More = kvs[:r.Limit], true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
			if r.SortTarget != pb.RangeRequest_VALUE {
				kv.Lease = 0
			}
		}
	}
	resp.Kvs = kvs
	return resp
}

func sortTargetCompare(target pb.RangeRequest_SortTarget) func(a, b *mvccpb.KeyValue) int {
	switch target {
	case pb.RangeRequest_VERSION:
		return func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		return func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		return func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		return func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	}
	return func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
}

// sameUpToTies compares two range answers sorted by target, but for their
// headers and the order of, and the cut among, key-values that tie.
func sameUpToTies(a, b *pb.RangeResponse, target pb.RangeRequest_SortTarget) bool {
	if target == pb.RangeRequest_KEY {
		return sameRange(a, b)
	}
	if a.Count != b.Count || a.More != b.More || len(a.Kvs) != len(b.Kvs) {
		return false
	}
	c := sortTargetCompare(target)
	for i := range a.Kvs {
		if c(a.Kvs[i], b.Kvs[i]) != 0 {
			return false
		}
	}
	return true
}

// streamable says whether RangeStream takes r (it refuses sorts and
// revision filters, as etcd's does).
func streamable(r *pb.RangeRequest) bool {
	return (r.SortOrder == pb.RangeRequest_NONE || (r.SortOrder == pb.RangeRequest_ASCEND && r.SortTarget == pb.RangeRequest_KEY)) &&
		r.MinModRevision == 0 && r.MaxModRevision == 0 && r.MinCreateRevision == 0 && r.MaxCreateRevision == 0
}

// sameRange compares two range answers but for their headers.
func sameRange(a, b *pb.RangeResponse) bool {
	if a.Count != b.Count || a.More != b.More || len(a.Kvs) != len(b.Kvs) {
		return false
	}
	for i := range a.Kvs {
		if !proto.Equal(a.Kvs[i], b.Kvs[i]) {
			return false
		}
	}
	return true
}

// rangeDiff says how got differs from want, briefly: large answers would
// bury the difference.
func rangeDiff(got, want *pb.RangeResponse) string {
	if got.Count != want.Count || got.More != want.More || len(got.Kvs) != len(want.Kvs) {
		return fmt.Sprintf("count=%d more=%v kvs=%d, want count=%d more=%v kvs=%d",
			got.Count, got.More, len(got.Kvs), want.Count, want.More, len(want.Kvs))
	}
	for i := range got.Kvs {
		if !proto.Equal(got.Kvs[i], want.Kvs[i]) {
			g, w := got.Kvs[i], want.Kvs[i]
			return fmt.Sprintf("kv %d: %q create=%d mod=%d version=%d lease=%d value %d bytes; want %q create=%d mod=%d version=%d lease=%d value %d bytes (equal: %v)",
				i, g.Key, g.CreateRevision, g.ModRevision, g.Version, g.Lease, len(g.Value),
				w.Key, w.CreateRevision, w.ModRevision, w.Version, w.Lease, len(w.Value), string(g.Value) == string(w.Value))
		}
	}
	return "equal"
}
