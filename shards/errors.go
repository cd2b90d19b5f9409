package shards

import "errors"

// Errors returned by the shard core. The rpc layer maps each one to etcd's
// error of the same meaning (rpctypes), so clients see etcd's exact text.
var (
	// ErrCompacted: the requested revision has been compacted away.
	ErrCompacted = errors.New("shards: required revision has been compacted")
	// ErrFutureRev: the requested revision is newer than the store's.
	ErrFutureRev = errors.New("shards: required revision is a future revision")
	// ErrKeyNotFound: ignore_value or ignore_lease on a key that does not exist.
	ErrKeyNotFound = errors.New("shards: key not found")
	// ErrLeaseNotFound: a put names a lease that does not exist.
	ErrLeaseNotFound = errors.New("shards: lease not found")
	// ErrTooManyRequests: a shard's queue is full; the client should back off.
	ErrTooManyRequests = errors.New("shards: too many requests")

	// errNeedsRevision is internal: a request compares a create or mod
	// revision of a key that an earlier request of the same batch wrote,
	// whose revision is not stamped yet. The batch is cut before it.
	errNeedsRevision = errors.New("shards: compare needs a revision not yet stamped")
)
