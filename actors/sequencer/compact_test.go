package sequencer

import (
	"errors"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
)

// TestCompactAnswersThePreviousCompactRevision: each compaction's answer
// names the compact revision it replaced in the sequencer's order, even
// while the one before is not durable yet and the published compact
// revision still lags behind: the node keeps a hash from that revision
// up (actors.Node.hashCompaction).
func TestCompactAnswersThePreviousCompactRevision(t *testing.T) {
	log := &gatedLog{gate: make(chan struct{}), started: make(chan struct{})}
	revs := &Revisions{}
	root := actor.NewActorSystem().Root
	seq := root.Spawn(Props(Config{Revisions: revs, Current: 10, Compacted: 2, Log: log, CommitQueue: 8}))
	defer root.Stop(seq)

	compact := func(rev int64) chan msg.CompactResult {
		reply := make(chan msg.CompactResult, 1)
		root.Send(seq, &msg.Compact{Rev: rev, Reply: reply})
		return reply
	}
	first := compact(4)
	<-log.started // the first compaction's commit is held
	second, stale := compact(6), compact(3)
	if got := revs.Compacted(); got != 2 {
		t.Fatalf("published compact revision before the first commit = %d, want 2", got)
	}
	close(log.gate)

	tests := []struct {
		name  string
		reply chan msg.CompactResult
		want  msg.CompactResult
	}{
		{"first", first, msg.CompactResult{Current: 10, Prev: 2}},
		{"second", second, msg.CompactResult{Current: 10, Prev: 4}},
		{"stale", stale, msg.CompactResult{Current: 10, Err: msg.ErrCompacted}},
	}
	for _, tc := range tests {
		got := <-tc.reply
		if got.Current != tc.want.Current || got.Prev != tc.want.Prev || !errors.Is(got.Err, tc.want.Err) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
