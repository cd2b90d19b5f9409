package shards

import (
	"slices"

	"github.com/metastore/metastore/storage"
)

// placeholder is the revision a dry run stamps on the writes of the n-th
// (0-based) changing request of its batch: negative, so that it can never be
// taken for a real revision, and resolvable once the sequencer assigns the
// batch's first revision (see storage.Mutation).
func placeholder(n int) int64 { return -int64(n) - 1 }

// overlay layers writes over a reader. Requests are evaluated against an
// overlay so that their writes are seen by their own later operations (and,
// in a dry run, by later requests of the same batch) without touching the
// state underneath, which may be a published view or a frozen shard.
type overlay struct {
	base   reader
	rev    int64 // stamped on writes; a placeholder in a dry run
	writes map[string]*record
	muts   []storage.Mutation
}

func newOverlay(base reader, rev int64) *overlay {
	return &overlay{base: base, rev: rev}
}

// reset forgets the writes and moves to revision rev.
func (o *overlay) reset(rev int64) {
	clear(o.writes)
	o.muts = o.muts[:0]
	o.rev = rev
}

func (o *overlay) get(key string, rev int64) (entry, bool) {
	if rev == latest {
		if r, ok := o.writes[key]; ok {
			return entry{key: key, rec: r}, !r.tombstone()
		}
	}
	return o.base.get(key, rev)
}

func (o *overlay) collect(start, end string, rev int64, max int) ([]entry, int) {
	if rev != latest || len(o.writes) == 0 {
		return o.base.collect(start, end, rev, max)
	}
	base, _ := o.base.collect(start, end, rev, -1)
	var mine []entry
	for k, r := range o.writes {
		if k >= start && (end == "" || k < end) {
			mine = append(mine, entry{key: k, rec: r})
		}
	}
	slices.SortFunc(mine, func(a, b entry) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	out := make([]entry, 0, len(base)+len(mine))
	i, j := 0, 0
	for i < len(base) || j < len(mine) {
		var e entry
		switch {
		case j == len(mine) || (i < len(base) && base[i].key < mine[j].key):
			e, i = base[i], i+1
		case i == len(base) || mine[j].key < base[i].key:
			e, j = mine[j], j+1
		default: // the same key: the overlay's write wins
			e, i, j = mine[j], i+1, j+1
		}
		if !e.rec.tombstone() {
			out = append(out, e)
		}
	}
	total := len(out)
	if max >= 0 && len(out) > max {
		out = out[:max]
	}
	return out, total
}

func (o *overlay) put(key string, value []byte, lease int64) {
	rec := &record{rev: o.rev, create: o.rev, version: 1, lease: lease, value: value}
	if prev, ok := o.get(key, latest); ok {
		rec.create = prev.rec.create
		rec.version = prev.rec.version + 1
	}
	o.set(key, rec)
	o.muts = append(o.muts, storage.Mutation{Key: key, Value: value, Lease: lease, Create: rec.create, Version: rec.version})
}

// del deletes key and reports whether it existed.
func (o *overlay) del(key string) bool {
	if _, ok := o.get(key, latest); !ok {
		return false
	}
	o.set(key, &record{rev: o.rev})
	o.muts = append(o.muts, storage.Mutation{Key: key, Delete: true})
	return true
}

func (o *overlay) set(key string, r *record) {
	if o.writes == nil {
		o.writes = make(map[string]*record)
	}
	o.writes[key] = r
}

// changed reports whether anything was written since the last reset.
func (o *overlay) changed() bool { return len(o.muts) > 0 }
