package storage

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Values reads the values of many records at once and calls fn with each,
// in the order of the data dir (revision, then key), not in the order of
// krs: fn(i, value) gives the value of krs[i]. value is valid only during
// the call. It fails with ErrNoRecord, naming the record, when one of them
// is not stored.
//
// Why not one Value per record: records are keyed by revision first, so a
// range's values, asked for in key order, lie all over the key space, and a
// pebble Get per value walked the LSM from the top every time (61% of a
// 1,000,000-key range, docs/benchmarks.md). Asked for in the data dir's
// order through one iterator, the reads become one forward pass: records
// that sit together are reached with a few Nexts over a block already in
// hand, and the SeekGE for one further on stays within the iterator's
// bounds and its loaded tables.
func (d *DB) Values(krs []KeyRev, fn func(i int, value []byte)) error {
	if len(krs) == 0 {
		return nil
	}
	order := make([]int32, len(krs))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		x, y := &krs[a], &krs[b]
		if c := cmp.Compare(x.Rev, y.Rev); c != 0 {
			return c
		}
		return cmp.Compare(x.Key, y.Key)
	})
	first, last := &krs[order[0]], &krs[order[len(order)-1]]
	// The bounds let pebble skip every table outside the records asked for.
	it, err := d.db.NewIter(&pebble.IterOptions{
		LowerBound: recordKey(first.Rev, first.Key),
		UpperBound: append(recordKey(last.Rev, last.Key), 0),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	var want []byte
	for _, i := range order {
		kr := &krs[i]
		want = appendRecordKey(want[:0], kr.Rev, kr.Key)
		if !seekNear(it, want) || !bytes.Equal(it.Key(), want) {
			if err := it.Error(); err != nil {
				return err
			}
			return fmt.Errorf("%w: key %q revision %d", ErrNoRecord, kr.Key, kr.Rev)
		}
		b, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		_, value, err := d.decodeRecord(kr.Rev, b)
		if err != nil {
			return fmt.Errorf("storage: %s: key %q revision %d: %w", d.dir, kr.Key, kr.Rev, err)
		}
		fn(int(i), value)
	}
	return nil
}

// nextsBeforeSeek is how many records seekNear steps over before it seeks.
const nextsBeforeSeek = 4

// seekNear positions it at the first key at or after want, which is not
// before its current key: a few Nexts, then a SeekGE if they fall short.
func seekNear(it *pebble.Iterator, want []byte) bool {
	if it.Valid() {
		for range nextsBeforeSeek {
			if bytes.Compare(it.Key(), want) >= 0 {
				return true
			}
			if !it.Next() {
				return false
			}
		}
	}
	return it.SeekGE(want)
}

// appendRecordKey is recordKey into a reused buffer.
func appendRecordKey(out []byte, rev int64, key string) []byte {
	out = append(out, prefixRecords...)
	out = binary.BigEndian.AppendUint64(out, uint64(rev))
	return append(out, key...)
}
