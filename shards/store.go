package shards

import (
	"slices"
	"sort"

	"github.com/tidwall/btree"

	"github.com/metastore/metastore/storage"
)

// record is one revision of one key: a put, or a tombstone that ends a
// generation.
type record struct {
	rev     int64 // the revision that wrote it (mod_revision)
	create  int64 // create_revision of its generation; 0 for a tombstone
	version int64 // version within the generation; 0 for a tombstone
	lease   int64
	// value is the put's value when the store keeps values itself (in
	// memory, and in a request's overlay); with Values it is nil.
	value []byte
}

func (r *record) tombstone() bool { return r.version == 0 }

// history is every revision of one key that compaction has kept, oldest
// first. A history is immutable once it is in a published tree: a write
// makes a new history whose recs may share the old backing array, appending
// past the old length, which no reader of the old history ever looks at.
//
// Generations follow etcd's key index. For put@2, put@4, delete@6, put@8,
// compact@5:
//
//	before: {2 c2 v1} {4 c2 v2} {6 tomb} {8 c8 v1}
//	after:  {4 c2 v2} {6 tomb} {8 c8 v1}
//
// a read at 5 still sees the value of revision 4; compact@7 then drops the
// first generation entirely, since its last record is a tombstone.
type history struct {
	key  string
	recs []record
}

func historyLess(a, b *history) bool { return a.key < b.key }

// at returns the record visible at revision rev, if the key exists there.
func (h *history) at(rev int64) (*record, bool) {
	i := sort.Search(len(h.recs), func(i int) bool { return h.recs[i].rev > rev })
	if i == 0 {
		return nil, false
	}
	r := &h.recs[i-1]
	if r.tombstone() {
		return nil, false
	}
	return r, true
}

// latest returns the newest record if the key exists now.
func (h *history) latest() (*record, bool) {
	r := &h.recs[len(h.recs)-1]
	if r.tombstone() {
		return nil, false
	}
	return r, true
}

// compacted returns what is left of h after compaction at rev: every record
// newer than rev, plus the one visible at rev unless it is a tombstone made
// before rev. It returns nil when nothing is left. A tombstone made at rev
// itself stays until the next compaction, as etcd keeps it: a watcher that
// starts at the compact revision is sent that delete.
func (h *history) compacted(rev int64) *history {
	i := sort.Search(len(h.recs), func(i int) bool { return h.recs[i].rev > rev })
	keep := i
	if i > 0 && (!h.recs[i-1].tombstone() || h.recs[i-1].rev == rev) {
		keep = i - 1
	}
	if keep == 0 {
		return h
	}
	if keep == len(h.recs) {
		return nil
	}
	recs := make([]record, len(h.recs)-keep)
	copy(recs, h.recs[keep:])
	return &history{key: h.key, recs: recs}
}

// View is an immutable snapshot of one shard's keys and their histories. Any
// number of goroutines may read one View at once; it never changes.
type View struct {
	tree *btree.BTreeG[*history]
	vals *Values // nil: records carry their values
	keys int     // the keys that exist in it (Store.keys when it was taken)
}

// Keys returns how many keys exist in the view's newest state (etcd's
// etcd_debugging_mvcc_keys_total).
func (v *View) Keys() int { return v.keys }

// ascend calls fn, in key order, for each key in [start, end) that exists at
// revision rev; an empty end means no upper bound. It stops when fn returns
// false.
func (v *View) ascend(start, end string, rev int64, fn func(h *history, r *record) bool) {
	v.tree.Ascend(&history{key: start}, func(h *history) bool {
		if end != "" && h.key >= end {
			return false
		}
		r, ok := h.at(rev)
		if !ok {
			return true
		}
		return fn(h, r)
	})
}

// Store is the MVCC state of one shard. It is owned by exactly one goroutine
// (the shard actor); readers on other goroutines use the Views it publishes.
type Store struct {
	tree *btree.BTreeG[*history]
	// live reads the tree in place, for the owner only: unlike a snapshot
	// it sees every later write.
	live *View
	vals *Values
	// unsettled names, oldest first, the values this store put in
	// vals.recent whose revisions were not yet visible when last checked.
	unsettled []storage.KeyRev
	// leases indexes the keys whose newest record names a lease, by lease:
	// what a revoke deletes. It follows the newest state only, and no
	// reader but the owner sees it.
	leases map[int64]map[string]struct{}
	// keys counts the keys whose newest record is not a tombstone.
	keys int
}

// NewStore returns an empty store. With vals, the store keeps only its
// records' metadata and puts values there; with nil, records carry them.
func NewStore(vals *Values) *Store {
	tree := btree.NewBTreeGOptions(historyLess, btree.Options{NoLocks: true})
	return &Store{tree: tree, live: &View{tree: tree, vals: vals}, vals: vals, leases: make(map[int64]map[string]struct{})}
}

// LeaseKeys returns the keys attached to lease id, in key order.
func (s *Store) LeaseKeys(id int64) []string {
	keys := make([]string, 0, len(s.leases[id]))
	for k := range s.leases[id] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// attach moves key from lease from to lease to (0: none).
func (s *Store) attach(key string, from, to int64) {
	if from == to {
		return
	}
	if from != 0 {
		delete(s.leases[from], key)
		if len(s.leases[from]) == 0 {
			delete(s.leases, from)
		}
	}
	if to != 0 {
		set := s.leases[to]
		if set == nil {
			set = make(map[string]struct{})
			s.leases[to] = set
		}
		set[key] = struct{}{}
	}
}

// Snapshot returns an immutable view of the store as it is now. It is O(1):
// the tree is copied on write from here on.
func (s *Store) Snapshot() *View {
	return &View{tree: s.tree.Copy(), vals: s.vals, keys: s.keys}
}

// settle forgets the values held for revisions up to visible: they are
// durable, so readers find them in the data dir.
func (s *Store) settle(visible int64) {
	n := 0
	for n < len(s.unsettled) && s.unsettled[n].Rev <= visible {
		s.vals.settled(s.unsettled[n])
		n++
	}
	if n > 0 {
		clear(s.unsettled[:n])
		s.unsettled = s.unsettled[n:]
	}
}

// put writes key at revision rev and returns the record it wrote.
// NB: rev must be greater than every revision already in the store.
func (s *Store) put(key string, value []byte, lease, rev int64) record {
	if s.vals != nil {
		s.vals.installed(key, rev, value)
		s.unsettled = append(s.unsettled, storage.KeyRev{Key: key, Rev: rev})
		value = nil
	}
	rec := record{rev: rev, create: rev, version: 1, lease: lease, value: value}
	h, ok := s.tree.Get(&history{key: key})
	if ok {
		var was int64
		if prev, live := h.latest(); live {
			rec.create = prev.create
			rec.version = prev.version + 1
			was = prev.lease
		} else {
			s.keys++
		}
		s.attach(key, was, lease)
		s.tree.Set(&history{key: key, recs: append(h.recs, rec)})
		return rec
	}
	s.attach(key, 0, lease)
	s.tree.Set(&history{key: key, recs: []record{rec}})
	s.keys++
	return rec
}

// del writes a tombstone for key at revision rev and reports whether the
// key existed.
func (s *Store) del(key string, rev int64) bool {
	h, ok := s.tree.Get(&history{key: key})
	if !ok {
		return false
	}
	prev, live := h.latest()
	if !live {
		return false
	}
	s.attach(key, prev.lease, 0)
	s.tree.Set(&history{key: key, recs: append(h.recs, record{rev: rev})})
	s.keys--
	return true
}

// Compact drops history at or below rev, keeping for each key the record
// visible at rev unless it is a tombstone made before rev (see compacted).
// It returns the records dropped.
func (s *Store) Compact(rev int64) []storage.KeyRev {
	var changed []*history
	var removed []string
	var dropped []storage.KeyRev
	s.tree.Scan(func(h *history) bool {
		n := h.compacted(rev)
		if n == h {
			return true
		}
		kept := 0
		if n == nil {
			removed = append(removed, h.key)
		} else {
			changed = append(changed, n)
			kept = len(n.recs)
		}
		for _, r := range h.recs[:len(h.recs)-kept] {
			dropped = append(dropped, storage.KeyRev{Key: h.key, Rev: r.rev})
		}
		return true
	})
	for _, h := range changed {
		s.tree.Set(h)
	}
	for _, k := range removed {
		s.tree.Delete(&history{key: k})
	}
	return dropped
}

// Restore appends a record loaded from disk to key's history; records
// come in revision order and their values stay on disk. It is for building
// a store with Values at startup: before the store is published, a history
// may change in place.
func (s *Store) Restore(key string, r storage.Record) {
	rec := record{rev: r.Rev, create: r.Create, version: r.Version, lease: r.Lease}
	var was int64
	existed := false
	if h, ok := s.tree.Get(&history{key: key}); ok {
		if prev, live := h.latest(); live {
			was, existed = prev.lease, true
		}
		h.recs = append(h.recs, rec)
	} else {
		s.tree.Set(&history{key: key, recs: []record{rec}})
	}
	switch {
	case !existed && !rec.tombstone():
		s.keys++
	case existed && rec.tombstone():
		s.keys--
	}
	s.attach(key, was, rec.lease)
}
