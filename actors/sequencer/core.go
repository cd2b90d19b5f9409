package sequencer

import (
	"container/heap"
	"fmt"
	"sync/atomic"

	"github.com/metastore/metastore/actors/msg"
)

// Revisions is the revision state the sequencer publishes for lock-free
// readers. Its single writer is the sequencer actor; everyone else loads.
type Revisions struct {
	visible   atomic.Int64
	compacted atomic.Int64 // -1 until the first compaction, as in etcd
	noSpace   atomic.Bool
	// failed is closed when the log fails, after failure is set.
	failed  chan struct{}
	failure error
}

// Failed is closed once the log has failed: from then on no write is
// acknowledged (see Failure).
func (r *Revisions) Failed() <-chan struct{} { return r.failed }

// Failure returns why the log failed, or nil while it has not.
func (r *Revisions) Failure() error {
	select {
	case <-r.failed:
		return r.failure
	default:
		return nil
	}
}

// Visible returns the newest revision every reader may see: every revision
// up to it is installed in its shards and durable.
func (r *Revisions) Visible() int64 { return r.visible.Load() }

// Compacted returns the compact revision: reads below it fail.
func (r *Revisions) Compacted() int64 { return r.compacted.Load() }

// NoSpace reports whether the NOSPACE alarm is raised: writes that add
// data are refused until it is cleared.
func (r *Revisions) NoSpace() bool { return r.noSpace.Load() }

// core is the sequencer's state machine, free of actors so that it can be
// tested and benchmarked alone. It stamps revisions in order and ratchets
// the visible revision over the contiguous prefix of revisions that are both
// fully installed and durable, the way pebble publishes sequence numbers.
type core struct {
	next    int64   // the next revision to stamp
	visible int64   // every revision <= visible is installed and durable
	durable int64   // every revision <= durable is on disk
	parts   []int   // parts[i]: installs still missing for revision visible+1+i
	waiting replies // replies for revisions above visible
	compact int64   // the compact revision
}

func newCore(current, compacted int64) *core {
	if compacted == 0 {
		// Never compacted: like etcd, allow one compaction at revision 0.
		compacted = -1
	}
	return &core{next: current + 1, visible: current, durable: current, compact: compacted}
}

// synced records that every revision up to rev is durable.
func (c *core) synced(rev int64) {
	if rev < c.durable || rev >= c.next {
		panic(fmt.Sprintf("sequencer: synced to %d, but durable is %d and next %d", rev, c.durable, c.next))
	}
	c.durable = rev
}

// stamp assigns n consecutive revisions, each complete after parts installs,
// and returns the first. With n == 0 nothing is assigned, and base-1 is the
// current revision.
func (c *core) stamp(n, parts int) int64 {
	base := c.next
	for range n {
		c.parts = append(c.parts, parts)
	}
	c.next += int64(n)
	return base
}

// installed records one install of each revision in [from, to].
func (c *core) installed(from, to int64) {
	for rev := from; rev <= to; rev++ {
		i := rev - c.visible - 1
		if i < 0 || i >= int64(len(c.parts)) || c.parts[i] <= 0 {
			panic(fmt.Sprintf("sequencer: install of revision %d not stamped or already complete (visible %d, next %d)", rev, c.visible, c.next))
		}
		c.parts[i]--
	}
}

// hold queues replies until their revision is visible.
func (c *core) hold(rs []msg.Reply) {
	for _, r := range rs {
		heap.Push(&c.waiting, r)
	}
}

// advance moves the visible revision over every complete revision and
// returns the replies that became deliverable.
func (c *core) advance() []msg.Reply {
	n := 0
	for n < len(c.parts) && c.parts[n] == 0 && c.visible+int64(n) < c.durable {
		n++
	}
	if n > 0 {
		c.visible += int64(n)
		c.parts = c.parts[n:]
	}
	var out []msg.Reply
	for len(c.waiting) > 0 && c.waiting[0].Rev <= c.visible {
		out = append(out, heap.Pop(&c.waiting).(msg.Reply))
	}
	return out
}

// compactTo records compaction at rev, with etcd's checks: at or below the
// current compact revision it is compacted already; above the visible
// revision it is in the future.
func (c *core) compactTo(rev int64) error {
	switch {
	case rev <= c.compact:
		return msg.ErrCompacted
	case rev > c.visible:
		return msg.ErrFutureRev
	}
	c.compact = rev
	return nil
}

type replies []msg.Reply

func (h replies) Len() int           { return len(h) }
func (h replies) Less(i, j int) bool { return h[i].Rev < h[j].Rev }
func (h replies) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *replies) Push(x any)        { *h = append(*h, x.(msg.Reply)) }
func (h *replies) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
