package test

import (
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestKVBadInput sends requests the server must refuse, and checks that
// each refusal leaves the store exactly as it was.
func TestKVBadInput(t *testing.T) {
	// A small request limit keeps the oversized requests cheap to build.
	const maxBytes = 64 * 1024
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		tg.put(t, p+"k", "v")
		big := strings.Repeat("x", maxBytes+1)
		third := strings.Repeat("y", maxBytes/3+1)
		tests := []struct {
			name string
			call func() error
			want error
		}{
			{"range empty key", func() error {
				_, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{RangeEnd: []byte(p)})
				return err
			}, rpctypes.ErrGRPCEmptyKey},
			{"clientv3 get empty key", func() error {
				_, err := tg.Client.Get(reqCtx(t), "")
				return err
			}, rpctypes.ErrGRPCEmptyKey},
			{"put empty key", func() error {
				_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Value: []byte("v")})
				return err
			}, rpctypes.ErrGRPCEmptyKey},
			{"clientv3 put empty key", func() error {
				_, err := tg.Client.Put(reqCtx(t), "", "v")
				return err
			}, rpctypes.ErrGRPCEmptyKey},
			{"delete empty key", func() error {
				_, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{RangeEnd: []byte{0}})
				return err
			}, rpctypes.ErrGRPCEmptyKey},
			{"clientv3 delete empty key", func() error {
				_, err := tg.Client.Delete(reqCtx(t), "")
				return err
			}, rpctypes.ErrGRPCEmptyKey},
			{"sort order out of range", func() error {
				_, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), SortOrder: 7})
				return err
			}, rpctypes.ErrGRPCInvalidSortOption},
			{"sort target out of range", func() error {
				_, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte(p), SortOrder: pb.RangeRequest_ASCEND, SortTarget: 9})
				return err
			}, rpctypes.ErrGRPCInvalidSortOption},
			{"negative sort order", func() error {
				_, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte(p), SortOrder: -1})
				return err
			}, rpctypes.ErrGRPCInvalidSortOption},
			{"put too large", func() error {
				_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "big"), Value: []byte(big)})
				return err
			}, rpctypes.ErrGRPCRequestTooLarge},
			{"clientv3 put too large", func() error {
				_, err := tg.Client.Put(reqCtx(t), p+"big", big)
				return err
			}, rpctypes.ErrGRPCRequestTooLarge},
			{"txn too large in total", func() error {
				_, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{
					opPut(p+"t1", third), opPut(p+"t2", third), opPut(p+"t3", third),
				}})
				return err
			}, rpctypes.ErrGRPCRequestTooLarge},
			{"delete with too large key", func() error {
				_, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(p + big)})
				return err
			}, rpctypes.ErrGRPCRequestTooLarge},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := tg.currentRev(t)
				wantRPCErr(t, tc.call(), tc.want)
				if got := tg.currentRev(t); got != before {
					t.Fatalf("rejected request moved the revision from %d to %d", before, got)
				}
			})
		}
		all := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))})
		if len(all.Kvs) != 1 || string(all.Kvs[0].Key) != p+"k" || string(all.Kvs[0].Value) != "v" || all.Kvs[0].Version != 1 {
			t.Fatalf("store changed by rejected requests: %s", kvSummary(all.Kvs))
		}

		// Just under the limit is fine, alone and in a txn.
		half := strings.Repeat("z", maxBytes/2)
		tg.put(t, p+"half", half)
		tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"h1", half[:maxBytes/4]), opPut(p+"h2", half[:maxBytes/4])}})
	}, withMaxRequestBytes(maxBytes))
}

// TestKVResponseHeaders checks the header of every kind of response: the
// ids are nonzero and the same on every response of a server, the raft
// term is nonzero, and the revision is the one the request produced or saw.
// Values differ between backends; only their behaviour is compared.
func TestKVResponseHeaders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		var headers []*pb.ResponseHeader
		check := func(what string, h *pb.ResponseHeader, wantRev int64) {
			t.Helper()
			if h == nil {
				t.Fatalf("%s: no header", what)
			}
			if h.Revision != wantRev {
				t.Fatalf("%s: header revision %d, want %d", what, h.Revision, wantRev)
			}
			if h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm == 0 {
				t.Fatalf("%s: header %v has a zero id or term", what, h)
			}
			headers = append(headers, h)
		}

		start := tg.currentRev(t)
		put, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "a"), Value: []byte("1")})
		if err != nil {
			t.Fatal(err)
		}
		check("put", put.Header, start+1)
		rng := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "a")})
		check("range", rng.Header, start+1)
		hist := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "a"), Revision: start})
		check("range in the past", hist.Header, start+1)
		cnt := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), CountOnly: true})
		check("count_only range", cnt.Header, start+1)
		txn := tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"b", "2")}})
		check("txn", txn.Header, start+2)
		rotxn := tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opGet(p + "b")}})
		check("read-only txn", rotxn.Header, start+2)
		del, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(p + "a")})
		if err != nil {
			t.Fatal(err)
		}
		check("delete", del.Header, start+3)
		nodel, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(p + "a")})
		if err != nil {
			t.Fatal(err)
		}
		check("no-op delete", nodel.Header, start+3)
		chunks, err := tg.rangeStream(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))})
		if err != nil {
			t.Fatal(err)
		}
		check("range stream", chunks[len(chunks)-1].Header, start+3)
		cmp, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: start + 1})
		if err != nil {
			t.Fatal(err)
		}
		check("compact", cmp.Header, start+3)
		cget, err := tg.Client.Get(reqCtx(t), p+"b")
		if err != nil {
			t.Fatal(err)
		}
		check("clientv3 get", cget.Header, start+3)
		cput, err := tg.Client.Put(reqCtx(t), p+"c", "3")
		if err != nil {
			t.Fatal(err)
		}
		check("clientv3 put", cput.Header, start+4)

		for _, h := range headers[1:] {
			if h.ClusterId != headers[0].ClusterId || h.MemberId != headers[0].MemberId {
				t.Fatalf("ids changed between responses: %v then %v", headers[0], h)
			}
			// A single healthy member keeps its term.
			if h.RaftTerm != headers[0].RaftTerm {
				t.Fatalf("raft term changed between responses: %v then %v", headers[0], h)
			}
		}
	})
}
