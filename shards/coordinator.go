package shards

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
)

// MaxCoordinated is how many cross-shard writes may wait for the
// coordinator; past it they are refused with ErrTooManyRequests.
const MaxCoordinated = 4096

// CoordinatorConfig is what the coordinator is built from.
type CoordinatorConfig struct {
	Router    Router
	Shards    []*actor.PID
	Sequencer *actor.PID
	Revisions RevisionSource
	Leases    func(id int64) bool
}

// coordinator runs writes that touch several shards, one at a time:
//
//  1. freeze every involved shard (each finishes its batch in flight and
//     answers with a snapshot of its newest state);
//  2. dry-run the request on those snapshots to learn whether it writes;
//  3. get its revision from the sequencer (none if it writes nothing) while
//     the shards are still frozen, so nothing can commit in between;
//  4. run it at that revision, send each shard its writes (which unfreezes
//     it) and hand the answer to the sequencer, which releases it once every
//     shard has installed the revision.
//
// Because it is the only actor that freezes more than one shard, freezes
// cannot deadlock; the single-shard path pays nothing for it.
type coordinator struct {
	cfg   CoordinatorConfig
	queue []*Write
	cur   *crossOp
}

type crossOp struct {
	w        *Write
	involved []int
	views    []*View
	waiting  int
	env      Env
	dry      *overlay
	err      error
	// by is the dry run's mutations grouped by shard. The run at the real
	// revision writes the same keys, values and leases (it is checked), so
	// these are what each shard applies.
	by map[int][]msg.Mutation
}

// NewCoordinatorProps returns the props of the coordinator actor.
func NewCoordinatorProps(cfg CoordinatorConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &coordinator{cfg: cfg} })
}

func (c *coordinator) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *Write:
		if len(c.queue) >= MaxCoordinated {
			m.Reply <- Result{Err: ErrTooManyRequests}
			return
		}
		c.queue = append(c.queue, m)
		c.next(ctx)
	case *Frozen:
		c.frozen(ctx, m)
	case *msg.Stamped:
		c.stamped(ctx, m.Base)
	}
}

func (c *coordinator) next(ctx actor.Context) {
	if c.cur != nil || len(c.queue) == 0 {
		return
	}
	w := c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	op := &crossOp{
		w:        w,
		involved: c.cfg.Router.Involved(w.Req),
		views:    make([]*View, c.cfg.Router.Shards()),
	}
	op.waiting = len(op.involved)
	c.cur = op
	for _, i := range op.involved {
		ctx.Send(c.cfg.Shards[i], &Freeze{ReplyTo: ctx.Self()})
	}
}

func (c *coordinator) frozen(ctx actor.Context, m *Frozen) {
	op := c.cur
	op.views[m.Shard] = m.View
	if op.waiting--; op.waiting > 0 {
		return
	}
	op.env = Env{
		Visible:     c.cfg.Revisions.Visible(),
		Compacted:   c.cfg.Revisions.Compacted(),
		LeaseExists: c.cfg.Leases,
	}
	op.dry = newOverlay(&Views{router: c.cfg.Router, views: op.views}, placeholder(0))
	_, op.err = execRequest(op.dry, &op.env, op.w.Req)
	var writes [][]msg.Mutation
	if op.err == nil && op.dry.changed() {
		writes = [][]msg.Mutation{op.dry.muts}
		op.by = c.written(op.dry.muts)
	}
	ctx.Send(c.cfg.Sequencer, &msg.Stamp{Writes: writes, Parts: len(op.by), ReplyTo: ctx.Self()})
}

// written returns the shards that muts write, as a set.
func (c *coordinator) written(muts []msg.Mutation) map[int][]msg.Mutation {
	by := make(map[int][]msg.Mutation)
	for _, m := range muts {
		s := c.cfg.Router.Shard(m.Key)
		by[s] = append(by[s], m)
	}
	return by
}

func (c *coordinator) stamped(ctx actor.Context, base int64) {
	op := c.cur
	c.cur = nil
	var r msg.Reply
	switch {
	case op.err != nil:
		r = reply(op.w.Reply, base-1, Result{Err: op.err})
	case !op.dry.changed():
		resp, err := execRequest(newOverlay(op.dry.base, base), &op.env, op.w.Req)
		r = reply(op.w.Reply, base-1, Result{Resp: resp, Err: err})
	default:
		o := newOverlay(op.dry.base, base)
		resp, err := execRequest(o, &op.env, op.w.Req)
		if err != nil || len(o.muts) != len(op.dry.muts) {
			panic(fmt.Sprintf("shards: cross-shard write decided differently at revision %d than in its dry run (err %v)", base, err))
		}
		r = reply(op.w.Reply, base, Result{Resp: resp})
	}
	for _, i := range op.involved {
		ctx.Send(c.cfg.Shards[i], &ApplyFrozen{Rev: base, Muts: op.by[i]})
	}
	ctx.Send(c.cfg.Sequencer, &msg.Deliver{Replies: []msg.Reply{r}})
	c.next(ctx)
}
