// Package auth owns MetaStore's users, roles and permissions, and the
// tokens that name a user on each request: etcd v3's auth, held by one
// actor.
//
// The actor is the single writer of the auth state. A change
// (UserAdd, RoleGrantPermission, AuthEnable, … as a Change message) is
// checked and applied by the pure core (core.go), whose records go to the
// sequencer as one msg.LogAuth: auth changes take no revision, but they
// are made durable in commit order with the writes, in the same log. Once
// durable, the actor publishes the new State, and only then answers.
//
// Readers never send a message to check a request: the rpc layer loads
// the published *State (an immutable value behind an atomic pointer, whose
// single writer is the actor) and asks it whether a user may read or
// write a key range, or act as root. Tokens name the user: simple tokens
// live in a table the actor writes and readers look up (a token's deadline
// is the one field readers write, moving it on with each use, as etcd's
// TTL keeper does); JWTs are checked by their signature alone.
//
// Messages in: Change (a mutation, answered once durable), Assign (a token
// for a user whose password the caller checked at a given auth revision),
// msg.Tick (expires simple tokens). Out: msg.LogAuth to the sequencer.
//
// Invariants: the published State is never modified; the auth revision
// only grows, by one for each change that changes anything except
// AuthEnable (as etcd's); a State is published only once the change it
// holds is durable, and in the order the changes were made.
package auth
