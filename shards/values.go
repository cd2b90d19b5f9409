package shards

import (
	"github.com/maypok86/otter/v2"
	"github.com/puzpuzpuz/xsync/v3"

	"github.com/metastore/metastore/actors/storage"
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
// answer for a reader whose view holds that record.
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

// installed holds a value its shard has just installed, until its
// revision is visible (see Store.Settle).
func (v *Values) installed(key string, rev int64, value []byte) {
	v.recent.Store(storage.KeyRev{Key: key, Rev: rev}, value)
}

// settled forgets a value whose revision is visible, hence durable.
func (v *Values) settled(kr storage.KeyRev) {
	v.recent.Delete(kr)
}
