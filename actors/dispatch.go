package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/metrics"
)

// Mailbox is how the core actors (shards, coordinator, sequencer, lease) receive
// their messages: which goroutine runs an actor, and which queue holds what
// waits for it. It is a knob for studying the design; answers do not
// change with it.
type Mailbox struct {
	// Dispatcher is DispatcherPinned (the default) or DispatcherGoroutine.
	Dispatcher string
	// Queue is QueueRing (the default) or QueueMPSC.
	Queue string
}

// The dispatchers and queues a Mailbox may name.
const (
	// DispatcherPinned runs each actor on one long-lived goroutine.
	DispatcherPinned = "pinned"
	// DispatcherGoroutine is protoactor-go's default: a new goroutine each
	// time a mailbox goes from empty to busy.
	DispatcherGoroutine = "goroutine"
	// QueueRing is protoactor-go's default queue: a ring buffer behind a
	// mutex.
	QueueRing = "ring"
	// QueueMPSC is protoactor-go's lock-free multi-producer queue, a linked
	// list with one allocation per message.
	QueueMPSC = "mpsc"
)

// Mailboxes is every kind the knob offers, the default first.
var Mailboxes = []Mailbox{
	{DispatcherPinned, QueueRing},
	{DispatcherPinned, QueueMPSC},
	{DispatcherGoroutine, QueueRing},
	{DispatcherGoroutine, QueueMPSC},
}

// String names the kind as "dispatcher/queue", e.g. "goroutine/mpsc".
func (m Mailbox) String() string { return m.Dispatcher + "/" + m.Queue }

// props returns a function that makes the props options of the core actor
// named name, its metrics included (see instrumented), and records every
// pinned dispatcher in pinned so that it can be closed.
func (m Mailbox) props(pinned *[]*pinnedDispatcher) (func(name string) []actor.PropsOption, error) {
	var queue func(...actor.MailboxMiddleware) actor.MailboxProducer
	switch m.Queue {
	case "", QueueRing:
		queue = actor.Unbounded
	case QueueMPSC:
		queue = actor.UnboundedLockfree
	default:
		return nil, fmt.Errorf("actors: unknown mailbox queue %q (want %s or %s)", m.Queue, QueueRing, QueueMPSC)
	}
	switch m.Dispatcher {
	case "", DispatcherPinned:
		return func(name string) []actor.PropsOption {
			stats := metrics.NewActor(name)
			d := newPinnedDispatcher(stats.RunStarted)
			*pinned = append(*pinned, d)
			return []actor.PropsOption{actor.WithMailbox(queue(stats)), actor.WithDispatcher(d)}
		}, nil
	case DispatcherGoroutine:
		d := actor.NewDefaultDispatcher(dispatchThroughput)
		return func(name string) []actor.PropsOption {
			return instrumented(name, queue, d)
		}, nil
	}
	return nil, fmt.Errorf("actors: unknown dispatcher %q (want %s or %s)", m.Dispatcher, DispatcherPinned, DispatcherGoroutine)
}

// instrumented returns the props options that run the actor named name on
// dispatcher d with a mailbox of kind queue, which report to its
// metrics.Actor: the mailbox the messages posted and handled, the
// dispatcher when a run of its mailbox starts. The time from there, or
// from the end of the previous message, to the end of each message is that
// message's handling time. That costs one read of the monotonic clock, one
// histogram observation and two atomic adds per message (timing each
// message with a receiver middleware read the clock twice and allocated an
// envelope for it: twice the cost).
func instrumented(name string, queue func(...actor.MailboxMiddleware) actor.MailboxProducer, d actor.Dispatcher) []actor.PropsOption {
	stats := metrics.NewActor(name)
	return []actor.PropsOption{actor.WithMailbox(queue(stats)), actor.WithDispatcher(timedDispatcher{d, stats})}
}

// timedDispatcher tells the actor's metrics when a run of its mailbox
// starts (the pinned dispatcher does it itself, without a closure per
// run).
type timedDispatcher struct {
	actor.Dispatcher
	stats *metrics.Actor
}

func (d timedDispatcher) Schedule(fn func()) {
	d.Dispatcher.Schedule(func() {
		d.stats.RunStarted()
		fn()
	})
}

// dispatchThroughput is how many messages an actor handles before its
// goroutine yields to let the Go scheduler run others.
const dispatchThroughput = 300

// pinnedDispatcher runs one actor's mailbox on one long-lived goroutine.
//
// protoactor-go's default dispatcher starts a new goroutine each time a
// mailbox goes from empty to busy. A core actor does that tens of
// thousands of times a second, and each new goroutine grows its stack anew
// through the actor's call depth: profiles of the put path showed a fifth
// of the CPU in stack copying. A pinned goroutine keeps its grown stack.
//
// The mailbox schedules at most once until its run ends, so a channel of
// one never blocks; a run that yields reschedules itself from the pinned
// goroutine after taking its own work off the channel.
type pinnedDispatcher struct {
	work chan func()
}

var _ actor.Dispatcher = (*pinnedDispatcher)(nil)

// newPinnedDispatcher starts the goroutine, which calls started before
// each run of the mailbox.
func newPinnedDispatcher(started func()) *pinnedDispatcher {
	d := &pinnedDispatcher{work: make(chan func(), 1)}
	go func() {
		for fn := range d.work {
			started()
			fn()
		}
	}()
	return d
}

func (d *pinnedDispatcher) Schedule(fn func()) { d.work <- fn }

func (d *pinnedDispatcher) Throughput() int { return dispatchThroughput }

// close ends the goroutine once the actor has stopped.
func (d *pinnedDispatcher) close() { close(d.work) }
