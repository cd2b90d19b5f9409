package shards

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/storage"
)

// The freeze protocol, between the coordinator and the shards a
// cross-shard write involves (see coordinator): freeze, answered with
// frozenView once the shard is idle, then thaw, which carries what the
// write changed on that shard.

// freeze asks a shard to finish its batch in flight, then stop planning
// writes and answer ReplyTo with frozenView, until thaw arrives. The
// coordinator uses it to evaluate a cross-shard request on a state nothing
// else changes.
//
// Lease, if not 0, is a lease being revoked: the answer names the keys it
// holds on the shard.
type freeze struct {
	ReplyTo *actor.PID
	Lease   int64
}

// frozenView answers freeze with a snapshot of the shard's newest state and,
// for a revoke, the keys of its lease there.
type frozenView struct {
	Shard     int
	View      *View
	LeaseKeys []string
}

// thaw ends a freeze: the shard applies Muts at Rev (nothing if Muts
// is empty), reports them installed, and resumes.
type thaw struct {
	Rev  int64
	Muts []storage.Mutation
}
