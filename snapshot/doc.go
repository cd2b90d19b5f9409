// Package snapshot is MetaStore's bridge to etcd's on-disk format: it
// hashes a data dir exactly as etcd hashes its key space (HashKV), writes
// a data dir out as the bbolt file an etcd v3.7 member keeps (Build: what
// Maintenance.Snapshot streams, which `etcdutl snapshot restore` turns
// into an etcd data dir), and turns such a file, from etcd or from
// MetaStore, into a new MetaStore data dir (Restore).
//
// It reads a data dir only through a storage.View, one consistent instant
// that blocks no writer, and writes one only through storage.Restorer. It
// uses etcd's own packages (schema, backend, mvcc's revision keys, mvccpb)
// as libraries, so that the bytes it writes and hashes are etcd's.
//
// # Records and compaction
//
// etcd keys its "key" bucket by revision: 8 bytes of main revision, '_', 8
// bytes of sub revision, and a trailing 't' for a tombstone; each value is
// the change's mvccpb.KeyValue (only Key for a tombstone). MetaStore's
// records carry the same fields, so the two map one to one.
//
// A compaction at C keeps, for each key, every record above C and the
// newest record at or below C if it is a put, or a tombstone made at C
// itself; etcd and MetaStore keep the same set. A view may still hold
// records that a compaction removed (MetaStore deletes them after recording
// the compaction), so everything here applies the rule to what it reads
// rather than trusting what is stored.
//
// Invariants: HashKV at a revision is a function of the history up to it
// and of the compact revision alone (equal to etcd's for the same
// history); an image holds exactly the records that survive compaction,
// up to its revision; Restore writes a record's revision, sub revision,
// create revision, version and lease exactly as the file has them.
package snapshot
