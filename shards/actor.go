package shards

import (
	"fmt"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/actors/storage"
)

// Limits of a shard's queues. At the limit a write is refused with
// ErrTooManyRequests rather than queued without bound.
const (
	// MaxQueued is how many writes may wait for a shard.
	MaxQueued = 16384
	// DefaultMaxBatch is how many writes one batch (one Stamp) carries
	// unless configured otherwise; 1 turns batching off.
	DefaultMaxBatch = 512
)

// Result is the answer to a write: an etcd response, or an error.
type Result struct {
	Resp any
	Err  error
}

// Write asks a shard to run a Put, DeleteRange or Txn whose keys it owns
// alone. The answer goes to Reply (buffered, capacity 1) once its revision
// is visible.
type Write struct {
	Req   any
	Reply chan<- Result
}

// Freeze asks a shard to finish its batch in flight, then stop planning
// writes and answer ReplyTo with Frozen, until ApplyFrozen arrives. The
// coordinator uses it to evaluate a cross-shard request on a state nothing
// else changes.
type Freeze struct {
	ReplyTo *actor.PID
}

// Frozen answers Freeze with a snapshot of the shard's newest state.
type Frozen struct {
	Shard int
	View  *View
}

// ApplyFrozen ends a freeze: the shard applies Muts at Rev (nothing if Muts
// is empty), reports them installed, and resumes.
type ApplyFrozen struct {
	Rev  int64
	Muts []msg.Mutation
}

// CompactShard asks a shard to drop its history at or below Rev. Done, if
// not nil, is closed when the shard's published view no longer has it.
type CompactShard struct {
	Rev  int64
	Done chan<- struct{}
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
}

// batch is the run of writes planned together and stamped by one Stamp.
type batch struct {
	writes []*Write
	errs   []error // dry-run outcome: an error answers the write
	writer []bool  // dry-run outcome: the write changes something
	env    Env
}

type shardActor struct {
	cfg      ShardConfig
	queue    []*Write
	inflight *batch
	frozen   bool
	freezers []*Freeze
	compacts []*CompactShard
	apply    *overlay
}

// NewShardProps returns the props of a shard actor.
func NewShardProps(cfg ShardConfig) *actor.Props {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	return actor.PropsFromProducer(func() actor.Actor {
		cfg.Published.Store(cfg.Store.Snapshot())
		return &shardActor{cfg: cfg, apply: newOverlay(cfg.Store.live, 0)}
	})
}

func (s *shardActor) Receive(ctx actor.Context) {
	s.cfg.Store.Settle(s.cfg.Revisions.Visible())
	switch m := ctx.Message().(type) {
	case *Write:
		if len(s.queue) >= MaxQueued {
			m.Reply <- Result{Err: ErrTooManyRequests}
			return
		}
		s.queue = append(s.queue, m)
	case *msg.Stamped:
		s.install(ctx, m.Base)
	case *Freeze:
		s.freezers = append(s.freezers, m)
	case *ApplyFrozen:
		s.applyFrozen(ctx, m)
	case *CompactShard:
		s.compacts = append(s.compacts, m)
	}
	s.pump(ctx)
}

// pump starts the next piece of work if the shard is idle: compaction
// first, then a waiting freeze (so cross-shard requests are not starved by a
// steady stream of writes), then the next batch.
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
		ctx.Send(f.ReplyTo, &Frozen{Shard: s.cfg.ID, View: s.cfg.Store.Snapshot()})
		return
	}
	if len(s.queue) > 0 {
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
	var writes [][]msg.Mutation
	n := 0
	for n < len(s.queue) && n < s.cfg.MaxBatch {
		w := s.queue[n]
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
		n++
	}
	clear(s.queue[:n]) // drop the handled writes' payloads now, not at the next reallocation
	s.queue = s.queue[n:]
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
	replies := make([]msg.Reply, 0, len(b.writes))
	for i, w := range b.writes {
		if err := b.errs[i]; err != nil {
			replies = append(replies, reply(w.Reply, next-1, Result{Err: err}))
			continue
		}
		s.apply.reset(next)
		resp, err := execRequest(s.apply, &b.env, w.Req)
		if err != nil || s.apply.changed() != b.writer[i] {
			panic(fmt.Sprintf("shards: shard %d: a write decided differently at revision %d than in its dry run (err %v)", s.cfg.ID, next, err))
		}
		s.applyMuts(next, s.apply.muts)
		replies = append(replies, reply(w.Reply, s.apply.headerRev(), Result{Resp: resp}))
		if b.writer[i] {
			next++
		}
	}
	s.publish()
	ctx.Send(s.cfg.Sequencer, &msg.Installed{From: base, To: next - 1, Replies: replies})
}

func (s *shardActor) applyFrozen(ctx actor.Context, m *ApplyFrozen) {
	if !s.frozen {
		panic("shards: ApplyFrozen on a shard that is not frozen")
	}
	s.frozen = false
	if len(m.Muts) == 0 {
		return
	}
	s.applyMuts(m.Rev, m.Muts)
	s.publish()
	ctx.Send(s.cfg.Sequencer, &msg.Installed{From: m.Rev, To: m.Rev})
}

func (s *shardActor) applyMuts(rev int64, muts []msg.Mutation) {
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

func reply(ch chan<- Result, rev int64, r Result) msg.Reply {
	return msg.Reply{Rev: rev, Send: func() { ch <- r }}
}
