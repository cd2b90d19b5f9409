package test

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestKVNegativeRevision: etcd reads the current revision for any revision
// <= 0, in a Range and in a range inside a Txn, whether or not the store was
// ever compacted.
func TestKVNegativeRevision(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		k := keyPrefix(t) + "k"
		tg.put(t, k, "v1")
		rev := tg.put(t, k, "v2")
		for _, r := range []int64{0, -1, -100} {
			resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(k), Revision: r})
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v2" || resp.Kvs[0].ModRevision != rev {
				t.Fatalf("Range at revision %d: %v, want v2 at %d", r, resp.Kvs, rev)
			}
		}
		txnAt := func(r int64) (*pb.TxnResponse, error) {
			return tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{
				{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k), Revision: r}}},
				{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k + "/other"), Value: []byte("x")}}},
			}})
		}
		// Inside a Txn, etcd checks the revision against the compact
		// revision first, which is -1 on a store never compacted.
		for _, r := range []int64{0, -1} {
			tresp, err := txnAt(r)
			if err != nil {
				t.Fatalf("Txn with a range at revision %d: %v", r, err)
			}
			if kvs := tresp.Responses[0].GetResponseRange().Kvs; len(kvs) != 1 || string(kvs[0].Value) != "v2" {
				t.Fatalf("range in a Txn at revision %d: %v, want v2", r, kvs)
			}
		}
		before := tg.currentRev(t)
		_, err := txnAt(-100)
		wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
		if after := tg.currentRev(t); after != before {
			t.Fatalf("a refused Txn moved the revision from %d to %d", before, after)
		}
	})
}

// TestKVCompactZeroOnce: a store never compacted accepts Compact(0) once,
// then refuses it as compacted, like etcd.
func TestKVCompactZeroOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: 0}); err != nil {
			t.Fatalf("first Compact(0): %v", err)
		}
		_, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: 0})
		wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
	})
}
