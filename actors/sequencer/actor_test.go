package sequencer

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// gatedLog is a Log whose first Commit waits for gate to close, so that a
// test can pile writes up behind a sync. It records every revision and
// auth record in the order they were committed, and how many commits there
// were.
type gatedLog struct {
	gate    chan struct{}
	started chan struct{} // closed when the first Commit has begun

	mu      sync.Mutex
	commits int
	revs    []int64
	sizes   []int // revisions in each commit, in order
	auth    []storage.AuthRecord
	authAt  []int // the commit (1 the first) of each auth record
}

func (l *gatedLog) Commit(entries []storage.Entry, _ []storage.LeaseRecord, auth []storage.AuthRecord, compact int64) error {
	l.mu.Lock()
	l.commits++
	first := l.commits == 1
	l.mu.Unlock()
	if first {
		close(l.started)
		<-l.gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sizes = append(l.sizes, len(entries))
	for _, e := range entries {
		l.revs = append(l.revs, e.Rev)
	}
	for _, a := range auth {
		l.auth = append(l.auth, a)
		l.authAt = append(l.authAt, l.commits)
	}
	return nil
}

func (l *gatedLog) Size() int64              { return 0 }
func (l *gatedLog) SetNoSpace(on bool) error { return nil }
func (l *gatedLog) LowSpace(bool) (bool, uint64, error) {
	return false, 0, nil
}

// TestCommitsMergeWhatQueuedDuringASync holds the first sync while more
// writes are stamped than the committer's queue holds, then releases it:
// every revision must reach the log exactly once and in order, the writes
// queued meanwhile must share a few commits instead of one each, and every
// revision must become visible.
func TestCommitsMergeWhatQueuedDuringASync(t *testing.T) {
	// Each stamp below writes one record of about 34 bytes (mutationBytes).
	const record = 1 + 1 + 32
	cases := []struct {
		name         string
		groupBytes   int
		maxCommits   int // besides the first
		maxPerCommit int
	}{
		// One commit for everything queued behind the first, and at most
		// one more for what was still pending when that one began.
		{"merged", 0, 2, 0},
		// Merging stops at the byte cap: every commit holds at most 5.
		{"capped in bytes", 5 * record, 0, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			commitsMerge(t, c.groupBytes, c.maxCommits, c.maxPerCommit)
		})
	}
}

// commitsMerge holds the first sync while more writes are stamped than
// the committer's queue (8 groups) holds, then releases it. With
// maxCommits > 0 the rest must take at most that many commits; with
// maxPerCommit > 0 no commit may hold more revisions than that.
func commitsMerge(t *testing.T, groupBytes, maxCommits, maxPerCommit int) {
	log := &gatedLog{gate: make(chan struct{}), started: make(chan struct{})}
	revs := &Revisions{}
	system := actor.NewActorSystem()
	root := system.Root
	const queue = 8
	seq := root.Spawn(Props(Config{Revisions: revs, Log: log, CommitQueue: queue, MaxGroupBytes: groupBytes}))
	defer root.Stop(seq)
	var stamped atomic.Int64
	shard := root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*msg.Stamped); ok {
			stamped.Add(1)
		}
	}))
	defer root.Stop(shard)

	stamp := func() {
		root.Send(seq, &msg.Stamp{Writes: [][]storage.Mutation{{{Key: "k", Value: []byte("v")}}}, Parts: 1, ReplyTo: shard})
	}
	stamp()
	select {
	case <-log.started:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the first commit")
	}
	// The first commit holds revision 1; the queue fills, and the rest waits
	// in the sequencer's pending group.
	n := int64(1 + queue + 40)
	for range n - 1 {
		stamp()
	}
	waitFor(t, "every stamp answered", func() bool { return stamped.Load() == n })
	root.Send(seq, &msg.Installed{From: 1, To: n})
	close(log.gate)
	waitFor(t, "every revision visible", func() bool { return revs.Visible() == n })

	log.mu.Lock()
	defer log.mu.Unlock()
	want := make([]int64, n)
	for i := range want {
		want[i] = int64(i) + 1
	}
	if !slices.Equal(log.revs, want) {
		t.Fatalf("the log saw %d revisions, not 1..%d in order (first ones %v)", len(log.revs), n, log.revs[:min(len(log.revs), 10)])
	}
	if maxCommits > 0 && log.commits > 1+maxCommits {
		t.Fatalf("%d revisions took %d commits, want at most %d", n, log.commits, 1+maxCommits)
	}
	if maxPerCommit > 0 && slices.Max(log.sizes) > maxPerCommit {
		t.Fatalf("commits of %v revisions, want at most %d each", log.sizes, maxPerCommit)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
