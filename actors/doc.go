// Package actors wires a MetaStore member together and gives the rpc layer
// its Go API, Node.
//
// Start opens the data dir (unless in memory), rebuilds every shard's store
// from it, publishes each shard's first view, and spawns the sequencer, the
// shard actors and the coordinator under a guardian that stops a failed
// actor and reports it (the default ends the process: a shard restarted
// empty would serve wrong answers). Stop drains and stops them in
// dependency order: the coordinator and the shards first, so that their
// queued writes still reach the sequencer, then the sequencer, then the
// data dir.
//
// Node's methods are safe for concurrent use. Reads (Range, read-only
// Txns) run on the caller's goroutine over the shards' published views,
// without a message. A write goes to the one shard that owns its keys, or
// to the coordinator, as a msg.Write, and its answer comes back once its
// revision is visible. The mailbox kind of the core actors is a knob
// (Mailbox), for studying the design.
package actors
