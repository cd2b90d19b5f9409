package shards

import (
	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// settleWakeBytes is how many unsettled bytes make a shard (or the
// coordinator) ask to be woken once they are visible, rather than forget
// them at its next message, which may not come for a long time after a
// burst: the values of a shard's last batch would stay in memory until its
// next write (measured: 490 MiB after a burst of 1 MiB values, two shards).
// Below it the wake-up, one more message per batch, is not worth its cost.
const settleWakeBytes = 1 << 20

// wakeUp is what a shard or the coordinator sends itself, through the
// sequencer's release of a reply, once a revision it holds values for is
// visible. It carries nothing: every message settles what is visible.
type wakeUp struct{}

var wakeUpMsg = &wakeUp{}

// unsettled counts the bytes an actor has had stamped and installed whose
// revisions are not yet visible: their values wait in memory (the
// sequencer's commit groups, Values' recent map) until they are durable.
type unsettled struct {
	revs  []revBytes // oldest first
	bytes int
}

type revBytes struct {
	rev   int64
	bytes int
}

// add records bytes written at revisions up to rev. With wakeAt or more
// bytes unsettled it returns a reply at rev that calls wake (which sends
// the owner wakeUpMsg) once rev is visible; ok is false otherwise.
func (u *unsettled) add(rev int64, bytes, wakeAt int, wake func()) (r msg.Reply, ok bool) {
	if bytes == 0 {
		return msg.Reply{}, false
	}
	u.revs = append(u.revs, revBytes{rev, bytes})
	u.bytes += bytes
	if u.bytes < wakeAt {
		return msg.Reply{}, false
	}
	return msg.Reply{Rev: rev, Send: wake}, true
}

// settle forgets what is visible.
func (u *unsettled) settle(visible int64) {
	n := 0
	for n < len(u.revs) && u.revs[n].rev <= visible {
		u.bytes -= u.revs[n].bytes
		n++
	}
	if n == len(u.revs) {
		u.revs = u.revs[:0]
	} else if n > 0 {
		u.revs = u.revs[n:]
	}
}

// mutationBytes is what muts hold in keys and values.
func mutationBytes(muts []storage.Mutation) int {
	n := 0
	for _, m := range muts {
		n += len(m.Key) + len(m.Value)
	}
	return n
}
