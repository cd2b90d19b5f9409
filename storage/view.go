package storage

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// View is a consistent read-only picture of a data dir: its records,
// leases, auth state and compact revision as of one instant, on a pebble
// snapshot.
// Writers go on while it is open (a snapshot blocks nobody; it only keeps
// the versions it sees from being compacted away). It is what HashKV and
// snapshot images read.
//
// A view holds the dir open: Close waits for it (see DB.Close), so views
// must be short-lived and closed. While one is open, its holder must not
// call the DB's own methods: if Close is waiting, they would wait behind it.
type View struct {
	d    *DB
	snap *pebble.Snapshot
	// compact and rev are the dir's compact revision and newest revision
	// as of the view, as readMeta defines them.
	compact, rev int64
	closed       bool
}

// View opens a view of the dir as it is now. It fails with ErrClosed once
// the dir is closing.
func (d *DB) View() (*View, error) {
	// The read lock is held until the view is closed, as History holds it
	// for its scan: pebble refuses to close with a snapshot open.
	d.writes.RLock()
	if d.closed {
		d.writes.RUnlock()
		return nil, ErrClosed
	}
	v := &View{d: d, snap: d.db.NewSnapshot()}
	if err := v.readRevs(); err != nil {
		v.Close()
		return nil, fmt.Errorf("storage: %s: %w", d.dir, err)
	}
	return v, nil
}

// readRevs reads the compact and newest revisions from the snapshot.
func (v *View) readRevs() error {
	c, closer, err := v.snap.Get(keyCompact)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return err
	default:
		defer closer.Close()
		if len(c) != 8 {
			return fmt.Errorf("corrupt %s (%d bytes)", keyCompact, len(c))
		}
		v.compact = int64(binary.BigEndian.Uint64(c))
	}
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: prefixRecords, UpperBound: []byte("r0")})
	if err != nil {
		return err
	}
	defer it.Close()
	var last int64
	if it.Last() {
		if last, _, err = decodeRecordKey(it.Key()); err != nil {
			return err
		}
	} else if err := it.Error(); err != nil {
		return err
	}
	v.rev = max(1, v.compact, last)
	return nil
}

// Compact returns the compact revision as of the view (0: never compacted).
func (v *View) Compact() int64 { return v.compact }

// Rev returns the newest revision as of the view: the newest record's, or
// the compact revision if that is newer (as Meta.Rev). Records are
// durable before they are visible, so it may be ahead of the visible
// revision, never behind it.
func (v *View) Rev() int64 { return v.rev }

// Records calls fn with every record the view holds and its value, in
// etcd's order: by revision, and within a revision by sub revision (the
// order its request made the changes). Records written without a sub
// revision (before a format "2" dir was upgraded) are numbered in key
// order, as Load numbers them. value is valid only during the call. It
// stops at the first error fn returns and returns it.
//
// NB: it returns what is stored, which is not quite what is logically
// there: records that a compaction removed may still be stored, since
// shards delete them after the compaction is recorded, without a sync
// (Drop), and a restart deletes them again. Consumers apply the compaction
// rule themselves (the compact revision is Compact).
func (v *View) Records(fn func(key string, rec Record, value []byte) error) error {
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: prefixRecords, UpperBound: []byte("r0")})
	if err != nil {
		return err
	}
	defer it.Close()
	var (
		rank ranker
		revs revBuffer
	)
	for it.First(); it.Valid(); it.Next() {
		rev, key, err := decodeRecordKey(it.Key())
		if err != nil {
			return fmt.Errorf("%s: %w", v.d.dir, err)
		}
		if rev != revs.rev {
			if err := revs.flush(fn); err != nil {
				return err
			}
			revs.rev = rev
		}
		b, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		rec, value, err := v.d.decodeRecord(rev, b)
		if err != nil {
			return fmt.Errorf("storage: %s: key %q revision %d: %w", v.d.dir, key, rev, err)
		}
		if rec.Sub < 0 {
			rec.Sub = rank.next(rev)
		}
		revs.add(key, rec, value)
	}
	if err := it.Error(); err != nil {
		return err
	}
	return revs.flush(fn)
}

// revBuffer gathers the records of one revision, which are stored in key
// order, to hand them on in sub revision order.
type revBuffer struct {
	rev   int64
	recs  []bufferedRecord
	arena []byte // the values, copied: the iterator's memory moves on
}

type bufferedRecord struct {
	key        string
	rec        Record
	start, end int
}

func (b *revBuffer) add(key string, rec Record, value []byte) {
	start := len(b.arena)
	b.arena = append(b.arena, value...)
	b.recs = append(b.recs, bufferedRecord{key: key, rec: rec, start: start, end: len(b.arena)})
}

// flush hands the buffered records to fn in sub revision order and empties
// the buffer, keeping its memory for the next revision.
func (b *revBuffer) flush(fn func(key string, rec Record, value []byte) error) error {
	slices.SortFunc(b.recs, func(x, y bufferedRecord) int { return cmp.Compare(x.rec.Sub, y.rec.Sub) })
	for _, r := range b.recs {
		if err := fn(r.key, r.rec, b.arena[r.start:r.end]); err != nil {
			return err
		}
	}
	b.recs, b.arena = b.recs[:0], b.arena[:0]
	return nil
}

// Leases returns every lease as of the view, ID → TTL in seconds.
func (v *View) Leases() (map[int64]int64, error) {
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: prefixLeases, UpperBound: []byte("l0")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	return readLeases(v.d.dir, it)
}

// Close releases the view. It may be called more than once.
func (v *View) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	err := v.snap.Close()
	v.d.writes.RUnlock()
	return err
}
