package test

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestKVRange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		t.Run("single key", func(t *testing.T) { testRangeSingleKey(t, tg) })
		t.Run("key ranges", func(t *testing.T) { testRangeKeyRanges(t, tg) })
		t.Run("from key", func(t *testing.T) { testRangeFromKey(t, tg) })
		t.Run("limit count keys_only", func(t *testing.T) { testRangeLimitCount(t, tg) })
		t.Run("sort", func(t *testing.T) { testRangeSort(t, tg) })
		t.Run("serializable", func(t *testing.T) { testRangeSerializable(t, tg) })
		t.Run("history", func(t *testing.T) { testRangeHistory(t, tg) })
		t.Run("revision filters", func(t *testing.T) { testRangeRevisionFilters(t, tg) })
		t.Run("future revision", func(t *testing.T) { testRangeFutureRevision(t, tg) })
	})
}

func testRangeSingleKey(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	rev := tg.put(t, p+"a", "1")
	tg.put(t, p+"ab", "2") // a neighbour that a single-key read must not return

	resp, err := tg.Client.Get(reqCtx(t), p+"a")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || resp.Count != 1 || resp.More {
		t.Fatalf("get %q: kvs=%s count=%d more=%v, want exactly one", p+"a", kvSummary(resp.Kvs), resp.Count, resp.More)
	}
	kv := resp.Kvs[0]
	if string(kv.Key) != p+"a" || string(kv.Value) != "1" || kv.CreateRevision != rev || kv.ModRevision != rev || kv.Version != 1 || kv.Lease != 0 {
		t.Fatalf("got %s, want %sa=\"1\"(c%d,m%d,v1,l0)", kvSummary(resp.Kvs), p, rev, rev)
	}

	// etcdctl and other clients may require a leader through gRPC metadata;
	// a server with a leader (or none to elect) answers as usual.
	led, err := tg.Client.Get(clientv3.WithRequireLeader(reqCtx(t)), p+"a")
	if err != nil || len(led.Kvs) != 1 {
		t.Fatalf("get with require-leader: %v %v", led, err)
	}

	missing := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "zz")})
	if len(missing.Kvs) != 0 || missing.Count != 0 || missing.More {
		t.Fatalf("missing key: kvs=%s count=%d more=%v, want nothing", kvSummary(missing.Kvs), missing.Count, missing.More)
	}
}

func testRangeKeyRanges(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	for _, k := range []string{"a", "b", "c", "d", "x/1", "x/2", "x0"} {
		tg.put(t, p+k, k)
	}
	tests := []struct {
		name     string
		key, end string
		want     []string
	}{
		{"half open", "b", "d", []string{"b", "c"}},
		{"end is exclusive even when present", "a", "b", []string{"a"}},
		{"start absent", "bb", "x", []string{"c", "d"}},
		{"empty interval", "c", "c", nil},
		{"inverted interval", "d", "a", nil},
		// "x0" is the prefix end of "x/", and itself a key left out.
		{"prefix", "x/", "x0", []string{"x/1", "x/2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + tc.key), RangeEnd: []byte(p + tc.end)})
			want := prefixAll(p, tc.want)
			if got := keysOf(resp.Kvs); !slices.Equal(got, want) || resp.Count != int64(len(want)) || resp.More {
				t.Fatalf("got keys %q count=%d more=%v, want %q count=%d", got, resp.Count, resp.More, want, len(want))
			}
		})
	}

	// clientv3's WithPrefix computes the same range_end as prefixEnd.
	resp, err := tg.Client.Get(reqCtx(t), p+"x", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(resp.Kvs), prefixAll(p, []string{"x/1", "x/2", "x0"}); !slices.Equal(got, want) || resp.Count != 3 {
		t.Fatalf("WithPrefix: got %q count=%d, want %q", got, resp.Count, want)
	}
}

// testRangeFromKey writes under a prefix that sorts after every other key in
// the shared server, so a from-key read sees exactly this subtest's keys.
func testRangeFromKey(t *testing.T, tg *Target) {
	p := "\xff" + keyPrefix(t)
	for _, k := range []string{"a", "b", "c"} {
		tg.put(t, p+k, k)
	}
	resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "b"), RangeEnd: []byte{0}})
	if got, want := keysOf(resp.Kvs), prefixAll(p, []string{"b", "c"}); !slices.Equal(got, want) || resp.Count != 2 {
		t.Fatalf("from key: got %q count=%d, want %q", got, resp.Count, want)
	}
	cresp, err := tg.Client.Get(reqCtx(t), p+"a", clientv3.WithFromKey(), clientv3.WithLimit(2))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(cresp.Kvs), prefixAll(p, []string{"a", "b"}); !slices.Equal(got, want) || cresp.Count != 3 || !cresp.More {
		t.Fatalf("WithFromKey limit 2: got %q count=%d more=%v, want %q count=3 more", got, cresp.Count, cresp.More, want)
	}

	// key "\x00" with range_end "\x00" is the whole keyspace: at least the
	// keys above, with this subtest's keys last.
	all := tg.rangeKV(t, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if all.Count < 3 || int64(len(all.Kvs)) != all.Count || string(all.Kvs[len(all.Kvs)-1].Key) != p+"c" {
		t.Fatalf("whole keyspace: count=%d len=%d, want >= 3 keys ending with %q", all.Count, len(all.Kvs), p+"c")
	}
}

func testRangeLimitCount(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	names := []string{"a", "b", "c", "d", "e"}
	for _, k := range names {
		tg.put(t, p+k, "v-"+k)
	}
	tests := []struct {
		name      string
		limit     int64
		countOnly bool
		keysOnly  bool
		wantKeys  []string
		wantMore  bool
	}{
		{name: "no limit", limit: 0, wantKeys: names},
		{name: "limit below count", limit: 2, wantKeys: names[:2], wantMore: true},
		{name: "limit one below count", limit: 4, wantKeys: names[:4], wantMore: true},
		{name: "limit equals count", limit: 5, wantKeys: names},
		{name: "limit above count", limit: 6, wantKeys: names},
		{name: "negative limit means no limit", limit: -1, wantKeys: names},
		{name: "count_only", countOnly: true},
		{name: "count_only ignores limit", limit: 2, countOnly: true},
		{name: "keys_only", keysOnly: true, wantKeys: names},
		{name: "keys_only with limit", limit: 3, keysOnly: true, wantKeys: names[:3], wantMore: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := tg.rangeKV(t, &pb.RangeRequest{
				Key: []byte(p), RangeEnd: []byte(prefixEnd(p)),
				Limit: tc.limit, CountOnly: tc.countOnly, KeysOnly: tc.keysOnly,
			})
			want := prefixAll(p, tc.wantKeys)
			if got := keysOf(resp.Kvs); !slices.Equal(got, want) || resp.Count != 5 || resp.More != tc.wantMore {
				t.Fatalf("got keys %q count=%d more=%v, want %q count=5 more=%v", got, resp.Count, resp.More, want, tc.wantMore)
			}
			for _, kv := range resp.Kvs {
				wantVal := "v-" + string(kv.Key[len(p):])
				if tc.keysOnly {
					wantVal = ""
				}
				// keys_only drops only the value: revisions and version stay.
				if string(kv.Value) != wantVal || kv.CreateRevision == 0 || kv.ModRevision == 0 || kv.Version != 1 {
					t.Fatalf("kv %s, want value %q and nonzero revisions, version 1", kvSummary([]*mvccpb.KeyValue{kv}), wantVal)
				}
			}
		})
	}
}

// testRangeSort checks every sort order × target, each with and without a
// limit. The five keys are written so that key, version, create, mod and
// value each order them differently, with no ties.
func testRangeSort(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	values := map[string]string{"k0": "e", "k1": "c", "k2": "a", "k3": "d", "k4": "b"}
	// Creation order k3 k1 k4 k0 k2; then updates giving versions
	// k3=1 k1=2 k4=3 k2=4 k0=5 and last-modified order k3 k4 k2 k1 k0.
	schedule := []string{"k3", "k1", "k4", "k0", "k2", "k0", "k0", "k0", "k2", "k4", "k2", "k4", "k2", "k1", "k0"}
	puts := map[string]int{}
	for _, k := range schedule {
		puts[k]++
	}
	seen := map[string]int{}
	for _, k := range schedule {
		seen[k]++
		v := "tmp"
		if seen[k] == puts[k] {
			v = values[k]
		}
		tg.put(t, p+k, v)
	}
	base := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))}).Kvs
	if got := keysOf(base); !slices.Equal(got, prefixAll(p, keys)) {
		t.Fatalf("setup: got keys %q", got)
	}

	targets := map[pb.RangeRequest_SortTarget]func(a, b *mvccpb.KeyValue) int{
		pb.RangeRequest_KEY:     func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) },
		pb.RangeRequest_VERSION: func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.Version, b.Version) },
		pb.RangeRequest_CREATE:  func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) },
		pb.RangeRequest_MOD:     func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.ModRevision, b.ModRevision) },
		pb.RangeRequest_VALUE:   func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) },
	}
	for target, less := range targets {
		for _, order := range []pb.RangeRequest_SortOrder{pb.RangeRequest_NONE, pb.RangeRequest_ASCEND, pb.RangeRequest_DESCEND} {
			for _, limit := range []int64{0, 3, 5} {
				t.Run(fmt.Sprintf("%v/%v/limit=%d", target, order, limit), func(t *testing.T) {
					resp := tg.rangeKV(t, &pb.RangeRequest{
						Key: []byte(p), RangeEnd: []byte(prefixEnd(p)),
						SortOrder: order, SortTarget: target, Limit: limit,
					})
					want, wantMore := expectSorted(t, base, target, order, limit, less)
					if got, w := keysOf(resp.Kvs), keysOf(want); !slices.Equal(got, w) || resp.Count != 5 || resp.More != wantMore {
						t.Fatalf("got %q count=%d more=%v, want %q count=5 more=%v", got, resp.Count, resp.More, w, wantMore)
					}
				})
			}
		}
	}

	// keys_only still sorts by the values it then leaves out.
	ko := tg.rangeKV(t, &pb.RangeRequest{
		Key: []byte(p), RangeEnd: []byte(prefixEnd(p)),
		SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND, KeysOnly: true,
	})
	if got, want := keysOf(ko.Kvs), prefixAll(p, []string{"k0", "k3", "k1", "k4", "k2"}); !slices.Equal(got, want) {
		t.Fatalf("keys_only by value descending: got %q, want %q", got, want)
	}
	for _, kv := range ko.Kvs {
		if len(kv.Value) != 0 {
			t.Fatalf("keys_only returned value %q for %s", kv.Value, kv.Key)
		}
	}

	// clientv3's WithSort reaches the server the same way.
	resp, err := tg.Client.Get(reqCtx(t), p, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend), clientv3.WithLimit(2))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(resp.Kvs), prefixAll(p, []string{"k0", "k3"}); !slices.Equal(got, want) || !resp.More || resp.Count != 5 {
		t.Fatalf("WithSort value descend limit 2: got %q more=%v count=%d, want %q more count=5", got, resp.More, resp.Count, want)
	}
}

func testRangeSerializable(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	rev := tg.put(t, p+"k", "v")
	// A single member applies a write before acknowledging it, so even a
	// serializable read issued after the ack sees it.
	resp, err := tg.Client.Get(reqCtx(t), p+"k", clientv3.WithSerializable())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" || resp.Kvs[0].ModRevision != rev || resp.Header.Revision < rev {
		t.Fatalf("serializable get: kvs=%s header rev %d, want v at mod %d", kvSummary(resp.Kvs), resp.Header.Revision, rev)
	}
}

// testRangeHistory reads a key at each revision of its life: two versions,
// a delete, and a re-creation.
func testRangeHistory(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	k := p + "k"
	r1 := tg.put(t, k, "v1")
	r2 := tg.put(t, k, "v2")
	tg.put(t, p+"other", "o") // a revision in which k does not change
	dresp, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(k)})
	if err != nil {
		t.Fatal(err)
	}
	r4 := dresp.Header.Revision
	r5 := tg.put(t, k, "v3")
	cur := tg.currentRev(t)

	tests := []struct {
		rev  int64
		want string // "" means absent
		c, m int64
		ver  int64
	}{
		{r1 - 1, "", 0, 0, 0},
		{r1, "v1", r1, r1, 1},
		{r2, "v2", r1, r2, 2},
		{r2 + 1, "v2", r1, r2, 2},
		{r4, "", 0, 0, 0},
		{r5, "v3", r5, r5, 1},
		{0, "v3", r5, r5, 1},
	}
	for _, tc := range tests {
		resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(k), Revision: tc.rev})
		// The header carries the store's current revision, not the one read.
		if resp.Header.Revision != cur {
			t.Fatalf("rev %d: header revision %d, want current %d", tc.rev, resp.Header.Revision, cur)
		}
		if tc.want == "" {
			if len(resp.Kvs) != 0 || resp.Count != 0 {
				t.Fatalf("rev %d: got %s, want absent", tc.rev, kvSummary(resp.Kvs))
			}
			continue
		}
		if len(resp.Kvs) != 1 {
			t.Fatalf("rev %d: got %s, want %q", tc.rev, kvSummary(resp.Kvs), tc.want)
		}
		kv := resp.Kvs[0]
		if string(kv.Value) != tc.want || kv.CreateRevision != tc.c || kv.ModRevision != tc.m || kv.Version != tc.ver {
			t.Fatalf("rev %d: got %s, want %q c%d m%d v%d", tc.rev, kvSummary(resp.Kvs), tc.want, tc.c, tc.m, tc.ver)
		}
	}

	// A range read in the past counts only the keys alive then.
	old := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), Revision: r4})
	if got, want := keysOf(old.Kvs), []string{p + "other"}; !slices.Equal(got, want) || old.Count != 1 {
		t.Fatalf("prefix at rev %d: got %q count=%d, want %q", r4, got, old.Count, want)
	}
	cnt := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), Revision: r2, CountOnly: true})
	if cnt.Count != 1 {
		t.Fatalf("count at rev %d: %d, want 1", r2, cnt.Count)
	}
	// A txn reads history too.
	txn, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k), Revision: r1}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if kvs := txn.Responses[0].GetResponseRange().GetKvs(); len(kvs) != 1 || string(kvs[0].Value) != "v1" {
		t.Fatalf("txn range at rev %d: got %s, want v1", r1, kvSummary(kvs))
	}
	cresp, err := tg.Client.Get(reqCtx(t), k, clientv3.WithRev(r2))
	if err != nil {
		t.Fatal(err)
	}
	if len(cresp.Kvs) != 1 || string(cresp.Kvs[0].Value) != "v2" {
		t.Fatalf("WithRev(%d): got %s, want v2", r2, kvSummary(cresp.Kvs))
	}
}

// testRangeRevisionFilters checks min/max mod/create revision. The filters
// apply after the key range is read, so count stays the number of keys in
// the range, and more/limit apply to what survives the filters.
func testRangeRevisionFilters(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	ra := tg.put(t, p+"a", "1")
	rb := tg.put(t, p+"b", "1")
	rc := tg.put(t, p+"c", "1")
	rd := tg.put(t, p+"d", "1")
	rb2 := tg.put(t, p+"b", "2")
	rd2 := tg.put(t, p+"d", "2")
	// create: a=ra b=rb c=rc d=rd; mod: a=ra b=rb2 c=rc d=rd2.
	tests := []struct {
		name      string
		req       *pb.RangeRequest
		wantKeys  []string
		wantMore  bool
		wantCount int64
	}{
		{name: "min mod", req: &pb.RangeRequest{MinModRevision: rd}, wantKeys: []string{"b", "d"}, wantCount: 4},
		{name: "max mod", req: &pb.RangeRequest{MaxModRevision: rc}, wantKeys: []string{"a", "c"}, wantCount: 4},
		{name: "mod window", req: &pb.RangeRequest{MinModRevision: rb2, MaxModRevision: rb2}, wantKeys: []string{"b"}, wantCount: 4},
		{name: "min create", req: &pb.RangeRequest{MinCreateRevision: rc}, wantKeys: []string{"c", "d"}, wantCount: 4},
		{name: "max create", req: &pb.RangeRequest{MaxCreateRevision: rb}, wantKeys: []string{"a", "b"}, wantCount: 4},
		{name: "create window", req: &pb.RangeRequest{MinCreateRevision: rb, MaxCreateRevision: rc}, wantKeys: []string{"b", "c"}, wantCount: 4},
		{name: "create and mod", req: &pb.RangeRequest{MinCreateRevision: rb, MaxModRevision: rd}, wantKeys: []string{"c"}, wantCount: 4},
		{name: "nothing passes", req: &pb.RangeRequest{MinModRevision: rd2 + 1}, wantCount: 4},
		{name: "limit after filter", req: &pb.RangeRequest{MinModRevision: rd, Limit: 1}, wantKeys: []string{"b"}, wantMore: true, wantCount: 4},
		{name: "limit equal to filtered", req: &pb.RangeRequest{MaxCreateRevision: rb, Limit: 2}, wantKeys: []string{"a", "b"}, wantCount: 4},
		{name: "count_only ignores filters", req: &pb.RangeRequest{MinModRevision: rd, CountOnly: true}, wantCount: 4},
		{name: "keys_only with filter", req: &pb.RangeRequest{MaxModRevision: ra, KeysOnly: true}, wantKeys: []string{"a"}, wantCount: 4},
		{name: "filter with sort and limit", req: &pb.RangeRequest{MinModRevision: rc, SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_DESCEND, Limit: 2}, wantKeys: []string{"d", "b"}, wantMore: true, wantCount: 4},
		{name: "single key filtered out", req: &pb.RangeRequest{Key: []byte(p + "a"), MinModRevision: rb}, wantCount: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if req.Key == nil {
				req.Key, req.RangeEnd = []byte(p), []byte(prefixEnd(p))
			}
			resp := tg.rangeKV(t, req)
			want := prefixAll(p, tc.wantKeys)
			if got := keysOf(resp.Kvs); !slices.Equal(got, want) || resp.More != tc.wantMore || resp.Count != tc.wantCount {
				t.Fatalf("got %q more=%v count=%d, want %q more=%v count=%d", got, resp.More, resp.Count, want, tc.wantMore, tc.wantCount)
			}
		})
	}
}

func testRangeFutureRevision(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"k", "v")
	cur := tg.currentRev(t)
	// Reading at exactly the current revision is fine.
	if resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "k"), Revision: cur}); len(resp.Kvs) != 1 {
		t.Fatalf("read at current rev %d: got %s", cur, kvSummary(resp.Kvs))
	}
	_, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte(p + "k"), Revision: cur + 1})
	wantRPCErr(t, err, rpctypes.ErrGRPCFutureRev)
	_, err = tg.Client.Get(reqCtx(t), p+"k", clientv3.WithRev(cur+100))
	if err == nil || err.Error() != rpctypes.ErrFutureRev.Error() {
		t.Fatalf("clientv3 get at future rev: got %v, want %v", err, rpctypes.ErrFutureRev)
	}
	if got := tg.currentRev(t); got != cur {
		t.Fatalf("revision moved from %d to %d", cur, got)
	}
}

// expectSorted models etcd's sort: base is the range in key order.
//
// etcd treats order NONE, and KEY+ASCEND, as "already in key order": it
// then reads only limit+1 keys from the index (to learn "more"), and still
// sorts that window by the target, NONE meaning ASCEND for targets other
// than KEY. So NONE with a non-KEY target and a limit sorts only the first
// limit+1 keys by key, not the whole range. Every other order reads the
// whole range, sorts it, then cuts it to limit.
func expectSorted(t *testing.T, base []*mvccpb.KeyValue, target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder,
	limit int64, less func(a, b *mvccpb.KeyValue) int) ([]*mvccpb.KeyValue, bool) {
	t.Helper()
	window := base
	keyOrdered := order == pb.RangeRequest_NONE || target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND
	if keyOrdered && limit > 0 && int(limit)+1 < len(base) {
		window = base[:limit+1]
	}
	want := slices.Clone(window)
	slices.SortFunc(want, less)
	for i := 1; i < len(want); i++ {
		if less(want[i-1], want[i]) == 0 {
			t.Fatalf("setup: tie on %v between %s", target, kvSummary(want[i-1:i+1]))
		}
	}
	if order == pb.RangeRequest_DESCEND {
		slices.Reverse(want)
	}
	if limit > 0 && int64(len(want)) > limit {
		return want[:limit], true
	}
	return want, false
}

// prefixAll prepends p to each of names.
func prefixAll(p string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = p + n
	}
	return out
}
