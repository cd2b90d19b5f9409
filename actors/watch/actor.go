package watch

import (
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/metrics"
)

// Config is what a watch actor is built from.
type Config struct {
	// Revisions are the sequencer's published revisions.
	Revisions Revisions
	// History reads committed changes for watchers that start in the past
	// or fell behind; nil in memory, where the ring is the only history.
	History History
	// Current is the revision the feed starts after.
	Current int64
	// RingBytes bounds the newest changes kept to catch watchers up without
	// reading History (0: DefaultRingBytes; unbounded in memory, where
	// compaction trims it).
	RingBytes int
	// ProgressInterval is etcd's --watch-progress-notify-interval
	// (0: DefaultProgressInterval).
	ProgressInterval time.Duration
	// Logger receives history read failures; nil means slog.Default().
	Logger *slog.Logger
	// Name is the actor's name, which its metrics are labelled with.
	Name string
}

// DefaultRingBytes is how much of the newest feed a watch actor keeps unless
// configured. All actors keep the same runs, so it is spent once.
const DefaultRingBytes = 8 << 20

// DefaultProgressInterval is etcd's --watch-progress-notify-interval.
const DefaultProgressInterval = 10 * time.Minute

// syncEvery is how often unsynced watchers are retried (etcd's
// watchResyncPeriod); they are also retried as soon as a history read
// ends or their stream drains.
const syncEvery = 100 * time.Millisecond

// Ticks the actor sends itself.
type (
	syncTick     struct{}
	progressTick struct{}
)

type watchActor struct {
	cfg   Config
	core  *core
	ticks []func()
	// reads counts the history read under way (one at most): a stopping
	// actor waits for it, since the data dir closes right after.
	reads sync.WaitGroup
	// failing says the last history read failed: the next failures are not
	// logged again, every 100 ms, until one succeeds.
	failing bool
	// metrics is told the actor's counts after each message; reported is
	// how many of core.events it has been told of.
	metrics  *metrics.Watch
	reported int
}

// Props returns the props of a watch actor.
func Props(cfg Config) *actor.Props {
	if cfg.RingBytes <= 0 {
		cfg.RingBytes = DefaultRingBytes
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &watchActor{cfg: cfg, core: newCore(cfg.Revisions, cfg.Current, cfg.History == nil, cfg.RingBytes), metrics: metrics.NewWatch(cfg.Name)}
	})
}

func (a *watchActor) Receive(ctx actor.Context) {
	var read *readReq
	switch m := ctx.Message().(type) {
	case *actor.Started:
		root := ctx.ActorSystem().Root
		a.ticks = append(a.ticks,
			msg.Tick(root, ctx.Self(), syncEvery, syncTick{}),
			msg.Tick(root, ctx.Self(), a.cfg.ProgressInterval, progressTick{}))
	case *actor.Stopped:
		for _, cancel := range a.ticks {
			cancel()
		}
		for h := range a.core.streams {
			a.core.close(h)
		}
		a.reads.Wait()
	case *msg.Changes:
		a.core.changes(m)
	case opened:
		a.core.open(m.s)
	case closed:
		a.core.close(m.s)
	case created:
		read = a.core.create(m.s, m.r)
	case refused:
		a.core.refuse(m.s, m.reason)
	case canceled:
		a.core.cancel(m.s, m.id)
	case progressAsked:
		a.core.progressAll(m.s)
	case drained, syncTick:
		read = a.core.sync()
	case progressTick:
		a.core.tickProgress()
	case *readResult:
		switch {
		case m.err != nil && !a.failing:
			a.cfg.Logger.Warn("watch: could not read history to catch watchers up; retrying", "from", m.req.from, "to", m.req.to, "err", m.err)
		case m.err == nil && a.failing:
			a.cfg.Logger.Info("watch: history reads work again")
		}
		a.failing = m.err != nil
		read = a.core.history(m)
	}
	if read != nil {
		a.reads.Add(1)
		go a.read(ctx.ActorSystem().Root, ctx.Self(), read)
	}
	a.report()
}

// report tells the metrics what changed with the last message.
func (a *watchActor) report() {
	c := a.core
	a.metrics.Update(len(c.streams), c.synced.size+len(c.unsynced), len(c.unsynced))
	if n := c.events - a.reported; n > 0 {
		a.metrics.Events(n)
		a.reported = c.events
	}
}

// read runs a history read off the actor and sends the result back.
func (a *watchActor) read(root *actor.RootContext, self *actor.PID, r *readReq) {
	defer a.reads.Done()
	root.Send(self, readHistory(a.cfg.History, r))
}
