package shards

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage"
)

// twinStores keeps the same keys twice: durably (values in a data dir,
// committed and settled, so that they are read from it) and in memory
// (records carry their values), to hold the first to the second.
type twinStores struct {
	db       *storage.DB
	vals     *Values
	dur, mem *Store
	rev      int64
}

func newTwinStores(t *testing.T, cacheBytes int64) *twinStores {
	t.Helper()
	db, _, err := storage.Open(t.TempDir(), storage.Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	vals := NewValues(db, cacheBytes)
	return &twinStores{db: db, vals: vals, dur: NewStore(vals), mem: NewStore(nil), rev: 1}
}

// write stamps the next revision on the puts and the deletes, on both
// stores, and makes it durable and visible.
func (ts *twinStores) write(t *testing.T, puts map[string]string, lease int64, deletes ...string) {
	t.Helper()
	ts.rev++
	var muts []storage.Mutation
	for k, v := range puts {
		rec := ts.dur.put(k, []byte(v), lease, ts.rev)
		ts.mem.put(k, []byte(v), lease, ts.rev)
		muts = append(muts, storage.Mutation{Key: k, Value: []byte(v), Lease: lease, Create: rec.create, Version: rec.version})
	}
	for _, k := range deletes {
		if ts.dur.del(k, ts.rev) != ts.mem.del(k, ts.rev) {
			t.Fatalf("delete of %q: the stores disagree", k)
		}
		muts = append(muts, storage.Mutation{Key: k, Delete: true})
	}
	if err := ts.db.Commit([]storage.Entry{{Rev: ts.rev, Base: ts.rev, Muts: muts}}, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	ts.dur.settle(ts.rev)
}

// TestRangeValuesFromDataDir answers ranges of every shape from a durable
// store and checks them against the same store in memory, with and without
// the value cache; and checks that only the values a range returns are read.
func TestRangeValuesFromDataDir(t *testing.T) {
	for _, cacheBytes := range []int64{0, 1 << 20} {
		t.Run(fmt.Sprintf("cache=%d", cacheBytes), func(t *testing.T) { testRangeValuesFromDataDir(t, cacheBytes) })
	}
}

func testRangeValuesFromDataDir(t *testing.T, cacheBytes int64) {
	ts := newTwinStores(t, cacheBytes)
	// 300 keys written backwards, so that key order is the reverse of
	// revision order; every third one updated, every seventh deleted;
	// values that sort in neither key nor revision order.
	for i := 299; i >= 0; i-- {
		ts.write(t, map[string]string{fmt.Sprintf("k%03d", i): fmt.Sprintf("v%03d", (i*37)%300)}, int64(i%3))
	}
	mid := ts.rev
	updates := map[string]string{}
	var deletes []string
	for i := 0; i < 300; i += 3 {
		updates[fmt.Sprintf("k%03d", i)] = fmt.Sprintf("u%03d", (i*91)%300)
	}
	for i := 1; i < 300; i += 7 {
		deletes = append(deletes, fmt.Sprintf("k%03d", i))
	}
	ts.write(t, updates, 0)
	ts.write(t, map[string]string{"k005": ""}, 9, deletes...)
	// One more value that is installed but not yet settled: it is read
	// from recent, the others from the data dir.
	ts.rev++
	ts.dur.put("k150", []byte("recent"), 0, ts.rev)
	ts.mem.put("k150", []byte("recent"), 0, ts.rev)

	all := &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")}
	with := func(f func(r *pb.RangeRequest)) *pb.RangeRequest {
		r := proto.Clone(all).(*pb.RangeRequest)
		f(r)
		return r
	}
	tests := []struct {
		name string
		req  *pb.RangeRequest
		rev  int64
		// wantRead is how many values the range reads, if it checks
		// that (0: it does not).
		wantRead int
	}{
		{name: "single key", req: &pb.RangeRequest{Key: []byte("k003")}, wantRead: 1},
		{name: "single key from recent", req: &pb.RangeRequest{Key: []byte("k150")}},
		{name: "all", req: all},
		{name: "all at an older revision", req: all, rev: mid},
		{name: "limit", req: with(func(r *pb.RangeRequest) { r.Limit = 10 }), wantRead: 10},
		{name: "descending by key, limit 10", req: with(func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder, r.Limit = pb.RangeRequest_KEY, pb.RangeRequest_DESCEND, 10
		}), wantRead: 10},
		{name: "by mod descending, limit 5", req: with(func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder, r.Limit = pb.RangeRequest_MOD, pb.RangeRequest_DESCEND, 5
		})},
		{name: "by create ascending, limit 7", req: with(func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder, r.Limit = pb.RangeRequest_CREATE, pb.RangeRequest_ASCEND, 7
		}), wantRead: 7},
		{name: "by version, order none", req: with(func(r *pb.RangeRequest) { r.SortTarget = pb.RangeRequest_VERSION })},
		{name: "by value descending, limit 4", req: with(func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder, r.Limit = pb.RangeRequest_VALUE, pb.RangeRequest_DESCEND, 4
		})},
		{name: "by value, keys only", req: with(func(r *pb.RangeRequest) {
			r.SortTarget, r.KeysOnly, r.Limit = pb.RangeRequest_VALUE, true, 6
		})},
		{name: "keys only", req: with(func(r *pb.RangeRequest) { r.KeysOnly = true }), wantRead: -1},
		{name: "count only", req: with(func(r *pb.RangeRequest) { r.CountOnly = true }), wantRead: -1},
		{name: "mod filter, limit", req: with(func(r *pb.RangeRequest) { r.MinModRevision, r.Limit = mid+1, 3 }), wantRead: 3},
		{name: "create filter, by key descending", req: with(func(r *pb.RangeRequest) {
			r.MaxCreateRevision, r.SortOrder = 50, pb.RangeRequest_DESCEND
		})},
		{name: "filter leaves nothing", req: with(func(r *pb.RangeRequest) { r.MinModRevision = ts.rev + 1 }), wantRead: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev := tc.rev
			if rev == 0 {
				rev = latest
			}
			want, err := evalRange(ts.mem.Snapshot(), tc.req, rev)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantRead != 0 && ts.vals.cache != nil {
				ts.vals.cache.InvalidateAll()
			}
			got, err := evalRange(ts.dur.Snapshot(), tc.req, rev)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("from the data dir:\n%v\nin memory:\n%v", got, want)
			}
			if tc.wantRead != 0 && ts.vals.cache != nil {
				// Every value read from the data dir by a small range
				// is cached, and nothing else is.
				if n, w := ts.vals.cache.EstimatedSize(), max(tc.wantRead, 0); n != w {
					t.Fatalf("%d values read from the data dir, want %d", n, w)
				}
			}
		})
	}
}

// TestValuesGetMany reads values from recent, the cache and the data dir at
// once, leaves the cache alone when a read is a scan, and fails with
// storage.ErrNoRecord for a record compacted away.
func TestValuesGetMany(t *testing.T) {
	const n = 400
	value := func(i int) string { return fmt.Sprintf("%0300d", i) } // 400 bytes as the cache weighs it
	ts := newTwinStores(t, 1<<20)
	var krs []storage.KeyRev
	for i := range n {
		ts.write(t, map[string]string{fmt.Sprintf("k%03d", i): value(i)}, 0)
		krs = append(krs, storage.KeyRev{Key: fmt.Sprintf("k%03d", i), Rev: ts.rev})
	}
	// The last one is still in recent.
	ts.rev++
	ts.dur.put("k400", []byte(value(n)), 0, ts.rev)
	krs = append(krs, storage.KeyRev{Key: "k400", Rev: ts.rev})
	check := func(t *testing.T, krs []storage.KeyRev, first int) {
		t.Helper()
		out := make([][]byte, len(krs))
		if err := ts.vals.getMany(krs, func(i int, b []byte) { out[i] = b }); err != nil {
			t.Fatal(err)
		}
		for i, b := range out {
			if string(b) != value(first+i) {
				t.Fatalf("value %d = %q, want %q", i, b, value(first+i))
			}
		}
	}
	cache := ts.vals.cache
	t.Run("small read is cached", func(t *testing.T) {
		cache.InvalidateAll()
		check(t, krs[10:20], 10)
		if got := cache.EstimatedSize(); got != 10 {
			t.Fatalf("cache holds %d values, want 10", got)
		}
	})
	t.Run("cache, data dir and recent at once", func(t *testing.T) {
		check(t, krs[:100], 0)
		check(t, krs[n-5:], n-5)
	})
	t.Run("a scan leaves the cache alone", func(t *testing.T) {
		// 400 values of 400 bytes: more than an eighth of 1 MiB.
		cache.InvalidateAll()
		check(t, krs[5:6], 5)
		check(t, krs, 0)
		if got := cache.EstimatedSize(); got != 1 {
			t.Fatalf("cache holds %d values after a scan, want the 1 read before it", got)
		}
	})
	t.Run("compacted away", func(t *testing.T) {
		cache.InvalidateAll()
		if err := ts.db.Drop(krs[3:4]); err != nil {
			t.Fatal(err)
		}
		if err := ts.vals.getMany(krs[:10], func(int, []byte) {}); !errors.Is(err, storage.ErrNoRecord) {
			t.Fatalf("getMany over a dropped record: %v, want storage.ErrNoRecord", err)
		}
	})
}

// TestRangeAfterCompaction: a range read through a view that a compaction
// overtook fails with storage.ErrNoRecord, which makes ReadPath start over,
// rather than answering without the value.
func TestRangeAfterCompaction(t *testing.T) {
	ts := newTwinStores(t, 0)
	for i := range 20 {
		ts.write(t, map[string]string{fmt.Sprintf("k%02d", i): "old"}, 0)
	}
	old := ts.dur.Snapshot()
	ts.write(t, map[string]string{"k07": "new"}, 0)
	if err := ts.db.Drop(ts.dur.Compact(ts.rev)); err != nil {
		t.Fatal(err)
	}
	r := &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), SortOrder: pb.RangeRequest_DESCEND}
	if _, err := evalRange(old, r, latest); !errors.Is(err, storage.ErrNoRecord) {
		t.Fatalf("range through an overtaken view: %v, want storage.ErrNoRecord", err)
	}
	resp, err := evalRange(ts.dur.Snapshot(), r, latest)
	if err != nil || len(resp.Kvs) != 20 || string(resp.Kvs[12].Value) != "new" {
		t.Fatalf("range after compaction through a new view: %v, %v", resp, err)
	}
}
