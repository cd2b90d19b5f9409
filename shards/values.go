package shards

import (
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
// when the revision becomes visible); any goroutine may read it.
type Values struct {
	db     *storage.DB
	recent *xsync.MapOf[storage.KeyRev, []byte]
}

// NewValues keeps values in db.
func NewValues(db *storage.DB) *Values {
	return &Values{db: db, recent: xsync.NewMapOf[storage.KeyRev, []byte]()}
}

// get returns the value key was given at revision rev. It fails with
// storage.ErrNoRecord for a record that compaction has removed since the
// caller found it.
func (v *Values) get(key string, rev int64) ([]byte, error) {
	if b, ok := v.recent.Load(storage.KeyRev{Key: key, Rev: rev}); ok {
		return b, nil
	}
	return v.db.Value(key, rev)
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
