package shards

import (
	"bytes"

	"github.com/maypok86/otter/v2"
	"github.com/puzpuzpuz/xsync/v3"

	"github.com/metastore/metastore/storage"
)

// Values is where a durable node keeps its values: out of the MVCC store,
// which holds only each record's metadata, as etcd keeps values in bbolt and
// only keys and revisions in its in-memory index. A value lives in recent
// from the moment its shard installs it until its revision is visible, and
// in the data dir from the moment its revision is durable; the overlap
// means a reader always finds it in one or the other.
//
// Without it (in memory) records carry their values.
//
// recent is written only by the shard that owns the key (at install, and
// when the revision becomes visible); any goroutine may read it. Values
// read from the data dir go through a bounded cache: a pebble Get costs
// microseconds, a cache hit tens of nanoseconds, and a (key, revision)
// names one value forever, so the cache never needs invalidating. A value
// cached for a record that compaction has since removed is still the right
// answer for a reader whose view holds that record. A range reads the
// values it returns together (getMany), and leaves the cache alone when it
// is a scan (scanShare).
type Values struct {
	db     *storage.DB
	recent *xsync.MapOf[storage.KeyRev, []byte]
	cache  *otter.Cache[storage.KeyRev, []byte] // nil: no cache
}

// NewValues keeps values in db, caching up to cacheBytes of them (0: no
// cache).
func NewValues(db *storage.DB, cacheBytes int64) *Values {
	v := &Values{db: db, recent: xsync.NewMapOf[storage.KeyRev, []byte]()}
	if cacheBytes > 0 {
		v.cache = otter.Must(&otter.Options[storage.KeyRev, []byte]{
			MaximumWeight: uint64(cacheBytes),
			Weigher:       cachedWeight,
		})
	}
	return v
}

// cachedWeight is about what a cached value costs in memory: its bytes,
// its key's, and the cache's entry around them.
func cachedWeight(k storage.KeyRev, v []byte) uint32 {
	return uint32(len(k.Key) + len(v) + 96)
}

// get returns the value key was given at revision rev. It fails with
// storage.ErrNoRecord for a record that compaction has removed since the
// caller found it.
func (v *Values) get(key string, rev int64) ([]byte, error) {
	kr := storage.KeyRev{Key: key, Rev: rev}
	if b, ok := v.recent.Load(kr); ok {
		return b, nil
	}
	if v.cache != nil {
		if b, ok := v.cache.GetIfPresent(kr); ok {
			return b, nil
		}
	}
	b, err := v.db.Value(key, rev)
	if err == nil && v.cache != nil {
		v.cache.Set(kr, b)
	}
	return b, err
}

// scanShare is the share of the cache above which values read from the
// data dir by one range are not cached. Such a range is a scan: its values
// would evict the working set that the cache is there for, and the next
// scan, which reads them again in the same order, would find them evicted
// by its own first part (a 64 MiB cache holds about a fifth of 1,000,000
// values of 256 bytes).
const scanShare = 8

// slabBytes is the size of the blocks a range's values are copied into
// from the data dir: one allocation per block instead of one per value.
const slabBytes = 1 << 20

// getMany calls set(i, value) with the value of each krs[i]. What neither
// recent nor the cache holds it reads from the data dir in one pass
// (storage.DB.Values) rather than one Get each. It fails with
// storage.ErrNoRecord, as get does, for a record that compaction has
// removed since the caller found it. The values are shared: callers must
// not change them.
func (v *Values) getMany(krs []storage.KeyRev, set func(i int, value []byte)) error {
	var missing []storage.KeyRev
	var at []int // at[j] is the index in krs of missing[j]
	for i, kr := range krs {
		if b, ok := v.recent.Load(kr); ok {
			set(i, b)
			continue
		}
		if v.cache != nil {
			if b, ok := v.cache.GetIfPresent(kr); ok {
				set(i, b)
				continue
			}
		}
		missing, at = append(missing, kr), append(at, i)
	}
	var slab []byte
	var weight uint64
	read := make([][]byte, len(missing))
	err := v.db.Values(missing, func(j int, value []byte) {
		if len(slab)+len(value) > cap(slab) {
			// Room for the values still to come if they are the size of
			// this one, up to a slab: a point read must not pay for a
			// range's block (a 1 MiB slab per Get was a third of an STM
			// workload's CPU).
			slab = make([]byte, 0, max(len(value), min(slabBytes, len(value)*(len(missing)-j))))
		}
		n := len(slab)
		slab = append(slab, value...)
		read[j] = slab[n:len(slab):len(slab)]
		set(at[j], read[j])
		weight += uint64(cachedWeight(missing[j], value))
	})
	if err != nil {
		return err
	}
	if v.cache != nil && weight <= v.cache.GetMaximum()/scanShare {
		// Copied out of the slab, so that a cached value does not keep a
		// whole block alive.
		for j, kr := range missing {
			v.cache.Set(kr, bytes.Clone(read[j]))
		}
	}
	return nil
}

// installed holds a value its shard has just installed, until its
// revision is visible (see Store.settle).
func (v *Values) installed(key string, rev int64, value []byte) {
	v.recent.Store(storage.KeyRev{Key: key, Rev: rev}, value)
}

// settled forgets a value whose revision is visible, hence durable.
func (v *Values) settled(kr storage.KeyRev) {
	v.recent.Delete(kr)
}
