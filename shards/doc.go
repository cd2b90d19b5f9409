// Package shards owns MetaStore's keys: the MVCC store of one shard, the
// evaluation of etcd's requests against it, the shard actor that writes it,
// the coordinator that runs the writes spanning shards, the lock-free read
// path, and the routing of keys to shards.
//
// Files, one concept each:
//
//	store.go            Store and View: one shard's key histories (etcd's key
//	                    index with generations) in a copy-on-write B-tree
//	values.go           Values: a durable node's values, out of the tree
//	reader.go           reader, the state a request is evaluated against, and
//	                    its entries; a View, or several merged (viewSet)
//	overlay.go          a request's (or a batch's) own writes over a reader
//	exec.go             evalEnv; Put and DeleteRange evaluation
//	txn.go, compare.go  Txn evaluation (etcd's branch paths); compares
//	range.go            Range evaluation; range_sort.go: its filters and sorts
//	shard_core.go       the shard's state machine: queue, batch plan and
//	                    install, freezes, compaction; no actor in it
//	shard_actor.go      ShardConfig and the shard actor, a thin shell
//	coordinator_core.go the coordinator's state machine; coordinator_actor.go
//	                    its shell
//	queue.go            the bounded queue of writes; unsettled.go: what was
//	                    installed but is not visible yet
//	freeze.go           the coordinator's freeze protocol with the shards
//	readpath.go         ReadPath: reads without a message
//	router.go           Router: key → shard by hash; span.go: etcd's key
//	                    ranges
//	errors.go           errNeedsRevision, which cuts a batch
//
// Messages in and out. A shard takes msg.Write from the Node and answers
// each with a msg.Result, through the sequencer; it asks the sequencer for
// revisions with msg.Stamp, gets msg.Stamped, and reports msg.Installed
// with the replies. The coordinator takes msg.Write the same way, asks with
// msg.Stamp, and hands its reply over with msg.Deliver. The Node sends each
// shard msg.CompactShard. Between the coordinator and the shards, and
// unexported: freeze, answered with frozenView, then thaw. A shard or the
// coordinator also sends itself wakeUp, through a reply the sequencer
// releases, once what it holds in memory is durable.
//
// Invariants:
//
//   - A shard is the only writer of its Store and of its published View;
//     the read path only loads published Views, which never change.
//   - A batch's dry run (plan, with placeholder revisions) and its real run
//     (install, at the stamped revisions) decide alike: both read the same
//     evalEnv, and the shard changes nothing in between. A difference
//     panics; so does a cross-shard write that decides differently.
//   - The sequencer releases a reply only once its revision is visible:
//     no client is answered before every reader can see what it was told.
//   - The single-key path never waits for another shard: only the
//     coordinator freezes shards, one write at a time, so freezes cannot
//     deadlock.
//   - Every queue is bounded, in writes and in bytes, and past its bound a
//     write is refused with msg.ErrTooManyRequests (the limits are beside
//     each core, in shard_core.go and coordinator_core.go).
package shards
