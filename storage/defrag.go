package storage

import (
	"context"
	"fmt"
)

// keySpaceEnd is above every key the data dir holds: they all start with
// an ASCII prefix (m/, r/, l/, c/, a/).
var keySpaceEnd = []byte{0xff}

// Defragment is etcd's defragmentation for pebble: it compacts the whole
// key space down to pebble's bottom level, one level at a time and without
// parallel subcompactions, so that compaction's deletions and overwritten
// records give their space back and obsolete files are removed. Writes go
// on meanwhile: pebble stops them only to switch to a new memtable, which
// it then flushes. ctx ending abandons the wait (pebble finishes the
// compaction under way). Close waits for a Defragment in flight.
func (d *DB) Defragment(ctx context.Context) (err error) {
	d.writes.RLock()
	defer d.writes.RUnlock()
	if d.closed {
		return ErrClosed
	}
	// NB: a failed compaction is not a failed write: the records are
	// untouched, so it is not recorded in d.failed.
	defer recoverFatal(&err)
	if err := d.db.Compact(ctx, nil, keySpaceEnd, false); err != nil {
		return fmt.Errorf("storage: %s: defragment: %w", d.dir, err)
	}
	return nil
}

// SizeInUse is the part of Size that holds live data, etcd's "size in
// use": the live tables and write-ahead log, less pebble's estimate of the
// bytes its deletion tombstones will free once compacted. What it leaves
// out (obsolete and zombie files, compaction output under way, tables'
// dead bytes) is what Defragment gives back. Compaction's record deletions
// count as garbage only once pebble has collected the stats of the tables
// that hold them, shortly after they are written.
func (d *DB) SizeInUse() int64 {
	m := d.db.Metrics()
	live := m.WAL.PhysicalSize + m.Table.Local.LiveSize + m.BlobFiles.Local.LiveSize
	garbage := m.Table.Garbage.PointDeletionsBytesEstimate + m.Table.Garbage.RangeDeletionsBytesEstimate
	if garbage >= live {
		return 0
	}
	return int64(live - garbage)
}
