package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Format is the layout version this build writes. It also reads
// formatNoSub, and rewrites such a dir in Format when it opens it for
// writing (upgrade.go).
const Format = "3"

// formatNoSub is the layout before records carried their sub revision.
const formatNoSub = "2"

var (
	keyFormat     = []byte("m/format")
	keyIDs        = []byte("m/ids")
	keyShards     = []byte("m/shards")
	keyCompact    = []byte("m/compact")
	keyAlarm      = []byte("m/alarm")
	prefixRecords = []byte("r/")
)

// ErrNotMetaStore is returned for a data dir that holds something else.
var ErrNotMetaStore = errors.New("storage: not a MetaStore data dir")

// Meta is what a data dir records about its member.
type Meta struct {
	ClusterID, MemberID uint64
	Shards              int
	Rev                 int64 // newest durable revision; 1 when empty
	Compact             int64
	NoSpace             bool
}

// DB is an open data dir. Its methods may be called from any goroutine; the
// sequencer's committer is the only one that writes revisions.
type DB struct {
	db   *pebble.DB
	dir  string
	opts Options
	// writes is held (read-locked) by every write and taken by Close, so
	// that a write never meets a closed pebble (which panics) and Close
	// waits for the one in flight; closed is set under it.
	writes sync.RWMutex
	closed bool
	// failed is set by a write that failed: pebble's commit pipeline is
	// unusable after one, so every later write returns it.
	failed atomic.Pointer[error]
	// shards is a shard count to record once the dir is writable.
	shards int
	// format is the dir's layout: Format, or formatNoSub until Writable
	// upgrades it. Records below subFrom were written without their sub
	// revision (all of them in a formatNoSub dir).
	format  string
	subFrom int64
}

// Options says how a data dir is opened.
type Options struct {
	// Shards is the shard count to record; 0 keeps the recorded one, or
	// takes DefaultShards for a new dir.
	Shards, DefaultShards int
	// FS is the file system the dir lives on; nil means the operating
	// system's. Tests pass pebble's fault-injecting errorfs.
	FS vfs.FS
	// Logger receives pebble's log lines and its background errors; nil
	// means slog.Default().
	Logger *slog.Logger
	// MinFreeBytes is the free space the dir's file system must keep (see
	// LowSpace); 0 means DefaultMinFreeBytes, negative no check.
	MinFreeBytes int64
}

// DefaultMinFreeBytes is the free space kept in reserve unless configured:
// room for pebble to flush a few memtables (4 MiB each) and finish the
// compaction that follows, so that a full disk is met by refusing writes
// rather than by a failed write to the log.
const DefaultMinFreeBytes = 64 << 20

// openTimeout bounds opening a dir. pebble's open writes (a new WAL, its
// options file, the format marker), and on a disk that is full or failing
// it can retry without end; the server says why instead of hanging.
const openTimeout = 30 * time.Second

// Open opens dir, creating it if it does not exist, and returns its
// metadata.
//
// An existing dir is opened read-only: nothing in it changes until it has
// been checked, its records included (Load), and Writable is called. A dir
// this build cannot read is refused and left as it was, and so is one whose
// write-ahead log is damaged (a bad record followed by good ones is
// corruption, not the torn tail a crash leaves): starting from what
// precedes the damage would serve revisions below ones already
// acknowledged.
func Open(dir string, opts Options) (*DB, Meta, error) {
	opts = opts.withDefaults()
	fresh, err := isFresh(opts.FS, dir)
	if err != nil {
		return nil, Meta{}, err
	}
	d := &DB{dir: dir, opts: opts, format: Format}
	if fresh {
		shards := opts.Shards
		if shards == 0 {
			shards = opts.DefaultShards
		}
		if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
			return nil, Meta{}, fmt.Errorf("storage: create %s: %w", dir, explain(err))
		}
		if err := d.checkSpace(); err != nil {
			return nil, Meta{}, err
		}
		if err := d.open(false); err != nil {
			return nil, Meta{}, fmt.Errorf("storage: create %s: %w", dir, explain(err))
		}
		meta, err := d.create(shards)
		if err != nil {
			d.db.Close()
			return nil, Meta{}, fmt.Errorf("storage: create %s: %w", dir, explain(err))
		}
		return d, meta, nil
	}
	if err := d.open(true); err != nil {
		return nil, Meta{}, d.openError(err)
	}
	meta, err := d.readMeta()
	if err != nil {
		d.db.Close()
		return nil, Meta{}, fmt.Errorf("storage: %s: %w; it was left untouched", dir, err)
	}
	if opts.Shards > 0 && opts.Shards != meta.Shards {
		// Records are not stored by shard, so the count may change freely.
		d.shards, meta.Shards = opts.Shards, opts.Shards
	}
	return d, meta, nil
}

// withDefaults fills in the fields left zero that have a default.
func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	return o
}

// open opens the dir with pebble, giving up after openTimeout. The WAL is
// written in pebble's format with sync offsets (FormatWALSyncChunks): each
// chunk says how far the log had been synced, so that replay tells a
// damaged record that good ones follow from a torn tail; opening an older
// dir for writing upgrades it. Corruption is reported as an error from the
// read that meets it rather than by pebble's default, which would end the
// process before the server can say which dir is at fault.
func (d *DB) open(readOnly bool) error {
	var db *pebble.DB
	err := bounded(openTimeout, "opening it", func() (err error) {
		db, err = pebble.Open(d.dir, &pebble.Options{
			FS:                 d.opts.FS,
			ErrorIfNotExists:   readOnly,
			ReadOnly:           readOnly,
			FormatMajorVersion: pebble.FormatWALSyncChunks,
			Logger:             pebbleLogger{d.opts.Logger},
			EventListener:      d.events(),
		})
		return err
	})
	if err != nil {
		return err
	}
	d.db = db
	return nil
}

// openError explains why an existing dir could not be opened.
func (d *DB) openError(err error) error {
	if pebble.IsCorruptionError(err) {
		if dmg, ok := findWALDamage(d.opts.FS, d.dir); ok {
			return fmt.Errorf("storage: %s: %w: %s; refusing to start, since starting from what precedes the damage would lose acknowledged writes and hand out revisions clients have already seen. The dir was left untouched. To recover, restore it from a backup; or, accepting the loss of every write after the damage, keep a copy of the dir and truncate that file to %d bytes (pebble: %v)",
				d.dir, ErrCorrupt, dmg, dmg.Offset, err)
		}
		return fmt.Errorf("storage: %s: %w: %v; refusing to start. The dir was left untouched: restore it from a backup", d.dir, ErrCorrupt, err)
	}
	if reason := explain(err); reason != err {
		return fmt.Errorf("storage: %s: %w; it was left untouched", d.dir, reason)
	}
	return fmt.Errorf("storage: %s: cannot be opened (corrupt, or not a MetaStore data dir); it was left untouched: %w", d.dir, err)
}

// Writable reopens a dir that Open found existing, for writing, once it has
// been checked; it records a changed shard count. It does nothing for a new
// dir.
func (d *DB) Writable() error {
	if err := d.db.Close(); err != nil {
		return err
	}
	d.db = nil
	if err := d.checkSpace(); err != nil {
		return err
	}
	if err := d.open(false); err != nil {
		return fmt.Errorf("storage: %s: reopen for writing: %w", d.dir, explain(err))
	}
	if d.format == formatNoSub {
		if err := d.upgrade(d.subFrom); err != nil {
			return fmt.Errorf("storage: %s: upgrade to format %s: %w", d.dir, Format, explain(err))
		}
	}
	if d.shards > 0 {
		if err := d.setShards(); err != nil {
			return fmt.Errorf("storage: %s: record the shard count: %w", d.dir, explain(err))
		}
	}
	return nil
}

// setShards records the shard count given to Open.
func (d *DB) setShards() (err error) {
	if err := d.beginWrite(); err != nil {
		return err
	}
	defer d.endWrite(&err)
	return d.db.Set(keyShards, binary.AppendUvarint(nil, uint64(d.shards)), pebble.Sync)
}

// isFresh reports whether dir is absent or empty. A dir with anything else
// than a pebble database in it is refused before pebble opens it, since
// pebble leaves a lock file behind even when it fails to open.
func isFresh(fs vfs.FS, dir string) (bool, error) {
	entries, err := fs.List(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("storage: read %s: %w", dir, explain(err))
	case len(entries) == 0:
		return true, nil
	}
	for _, e := range entries {
		if strings.HasPrefix(e, "marker.format-version.") {
			return false, nil
		}
	}
	return false, fmt.Errorf("%w: %s holds files but no database; it was left untouched", ErrNotMetaStore, dir)
}

// create writes the metadata of a new dir.
func (d *DB) create(shards int) (_ Meta, err error) {
	defer recoverFatal(&err)
	if shards < 1 {
		return Meta{}, errors.New("a new data dir needs a shard count")
	}
	m := Meta{ClusterID: NewID(), MemberID: NewID(), Shards: shards, Rev: 1}
	b := d.db.NewBatch()
	ids := make([]byte, 16)
	binary.BigEndian.PutUint64(ids, m.ClusterID)
	binary.BigEndian.PutUint64(ids[8:], m.MemberID)
	_ = b.Set(keyIDs, ids, nil)
	_ = b.Set(keyShards, binary.AppendUvarint(nil, uint64(shards)), nil)
	_ = b.Set(keyCompact, be64(0), nil)
	// The format marker goes last in the same batch: a dir with it is
	// complete.
	_ = b.Set(keyFormat, []byte(Format), nil)
	return m, b.Commit(pebble.Sync)
}

// readMeta reads and checks the metadata of an existing dir.
func (d *DB) readMeta() (Meta, error) {
	format, err := d.get(keyFormat)
	if err != nil {
		return Meta{}, err
	}
	switch {
	case format == nil:
		return Meta{}, errors.New("not a MetaStore data dir: no format marker")
	case string(format) != Format && string(format) != formatNoSub:
		return Meta{}, fmt.Errorf("data dir format %q is not %q, the one this metastore reads", format, Format)
	}
	d.format = string(format)
	if d.format == Format {
		if d.subFrom, err = d.getIntOr(keySubFrom, 0); err != nil {
			return Meta{}, err
		}
	}
	var m Meta
	ids, err := d.get(keyIDs)
	if err != nil || len(ids) != 16 {
		return Meta{}, fmt.Errorf("corrupt member IDs (%v)", err)
	}
	m.ClusterID, m.MemberID = binary.BigEndian.Uint64(ids), binary.BigEndian.Uint64(ids[8:])
	sh, err := d.get(keyShards)
	n, k := binary.Uvarint(sh)
	if err != nil || k <= 0 || n < 1 {
		return Meta{}, fmt.Errorf("corrupt shard count (%v)", err)
	}
	m.Shards = int(n)
	if m.Compact, err = d.getInt(keyCompact); err != nil {
		return Meta{}, err
	}
	last, err := d.lastRev()
	if err != nil {
		return Meta{}, err
	}
	m.Rev = max(1, m.Compact, last)
	if d.format == formatNoSub {
		d.subFrom = m.Rev + 1
	}
	alarm, err := d.get(keyAlarm)
	if err != nil {
		return Meta{}, err
	}
	m.NoSpace = alarm != nil
	return m, nil
}

func (d *DB) get(key []byte) ([]byte, error) {
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// getIntOr is getInt with a default for a key that is not set.
func (d *DB) getIntOr(key []byte, def int64) (int64, error) {
	if v, err := d.get(key); err != nil || v == nil {
		return def, err
	}
	return d.getInt(key)
}

func (d *DB) getInt(key []byte) (int64, error) {
	v, err := d.get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt %s (%d bytes)", key, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// lastRev is the revision of the newest record, 0 if there is none.
func (d *DB) lastRev() (int64, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefixRecords, UpperBound: []byte("r0")})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	rev, _, err := decodeRecordKey(it.Key())
	return rev, err
}

// Record is the metadata of one stored revision of one key. Its value stays
// on disk: Value reads it.
type Record struct {
	Rev, Create, Version, Lease int64
	// Sub is the record's place among the changes of its revision, in the
	// order its request made them (etcd's sub revision): watchers get a
	// revision's events in that order.
	Sub int64
}

// Tombstone reports whether the record marks its key deleted.
func (r Record) Tombstone() bool { return r.Version == 0 }

// ErrNoRecord is returned by Value for a record that is not stored: one
// that compaction has removed, or one not yet committed.
var ErrNoRecord = errors.New("storage: no such record")

// Load calls fn once per record, in revision order. Every record is
// decoded, so that a corrupt one fails the load before the dir is written
// to. It stops at the first error fn returns.
func (d *DB) Load(fn func(key string, rec Record) error) error {
	err := d.load(fn)
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("storage: %s: %w: %v; refusing to start. The dir was left untouched: restore it from a backup", d.dir, ErrCorrupt, err)
	}
	return err
}

func (d *DB) load(fn func(key string, rec Record) error) error {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefixRecords, UpperBound: []byte("r0")})
	if err != nil {
		return err
	}
	defer it.Close()
	var rank ranker
	for it.First(); it.Valid(); it.Next() {
		rev, key, err := decodeRecordKey(it.Key())
		if err != nil {
			return fmt.Errorf("%s: %w", d.dir, err)
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		rec, _, err := d.decodeRecord(rev, val)
		if rec.Sub < 0 {
			rec.Sub = rank.next(rev)
		}
		if err != nil {
			return fmt.Errorf("storage: %s: key %q revision %d: %w", d.dir, key, rev, err)
		}
		if err := fn(key, rec); err != nil {
			return err
		}
	}
	return it.Error()
}

// Value returns the value that key was given at revision rev.
func (d *DB) Value(key string, rev int64) ([]byte, error) {
	b, closer, err := d.db.Get(recordKey(rev, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNoRecord
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	_, value, err := d.decodeRecord(rev, b)
	if err != nil {
		return nil, fmt.Errorf("storage: %s: key %q revision %d: %w", d.dir, key, rev, err)
	}
	return bytes.Clone(value), nil
}

// Mutation is one key written by a request, with the create revision and
// version it gets, so that a record on disk stands alone. A negative Create
// is a placeholder for a revision not stamped when the mutation was made:
// -1 is the first revision of its Stamp, -2 the second, and so on.
type Mutation struct {
	Key     string
	Value   []byte
	Lease   int64
	Create  int64
	Version int64
	Delete  bool
}

// Entry is a stamped write: the mutations of revision Rev. A mutation's
// negative Create stands for the revision of another write of the same
// stamp: -1 is Base, -2 is Base+1, and so on. Leases are the lease changes
// made by the same write (a revoke that deletes the lease's keys).
type Entry struct {
	Rev, Base int64
	Muts      []Mutation
	Leases    []LeaseRecord
}

// Commit writes entries (in revision order), the lease changes that take
// no revision (grants, revokes of leases without keys), the auth changes
// (in the order given: a later record of a key wins) and, if compact > 0,
// the compact revision, as one batch with one sync. A lease's grant and
// its revoke never share a commit: a revoke starts only once the grant is
// durable.
//
// A failed commit returns an error after which nothing may be written.
func (d *DB) Commit(entries []Entry, leases []LeaseRecord, auth []AuthRecord, compact int64) (err error) {
	if err := d.beginWrite(); err != nil {
		return err
	}
	defer d.endWrite(&err)
	// The batch is sized up front and each record encoded in place: with
	// large values, growing the batch by doubling and copying each record
	// into it took a quarter of a burst's CPU and twice its memory.
	size := 64
	for _, e := range entries {
		for _, m := range e.Muts {
			size += RecordBytes(m)
		}
	}
	b := d.db.NewBatchWithSize(size)
	defer b.Close()
	var head [4 * binary.MaxVarintLen64]byte
	for _, e := range entries {
		for sub, m := range e.Muts {
			create := m.Create
			if create < 0 {
				create = e.Base - create - 1
			}
			if m.Delete {
				create = 0
			}
			h := appendRecordHeader(head[:0], create, m.Version, m.Lease, int64(sub))
			op := b.SetDeferred(len(prefixRecords)+8+len(m.Key), len(h)+len(m.Value))
			n := copy(op.Key, prefixRecords)
			binary.BigEndian.PutUint64(op.Key[n:], uint64(e.Rev))
			copy(op.Key[n+8:], m.Key)
			copy(op.Value[copy(op.Value, h):], m.Value)
			_ = op.Finish()
		}
		putLeases(b, e.Leases)
	}
	putLeases(b, leases)
	putAuth(b, auth)
	if compact > 0 {
		_ = b.Set(keyCompact, be64(compact), nil)
	}
	return b.Commit(pebble.Sync)
}

// KeyRev names one record.
type KeyRev struct {
	Key string
	Rev int64
}

// Drop deletes records that compaction removed. It does not sync: if they
// come back after a crash, startup compacts them again.
func (d *DB) Drop(recs []KeyRev) (err error) {
	if err := d.beginWrite(); err != nil {
		return err
	}
	defer d.endWrite(&err)
	if len(recs) == 0 {
		return nil
	}
	b := d.db.NewBatch()
	defer b.Close()
	for _, r := range recs {
		_ = b.Delete(recordKey(r.Rev, r.Key), nil)
	}
	return b.Commit(pebble.NoSync)
}

// SetNoSpace raises or clears the NOSPACE alarm, durably.
func (d *DB) SetNoSpace(on bool) (err error) {
	if err := d.beginWrite(); err != nil {
		return err
	}
	defer d.endWrite(&err)
	if on {
		return d.db.Set(keyAlarm, []byte("nospace"), pebble.Sync)
	}
	return d.db.Delete(keyAlarm, pebble.Sync)
}

// Size is the disk space the database uses, in bytes.
func (d *DB) Size() int64 { return int64(d.db.Metrics().DiskSpaceUsage()) }

// ErrClosed is returned by a write to a closed data dir.
var ErrClosed = errors.New("storage: data dir closed")

// beginWrite admits a write: not after Close, nor after a write failed.
// endWrite, deferred, ends it and records its failure, recovering pebble's
// fatal error into it (as recoverFatal does; recover works only when
// called by the deferred function itself).
func (d *DB) beginWrite() error {
	d.writes.RLock()
	if d.closed {
		d.writes.RUnlock()
		return ErrClosed
	}
	if f := d.failed.Load(); f != nil {
		d.writes.RUnlock()
		return *f
	}
	return nil
}

func (d *DB) endWrite(err *error) {
	defer d.writes.RUnlock()
	if r := recover(); r != nil {
		*err = fatalError(r)
	}
	if *err != nil {
		d.failed.CompareAndSwap(nil, err)
	}
}

// closeWait bounds Close: pebble waits for its flushes and compactions, and
// on a disk that is full or failing it retries them without end.
const closeWait = 5 * time.Second

// Close closes the database, giving up after closeWait: every
// acknowledged write is synced already, so a process that ends without
// closing loses nothing.
func (d *DB) Close() error {
	if d.db == nil { // Writable failed to reopen it
		return nil
	}
	err := bounded(closeWait, "closing it", func() error {
		d.writes.Lock()
		defer d.writes.Unlock()
		d.closed = true
		return d.db.Close()
	})
	if err != nil {
		return fmt.Errorf("storage: %s: %w", d.dir, err)
	}
	return nil
}

// recordKey names the record of key at revision rev. Revisions are not
// negative, so big-endian bytes sort as the numbers do.
func recordKey(rev int64, key string) []byte {
	out := make([]byte, 0, len(prefixRecords)+8+len(key))
	out = append(out, prefixRecords...)
	out = binary.BigEndian.AppendUint64(out, uint64(rev))
	return append(out, key...)
}

func decodeRecordKey(k []byte) (int64, string, error) {
	rest := k[len(prefixRecords):]
	if len(rest) <= 8 {
		return 0, "", fmt.Errorf("storage: corrupt record key %q", k)
	}
	rev := int64(binary.BigEndian.Uint64(rest))
	if rev < 1 {
		return 0, "", fmt.Errorf("storage: corrupt record key %q", k)
	}
	return rev, string(rest[8:]), nil
}

// RecordBytes is at most what m's record takes in a commit's pebble batch:
// its key and value, the record key's prefix and revision, the varints
// before the value, and the batch's kind and two lengths.
func RecordBytes(m Mutation) int {
	return len(prefixRecords) + 8 + len(m.Key) + 4*binary.MaxVarintLen64 + len(m.Value) + 1 + 2*binary.MaxVarintLen32
}

// appendRecordHeader appends what precedes the value in a record: create,
// version, lease and sub revision as varints.
func appendRecordHeader(out []byte, create, version, lease, sub int64) []byte {
	out = binary.AppendUvarint(out, uint64(create))
	out = binary.AppendUvarint(out, uint64(version))
	out = binary.AppendVarint(out, lease)
	return binary.AppendUvarint(out, uint64(sub))
}

// decodeRecord decodes a stored record; value aliases b. A record written
// before subFrom has no sub revision: Sub is -1.
func (d *DB) decodeRecord(rev int64, b []byte) (r Record, value []byte, err error) {
	r = Record{Rev: rev, Sub: -1}
	fields := []*int64{&r.Create, &r.Version, &r.Lease, &r.Sub}
	if rev < d.subFrom || d.format == formatNoSub {
		fields = fields[:3]
	}
	for i, f := range fields {
		var n int
		if i == 2 {
			*f, n = binary.Varint(b)
		} else {
			var u uint64
			u, n = binary.Uvarint(b)
			*f = int64(u)
		}
		if n <= 0 {
			return Record{}, nil, errors.New("corrupt record")
		}
		b = b[n:]
	}
	return r, b, nil
}

// ranker numbers records written without their sub revision within their
// revision, read in key order: the order they were made in is lost, and
// key order is what a range delete makes.
type ranker struct {
	rev, n int64
}

func (r *ranker) next(rev int64) int64 {
	if rev != r.rev {
		r.rev, r.n = rev, 0
	}
	r.n++
	return r.n - 1
}

func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// NewID returns a random non-zero member or cluster ID.
func NewID() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return binary.BigEndian.Uint64(b[:]) | 1
}
