package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// prefixLeases holds one record per lease: l/<8-byte big-endian ID> → its
// TTL in seconds (uvarint). A grant sets it, a revoke deletes it, each in
// the commit group of the write it belongs to, so a restart finds exactly
// the leases that were granted and not revoked when the last acknowledged
// write was made.
var prefixLeases = []byte("l/")

// LeaseRecord is a lease's change in the log: a grant of ID with TTL
// seconds, or its revoke.
type LeaseRecord struct {
	ID, TTL int64
	Revoke  bool
}

func leaseKey(id int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefixLeases...), uint64(id))
}

// putLeases adds lease records to a commit batch.
func putLeases(b *pebble.Batch, recs []LeaseRecord) {
	for _, r := range recs {
		if r.Revoke {
			_ = b.Delete(leaseKey(r.ID), nil)
			continue
		}
		_ = b.Set(leaseKey(r.ID), binary.AppendUvarint(nil, uint64(r.TTL)), nil)
	}
}

// Leases returns every lease the dir holds, ID → TTL in seconds.
func (d *DB) Leases() (map[int64]int64, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefixLeases, UpperBound: []byte("l0")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	return readLeases(d.dir, it)
}

// readLeases decodes the lease records it iterates over.
func readLeases(dir string, it *pebble.Iterator) (map[int64]int64, error) {
	out := make(map[int64]int64)
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(prefixLeases):]
		ttl, n := binary.Uvarint(it.Value())
		if len(k) != 8 || n <= 0 {
			return nil, fmt.Errorf("storage: %s: corrupt lease record %q", dir, it.Key())
		}
		out[int64(binary.BigEndian.Uint64(k))] = int64(ttl)
	}
	return out, it.Error()
}
