package shards

import (
	"bytes"
	"cmp"
	"container/heap"
	"math"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
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

func (e entry) keyValue(keysOnly bool) (*mvccpb.KeyValue, error) {
	kv := &mvccpb.KeyValue{
		Key:            []byte(e.key),
		CreateRevision: e.rec.create,
		ModRevision:    e.rec.rev,
		Version:        e.rec.version,
		Lease:          e.rec.lease,
	}
	if !keysOnly {
		v, err := e.value()
		if err != nil {
			return nil, err
		}
		kv.Value = v
	}
	return kv, nil
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
func evalRange(rd reader, r *pb.RangeRequest, rev int64) (*pb.RangeResponse, error) {
	resp := &pb.RangeResponse{}
	span := SpanOf(r.Key, r.RangeEnd)
	if span.Single() {
		e, ok := rd.get(span.Key, rev)
		if !ok {
			return resp, nil
		}
		resp.Count = 1
		if r.CountOnly {
			return resp, nil
		}
		kv, err := rangeKeyValue(e, r)
		if err != nil {
			return nil, err
		}
		resp.Kvs = []*mvccpb.KeyValue{kv}
		finishRange(resp, r)
		return resp, nil
	}
	if span.Empty() {
		return resp, nil
	}
	max := -1
	switch {
	case r.CountOnly:
		max = 0
	case r.Limit > 0 && IsDefaultOrdering(r) && !HasRevisionFilters(r):
		max = int(min(r.Limit, math.MaxInt32)) + 1
	}
	start, end := span.bounds()
	es, total := rd.collect(start, end, rev, max)
	resp.Count = int64(total)
	if r.CountOnly {
		return resp, nil
	}
	resp.Kvs = make([]*mvccpb.KeyValue, len(es))
	for i, e := range es {
		kv, err := rangeKeyValue(e, r)
		if err != nil {
			return nil, err
		}
		resp.Kvs[i] = kv
	}
	finishRange(resp, r)
	return resp, nil
}

// finishRange filters, sorts and limits the key-values, in etcd's order.
func finishRange(resp *pb.RangeResponse, r *pb.RangeRequest) {
	filterKVs(resp, r)
	sortKVs(resp.Kvs, r)
	if r.Limit > 0 && int64(len(resp.Kvs)) > r.Limit {
		resp.Kvs = resp.Kvs[:r.Limit]
		resp.More = true
	}
	if r.KeysOnly {
		for _, kv := range resp.Kvs {
			kv.Value = nil
		}
	}
}

// rangeKeyValue builds a returned key-value. NB: etcd answers keys_only
// from its index alone unless it must sort by value, so those key-values
// carry no lease; MetaStore matches that. A value needed only to sort by is
// dropped after sorting.
func rangeKeyValue(e entry, r *pb.RangeRequest) (*mvccpb.KeyValue, error) {
	fromIndex := r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE
	kv, err := e.keyValue(fromIndex)
	if err != nil {
		return nil, err
	}
	if fromIndex {
		kv.Lease = 0
	}
	return kv, nil
}

func filterKVs(resp *pb.RangeResponse, r *pb.RangeRequest) {
	if !HasRevisionFilters(r) {
		return
	}
	resp.Kvs = slices.DeleteFunc(resp.Kvs, func(kv *mvccpb.KeyValue) bool {
		return (r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision) ||
			(r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision) ||
			(r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision) ||
			(r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision)
	})
}

// sortKVs orders kvs as r asks. A non-key target with order NONE sorts
// ascending, as etcd does. The sort is stable so that ties keep key order.
func sortKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) {
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if order == pb.RangeRequest_NONE || (r.SortTarget == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND) {
		return
	}
	var c func(a, b *mvccpb.KeyValue) int
	switch r.SortTarget {
	case pb.RangeRequest_KEY:
		c = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
	case pb.RangeRequest_VERSION:
		c = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		c = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		c = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		c = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	}
	if order == pb.RangeRequest_DESCEND {
		asc := c
		c = func(a, b *mvccpb.KeyValue) int { return asc(b, a) }
	}
	slices.SortStableFunc(kvs, c)
}
