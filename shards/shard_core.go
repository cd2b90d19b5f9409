package shards

import (
	"fmt"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// Limits of a shard, in writes and in bytes, unless ShardConfig sets
// others. A write past a queue's limit is refused with msg.ErrTooManyRequests
// rather than queued without bound; a batch at its limit leaves the rest
// for the next batch; a shard holding MaxUnsettledBytes stamps nothing new
// until they settle, so its queue fills and clients are told to back off.
//
// What a shard holds in values is then at most its queue, its batch in
// flight and what it has installed but not yet seen durable (in the
// sequencer's commit groups and in Values' recent map): about
// MaxQueuedBytes + MaxBatchBytes + MaxUnsettledBytes + one batch.
// Measured with 500 clients putting 1 MiB values for 20 s to a durable
// 2-shard node (TestMemoryBurstMeasure): with counts only, 2.4 GiB of heap
// in use at the peak and 760 MiB still live after the burst, 490 MiB of it
// the shards' last batches; with these bounds, 1.2 GiB and 11 MiB, and
// most writes past them refused.
const (
	// DefaultMaxQueued is how many writes may wait for a shard.
	DefaultMaxQueued = 16384
	// DefaultMaxQueuedBytes is how many bytes of requests (their encoded
	// size) may wait for a shard. A write larger than the limit is still
	// taken into an empty queue, so that any request the rpc layer lets
	// through can succeed.
	DefaultMaxQueuedBytes = 32 << 20
	// DefaultMaxBatch is how many writes one batch (one Stamp) carries
	// unless configured otherwise; 1 turns batching off.
	DefaultMaxBatch = 512
	// DefaultMaxBatchBytes is how many bytes of requests one batch
	// carries; a batch has at least one write, whatever its size. It keeps
	// one Stamp, which the sequencer commits whole, small beside a commit
	// group.
	DefaultMaxBatchBytes = 4 << 20
	// DefaultMaxUnsettledBytes is how many bytes of written keys and
	// values a shard may have installed whose revisions are not yet
	// visible (hence maybe not durable) before it stops stamping new
	// batches: without it a shard runs ahead of a slow disk and the
	// difference piles up in the sequencer.
	DefaultMaxUnsettledBytes = 64 << 20
)

// RevisionSource is where shards sample the store's revision bounds.
type RevisionSource interface {
	Visible() int64
	Compacted() int64
}

// shardCore is a shard's state machine, free of actors so that it can be
// tested alone (shard_core_test.go): its methods take the contents of the
// messages the shard receives and return what it has to send, which the
// actor shell (shard_actor.go) sends. Its store and its published view are
// written by nobody else.
//
// A batch goes through two passes, plan (a dry run, before the Stamp) and
// install (the real run, at the stamped revisions). They decide alike
// because both read the same evalEnv and the store does not change in
// between: while a batch is in flight (inflight != nil) the shard plans
// nothing, compacts nothing and answers no freeze. A difference panics.
type shardCore struct {
	cfg   ShardConfig
	queue writeQueue
	// inflight is the batch planned and sent to be stamped; nil when the
	// shard is idle.
	inflight *batch
	// unsettled is what the shard installed whose revisions are not yet
	// visible; at cfg.MaxUnsettledBytes it plans nothing more.
	unsettled unsettled
	// frozen is set from the answer to a freeze until its thaw: the shard
	// plans nothing meanwhile.
	frozen   bool
	freezers []*freeze           // freezes waiting for the shard to be idle
	compacts []*msg.CompactShard // compactions waiting for the shard to be idle
	apply    *overlay            // the real run's, reused from batch to batch
	// wake sends the shard wakeUpMsg; the shell sets it when the actor
	// starts. It is the Send of the reply that asks for a wake-up.
	wake func()
}

// batch is the run of writes planned together and stamped by one Stamp.
type batch struct {
	writes []*msg.Write
	errs   []error // dry-run outcome: an error answers the write
	writer []bool  // dry-run outcome: the write changes something
	env    evalEnv
}

func newShardCore(cfg ShardConfig) *shardCore {
	cfg.setDefaults()
	return &shardCore{cfg: cfg, apply: newOverlay(cfg.Store.live, 0)}
}

// settle forgets the values whose revisions are visible now. The shell
// calls it on every message.
func (c *shardCore) settle() {
	visible := c.cfg.Revisions.Visible()
	c.cfg.Store.settle(visible)
	c.unsettled.settle(visible)
}

// write queues w, or refuses it with msg.ErrTooManyRequests when the queue
// is full (cfg.MaxQueued, cfg.MaxQueuedBytes).
func (c *shardCore) write(w *msg.Write) error {
	return c.queue.push(w, c.cfg.MaxQueued, c.cfg.MaxQueuedBytes)
}

// queueFreeze takes a freeze, answered by pump once the shard is idle.
func (c *shardCore) queueFreeze(f *freeze) { c.freezers = append(c.freezers, f) }

// queueCompact takes a compaction, run by pump once the shard is idle.
func (c *shardCore) queueCompact(m *msg.CompactShard) { c.compacts = append(c.compacts, m) }

// pump starts the next piece of work if the shard is idle: compaction
// first, then a waiting freeze (so cross-shard requests are not starved by a
// steady stream of writes), then the next batch, unless the shard holds
// too much that is not yet durable: then the wake-up of its last install
// brings it back here once that is visible.
//
// It returns what to send, at most one of: the freeze it now answers, with
// the answer (the shard is frozen until its thaw); the Stamp of the batch
// it planned (ReplyTo is left to the shell).
func (c *shardCore) pump() (answer *freeze, view *frozenView, stamp *msg.Stamp) {
	if c.inflight != nil || c.frozen {
		return nil, nil, nil
	}
	for _, m := range c.compacts {
		dropped := c.cfg.Store.Compact(m.Rev)
		c.publish()
		if c.cfg.Dropped != nil && len(dropped) > 0 {
			c.cfg.Dropped(dropped)
		}
		if m.Done != nil {
			close(m.Done)
		}
	}
	c.compacts = c.compacts[:0]
	if len(c.freezers) > 0 {
		f := c.freezers[0]
		c.freezers = c.freezers[1:]
		c.frozen = true
		view := &frozenView{Shard: c.cfg.ID, View: c.cfg.Store.Snapshot()}
		if f.Lease != 0 {
			view.LeaseKeys = c.cfg.Store.LeaseKeys(f.Lease)
		}
		return f, view, nil
	}
	if len(c.queue.ws) > 0 && c.unsettled.bytes < c.cfg.MaxUnsettledBytes {
		return nil, nil, c.plan()
	}
	return nil, nil, nil
}

// plan dry-runs the queued writes against the store plus their own
// earlier writes, to learn which change something, and returns the Stamp
// that asks the sequencer for that many revisions. The batch ends at
// cfg.MaxBatch writes, before the write that would take it past
// cfg.MaxBatchBytes (it has one write at least), and before a write that
// compares a revision its batch has not stamped yet (errNeedsRevision):
// that write starts the next batch.
func (c *shardCore) plan() *msg.Stamp {
	b := &batch{env: evalEnv{
		Visible:     c.cfg.Revisions.Visible(),
		Compacted:   c.cfg.Revisions.Compacted(),
		LeaseExists: c.cfg.Leases,
	}}
	dry := newOverlay(c.cfg.Store.live, 0)
	var writes [][]storage.Mutation
	n, bytes := 0, 0
	for n < len(c.queue.ws) && n < c.cfg.MaxBatch {
		w, size := c.queue.ws[n].w, c.queue.ws[n].size
		if n > 0 && bytes+size > c.cfg.MaxBatchBytes {
			break
		}
		mark := len(dry.muts)
		dry.rev = placeholder(len(writes))
		_, err := execRequest(dry, &b.env, w.Req)
		if err == errNeedsRevision {
			if n == 0 {
				panic("shards: first write of a batch needs an unstamped revision")
			}
			break
		}
		changed := len(dry.muts) > mark
		if changed {
			writes = append(writes, dry.muts[mark:len(dry.muts):len(dry.muts)])
		}
		b.writes = append(b.writes, w)
		b.errs = append(b.errs, err)
		b.writer = append(b.writer, changed)
		bytes += size
		n++
	}
	c.queue.drop(n, bytes)
	c.inflight = b
	return &msg.Stamp{Writes: writes, Parts: 1}
}

// install runs the batch in flight again at its revisions, from base on,
// applying each write to the store, publishes the new view and returns
// the Installed that reports the revisions and hands over the replies.
func (c *shardCore) install(base int64) *msg.Installed {
	b := c.inflight
	if b == nil {
		panic("shards: revisions stamped for no batch")
	}
	c.inflight = nil
	next := base
	written := 0
	replies := make([]msg.Reply, 0, len(b.writes)+1)
	for i, w := range b.writes {
		if err := b.errs[i]; err != nil {
			replies = append(replies, reply(w.Reply, next-1, msg.Result{Err: err}))
			continue
		}
		c.apply.reset(next)
		resp, err := execRequest(c.apply, &b.env, w.Req)
		if err != nil || c.apply.changed() != b.writer[i] {
			panic(fmt.Sprintf("shards: shard %d: a write decided differently at revision %d than in its dry run (err %v)", c.cfg.ID, next, err))
		}
		c.applyMuts(next, c.apply.muts)
		written += mutationBytes(c.apply.muts)
		replies = append(replies, reply(w.Reply, c.apply.headerRev(), msg.Result{Resp: resp}))
		if b.writer[i] {
			next++
		}
	}
	c.publish()
	if r, ok := c.unsettled.add(next-1, written, c.wakeAt(), c.wake); ok {
		replies = append(replies, r)
	}
	return &msg.Installed{From: base, To: next - 1, Replies: replies}
}

// applyThaw ends the freeze: it applies what the cross-shard write changed
// here and returns the Installed that reports it, or nil if it changed
// nothing here.
func (c *shardCore) applyThaw(m *thaw) *msg.Installed {
	if !c.frozen {
		panic("shards: thaw on a shard that is not frozen")
	}
	c.frozen = false
	if len(m.Muts) == 0 {
		return nil
	}
	c.applyMuts(m.Rev, m.Muts)
	c.publish()
	var replies []msg.Reply
	if r, ok := c.unsettled.add(m.Rev, mutationBytes(m.Muts), c.wakeAt(), c.wake); ok {
		replies = []msg.Reply{r}
	}
	return &msg.Installed{From: m.Rev, To: m.Rev, Replies: replies}
}

// wakeAt is how many unsettled bytes make the shard ask to be woken when
// they are visible; never more than its limit, which must always have a
// wake-up coming.
func (c *shardCore) wakeAt() int {
	return min(settleWakeBytes, c.cfg.MaxUnsettledBytes)
}

func (c *shardCore) applyMuts(rev int64, muts []storage.Mutation) {
	for _, m := range muts {
		if m.Delete {
			c.cfg.Store.del(m.Key, rev)
		} else {
			c.cfg.Store.put(m.Key, m.Value, m.Lease, rev)
		}
	}
}

func (c *shardCore) publish() {
	c.cfg.Published.Store(c.cfg.Store.Snapshot())
}
