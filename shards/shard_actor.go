package shards

import (
	"fmt"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/metrics"
	"github.com/metastore/metastore/storage"
)

// ShardConfig is what a shard actor is built from.
type ShardConfig struct {
	ID    int
	Store *Store
	// Published is where the shard publishes its views for the read path;
	// the shard is its only writer. The caller publishes the first view
	// (Store.Snapshot) before it spawns the shard, so that a reader never
	// finds none.
	Published *atomic.Pointer[View]
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

// ShardName is the name of the shard actor with ID id, which its metrics
// are labelled with.
func ShardName(id int) string { return fmt.Sprintf("shard-%d", id) }

// shardActor is the shell of a shard: it hands each message to its core
// and sends what the core returns.
type shardActor struct {
	sequencer *actor.PID
	core      *shardCore
	metrics   *metrics.Shard
}

// NewShardProps returns the props of a shard actor.
func NewShardProps(cfg ShardConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &shardActor{sequencer: cfg.Sequencer, core: newShardCore(cfg), metrics: metrics.ShardNamed(ShardName(cfg.ID))}
	})
}

func (s *shardActor) Receive(ctx actor.Context) {
	s.core.settle()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		root, self := ctx.ActorSystem().Root, ctx.Self()
		s.core.wake = func() { root.Send(self, wakeUpMsg) }
	case *msg.Write:
		if err := s.core.write(m); err != nil {
			m.Reply <- msg.Result{Err: err}
			return
		}
	case *msg.Stamped:
		ctx.Send(s.sequencer, s.core.install(m.Base))
	case *freeze:
		s.core.queueFreeze(m)
	case *thaw:
		if in := s.core.applyThaw(m); in != nil {
			ctx.Send(s.sequencer, in)
		}
	case *msg.CompactShard:
		s.core.queueCompact(m)
	case *msg.LeaseKeys:
		m.Reply <- s.core.cfg.Store.LeaseKeys(m.ID)
	case *wakeUp:
		// Settled above; the shard may plan again.
	}
	switch f, view, stamp := s.core.pump(); {
	case f != nil:
		ctx.Send(f.ReplyTo, view)
	case stamp != nil:
		stamp.ReplyTo = ctx.Self()
		ctx.Send(s.sequencer, stamp)
		s.metrics.Batch(len(s.core.inflight.writes), len(s.core.queue.ws))
	}
}
