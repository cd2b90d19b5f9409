package lease

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/metrics"
	"github.com/metastore/metastore/storage"
)

// Config is what the lease actor is built from.
type Config struct {
	// Table is where it publishes which leases exist; it is the single
	// writer.
	Table *Table
	// Leases are those the data dir holds (ID → TTL), restored with full
	// deadlines.
	Leases map[int64]int64
	// Sequencer logs grants and key-less revokes; Coordinator runs revokes.
	Sequencer, Coordinator *actor.PID
	// MemberID seeds the IDs of grants that name none.
	MemberID uint64
	// MinTTL is the shortest TTL granted, in seconds (DefaultMinTTL).
	MinTTL int64
	// RevokeRate bounds the expired leases revoked per second
	// (DefaultRevokeRate).
	RevokeRate int
	// Log says when the commit log has failed: from then on no revoke is
	// answered by its write, and expiry stops.
	Log LogState
	// Logger receives expiry failures; nil means slog.Default().
	Logger *slog.Logger
}

// LogState is the commit log's failure, as the sequencer publishes it.
type LogState interface {
	Failed() <-chan struct{}
	Failure() error
}

// DefaultMinTTL is the shortest TTL a lease gets: etcd's, derived from its
// default election timeout (1.5 × 1 s, rounded up).
const DefaultMinTTL = 2

// DefaultRevokeRate is how many expired leases are revoked per second at
// most, as etcd's leaseRevokeRate: a mass expiry is spread out instead of
// stalling every write behind it.
const DefaultRevokeRate = 1000

// expireEvery is how often expired leases are looked for (etcd: 500 ms):
// a lease is revoked within about that much of its deadline.
const expireEvery = 500 * time.Millisecond

// The requests the lease actor takes. Each answers on a buffered channel.
type (
	// Grant asks for a lease of TTL seconds; ID 0 lets the actor choose.
	Grant struct {
		ID, TTL int64
		Reply   chan<- Granted
	}
	// Granted answers Grant.
	Granted struct {
		ID, TTL int64
		Err     error
	}
	// Revoke asks for a lease to be revoked; the answer is the revoke's
	// write result (msg.ErrLeaseNotFound for a lease that does not exist
	// or is being revoked).
	Revoke struct {
		ID    int64
		Reply chan<- msg.Result
	}
	// KeepAlive renews a lease; the answer is its TTL, 0 if it is gone.
	KeepAlive struct {
		ID    int64
		Reply chan<- int64
	}
	// TimeToLive asks for a lease's remaining and granted TTL.
	TimeToLive struct {
		ID    int64
		Reply chan<- Remaining
	}
	// Remaining answers TimeToLive; Found is false for no such lease.
	Remaining struct {
		TTL, Granted int64
		Found        bool
	}
	// List asks for the IDs of every lease.
	List struct {
		Reply chan<- []int64
	}
)

// Messages the actor sends itself.
type (
	grantLogged struct {
		rec   storage.LeaseRecord
		err   error
		reply chan<- Granted
	}
	revokeDone struct {
		id  int64
		res msg.Result
	}
	expireTick struct{}
)

type leaseActor struct {
	cfg  Config
	core *core
	stop func()
	root *actor.RootContext
	self *actor.PID
	// done is closed when the actor stops: revokes still waiting for the
	// coordinator give up.
	done chan struct{}
	// held and revoking are what the metrics were last told.
	held, revoking int
}

// Props returns the props of the lease actor.
func Props(cfg Config) *actor.Props {
	if cfg.MinTTL <= 0 {
		cfg.MinTTL = DefaultMinTTL
	}
	if cfg.RevokeRate <= 0 {
		cfg.RevokeRate = DefaultRevokeRate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := newCore(cfg.Table, cfg.MinTTL, cfg.MemberID)
	now := time.Now()
	for id, ttl := range cfg.Leases {
		c.restore(id, ttl, now)
	}
	return actor.PropsFromProducer(func() actor.Actor { return &leaseActor{cfg: cfg, core: c, done: make(chan struct{})} })
}

func (a *leaseActor) Receive(ctx actor.Context) {
	defer a.report()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.root, a.self = ctx.ActorSystem().Root, ctx.Self()
		a.stop = msg.Tick(a.root, a.self, expireEvery, expireTick{})
	case *actor.Stopped:
		a.stop()
		close(a.done)
	case *Grant:
		a.grant(m)
	case grantLogged:
		if m.err != nil {
			a.core.grantFailed(m.rec.ID)
			m.reply <- Granted{Err: m.err}
			return
		}
		a.core.granted(m.rec, time.Now())
		metrics.LeaseGranted(m.rec.TTL)
		m.reply <- Granted{ID: m.rec.ID, TTL: m.rec.TTL}
	case *Revoke:
		if err := a.core.revoke(m.ID, m.Reply); err != nil {
			m.Reply <- msg.Result{Err: err}
			return
		}
		a.runRevoke(m.ID)
	case revokeDone:
		if m.res.Err != nil {
			a.cfg.Logger.Warn("lease revoke refused; the lease stays until it is revoked again (an expired one on a later tick)", "lease", m.id, "err", m.res.Err)
		} else {
			// An expiry's revoke has no client waiting (etcd counts it
			// as expired once it is done, too).
			l := a.core.leases[m.id]
			metrics.LeaseRevoked(l != nil && l.reply == nil)
		}
		a.core.revoked(m.id, m.res)
	case *KeepAlive:
		ttl := a.core.renew(m.ID, time.Now())
		if ttl > 0 {
			metrics.LeaseRenewed()
		}
		m.Reply <- ttl
	case *TimeToLive:
		ttl, granted, ok := a.core.timeToLive(m.ID, time.Now())
		m.Reply <- Remaining{TTL: ttl, Granted: granted, Found: ok}
	case *List:
		m.Reply <- a.core.list()
	case expireTick:
		if a.cfg.Log.Failure() != nil {
			return // nothing can be revoked any more
		}
		for _, id := range a.core.expire(time.Now(), a.cfg.RevokeRate*int(expireEvery)/int(time.Second)) {
			a.runRevoke(id)
		}
	}
}

// grant checks a grant and has the sequencer make it durable; the answer
// comes back as grantLogged.
func (a *leaseActor) grant(m *Grant) {
	rec, err := a.core.grant(m.ID, m.TTL, time.Now())
	if err != nil {
		m.Reply <- Granted{Err: err}
		return
	}
	root, self := a.root, a.self
	a.root.Send(a.cfg.Sequencer, &msg.LogLeases{
		Records: []storage.LeaseRecord{rec},
		Reply:   func(err error) { root.Send(self, grantLogged{rec: rec, err: err, reply: m.Reply}) },
	})
}

// runRevoke hands the coordinator the revoke of a lease already out of the
// table, and reports its end as revokeDone.
func (a *leaseActor) runRevoke(id int64) {
	reply := make(chan msg.Result, 1)
	a.root.Send(a.cfg.Coordinator, &msg.Write{Req: msg.Request{Revoke: &pb.LeaseRevokeRequest{ID: id}}, Reply: reply})
	root, self, done, log := a.root, a.self, a.done, a.cfg.Log
	go func() {
		select {
		case res := <-reply:
			root.Send(self, revokeDone{id: id, res: res})
		case <-log.Failed():
			// The write will never be answered (the sequencer releases
			// nothing after the log failed); it may or may not have reached
			// the disk, so the lease stays, as after a refused revoke.
			root.Send(self, revokeDone{id: id, res: msg.Result{Err: log.Failure()}})
		case <-done:
		}
	}()
}

// report tells the metrics the leases held and the revokes under way, when
// they changed.
func (a *leaseActor) report() {
	if held, revoking := len(a.core.leases), a.core.revoking; held != a.held || revoking != a.revoking {
		a.held, a.revoking = held, revoking
		metrics.Leases(held, revoking)
	}
}
