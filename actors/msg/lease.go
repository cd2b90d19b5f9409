package msg

import "github.com/metastore/metastore/storage"

// The lease protocol. The lease actor owns the leases and publishes which
// exist; shards check a Put's lease against that table when they plan it.
// Grants, and revokes of leases without keys, take no revision: the lease
// actor hands their records to the sequencer with LogLeases and answers
// once they are durable. A revoke runs on the coordinator as a Request with
// Revoke set, once the lease is out of the table: it freezes every shard,
// which answers with the keys the lease holds there, deletes them at one
// revision with the revoke record in the same entry (or, with no key, logs
// the record alone), and answers.

// LogLeases asks the sequencer to make lease changes that take no revision
// durable, in commit order with the writes; Reply is called on the
// sequencer's goroutine once they are (nil) or will never be (the log's
// failure). It must not block.
type LogLeases struct {
	Records []storage.LeaseRecord
	Reply   func(err error)
}

// LeaseKeys asks a shard for the keys attached to lease ID in its newest
// state, as etcd's lessor knows them once a write is applied; Reply is
// buffered.
type LeaseKeys struct {
	ID    int64
	Reply chan<- []string
}
