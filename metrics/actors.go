package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Every actor's mailbox and handling time, labelled with the actor's name
// (shard-N, coordinator, sequencer, lease, watch-N).
var (
	mailboxes = &mailboxCollector{desc: prometheus.NewDesc(
		"metastore_actor_mailbox_depth",
		"Messages posted to an actor's mailbox and not yet handled (the one being handled included).",
		[]string{"actor"}, nil)}
	handleTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "metastore_actor_message_duration_seconds",
		Help:    "Time an actor spent handling one message (taking it from the mailbox included).",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 11), // 1 µs to 1 s
	}, []string{"actor"})
)

// Actor reports one actor's mailbox depth and the time it spends on each
// message; make one per actor (NewActor). Its mailbox methods make it
// protoactor-go's actor.MailboxMiddleware (this package does not import
// protoactor-go); the actor's dispatcher calls RunStarted.
type Actor struct {
	*actorSeries
	// last is when the last message was handled, or the mailbox's run
	// began. Only the goroutine running the mailbox touches it: one run
	// at a time, each started after the last ended.
	last time.Duration
	_    [cacheLine - 16]byte
}

// actorSeries are the series of the actors of one name. Actors of the same
// name in nodes started one after another (tests) add up in them, as
// etcd's counters do.
type actorSeries struct {
	depth   atomic.Int64
	handled prometheus.Observer
	_       [cacheLine - 24]byte
}

// cacheLine pads what one actor writes on every message (Actor.last, the
// depth its senders add to) to a cache line of its own: the allocator
// would put those of several actors side by side, and their goroutines,
// on different cores, would take the line from each other on every write.
const cacheLine = 64

// NewActor returns the reporter of an actor named name.
func NewActor(name string) *Actor {
	return &Actor{actorSeries: mailboxes.series(name)}
}

// RunStarted marks the start of a run of the mailbox, on its goroutine.
func (a *Actor) RunStarted() { a.last = Now() }

// MailboxStarted is part of the mailbox middleware; it records nothing.
func (a *Actor) MailboxStarted() {}

// MessagePosted counts a message into the mailbox, on the sender's
// goroutine.
func (a *Actor) MessagePosted(any) { a.depth.Add(1) }

// MessageReceived counts a handled message out of the mailbox and records
// its handling time: from the end of the previous message, or the start of
// the run, to now. That includes taking it from the mailbox (tens of
// nanoseconds) and costs one clock read a message instead of two.
//
// protoactor calls it only once the handler returned: a message whose
// handler panics (protoactor recovers and escalates the failure) is never
// counted out, and leaves the depth one too high. That is not corrected:
// a core actor's failure ends the process (actors.Config.OnFatal, by
// default), which takes its series with it.
func (a *Actor) MessageReceived(any) {
	now := Now()
	a.handled.Observe((now - a.last).Seconds())
	a.last = now
	a.depth.Add(-1)
}

// MailboxEmpty is part of the mailbox middleware; it records nothing.
func (a *Actor) MailboxEmpty() {}

// Now reads the monotonic clock, for timing what takes microseconds: it
// is the time since the process started this package, which costs one
// clock read where time.Now costs two (it reads the wall clock too).
func Now() time.Duration { return time.Since(epoch) }

var epoch = time.Now()

// mailboxCollector reports the depth of every Actor. A depth is an
// atomic integer rather than a prometheus.Gauge: a gauge's Add is a
// compare-and-swap loop on a float, which the many goroutines posting to one
// shard would contend on.
type mailboxCollector struct {
	desc   *prometheus.Desc
	mu     sync.Mutex
	actors map[string]*actorSeries
}

// series returns the series of the actors named name.
func (c *mailboxCollector) series(name string) *actorSeries {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.actors[name]; a != nil {
		return a
	}
	if c.actors == nil {
		c.actors = make(map[string]*actorSeries)
	}
	a := &actorSeries{handled: handleTime.WithLabelValues(name)}
	c.actors[name] = a
	return a
}

func (c *mailboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *mailboxCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, a := range c.actors {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(a.depth.Load()), name)
	}
}
