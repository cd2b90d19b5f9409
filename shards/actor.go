package shards

import (
	"fmt"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

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

// settleWakeBytes is how many unsettled bytes make a shard (or the
// coordinator) ask to be woken once they are visible, rather than forget
// them at its next message, which may not come for a long time after a
// burst: the values of a shard's last batch would stay in memory until its
// next write (measured: 490 MiB after a burst of 1 MiB values, two shards).
// Below it the wake-up, one more message per batch, is not worth its cost.
const settleWakeBytes = 1 << 20

// freeze asks a shard to finish its batch in flight, then stop planning
// writes and answer ReplyTo with frozenView, until thaw arrives. The
// coordinator uses it to evaluate a cross-shard request on a state nothing
// else changes.
type freeze struct {
	ReplyTo *actor.PID
}

// frozenView answers freeze with a snapshot of the shard's newest state.
type frozenView struct {
	Shard int
	View  *View
}

// thaw ends a freeze: the shard applies Muts at Rev (nothing if Muts
// is empty), reports them installed, and resumes.
type thaw struct {
	Rev  int64
	Muts []storage.Mutation
}

// RevisionSource is where shards sample the store's revision bounds.
type RevisionSource interface {
	Visible() int64
	Compacted() int64
}

// ShardConfig is what a shard actor is built from.
type ShardConfig struct {
	ID        int
	Store     *Store
	Published *atomic.Pointer[View] // this shard is its only writer
	Sequencer *actor.PID
	Revisions RevisionSource
	Leases    func(id int64) bool
	// Dropped, if not nil, is told the records each compaction drops, so
	// that they can be deleted from disk.
	Dropped func([]storage.KeyRev)
	// MaxBatch caps the writes planned and stamped together (0: the
	// default; 1: no batching).
	MaxBatch int
	// MaxQueued and MaxQueuedBytes cap the writes waiting for the shard,
	// in number and in bytes; MaxBatchBytes caps a batch in bytes;
	// MaxUnsettledBytes caps what the shard has installed but not seen
	// visible before it stops stamping (0: the Default… constants).
	MaxQueued         int
	MaxQueuedBytes    int
	MaxBatchBytes     int
	MaxUnsettledBytes int
}

func (c *ShardConfig) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxUnsettledBytes <= 0 {
		c.MaxUnsettledBytes = DefaultMaxUnsettledBytes
	}
}

// queued is a write waiting for its shard, with its size in bytes.
type queued struct {
	w    *msg.Write
	size int
}

// requestBytes is the size of a request as the client encoded it.
func requestBytes(req any) int {
	if m, ok := req.(proto.Message); ok {
		return proto.Size(m)
	}
	return 0
}

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
	wake  func() // sends the owner wakeUpMsg; set at its first add
}

type revBytes struct {
	rev   int64
	bytes int
}

// add records bytes written at revisions up to rev. With wakeAt or more
// bytes unsettled it returns a reply at rev that wakes the owner once rev
// is visible; ok is false otherwise.
func (u *unsettled) add(ctx actor.Context, rev int64, bytes, wakeAt int) (r msg.Reply, ok bool) {
	if bytes == 0 {
		return msg.Reply{}, false
	}
	u.revs = append(u.revs, revBytes{rev, bytes})
	u.bytes += bytes
	if u.bytes < wakeAt {
		return msg.Reply{}, false
	}
	if u.wake == nil {
		root, self := ctx.ActorSystem().Root, ctx.Self()
		u.wake = func() { root.Send(self, wakeUpMsg) }
	}
	return msg.Reply{Rev: rev, Send: u.wake}, true
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

// batch is the run of writes planned together and stamped by one Stamp.
type batch struct {
	writes []*msg.Write
	errs   []error // dry-run outcome: an error answers the write
	writer []bool  // dry-run outcome: the write changes something
	env    Env
}

type shardActor struct {
	cfg         ShardConfig
	queue       []queued
	queuedBytes int
	inflight    *batch
	unsettled   unsettled
	frozen      bool
	freezers    []*freeze
	compacts    []*msg.CompactShard
	apply       *overlay
}

// NewShardProps returns the props of a shard actor.
func NewShardProps(cfg ShardConfig) *actor.Props {
	cfg.setDefaults()
	return actor.PropsFromProducer(func() actor.Actor {
		cfg.Published.Store(cfg.Store.Snapshot())
		return &shardActor{cfg: cfg, apply: newOverlay(cfg.Store.live, 0)}
	})
}

func (s *shardActor) Receive(ctx actor.Context) {
	visible := s.cfg.Revisions.Visible()
	s.cfg.Store.Settle(visible)
	s.unsettled.settle(visible)
	switch m := ctx.Message().(type) {
	case *msg.Write:
		size := requestBytes(m.Req)
		if len(s.queue) >= s.cfg.MaxQueued || (len(s.queue) > 0 && s.queuedBytes+size > s.cfg.MaxQueuedBytes) {
			m.Reply <- msg.Result{Err: msg.ErrTooManyRequests}
			return
		}
		s.queue = append(s.queue, queued{m, size})
		s.queuedBytes += size
	case *msg.Stamped:
		s.install(ctx, m.Base)
	case *freeze:
		s.freezers = append(s.freezers, m)
	case *thaw:
		s.applyFrozen(ctx, m)
	case *msg.CompactShard:
		s.compacts = append(s.compacts, m)
	case *wakeUp:
		// Settled above; the shard may plan again.
	}
	s.pump(ctx)
}

// pump starts the next piece of work if the shard is idle: compaction
// first, then a waiting freeze (so cross-shard requests are not starved by a
// steady stream of writes), then the next batch, unless the shard holds
// too much that is not yet durable: then the wake-up of its last install
// brings it back here once that is visible.
func (s *shardActor) pump(ctx actor.Context) {
	if s.inflight != nil || s.frozen {
		return
	}
	for _, c := range s.compacts {
		dropped := s.cfg.Store.Compact(c.Rev)
		s.publish()
		if s.cfg.Dropped != nil && len(dropped) > 0 {
			s.cfg.Dropped(dropped)
		}
		if c.Done != nil {
			close(c.Done)
		}
	}
	s.compacts = s.compacts[:0]
	if len(s.freezers) > 0 {
		f := s.freezers[0]
		s.freezers = s.freezers[1:]
		s.frozen = true
		ctx.Send(f.ReplyTo, &frozenView{Shard: s.cfg.ID, View: s.cfg.Store.Snapshot()})
		return
	}
	if len(s.queue) > 0 && s.unsettled.bytes < s.cfg.MaxUnsettledBytes {
		s.plan(ctx)
	}
}

// plan dry-runs the queued writes against the store plus their own
// earlier writes, to learn which change something, and asks the sequencer
// for that many revisions. A write that compares a revision its batch has
// not stamped yet starts the next batch.
func (s *shardActor) plan(ctx actor.Context) {
	b := &batch{env: Env{
		Visible:     s.cfg.Revisions.Visible(),
		Compacted:   s.cfg.Revisions.Compacted(),
		LeaseExists: s.cfg.Leases,
	}}
	dry := newOverlay(s.cfg.Store.live, 0)
	var writes [][]storage.Mutation
	n, bytes := 0, 0
	for n < len(s.queue) && n < s.cfg.MaxBatch {
		w, size := s.queue[n].w, s.queue[n].size
		if n > 0 && bytes+size > s.cfg.MaxBatchBytes {
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
	clear(s.queue[:n]) // drop the handled writes' payloads now, not at the next reallocation
	s.queue = s.queue[n:]
	s.queuedBytes -= bytes
	s.inflight = b
	ctx.Send(s.cfg.Sequencer, &msg.Stamp{Writes: writes, Parts: 1, ReplyTo: ctx.Self()})
}

// install runs the batch again at its revisions, applying each write to
// the store, publishes the new view and reports the revisions installed.
func (s *shardActor) install(ctx actor.Context, base int64) {
	b := s.inflight
	if b == nil {
		panic("shards: revisions stamped for no batch")
	}
	s.inflight = nil
	next := base
	written := 0
	replies := make([]msg.Reply, 0, len(b.writes)+1)
	for i, w := range b.writes {
		if err := b.errs[i]; err != nil {
			replies = append(replies, reply(w.Reply, next-1, msg.Result{Err: err}))
			continue
		}
		s.apply.reset(next)
		resp, err := execRequest(s.apply, &b.env, w.Req)
		if err != nil || s.apply.changed() != b.writer[i] {
			panic(fmt.Sprintf("shards: shard %d: a write decided differently at revision %d than in its dry run (err %v)", s.cfg.ID, next, err))
		}
		s.applyMuts(next, s.apply.muts)
		written += mutationBytes(s.apply.muts)
		replies = append(replies, reply(w.Reply, s.apply.headerRev(), msg.Result{Resp: resp}))
		if b.writer[i] {
			next++
		}
	}
	s.publish()
	if r, ok := s.unsettled.add(ctx, next-1, written, s.wakeAt()); ok {
		replies = append(replies, r)
	}
	ctx.Send(s.cfg.Sequencer, &msg.Installed{From: base, To: next - 1, Replies: replies})
}

// wakeAt is how many unsettled bytes make the shard ask to be woken when
// they are visible; never more than its limit, which must always have a
// wake-up coming.
func (s *shardActor) wakeAt() int {
	return min(settleWakeBytes, s.cfg.MaxUnsettledBytes)
}

func (s *shardActor) applyFrozen(ctx actor.Context, m *thaw) {
	if !s.frozen {
		panic("shards: thaw on a shard that is not frozen")
	}
	s.frozen = false
	if len(m.Muts) == 0 {
		return
	}
	s.applyMuts(m.Rev, m.Muts)
	s.publish()
	var replies []msg.Reply
	if r, ok := s.unsettled.add(ctx, m.Rev, mutationBytes(m.Muts), s.wakeAt()); ok {
		replies = []msg.Reply{r}
	}
	ctx.Send(s.cfg.Sequencer, &msg.Installed{From: m.Rev, To: m.Rev, Replies: replies})
}

func (s *shardActor) applyMuts(rev int64, muts []storage.Mutation) {
	for _, m := range muts {
		if m.Delete {
			s.cfg.Store.Delete(m.Key, rev)
		} else {
			s.cfg.Store.Put(m.Key, m.Value, m.Lease, rev)
		}
	}
}

func (s *shardActor) publish() {
	s.cfg.Published.Store(s.cfg.Store.Snapshot())
}

func reply(ch chan<- msg.Result, rev int64, r msg.Result) msg.Reply {
	return msg.Reply{Rev: rev, Send: func() { ch <- r }}
}
