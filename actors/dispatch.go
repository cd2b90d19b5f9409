package actors

import "github.com/asynkron/protoactor-go/actor"

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

func newPinnedDispatcher() *pinnedDispatcher {
	d := &pinnedDispatcher{work: make(chan func(), 1)}
	go func() {
		for fn := range d.work {
			fn()
		}
	}()
	return d
}

func (d *pinnedDispatcher) Schedule(fn func()) { d.work <- fn }

func (d *pinnedDispatcher) Throughput() int { return dispatchThroughput }

// close ends the goroutine once the actor has stopped.
func (d *pinnedDispatcher) close() { close(d.work) }
