package shards

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/metrics"
)

// CoordinatorConfig is what the coordinator is built from.
type CoordinatorConfig struct {
	Router    Router
	Shards    []*actor.PID
	Sequencer *actor.PID
	Revisions RevisionSource
	Leases    func(id int64) bool
	// MaxQueued and MaxQueuedBytes cap the writes waiting for the
	// coordinator, in number and in bytes; MaxUnsettledBytes caps what it
	// has written but not seen visible before it starts no new write (0:
	// DefaultMaxCoordinated, DefaultMaxCoordinatedBytes,
	// DefaultMaxUnsettledBytes).
	MaxQueued         int
	MaxQueuedBytes    int
	MaxUnsettledBytes int
}

func (c *CoordinatorConfig) setDefaults() {
	if c.MaxQueued <= 0 {
		c.MaxQueued = DefaultMaxCoordinated
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = DefaultMaxCoordinatedBytes
	}
	if c.MaxUnsettledBytes <= 0 {
		c.MaxUnsettledBytes = DefaultMaxUnsettledBytes
	}
}

// coordinator is the shell of the coordinator (see coordCore): it hands
// each message to its core and sends what the core returns.
type coordinator struct {
	shards    []*actor.PID
	sequencer *actor.PID
	core      *coordCore
}

// NewCoordinatorProps returns the props of the coordinator actor.
func NewCoordinatorProps(cfg CoordinatorConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &coordinator{shards: cfg.Shards, sequencer: cfg.Sequencer, core: newCoordCore(cfg)}
	})
}

func (c *coordinator) Receive(ctx actor.Context) {
	c.core.settle()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		root, self := ctx.ActorSystem().Root, ctx.Self()
		c.core.wake = func() { root.Send(self, wakeUpMsg) }
	case *msg.Write:
		if err := c.core.write(m); err != nil {
			m.Reply <- msg.Result{Err: err}
			return
		}
		c.next(ctx)
	case *frozenView:
		if stamp := c.core.frozen(m); stamp != nil {
			stamp.ReplyTo = ctx.Self()
			ctx.Send(c.sequencer, stamp)
		}
	case *msg.Stamped:
		if op := c.core.cur; op.w.Req.Revoke != nil && op.err == nil {
			// A revoke deletes its lease's keys, each counted as etcd's
			// lessor counts it (the rpc layer counts the KV requests).
			metrics.MVCCRequest(0, 0, len(op.revokeKeys), 0)
		}
		thaws, deliver, logged := c.core.stamped(m.Base)
		for _, t := range thaws {
			ctx.Send(c.shards[t.shard], t.thaw)
		}
		ctx.Send(c.sequencer, deliver)
		if logged != nil {
			ctx.Send(c.sequencer, logged)
		}
		c.next(ctx)
	case *wakeUp:
		c.next(ctx)
	}
}

// next freezes the shards of the next write, if the core starts one.
func (c *coordinator) next(ctx actor.Context) {
	shards, lease := c.core.next()
	if len(shards) > 0 {
		metrics.CoordinatorWrite(len(shards), len(c.core.queue.ws))
	}
	for _, i := range shards {
		ctx.Send(c.shards[i], &freeze{ReplyTo: ctx.Self(), Lease: lease})
	}
}
