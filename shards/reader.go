package shards

import (
	"container/heap"
	"math"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage"
)

// latest is the revision argument that means "the newest state".
const latest = math.MaxInt64

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
	v.ascend(start, end, rev, func(h *history, r *record) bool {
		total++
		if max < 0 || len(out) < max {
			out = append(out, entry{key: h.key, rec: r, vals: v.vals})
		}
		return true
	})
	return out, total
}

// viewSet is a consistent set of shard views, indexed by shard: together they
// hold every key. Reads route single keys by hash and merge ranges.
type viewSet struct {
	router Router
	views  []*View
}

func (vs *viewSet) get(key string, rev int64) (entry, bool) {
	return vs.views[vs.router.Shard(key)].get(key, rev)
}

func (vs *viewSet) collect(start, end string, rev int64, max int) ([]entry, int) {
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
