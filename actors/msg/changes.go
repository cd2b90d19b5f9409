package msg

import "github.com/metastore/metastore/storage"

// Changes is the feed the watch side consumes: the writes of a run of
// revisions that have just become visible (installed and durable), in
// revision order, Entries[i] being revision From()+i. The sequencer sends
// each run once, to every watch actor, and never waits for them; the same
// message goes to all of them, so no one may change it.
//
// It carries what the commit log holds, not the shards' state: each
// mutation's key, its new record and its place within its request (its
// index in Muts, etcd's sub revision), so that a log replicated later can
// feed watchers the same way.
type Changes struct {
	Entries []storage.Entry
	// Bytes is about what the run's records take (storage.RecordBytes),
	// counted once by the sequencer for every actor that keeps the run.
	Bytes int
}

// From is the first revision of the run.
func (c *Changes) From() int64 { return c.Entries[0].Rev }

// To is the last revision of the run.
func (c *Changes) To() int64 { return c.Entries[len(c.Entries)-1].Rev }
