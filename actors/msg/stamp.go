package msg

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/storage"
)

// Stamp asks the sequencer for len(Writes) consecutive revisions, one for
// each request that changes something, in the order given. Parts is how many
// Installed reports complete each of those revisions: 1 for a shard's batch,
// the number of shards written for a cross-shard request. The sequencer
// answers ReplyTo with Stamped. An empty Writes still gets an answer: its
// Base-1 is the current revision, which is what a request that changed
// nothing reports.
//
// Leases are lease changes made by the first write (a lease revoke that
// deletes keys): they are committed in the same entry, so that the keys and
// the lease go together.
type Stamp struct {
	Writes  [][]storage.Mutation
	Leases  []storage.LeaseRecord
	Parts   int
	ReplyTo *actor.PID
}

// Stamped answers Stamp: the revisions are Base, Base+1, ... in the order of
// Stamp.Writes.
type Stamped struct {
	Base int64
}

// Installed tells the sequencer that revisions From..To (inclusive; none if
// To < From) are in the sender's store and its published view, and hands it
// the replies to release once the visible revision reaches theirs.
type Installed struct {
	From, To int64
	Replies  []Reply
}

// Deliver hands the sequencer replies to release once the visible revision
// reaches theirs.
type Deliver struct {
	Replies []Reply
}

// Reply is an answer waiting for revision Rev to become visible: a client
// must not see a result that depends on a revision it could then fail to
// read. Send runs on the sequencer's goroutine and must not block.
type Reply struct {
	Rev  int64
	Send func()
}
