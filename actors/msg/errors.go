package msg

import "errors"

// Errors the answers of writes, reads and compactions carry. The rpc layer
// maps each one to etcd's error of the same meaning (rpctypes), so clients
// see etcd's exact text.
var (
	// ErrCompacted: the requested revision has been compacted away.
	ErrCompacted = errors.New("required revision has been compacted")
	// ErrFutureRev: the requested revision is newer than the store's.
	ErrFutureRev = errors.New("required revision is a future revision")
	// ErrKeyNotFound: ignore_value or ignore_lease on a key that does not exist.
	ErrKeyNotFound = errors.New("key not found")
	// ErrLeaseNotFound: a put names a lease that does not exist, or a
	// revoke one that does not.
	ErrLeaseNotFound = errors.New("lease not found")
	// ErrLeaseExists: a grant names a lease that exists.
	ErrLeaseExists = errors.New("lease already exists")
	// ErrLeaseTTLTooLarge: a grant asks for more than the longest TTL.
	ErrLeaseTTLTooLarge = errors.New("too large lease TTL")
	// ErrTooManyRequests: a shard's queue is full; the client should back off.
	ErrTooManyRequests = errors.New("too many requests")
	// ErrLogFailed: a commit to the data dir's log failed; every write
	// from then on is refused until the server restarts (the sequencer's
	// fail says why).
	ErrLogFailed = errors.New("the log failed; writes are refused until the server restarts")
)
