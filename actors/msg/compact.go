package msg

// Compact asks the sequencer to move the compact revision to Rev. The
// answer on Reply is the current revision and the compact revision Rev
// replaced, or ErrCompacted or ErrFutureRev; with a log, it comes once the
// compact revision is durable. Shards drop their history after the answer.
type Compact struct {
	Rev   int64
	Reply chan<- CompactResult
}

// CompactResult answers Compact. Prev is the compact revision before this
// compaction (0 if none), as the sequencer orders compactions: a reader
// of the published compact revision could see the same one for two
// compactions in flight.
type CompactResult struct {
	Current, Prev int64
	Err           error
}

// CompactShard asks a shard to drop its history at or below Rev. Done, if
// not nil, is closed when the shard's published view no longer has it.
type CompactShard struct {
	Rev  int64
	Done chan<- struct{}
}
