package test

import (
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

func TestKVPut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		t.Run("lifecycle", func(t *testing.T) { testPutLifecycle(t, tg) })
		t.Run("prev_kv", func(t *testing.T) { testPutPrevKV(t, tg) })
		t.Run("ignore_value", func(t *testing.T) { testPutIgnoreValue(t, tg) })
		t.Run("ignore_lease", func(t *testing.T) { testPutIgnoreLease(t, tg) })
		t.Run("missing lease", func(t *testing.T) { testPutMissingLease(t, tg) })
		t.Run("empty and binary values", func(t *testing.T) { testPutValues(t, tg) })
	})
}

// wantKV reads k and checks its value, revisions and version; an empty want
// value with version 0 means the key must be absent.
func (tg *Target) wantKV(t *testing.T, k, val string, create, mod, ver int64) {
	t.Helper()
	resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(k)})
	if ver == 0 {
		if len(resp.Kvs) != 0 {
			t.Fatalf("%q: got %s, want absent", k, kvSummary(resp.Kvs))
		}
		return
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("%q: got %s, want one kv", k, kvSummary(resp.Kvs))
	}
	kv := resp.Kvs[0]
	if string(kv.Value) != val || kv.CreateRevision != create || kv.ModRevision != mod || kv.Version != ver {
		t.Fatalf("%q: got %s, want value %q c%d m%d v%d", k, kvSummary(resp.Kvs), val, create, mod, ver)
	}
}

// testPutLifecycle follows a key through put, update, delete and re-create:
// each write takes exactly the next revision, version counts puts since the
// key was (re)created, and create_revision resets on re-creation.
func testPutLifecycle(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	k := p + "k"
	start := tg.currentRev(t)

	r1 := tg.put(t, k, "v1")
	if r1 != start+1 {
		t.Fatalf("first put at %d, want %d", r1, start+1)
	}
	tg.wantKV(t, k, "v1", r1, r1, 1)

	r2 := tg.put(t, k, "v2")
	if r2 != r1+1 {
		t.Fatalf("second put at %d, want %d", r2, r1+1)
	}
	tg.wantKV(t, k, "v2", r1, r2, 2)

	dresp, err := tg.Client.Delete(reqCtx(t), k)
	if err != nil {
		t.Fatal(err)
	}
	r3 := dresp.Header.Revision
	if r3 != r2+1 || dresp.Deleted != 1 {
		t.Fatalf("delete: rev %d deleted %d, want rev %d deleted 1", r3, dresp.Deleted, r2+1)
	}
	tg.wantKV(t, k, "", 0, 0, 0)

	presp, err := tg.Client.Put(reqCtx(t), k, "v3")
	if err != nil {
		t.Fatal(err)
	}
	r4 := presp.Header.Revision
	if r4 != r3+1 {
		t.Fatalf("re-create at %d, want %d", r4, r3+1)
	}
	tg.wantKV(t, k, "v3", r4, r4, 1)
	if got := tg.currentRev(t); got != r4 {
		t.Fatalf("current revision %d, want %d", got, r4)
	}
}

func testPutPrevKV(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	k := p + "k"
	resp, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), Value: []byte("v1"), PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.PrevKv != nil {
		t.Fatalf("prev_kv of a new key: got %s, want none", kvSummary([]*mvccpb.KeyValue{resp.PrevKv}))
	}
	r1 := resp.Header.Revision

	resp, err = tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), Value: []byte("v2"), PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	want := &mvccpb.KeyValue{Key: []byte(k), Value: []byte("v1"), CreateRevision: r1, ModRevision: r1, Version: 1}
	if !proto.Equal(resp.PrevKv, want) {
		t.Fatalf("prev_kv: got %v, want %v", resp.PrevKv, want)
	}

	// Without prev_kv nothing is returned.
	cresp, err := tg.Client.Put(reqCtx(t), k, "v3")
	if err != nil {
		t.Fatal(err)
	}
	if cresp.PrevKv != nil {
		t.Fatalf("put without prev_kv returned %v", cresp.PrevKv)
	}
	cresp, err = tg.Client.Put(reqCtx(t), k, "v4", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if cresp.PrevKv == nil || string(cresp.PrevKv.Value) != "v3" || cresp.PrevKv.Version != 3 {
		t.Fatalf("WithPrevKV: got %v, want v3 at version 3", cresp.PrevKv)
	}
}

func testPutIgnoreValue(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	k := p + "k"
	r1 := tg.put(t, k, "keep")

	resp, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), IgnoreValue: true, PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Revision != r1+1 || resp.PrevKv == nil || string(resp.PrevKv.Value) != "keep" {
		t.Fatalf("ignore_value put: rev %d prev %v, want rev %d and prev value keep", resp.Header.Revision, resp.PrevKv, r1+1)
	}
	// The value stays; the write still counts as a modification.
	tg.wantKV(t, k, "keep", r1, r1+1, 2)

	if _, err := tg.Client.Put(reqCtx(t), k, "", clientv3.WithIgnoreValue()); err != nil {
		t.Fatal(err)
	}
	tg.wantKV(t, k, "keep", r1, r1+2, 3)

	before := tg.currentRev(t)
	_, err = tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "missing"), IgnoreValue: true})
	wantRPCErr(t, err, rpctypes.ErrGRPCKeyNotFound)
	_, err = tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), Value: []byte("x"), IgnoreValue: true})
	wantRPCErr(t, err, rpctypes.ErrGRPCValueProvided)
	_, err = tg.Client.Put(reqCtx(t), k, "x", clientv3.WithIgnoreValue())
	wantRPCErr(t, err, rpctypes.ErrGRPCValueProvided)
	if got := tg.currentRev(t); got != before {
		t.Fatalf("rejected puts moved the revision from %d to %d", before, got)
	}
	tg.wantKV(t, k, "keep", r1, r1+2, 3)
	tg.wantKV(t, p+"missing", "", 0, 0, 0)
}

func testPutIgnoreLease(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	k := p + "k"
	r1 := tg.put(t, k, "v1")

	resp, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), Value: []byte("v2"), IgnoreLease: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Revision != r1+1 {
		t.Fatalf("ignore_lease put at %d, want %d", resp.Header.Revision, r1+1)
	}
	tg.wantKV(t, k, "v2", r1, r1+1, 2)

	// Both ignores at once rewrite the key as it is, at a new revision.
	if _, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), IgnoreValue: true, IgnoreLease: true}); err != nil {
		t.Fatal(err)
	}
	tg.wantKV(t, k, "v2", r1, r1+2, 3)

	before := tg.currentRev(t)
	_, err = tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "missing"), Value: []byte("v"), IgnoreLease: true})
	wantRPCErr(t, err, rpctypes.ErrGRPCKeyNotFound)
	// The request check comes before the lease lookup, so a lease that
	// does not exist still reports "lease is provided".
	_, err = tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: 12345, IgnoreLease: true})
	wantRPCErr(t, err, rpctypes.ErrGRPCLeaseProvided)
	_, err = tg.Client.Put(reqCtx(t), k, "v", clientv3.WithIgnoreLease(), clientv3.WithLease(12345))
	wantRPCErr(t, err, rpctypes.ErrGRPCLeaseProvided)
	if got := tg.currentRev(t); got != before {
		t.Fatalf("rejected puts moved the revision from %d to %d", before, got)
	}
	tg.wantKV(t, p+"missing", "", 0, 0, 0)
}

func testPutMissingLease(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"k", "v1")
	before := tg.currentRev(t)
	_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "k"), Value: []byte("v2"), Lease: 0x7eadbeef})
	wantRPCErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
	_, err = tg.Client.Put(reqCtx(t), p+"new", "v", clientv3.WithLease(0x7eadbeef))
	wantRPCErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
	if got := tg.currentRev(t); got != before {
		t.Fatalf("rejected puts moved the revision from %d to %d", before, got)
	}
	tg.wantKV(t, p+"k", "v1", before, before, 1)
	tg.wantKV(t, p+"new", "", 0, 0, 0)
}

func testPutValues(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	bin := string([]byte{0, 1, 2, 0xff, 0xfe, '\n'})
	for _, v := range []string{"", bin, string(make([]byte, 64*1024))} {
		rev := tg.put(t, p+"k", v)
		resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "k")})
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != v || resp.Kvs[0].ModRevision != rev {
			t.Fatalf("value of %d bytes did not round-trip", len(v))
		}
	}
	// Keys are bytes too, including a zero byte inside.
	k := p + "bin\x00key\xff"
	tg.put(t, k, "x")
	if resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(k)}); len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != k {
		t.Fatalf("binary key did not round-trip: %s", kvSummary(resp.Kvs))
	}
}

func TestKVDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		t.Run("single", func(t *testing.T) { testDeleteSingle(t, tg) })
		t.Run("ranges", func(t *testing.T) { testDeleteRanges(t, tg) })
		t.Run("prev_kv", func(t *testing.T) { testDeletePrevKV(t, tg) })
		t.Run("no-op", func(t *testing.T) { testDeleteNoop(t, tg) })
	})
}

func testDeleteSingle(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"a", "1")
	tg.put(t, p+"ab", "2") // a single-key delete must not touch neighbours
	before := tg.currentRev(t)
	resp, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(p + "a")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Deleted != 1 || resp.Header.Revision != before+1 || len(resp.PrevKvs) != 0 {
		t.Fatalf("delete: deleted=%d rev=%d prev=%d, want 1 at %d without prev", resp.Deleted, resp.Header.Revision, len(resp.PrevKvs), before+1)
	}
	tg.wantKV(t, p+"a", "", 0, 0, 0)
	if resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "ab")}); len(resp.Kvs) != 1 {
		t.Fatalf("neighbour %q deleted", p+"ab")
	}
}

// testDeleteRanges deletes several keys per request; each request takes a
// single revision however many keys it removes.
func testDeleteRanges(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tests := []struct {
		name     string
		key, end string // relative to the subtest's prefix; end "" = prefix of key
		want     []string
	}{
		{"range", "b", "d", []string{"b", "c"}},
		{"prefix", "x/", "", []string{"x/1", "x/2", "x/3"}},
		{"range with holes", "a", "e", []string{"a", "d"}},
		{"nothing left", "a", "e", nil},
	}
	for _, k := range []string{"a", "b", "c", "d", "x/1", "x/2", "x/3", "y"} {
		tg.put(t, p+k, k)
	}
	for _, tc := range tests {
		before := tg.currentRev(t)
		end := p + tc.end
		if tc.end == "" {
			end = prefixEnd(p + tc.key)
		}
		resp, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(p + tc.key), RangeEnd: []byte(end)})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		wantRev := before + 1
		if len(tc.want) == 0 {
			wantRev = before
		}
		if resp.Deleted != int64(len(tc.want)) || resp.Header.Revision != wantRev {
			t.Fatalf("%s: deleted=%d rev=%d, want %d at %d", tc.name, resp.Deleted, resp.Header.Revision, len(tc.want), wantRev)
		}
		if got := tg.currentRev(t); got != wantRev {
			t.Fatalf("%s: revision %d after delete, want %d", tc.name, got, wantRev)
		}
	}
	left := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))})
	if got, want := keysOf(left.Kvs), []string{p + "y"}; !slices.Equal(got, want) {
		t.Fatalf("left after deletes: %q, want %q", got, want)
	}

	// clientv3's WithPrefix maps onto the same prefix range.
	tg.put(t, p+"z/1", "1")
	tg.put(t, p+"z/2", "2")
	cresp, err := tg.Client.Delete(reqCtx(t), p+"z/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if cresp.Deleted != 2 {
		t.Fatalf("WithPrefix delete: deleted %d, want 2", cresp.Deleted)
	}

	// From-key deletes: under a prefix that sorts after every other key in
	// the shared server, so nothing but this subtest's keys is in reach.
	fp := "\xff" + p
	for _, k := range []string{"a", "b", "c"} {
		tg.put(t, fp+k, k)
	}
	resp, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(fp + "b"), RangeEnd: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Deleted != 2 {
		t.Fatalf("from-key delete: deleted %d, want 2", resp.Deleted)
	}
	tg.wantKV(t, fp+"a", "a", resp.Header.Revision-3, resp.Header.Revision-3, 1)
}

func testDeletePrevKV(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	ra := tg.put(t, p+"a", "1")
	rb := tg.put(t, p+"b", "2")
	rb2 := tg.put(t, p+"b", "3")
	resp, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []*mvccpb.KeyValue{
		{Key: []byte(p + "a"), Value: []byte("1"), CreateRevision: ra, ModRevision: ra, Version: 1},
		{Key: []byte(p + "b"), Value: []byte("3"), CreateRevision: rb, ModRevision: rb2, Version: 2},
	}
	if resp.Deleted != 2 || !slices.EqualFunc(resp.PrevKvs, want, func(a, b *mvccpb.KeyValue) bool { return proto.Equal(a, b) }) {
		t.Fatalf("delete prev_kv: deleted %d prev %s, want 2 and %s", resp.Deleted, kvSummary(resp.PrevKvs), kvSummary(want))
	}

	// prev_kv on a missing key returns no kvs and deletes nothing.
	resp, err = tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(p + "a"), PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Deleted != 0 || len(resp.PrevKvs) != 0 {
		t.Fatalf("delete missing with prev_kv: deleted %d prev %s", resp.Deleted, kvSummary(resp.PrevKvs))
	}
}

// testDeleteNoop: deleting nothing is not a write. The revision does not
// move and the response header carries the current revision.
func testDeleteNoop(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"k", "v")
	before := tg.currentRev(t)
	for _, req := range []*pb.DeleteRangeRequest{
		{Key: []byte(p + "missing")},
		{Key: []byte(p + "missing"), PrevKv: true},
		{Key: []byte(p + "l"), RangeEnd: []byte(p + "z")},
		{Key: []byte(p + "z"), RangeEnd: []byte(p + "a")}, // inverted range
	} {
		resp, err := tg.KV.DeleteRange(reqCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Deleted != 0 || resp.Header.Revision != before {
			t.Fatalf("no-op delete %q..%q: deleted %d header rev %d, want 0 at %d", req.Key, req.RangeEnd, resp.Deleted, resp.Header.Revision, before)
		}
	}
	if got := tg.currentRev(t); got != before {
		t.Fatalf("no-op deletes moved the revision from %d to %d", before, got)
	}
	tg.wantKV(t, p+"k", "v", before, before, 1)
}
