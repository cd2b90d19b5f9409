package shards

import (
	"fmt"
	"math"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

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

// coordCore is the coordinator's state machine, free of actors as
// shardCore is; the shell is coordinator_actor.go. It runs writes that
// touch several shards, one at a time:
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
type coordCore struct {
	cfg       CoordinatorConfig
	queue     writeQueue
	cur       *crossOp // the write running; nil when idle
	unsettled unsettled
	// wake sends the coordinator wakeUpMsg; the shell sets it when the
	// actor starts.
	wake func()
}

type crossOp struct {
	w        *msg.Write
	involved []int
	views    []*View
	waiting  int
	env      evalEnv
	dry      *overlay
	err      error
	// by is the dry run's mutations grouped by shard. The run at the real
	// revision writes the same keys, values and leases (it is checked), so
	// these are what each shard applies.
	by map[int][]storage.Mutation
	// revokeKeys are, for a lease revoke, the lease's keys on every shard.
	revokeKeys []string
}

// exec evaluates the write on o: a lease revoke deletes the lease's keys,
// in key order as etcd's lessor does, anything else runs as requested.
func (op *crossOp) exec(o *overlay) (msg.Response, error) {
	if op.w.Req.Revoke == nil {
		return execRequest(o, &op.env, op.w.Req)
	}
	for _, k := range op.revokeKeys {
		o.del(k)
	}
	return msg.Response{Revoke: &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: o.headerRev()}}}, nil
}

// shardThaw is a thaw and the shard it goes to.
type shardThaw struct {
	shard int
	thaw  *thaw
}

func newCoordCore(cfg CoordinatorConfig) *coordCore {
	cfg.setDefaults()
	return &coordCore{cfg: cfg}
}

// settle forgets what is visible now. The shell calls it on every message.
func (c *coordCore) settle() { c.unsettled.settle(c.cfg.Revisions.Visible()) }

// write queues w, or refuses it with msg.ErrTooManyRequests when the queue
// is full (cfg.MaxQueued, cfg.MaxQueuedBytes). A lease revoke is never
// refused: its lease has left the table already, and the lease actor
// bounds how many it has under way (lease.maxRevoking).
func (c *coordCore) write(w *msg.Write) error {
	if w.Req.Revoke != nil {
		return c.queue.push(w, math.MaxInt, math.MaxInt)
	}
	return c.queue.push(w, c.cfg.MaxQueued, c.cfg.MaxQueuedBytes)
}

// next starts the first queued write, unless one is running or too much
// that the coordinator wrote is not yet visible: then the wake-up of its
// last write brings it back here once that is. It returns the shards to
// freeze (none: nothing started) and, for a lease revoke, the lease whose
// keys they are to name.
func (c *coordCore) next() ([]int, int64) {
	if c.cur != nil || len(c.queue.ws) == 0 || c.unsettled.bytes >= c.cfg.MaxUnsettledBytes {
		return nil, 0
	}
	w := c.queue.ws[0].w
	c.queue.drop(1, c.queue.ws[0].size)
	op := &crossOp{
		w:        w,
		involved: c.cfg.Router.involved(w.Req),
		views:    make([]*View, c.cfg.Router.count()),
	}
	op.waiting = len(op.involved)
	c.cur = op
	var lease int64
	if r := w.Req.Revoke; r != nil {
		lease = r.ID
	}
	return op.involved, lease
}

// frozen takes a frozen shard's view. Once it has every involved shard's,
// it dry-runs the write on them and returns the Stamp that asks for its
// revision (ReplyTo is left to the shell); nil until then.
func (c *coordCore) frozen(m *frozenView) *msg.Stamp {
	op := c.cur
	op.views[m.Shard] = m.View
	op.revokeKeys = append(op.revokeKeys, m.LeaseKeys...)
	if op.waiting--; op.waiting > 0 {
		return nil
	}
	slices.Sort(op.revokeKeys)
	op.env = evalEnv{
		Visible:     c.cfg.Revisions.Visible(),
		Compacted:   c.cfg.Revisions.Compacted(),
		LeaseExists: c.cfg.Leases,
	}
	op.dry = newOverlay(&viewSet{router: c.cfg.Router, views: op.views}, placeholder(0))
	_, op.err = op.exec(op.dry)
	var writes [][]storage.Mutation
	if op.err == nil && op.dry.changed() {
		writes = [][]storage.Mutation{op.dry.muts}
		op.by = c.written(op.dry.muts)
	}
	stamp := &msg.Stamp{Writes: writes, Parts: len(op.by)}
	if r := op.w.Req.Revoke; r != nil && writes != nil {
		stamp.Leases = []storage.LeaseRecord{{ID: r.ID, Revoke: true}}
	}
	return stamp
}

// written returns the shards that muts write, as a set.
func (c *coordCore) written(muts []storage.Mutation) map[int][]storage.Mutation {
	by := make(map[int][]storage.Mutation)
	for _, m := range muts {
		s := c.cfg.Router.Shard(m.Key)
		by[s] = append(by[s], m)
	}
	return by
}

// stamped runs the write at its revision base and ends it. It returns a
// thaw for each involved shard, in order, and the Deliver that hands the
// answer to the sequencer; the shell sends them, then calls next. A lease
// revoke that deleted nothing instead returns the LogLeases that records
// it, which answers once durable.
func (c *coordCore) stamped(base int64) ([]shardThaw, *msg.Deliver, *msg.LogLeases) {
	op := c.cur
	c.cur = nil
	var r msg.Reply
	var logged *msg.LogLeases
	switch {
	case op.err != nil:
		r = reply(op.w.Reply, base-1, msg.Result{Err: op.err})
	case !op.dry.changed():
		resp, err := op.exec(newOverlay(op.dry.base, base))
		r = reply(op.w.Reply, base-1, msg.Result{Resp: resp, Err: err})
		if rv := op.w.Req.Revoke; rv != nil {
			logged = &msg.LogLeases{Records: []storage.LeaseRecord{{ID: rv.ID, Revoke: true}}, Reply: func(err error) {
				if err != nil {
					op.w.Reply <- msg.Result{Err: err}
					return
				}
				r.Send()
			}}
		}
	default:
		o := newOverlay(op.dry.base, base)
		resp, err := op.exec(o)
		if err != nil || len(o.muts) != len(op.dry.muts) {
			panic(fmt.Sprintf("shards: cross-shard write decided differently at revision %d than in its dry run (err %v)", base, err))
		}
		r = reply(op.w.Reply, base, msg.Result{Resp: resp})
	}
	thaws := make([]shardThaw, len(op.involved))
	for j, i := range op.involved {
		thaws[j] = shardThaw{shard: i, thaw: &thaw{Rev: base, Muts: op.by[i]}}
	}
	var replies []msg.Reply
	if logged == nil {
		replies = append(replies, r)
	}
	if op.by != nil {
		if w, ok := c.unsettled.add(base, mutationBytes(op.dry.muts), min(settleWakeBytes, c.cfg.MaxUnsettledBytes), c.wake); ok {
			replies = append(replies, w)
		}
	}
	return thaws, &msg.Deliver{Replies: replies}, logged
}
