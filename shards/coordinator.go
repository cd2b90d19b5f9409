package shards

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// Limits of the coordinator unless CoordinatorConfig sets others. Past a
// queue limit a cross-shard write is refused with msg.ErrTooManyRequests; with
// DefaultMaxUnsettledBytes of its writes not yet visible the coordinator
// starts no new one until they are (as a shard stops stamping), so that a
// stream of large cross-shard writes cannot outrun the disk.
const (
	// DefaultMaxCoordinated is how many cross-shard writes may wait.
	DefaultMaxCoordinated = 4096
	// DefaultMaxCoordinatedBytes is how many bytes of requests may wait;
	// a write larger than that is still taken into an empty queue.
	DefaultMaxCoordinatedBytes = 32 << 20
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
	cfg         CoordinatorConfig
	queue       []queued
	queuedBytes int
	cur         *crossOp
	unsettled   unsettled
}

type crossOp struct {
	w        *msg.Write
	involved []int
	views    []*View
	waiting  int
	env      Env
	dry      *overlay
	err      error
	// by is the dry run's mutations grouped by shard. The run at the real
	// revision writes the same keys, values and leases (it is checked), so
	// these are what each shard applies.
	by map[int][]storage.Mutation
}

// NewCoordinatorProps returns the props of the coordinator actor.
func NewCoordinatorProps(cfg CoordinatorConfig) *actor.Props {
	cfg.setDefaults()
	return actor.PropsFromProducer(func() actor.Actor { return &coordinator{cfg: cfg} })
}

func (c *coordinator) Receive(ctx actor.Context) {
	c.unsettled.settle(c.cfg.Revisions.Visible())
	switch m := ctx.Message().(type) {
	case *msg.Write:
		size := requestBytes(m.Req)
		if len(c.queue) >= c.cfg.MaxQueued || (len(c.queue) > 0 && c.queuedBytes+size > c.cfg.MaxQueuedBytes) {
			m.Reply <- msg.Result{Err: msg.ErrTooManyRequests}
			return
		}
		c.queue = append(c.queue, queued{m, size})
		c.queuedBytes += size
		c.next(ctx)
	case *frozenView:
		c.frozen(ctx, m)
	case *msg.Stamped:
		c.stamped(ctx, m.Base)
	case *wakeUp:
		c.next(ctx)
	}
}

// next starts the first queued write, unless one is running or too much
// that the coordinator wrote is not yet visible: then the wake-up of its
// last write brings it back here once that is.
func (c *coordinator) next(ctx actor.Context) {
	if c.cur != nil || len(c.queue) == 0 || c.unsettled.bytes >= c.cfg.MaxUnsettledBytes {
		return
	}
	w := c.queue[0].w
	c.queuedBytes -= c.queue[0].size
	c.queue[0] = queued{}
	c.queue = c.queue[1:]
	op := &crossOp{
		w:        w,
		involved: c.cfg.Router.Involved(w.Req),
		views:    make([]*View, c.cfg.Router.Shards()),
	}
	op.waiting = len(op.involved)
	c.cur = op
	for _, i := range op.involved {
		ctx.Send(c.cfg.Shards[i], &freeze{ReplyTo: ctx.Self()})
	}
}

func (c *coordinator) frozen(ctx actor.Context, m *frozenView) {
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
	var writes [][]storage.Mutation
	if op.err == nil && op.dry.changed() {
		writes = [][]storage.Mutation{op.dry.muts}
		op.by = c.written(op.dry.muts)
	}
	ctx.Send(c.cfg.Sequencer, &msg.Stamp{Writes: writes, Parts: len(op.by), ReplyTo: ctx.Self()})
}

// written returns the shards that muts write, as a set.
func (c *coordinator) written(muts []storage.Mutation) map[int][]storage.Mutation {
	by := make(map[int][]storage.Mutation)
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
		r = reply(op.w.Reply, base-1, msg.Result{Err: op.err})
	case !op.dry.changed():
		resp, err := execRequest(newOverlay(op.dry.base, base), &op.env, op.w.Req)
		r = reply(op.w.Reply, base-1, msg.Result{Resp: resp, Err: err})
	default:
		o := newOverlay(op.dry.base, base)
		resp, err := execRequest(o, &op.env, op.w.Req)
		if err != nil || len(o.muts) != len(op.dry.muts) {
			panic(fmt.Sprintf("shards: cross-shard write decided differently at revision %d than in its dry run (err %v)", base, err))
		}
		r = reply(op.w.Reply, base, msg.Result{Resp: resp})
	}
	for _, i := range op.involved {
		ctx.Send(c.cfg.Shards[i], &thaw{Rev: base, Muts: op.by[i]})
	}
	replies := []msg.Reply{r}
	if op.by != nil {
		if w, ok := c.unsettled.add(ctx, base, mutationBytes(op.dry.muts), min(settleWakeBytes, c.cfg.MaxUnsettledBytes)); ok {
			replies = append(replies, w)
		}
	}
	ctx.Send(c.cfg.Sequencer, &msg.Deliver{Replies: replies})
	c.next(ctx)
}
