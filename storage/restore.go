package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// restoreBatchBytes is how many bytes of records a Restorer gathers before
// it writes them: a bound on its memory, whatever the size of what it
// restores.
const restoreBatchBytes = 4 << 20

// ErrNotEmpty is returned by Restore for a dir that has anything in it.
var ErrNotEmpty = errors.New("storage: restore into a dir that is not empty")

// Restorer writes a new data dir from the records, leases, auth state and
// compact revision of another store (an etcd snapshot, or a MetaStore
// one), keeping each record exactly as given, its sub revision included:
// after a compaction the sub revisions of a revision need not run 0, 1, 2.
//
// Records go in with Record, in etcd's order (by revision, then sub
// revision), leases with Lease, auth records with Auth, and Finish makes
// the dir: until it has returned, the dir has no format marker, and Open
// refuses it as not a MetaStore data dir (so a restore that stops half way
// cannot be started from). Abort, or a failed Finish, removes what was
// written. A Restorer is used from one goroutine.
type Restorer struct {
	d     *DB
	batch *pebble.Batch
	// last is the revision and sub revision of the newest record so far.
	last, lastSub int64
	shards        int
	// created is set if Restore made the dir: Abort removes it.
	created, done bool
}

// Restore starts restoring into dir, which must be absent or empty: a dir
// with anything in it is refused, so that nothing is overwritten. opts.Shards
// (or else opts.DefaultShards) is the shard count the dir records.
func Restore(dir string, opts Options) (*Restorer, error) {
	opts = opts.withDefaults()
	shards := opts.Shards
	if shards == 0 {
		shards = opts.DefaultShards
	}
	if shards < 1 {
		return nil, fmt.Errorf("storage: restore into %s: a new data dir needs a shard count", dir)
	}
	entries, err := opts.FS.List(dir)
	created := errors.Is(err, os.ErrNotExist)
	switch {
	case created:
	case err != nil:
		return nil, fmt.Errorf("storage: read %s: %w", dir, explain(err))
	case len(entries) > 0:
		return nil, fmt.Errorf("%w: %s; restoring needs a new or empty dir, so that nothing is overwritten", ErrNotEmpty, dir)
	}
	d := &DB{dir: dir, opts: opts, format: Format}
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", dir, explain(err))
	}
	if err := d.checkSpace(); err != nil {
		removeIf(created, opts.FS, dir)
		return nil, err
	}
	if err := d.open(false); err != nil {
		removeIf(created, opts.FS, dir)
		return nil, fmt.Errorf("storage: create %s: %w", dir, explain(err))
	}
	return &Restorer{d: d, batch: d.db.NewBatch(), shards: shards, created: created}, nil
}

// Record adds one record and its value. Records must come in etcd's order,
// each after the one before (by revision, then sub revision); a tombstone
// has Version 0, a put a Version of at least 1 and a Create revision
// between 1 and its own.
func (r *Restorer) Record(key string, rec Record, value []byte) error {
	switch {
	case key == "":
		return fmt.Errorf("storage: restore: a record at revision %d has no key", rec.Rev)
	case rec.Rev < 1 || rec.Sub < 0:
		return fmt.Errorf("storage: restore: key %q: bad revision %d, sub revision %d", key, rec.Rev, rec.Sub)
	case rec.Rev < r.last || (rec.Rev == r.last && rec.Sub <= r.lastSub):
		return fmt.Errorf("storage: restore: key %q: revision %d.%d comes after %d.%d: records must come in revision order", key, rec.Rev, rec.Sub, r.last, r.lastSub)
	case !rec.Tombstone() && (rec.Version < 1 || rec.Create < 1 || rec.Create > rec.Rev):
		return fmt.Errorf("storage: restore: key %q revision %d: bad create revision %d or version %d", key, rec.Rev, rec.Create, rec.Version)
	}
	r.last, r.lastSub = rec.Rev, rec.Sub
	create := rec.Create
	if rec.Tombstone() {
		create = 0
	}
	var head [4 * binary.MaxVarintLen64]byte
	h := appendRecordHeader(head[:0], create, rec.Version, rec.Lease, rec.Sub)
	val := make([]byte, 0, len(h)+len(value))
	_ = r.batch.Set(recordKey(rec.Rev, key), append(append(val, h...), value...), nil)
	return r.flushIfFull()
}

// Lease adds a lease of ttl seconds.
func (r *Restorer) Lease(id, ttl int64) error {
	if ttl < 0 {
		return fmt.Errorf("storage: restore: lease %d: bad TTL %d", id, ttl)
	}
	putLeases(r.batch, []LeaseRecord{{ID: id, TTL: ttl}})
	return r.flushIfFull()
}

// flushIfFull writes the batch once it holds restoreBatchBytes. Unsynced:
// Finish syncs everything before it writes the format marker.
func (r *Restorer) flushIfFull() error {
	if r.batch.Len() < restoreBatchBytes {
		return nil
	}
	if err := r.batch.Commit(pebble.NoSync); err != nil {
		return r.fail(err)
	}
	r.batch.Reset()
	return nil
}

// Finish writes the dir's metadata: fresh cluster and member IDs, the shard
// count, compact as the compact revision, and last the format marker,
// after everything else is on disk. It closes the dir and returns its
// metadata, as Open will read it: Rev is the newest record's revision, or
// compact if that is newer.
func (r *Restorer) Finish(compact int64) (Meta, error) {
	if compact < 0 {
		return Meta{}, r.fail(fmt.Errorf("bad compact revision %d", compact))
	}
	m := Meta{ClusterID: NewID(), MemberID: NewID(), Shards: r.shards, Rev: max(1, compact, r.last), Compact: compact}
	ids := make([]byte, 16)
	binary.BigEndian.PutUint64(ids, m.ClusterID)
	binary.BigEndian.PutUint64(ids[8:], m.MemberID)
	_ = r.batch.Set(keyIDs, ids, nil)
	_ = r.batch.Set(keyShards, binary.AppendUvarint(nil, uint64(r.shards)), nil)
	_ = r.batch.Set(keyCompact, be64(compact), nil)
	if err := r.batch.Commit(pebble.NoSync); err != nil {
		return Meta{}, r.fail(err)
	}
	// The records are flushed to tables (synced) before the marker is
	// written, so the marker's sync never vouches for records still only
	// in an older write-ahead log.
	if err := r.d.db.Flush(); err != nil {
		return Meta{}, r.fail(err)
	}
	if err := r.d.db.Set(keyFormat, []byte(Format), pebble.Sync); err != nil {
		return Meta{}, r.fail(err)
	}
	r.done = true
	_ = r.batch.Close()
	if err := r.d.Close(); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// fail aborts the restore and returns err, explained.
func (r *Restorer) fail(err error) error {
	r.Abort()
	return fmt.Errorf("storage: restore into %s: %w", r.d.dir, explain(err))
}

// Abort stops a restore that has not finished and removes what it wrote,
// leaving the dir as it was: absent, or empty. It does nothing after
// Finish.
func (r *Restorer) Abort() {
	if r.done {
		return
	}
	r.done = true
	_ = r.batch.Close()
	_ = r.d.Close()
	if r.created {
		removeIf(true, r.d.opts.FS, r.d.dir)
		return
	}
	entries, _ := r.d.opts.FS.List(r.d.dir)
	for _, e := range entries {
		_ = r.d.opts.FS.RemoveAll(r.d.opts.FS.PathJoin(r.d.dir, e))
	}
}

// removeIf removes dir if created: a restore that fails leaves no dir it
// made behind.
func removeIf(created bool, fs vfs.FS, dir string) {
	if created {
		_ = fs.RemoveAll(dir)
	}
}
