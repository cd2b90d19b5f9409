package storage

import (
	"github.com/cockroachdb/pebble/v2"
)

// keySubFrom records, in a dir upgraded from formatNoSub, the first revision
// whose records carry their sub revision: the records below it were written
// without one and are left as they are (compaction removes them in time).
var keySubFrom = []byte("m/subfrom")

// upgrade moves a formatNoSub dir to Format: the marker and the revision
// from which records carry their sub revision change together, in one
// synced batch, so that a crash leaves either the old dir or the upgraded
// one. No record is rewritten.
func (d *DB) upgrade(next int64) (err error) {
	if err := d.beginWrite(); err != nil {
		return err
	}
	defer d.endWrite(&err)
	b := d.db.NewBatch()
	defer b.Close()
	_ = b.Set(keySubFrom, be64(next), nil)
	_ = b.Set(keyFormat, []byte(Format), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	d.format, d.subFrom = Format, next
	return nil
}
