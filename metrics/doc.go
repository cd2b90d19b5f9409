// Package metrics owns MetaStore's Prometheus collectors: etcd's familiar
// series where MetaStore has the same thing (same names, types, labels and
// help as etcd v3.7, so etcd's dashboards and alerts work unchanged), and
// MetaStore's own under the metastore_ prefix, which show where a write's
// time goes inside the actor pipeline (docs/metrics.md explains each one).
//
// The package only holds the collectors and the small typed helpers that the
// actors call on their hot paths; it imports no MetaStore package. The
// actors hold what a helper returns for their name (Actor, Shard, Watch),
// so no label is looked up per message. The rpc layer registers the
// collectors (Register) and serves them.
//
// What updates what:
//
//   - every core actor and watch actor: its mailbox depth and the time it
//     spends on each message (Actor: the mailbox middleware protoactor-go
//     calls, and RunStarted, which the actor's dispatcher calls);
//   - a shard, once per batch it stamps: the batch's writes and its queue
//     (Shard.Batch); the coordinator, once per cross-shard write
//     (CoordinatorWrite);
//   - the sequencer: each storage commit (Commit), the groups waiting for
//     the committer (CommitQueue), and the revisions stamped but not yet
//     visible, at each publish (RevisionLag);
//   - a watch actor, after each message: its streams, watchers and slow
//     watchers, and the events it queued (Watch.Update);
//   - the lease actor: grants, revokes, renewals, expiries and the leases
//     it holds;
//   - the rpc layer: etcd's mvcc operation counters, per request
//     (MVCCRequest); the coordinator, the deletes of a lease revoke.
//
// Series that read the node's state when scraped (revisions, keys, data
// size) are GaugeFuncs the rpc layer builds over its node.
//
// Registration. Collectors go on prometheus.DefaultRegisterer, like etcd's,
// so that promhttp.Handler serves them beside the Go and process
// collectors. That registry is one per process, and etcd's own packages
// register collectors of the same names in their init functions when they
// are linked in (the test binary links an embedded etcd; a tool may link
// etcd's mvcc or backend). So nothing is registered at init — etcd's
// MustRegister would then panic — and Register replaces a collector of the
// same name registered before, once it has checked that it is of the same
// type (the registry itself checks the help text and label names: they
// must stay the same for the life of a process). A process that runs
// several nodes (tests) shares the counters between them, as etcd's
// embedded servers do.
package metrics
