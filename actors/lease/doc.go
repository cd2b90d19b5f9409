// Package lease owns the leases: their TTLs, their deadlines and the
// table of those that exist.
//
// The lease actor is the single writer of Table, which shards and the
// coordinator read when they plan a write that names a lease. A grant is
// checked (etcd's errors for an existing ID and a TTL too large, its
// minimum TTL), made durable by the sequencer (msg.LogLeases, no revision)
// and only then added to the table and answered. A revoke — asked for, or
// an expiry — first takes the lease out of the table, then runs on the
// coordinator as a write of its own (msg.Request.Revoke): every shard is
// frozen and names the lease's keys, which are deleted at one revision with
// the revoke record in the same log entry (no revision if it has none).
// Whatever orders a Put naming the lease and its revoke, no key is left
// attached to a revoked lease: a Put planned before the lease left the
// table is installed before the freeze answers and its key is deleted; one
// planned after fails with "requested lease not found".
//
// Deadlines live only in the actor, in a heap: a keep-alive moves one in
// memory and touches neither the disk nor the sequencer. Every
// expireEvery the actor starts revoking the leases past their deadline, at
// most RevokeRate a second (etcd's leaseRevokeRate), so a mass expiry is
// spread out. After a restart every lease's deadline starts again from its
// full TTL, as etcd's do when a member becomes leader. The keys attached to
// a lease are the shards' (shards.Store.LeaseKeys): the actor keeps none.
//
// Messages in: Grant, Revoke, KeepAlive, TimeToLive, List; from the
// sequencer, through a reply function, grantLogged; revokeDone from the
// goroutine that waits for a revoke's write; expireTick. Out: msg.LogLeases
// to the sequencer, msg.Write with Revoke to the coordinator.
//
// The pure state machine is core (core.go), tested without an actor
// system; actor.go is its shell.
package lease
