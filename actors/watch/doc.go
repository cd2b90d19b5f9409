// Package watch owns the watchers: the watch actors that match committed
// changes to them and queue the responses of each client stream.
//
// The feed. The sequencer sends every run of revisions that has just become
// visible (installed and durable) as one msg.Changes to every watch actor,
// in revision order, and never waits for them. A change carries its key,
// its new record and its place within its request, so that a revision's
// events go out in the order its request made them, across shards too.
// The feed is the commit log's content, not the shards' state: a
// replicated log can feed watchers the same way.
//
// Ownership. A stream (one gRPC Watch stream) lives on one watch actor,
// streams spread over the actors in turn; the actor owns the stream's
// watchers, their IDs and their progress flags, so a stream's responses
// come out in one order and a progress answer follows every event it
// covers. Each actor matches every change against its own synced group: a
// map from key to watchers for single keys and an interval tree for ranges
// (etcd's watcherGroup, using etcd's adt), so a change costs a lookup, not
// a scan. Fan-out is spread over the actors, one per core by default.
//
// Slow consumers. An actor pushes a stream's responses into its Outbox and
// moves on; the stream's sender (the rpc layer) takes them, adds prev_kv
// and splits fragments off the actor. An outbox holds a bounded number of
// event bytes; a watcher whose events do not fit is set aside, unsynced,
// from the first revision it missed (etcd's victims), and caught up once
// the outbox drains. Catching up reads the actor's ring of recent runs
// (the feed it has seen, bounded in bytes; in memory, where there is no
// data dir, bounded by compaction only) or, below the ring, the data dir's
// history (storage.DB.History), on a goroutine of its own, one read at a
// time and a bounded amount per read, so the actor never stalls. A watcher
// whose next revision was compacted is told so and cancelled, as in etcd.
//
// Messages in: msg.Changes from the sequencer; from a Stream (on its gRPC
// goroutines): opened, created, canceled, progressAsked, drained, closed;
// its own ticks (syncTick every 100 ms for unsynced watchers,
// progressTick every --watch-progress-notify-interval) and readResult from
// its history reads. Out: responses in each stream's Outbox, never a
// message to another actor.
//
// Invariants: a watcher's events go out in revision order, each exactly
// once: minRev is the next revision it needs, every matching event below
// it is queued, and it only moves past what was queued; all events of one
// revision go in one response; a stream's responses leave in the order its
// actor queued them; the sequencer, the shards and other streams never
// wait for a watcher.
//
// The pure state machine is core (core.go, group.go), tested without an
// actor system; actor.go is its shell; the Outbox is the one memory an
// actor shares, with its stream's sender.
package watch
