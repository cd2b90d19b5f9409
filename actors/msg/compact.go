package msg

// Compact asks the sequencer to move the compact revision to Rev. The
// answer on Reply is the current revision, or ErrCompacted or
// ErrFutureRev; with a log, it comes once the compact revision is
// durable. Shards drop their history after the answer.
type Compact struct {
	Rev   int64
	Reply chan<- CompactResult
}

// CompactResult answers Compact.
type CompactResult struct {
	Current int64
	Err     error
}

// CompactShard asks a shard to drop its history at or below Rev. Done, if
// not nil, is closed when the shard's published view no longer has it.
type CompactShard struct {
	Rev  int64
	Done chan<- struct{}
}
