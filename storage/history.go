package storage

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Change is one record read back from the history: the key, its record and
// its value.
type Change struct {
	Key   string
	Rec   Record
	Value []byte
}

// History calls fn with the changes of each revision from from to to
// (inclusive) that still has records, in revision order, each revision's
// changes in the order its request made them (their sub revisions) and
// only those whose key keep accepts (possibly none). It stops early,
// without an error, when fn returns false. The changes handed to fn are
// its own to keep. It fails with ErrClosed once the dir is closing.
//
// Records are keyed by revision, so this is one forward scan: the read a
// watcher that starts in the past needs. Compaction removes records at or
// below the compact revision, so a caller reading below it must expect
// gaps.
func (d *DB) History(from, to int64, keep func(key string) bool, fn func(rev int64, changes []Change) bool) error {
	if from > to {
		return nil
	}
	// Close waits for a read under way: pebble refuses to close with an
	// iterator open.
	d.writes.RLock()
	defer d.writes.RUnlock()
	if d.closed {
		return ErrClosed
	}
	it, err := d.db.NewIter(&pebble.IterOptions{
		LowerBound: recordKey(max(from, 0), ""),
		UpperBound: recordKey(to+1, ""),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	var (
		cur  int64
		revs []Change
		rank ranker
	)
	emit := func() bool {
		if cur == 0 {
			return true
		}
		slices.SortStableFunc(revs, func(a, b Change) int { return cmp.Compare(a.Rec.Sub, b.Rec.Sub) })
		out := revs
		revs = nil
		return fn(cur, out)
	}
	for it.First(); it.Valid(); it.Next() {
		rev, key, err := decodeRecordKey(it.Key())
		if err != nil {
			return fmt.Errorf("%s: %w", d.dir, err)
		}
		if rev != cur {
			if !emit() {
				return nil
			}
			cur = rev
		}
		if rank.next(rev); !keep(key) {
			continue
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		rec, value, err := d.decodeRecord(rev, val)
		if err != nil {
			return fmt.Errorf("storage: %s: key %q revision %d: %w", d.dir, key, rev, err)
		}
		if rec.Sub < 0 {
			rec.Sub = rank.n - 1 // its place in key order (see ranker)
		}
		revs = append(revs, Change{Key: key, Rec: rec, Value: bytes.Clone(value)})
	}
	if err := it.Error(); err != nil {
		return err
	}
	emit()
	return nil
}
