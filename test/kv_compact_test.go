package test

import (
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestKVCompact has a server of its own: compaction is global, and the
// subtests here run in order, each compacting further than the last.
func TestKVCompact(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		k := p + "k"
		rOld := tg.put(t, p+"old", "o") // never rewritten: survives compaction
		r1 := tg.put(t, k, "v1")
		r2 := tg.put(t, k, "v2")
		rGone := tg.put(t, p+"gone", "g")
		if _, err := tg.Client.Delete(reqCtx(t), p+"gone"); err != nil {
			t.Fatal(err)
		}
		r3 := tg.put(t, k, "v3")

		compact := func(t *testing.T, rev int64, physical bool) (*pb.CompactionResponse, error) {
			return tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: rev, Physical: physical})
		}
		get := func(t *testing.T, key string, rev int64) (*pb.RangeResponse, error) {
			return tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte(key), Revision: rev})
		}

		t.Run("logical", func(t *testing.T) {
			before := tg.currentRev(t)
			resp, err := compact(t, r2, false)
			if err != nil {
				t.Fatal(err)
			}
			// Compaction is not a write: the revision stays, and the
			// response header carries it.
			if resp.Header.Revision != before {
				t.Fatalf("compact header rev %d, want %d", resp.Header.Revision, before)
			}
			if got := tg.currentRev(t); got != before {
				t.Fatalf("compaction moved the revision from %d to %d", before, got)
			}
			_, err = get(t, k, r1)
			wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
			_, err = tg.Client.Get(reqCtx(t), k, clientv3.WithRev(r1))
			if err == nil || err.Error() != rpctypes.ErrCompacted.Error() {
				t.Fatalf("clientv3 get below compaction: got %v, want %v", err, rpctypes.ErrCompacted)
			}
			// The compacted revision itself stays readable, including keys
			// last written long before it.
			r, err := get(t, k, r2)
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v2" {
				t.Fatalf("get at compact rev %d: %v %v", r2, r, err)
			}
			r, err = get(t, p+"old", r2)
			if err != nil || len(r.Kvs) != 1 || r.Kvs[0].ModRevision != rOld {
				t.Fatalf("get old key at compact rev: %v %v", r, err)
			}
			r, err = get(t, p+"gone", rGone)
			if err != nil || len(r.Kvs) != 1 {
				t.Fatalf("get deleted key before its deletion: %v %v", r, err)
			}
			r, err = get(t, k, 0)
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v3" || r.Kvs[0].Version != 3 || r.Kvs[0].CreateRevision != r1 {
				t.Fatalf("latest after compaction: %v %v", r, err)
			}
		})

		t.Run("not again", func(t *testing.T) {
			before := tg.currentRev(t)
			for _, rev := range []int64{r2, r1} {
				_, err := compact(t, rev, false)
				wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
			}
			_, err := tg.Client.Compact(reqCtx(t), r2)
			if err == nil || err.Error() != rpctypes.ErrCompacted.Error() {
				t.Fatalf("clientv3 compact again: got %v, want %v", err, rpctypes.ErrCompacted)
			}
			_, err = compact(t, before+1, false)
			wantRPCErr(t, err, rpctypes.ErrGRPCFutureRev)
			_, err = tg.Client.Compact(reqCtx(t), before+100)
			if err == nil || err.Error() != rpctypes.ErrFutureRev.Error() {
				t.Fatalf("clientv3 compact future: got %v, want %v", err, rpctypes.ErrFutureRev)
			}
			if got := tg.currentRev(t); got != before {
				t.Fatalf("rejected compactions moved the revision from %d to %d", before, got)
			}
		})

		t.Run("physical", func(t *testing.T) {
			if _, err := tg.Client.Compact(reqCtx(t), r3, clientv3.WithCompactPhysical()); err != nil {
				t.Fatal(err)
			}
			for _, rev := range []int64{r2, r3 - 1} {
				_, err := get(t, k, rev)
				wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
			}
			// The deleted key is gone at and after its tombstone.
			r, err := get(t, p+"gone", r3)
			if err != nil || len(r.Kvs) != 0 {
				t.Fatalf("deleted key at %d: %v %v", r3, r, err)
			}
			r, err = get(t, k, r3)
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v3" {
				t.Fatalf("get at compact rev %d: %v %v", r3, r, err)
			}
		})

		t.Run("reads below compaction", func(t *testing.T) {
			below := r3 - 1
			_, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{
				opRange(&pb.RangeRequest{Key: []byte(k), Revision: below}),
			}})
			wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
			_, err = tg.rangeStream(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), Revision: below})
			wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
			_, err = tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), Revision: below, CountOnly: true})
			wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
			r, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), Revision: r3})
			if err != nil || !slices.Equal(keysOf(r.Kvs), []string{k, p + "old"}) {
				t.Fatalf("prefix at compact rev: %v %v", r, err)
			}
		})

		t.Run("at current revision", func(t *testing.T) {
			cur := tg.put(t, k, "v4")
			if _, err := compact(t, cur, true); err != nil {
				t.Fatal(err)
			}
			_, err := get(t, k, cur-1)
			wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
			// Writing and reading go on as before.
			next := tg.put(t, k, "v5")
			if next != cur+1 {
				t.Fatalf("put after compaction at %d, want %d", next, cur+1)
			}
			tg.wantKV(t, k, "v5", r1, next, 5)
			r, err := get(t, k, cur)
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v4" {
				t.Fatalf("get at compact rev %d: %v %v", cur, r, err)
			}
		})
	})
}
