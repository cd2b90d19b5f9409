package shards

import (
	"bytes"
	"cmp"
	"container/heap"
	"math"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage"
)

// Latest is the revision argument that means "the newest state".
const Latest = math.MaxInt64

// entry is one key as it exists at some revision.
type entry struct {
	key  string
	rec  *record
	vals *Values // where its value is, if the record does not carry it
}

// value returns the entry's value. It fails with storage.ErrNoRecord when
// compaction removed the record after a reader found it in its view.
func (e entry) value() ([]byte, error) {
	if e.vals == nil || e.rec.tombstone() {
		return e.rec.value, nil
	}
	return e.vals.get(e.key, e.rec.rev)
}

// keyValue is e's key-value, value included.
func (e entry) keyValue() (*mvccpb.KeyValue, error) {
	v, err := e.value()
	if err != nil {
		return nil, err
	}
	return e.kv(v, e.rec.lease), nil
}

// reader is the state a request is evaluated against: one shard's view,
// several shards' views merged, or a request's own writes layered on top.
type reader interface {
	// get returns key as of revision rev.
	get(key string, rev int64) (entry, bool)
	// collect returns, in key order, up to max keys of [start, end) that
	// exist at rev (max < 0: all of them), and how many exist in all.
	collect(start, end string, rev int64, max int) ([]entry, int)
}

func (v *View) get(key string, rev int64) (entry, bool) {
	h, ok := v.tree.Get(&history{key: key})
	if !ok {
		return entry{}, false
	}
	r, ok := h.at(rev)
	return entry{key: key, rec: r, vals: v.vals}, ok
}

func (v *View) collect(start, end string, rev int64, max int) ([]entry, int) {
	var out []entry
	total := 0
	v.Ascend(start, end, rev, func(h *history, r *record) bool {
		total++
		if max < 0 || len(out) < max {
			out = append(out, entry{key: h.key, rec: r, vals: v.vals})
		}
		return true
	})
	return out, total
}

// Views is a consistent set of shard views, indexed by shard: together they
// hold every key. Reads route single keys by hash and merge ranges.
type Views struct {
	router Router
	views  []*View
}

func (vs *Views) get(key string, rev int64) (entry, bool) {
	return vs.views[vs.router.Shard(key)].get(key, rev)
}

func (vs *Views) collect(start, end string, rev int64, max int) ([]entry, int) {
	parts := make([][]entry, 0, len(vs.views))
	total := 0
	for _, v := range vs.views {
		if v == nil { // a shard the caller does not read
			continue
		}
		es, n := v.collect(start, end, rev, max)
		total += n
		if len(es) > 0 {
			parts = append(parts, es)
		}
	}
	return mergeEntries(parts, max), total
}

// mergeEntries merges key-ordered runs of disjoint keys into one, keeping at
// most max (max < 0: all).
func mergeEntries(parts [][]entry, max int) []entry {
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if max >= 0 && n > max {
		n = max
	}
	out := make([]entry, 0, n)
	h := entryHeap(parts)
	heap.Init(&h)
	for len(h) > 0 && len(out) < n {
		out = append(out, h[0][0])
		if h[0] = h[0][1:]; len(h[0]) == 0 {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	return out
}

type entryHeap [][]entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i][0].key < h[j][0].key }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.([]entry)) }
func (h *entryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// IsDefaultOrdering reports whether a range is answered in key order, the
// order keys are stored in, so that a limit can stop the scan early.
func IsDefaultOrdering(r *pb.RangeRequest) bool {
	return r.SortOrder == pb.RangeRequest_NONE ||
		(r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND)
}

// HasRevisionFilters reports whether a range filters on create or mod revision.
func HasRevisionFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// evalRange answers r from rd at revision rev, the way etcd does: count is
// every key in the range at rev; filters, then sorting, then the limit apply
// to the key-values; more says the limit cut something off. The header is
// left for the caller.
//
// NB: all of that is done on the index's records, and only the values
// that are returned are read, all at once (fetchValues): a range sorted
// descending with a limit of 10 over 1,000,000 keys reads 10 values, not
// 1,000,000. Only a sort by value needs every value first.
func evalRange(rd reader, r *pb.RangeRequest, rev int64) (*pb.RangeResponse, error) {
	resp := &pb.RangeResponse{}
	span := SpanOf(r.Key, r.RangeEnd)
	var es []entry
	switch {
	case span.Single():
		e, ok := rd.get(span.Key, rev)
		if !ok {
			return resp, nil
		}
		es, resp.Count = []entry{e}, 1
	case span.Empty():
		return resp, nil
	default:
		max := -1
		switch {
		case r.CountOnly:
			max = 0
		case r.Limit > 0 && IsDefaultOrdering(r) && !HasRevisionFilters(r):
			max = int(min(r.Limit, math.MaxInt32)) + 1
		}
		start, end := span.bounds()
		var total int
		es, total = rd.collect(start, end, rev, max)
		resp.Count = int64(total)
	}
	if r.CountOnly {
		return resp, nil
	}
	var err error
	resp.Kvs, resp.More, err = rangeKVs(es, r)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// rangeKVs filters, sorts and limits es, in etcd's order, and returns the
// key-values kept, with whether the limit cut any off. NB: etcd answers
// keys_only from its index alone unless it must sort by value, so those
// key-values carry no lease; MetaStore matches that. A value needed only
// to sort by is dropped after sorting.
func rangeKVs(es []entry, r *pb.RangeRequest) ([]*mvccpb.KeyValue, bool, error) {
	es = filterEntries(es, r)
	order := sortOrder(r)
	if r.SortTarget == pb.RangeRequest_VALUE {
		values, err := fetchValues(es)
		if err != nil {
			return nil, false, err
		}
		kvs := newKVs(es, values, true)
		sortByValue(kvs, order)
		kvs, more := limited(kvs, r.Limit)
		if r.KeysOnly {
			for _, kv := range kvs {
				kv.Value = nil
			}
		}
		return kvs, more, nil
	}
	sortEntries(es, r.SortTarget, order)
	es, more := limited(es, r.Limit)
	if r.KeysOnly {
		return newKVs(es, nil, false), more, nil
	}
	values, err := fetchValues(es)
	if err != nil {
		return nil, false, err
	}
	return newKVs(es, values, true), more, nil
}

// newKVs builds the key-values of es with values (nil: none) and, if
// withLease, their leases. NB: they are allocated together, and their keys
// too, rather than two objects each: for 1,000,000 key-values that is
// 2,000,000 allocations fewer for the collector to make and scan. An
// answer is dropped whole once sent, so nothing is kept alive for long by
// one key-value it holds.
func newKVs(es []entry, values [][]byte, withLease bool) []*mvccpb.KeyValue {
	kvs := make([]*mvccpb.KeyValue, len(es))
	backing := make([]mvccpb.KeyValue, len(es))
	n := 0
	for _, e := range es {
		n += len(e.key)
	}
	keys := make([]byte, 0, n)
	for i, e := range es {
		kv := &backing[i]
		n := len(keys)
		keys = append(keys, e.key...)
		kv.Key = keys[n:len(keys):len(keys)]
		kv.CreateRevision, kv.ModRevision, kv.Version = e.rec.create, e.rec.rev, e.rec.version
		if withLease {
			kv.Lease = e.rec.lease
		}
		if values != nil {
			kv.Value = values[i]
		}
		kvs[i] = kv
	}
	return kvs
}

// kv is the key-value of e with the given value and lease.
func (e entry) kv(value []byte, lease int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{
		Key:            []byte(e.key),
		CreateRevision: e.rec.create,
		ModRevision:    e.rec.rev,
		Version:        e.rec.version,
		Lease:          lease,
		Value:          value,
	}
}

// fetchValues returns the values of es, in order. The records that do not
// carry their value (a durable node's) are read together, through
// Values.getMany; it fails as entry.value does.
func fetchValues(es []entry) ([][]byte, error) {
	out := make([][]byte, len(es))
	var vals *Values
	var krs []storage.KeyRev
	var at []int // at[j] is the index in es of krs[j]
	for i, e := range es {
		if e.vals == nil || e.rec.tombstone() {
			out[i] = e.rec.value
			continue
		}
		if vals == nil {
			vals = e.vals
		} else if vals != e.vals {
			panic("shards: one read meets two value stores")
		}
		krs, at = append(krs, storage.KeyRev{Key: e.key, Rev: e.rec.rev}), append(at, i)
	}
	if vals == nil {
		return out, nil
	}
	err := vals.getMany(krs, func(j int, value []byte) { out[at[j]] = value })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// limited cuts s to limit (0: no limit) and reports whether it cut.
func limited[T any](s []T, limit int64) ([]T, bool) {
	if limit > 0 && int64(len(s)) > limit {
		return s[:limit], true
	}
	return s, false
}

// filterEntries keeps the entries that pass r's revision filters.
func filterEntries(es []entry, r *pb.RangeRequest) []entry {
	if !HasRevisionFilters(r) {
		return es
	}
	return slices.DeleteFunc(es, func(e entry) bool {
		return (r.MaxModRevision != 0 && e.rec.rev > r.MaxModRevision) ||
			(r.MinModRevision != 0 && e.rec.rev < r.MinModRevision) ||
			(r.MaxCreateRevision != 0 && e.rec.create > r.MaxCreateRevision) ||
			(r.MinCreateRevision != 0 && e.rec.create < r.MinCreateRevision)
	})
}

// sortOrder is the order r's key-values are sorted in; NONE leaves them in
// key order. A non-key target with order NONE sorts ascending, as etcd
// does, and key order ascending is the order they come in.
func sortOrder(r *pb.RangeRequest) pb.RangeRequest_SortOrder {
	switch {
	case r.SortTarget != pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_NONE:
		return pb.RangeRequest_ASCEND
	case r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND:
		return pb.RangeRequest_NONE
	}
	return r.SortOrder
}

// sortEntries sorts es, which are in key order, by a target other than the
// value. The sort is stable so that ties keep key order; keys are
// distinct, so descending by key is key order reversed.
func sortEntries(es []entry, target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) {
	if order == pb.RangeRequest_NONE {
		return
	}
	var c func(a, b entry) int
	switch target {
	case pb.RangeRequest_KEY:
		slices.Reverse(es) // order is DESCEND
		return
	case pb.RangeRequest_VERSION:
		c = func(a, b entry) int { return cmp.Compare(a.rec.version, b.rec.version) }
	case pb.RangeRequest_CREATE:
		c = func(a, b entry) int { return cmp.Compare(a.rec.create, b.rec.create) }
	case pb.RangeRequest_MOD:
		c = func(a, b entry) int { return cmp.Compare(a.rec.rev, b.rec.rev) }
	}
	if order == pb.RangeRequest_DESCEND {
		asc := c
		c = func(a, b entry) int { return asc(b, a) }
	}
	slices.SortStableFunc(es, c)
}

// sortByValue sorts kvs, which are in key order, by value; stable, as
// sortEntries.
func sortByValue(kvs []*mvccpb.KeyValue, order pb.RangeRequest_SortOrder) {
	c := func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	if order == pb.RangeRequest_DESCEND {
		c = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(b.Value, a.Value) }
	}
	slices.SortStableFunc(kvs, c)
}
