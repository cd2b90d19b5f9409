package watch

import (
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Item is one response queued for a stream's sender. Resp.Header carries
// only the revision: the sender fills in the member's identity.
type Item struct {
	Resp *pb.WatchResponse
	// PrevKV asks the sender to add each event's previous key-value (read
	// at the revision before the event, as etcd does when it sends).
	PrevKV bool
	// Fragment asks the sender to split a response larger than the
	// request-size limit, as etcd does.
	Fragment bool
	// Control marks a created or canceled answer: it is never refused, and
	// the stream takes no new request while too many wait (see WaitRoom).
	Control bool
}

// DefaultOutboxBytes bounds the event bytes queued for one stream unless
// configured. Past it a watcher that would queue more is set aside and
// caught up from history once the stream drains (etcd's victims): a
// stream that is not read costs at most this much, plus what its sender
// holds.
const DefaultOutboxBytes = 4 << 20

// maxControl is how many created and canceled answers may wait for a
// stream's sender before the stream takes no more requests: a client that
// sends requests but reads no answers is slowed, as etcd's control channel
// of 16 does, rather than queueing without end.
const maxControl = 16

// Outbox is the queue between a stream's watch actor, which pushes, and the
// stream's sender, which takes everything queued at once and sends it. It
// is the only memory the two share; the push never blocks the actor.
type Outbox struct {
	mu      sync.Mutex
	items   []Item
	bytes   int
	control int
	refused bool
	closed  bool
	limit   int
	// ready has a token while items wait; room one when control answers
	// were sent.
	ready, room chan struct{}
	// drained is called, off the actor, when an outbox that refused a push
	// has been emptied: its actor catches the set-aside watchers up.
	drained func()
}

func newOutbox(limit int, drained func()) *Outbox {
	return &Outbox{limit: limit, ready: make(chan struct{}, 1), room: make(chan struct{}, 1), drained: drained}
}

// push queues it, or refuses it (false) when it is not a control answer and
// the queue holds limit bytes already; an empty queue takes any size.
func (o *Outbox) push(it Item, size int) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return true // nobody will read it: as good as sent
	}
	if !it.Control && len(o.items) > 0 && o.bytes+size > o.limit {
		o.refused = true
		o.mu.Unlock()
		return false
	}
	o.items = append(o.items, it)
	o.bytes += size
	if it.Control {
		o.control++
	}
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default:
	}
	return true
}

// Take waits until something is queued, or done is closed, and returns
// everything queued, oldest first; ok is false once the outbox is closed
// or done.
func (o *Outbox) Take(done <-chan struct{}) (items []Item, ok bool) {
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return nil, false
		}
		if len(o.items) > 0 {
			items, o.items = o.items, nil
			o.bytes = 0
			refused := o.refused
			o.refused = false
			o.mu.Unlock()
			if refused {
				o.drained()
			}
			return items, true
		}
		o.mu.Unlock()
		select {
		case <-o.ready:
		case <-done:
			return nil, false
		}
	}
}

// Sent tells the outbox that n control answers taken were sent.
func (o *Outbox) Sent(n int) {
	if n == 0 {
		return
	}
	o.mu.Lock()
	o.control -= n
	o.mu.Unlock()
	select {
	case o.room <- struct{}{}:
	default:
	}
}

// WaitRoom waits until fewer than maxControl control answers wait to be
// sent, or done is closed (false).
func (o *Outbox) WaitRoom(done <-chan struct{}) bool {
	for {
		o.mu.Lock()
		n := o.control
		o.mu.Unlock()
		if n < maxControl {
			return true
		}
		select {
		case <-o.room:
		case <-done:
			return false
		}
	}
}

// close drops what is queued; Take returns false from then on.
func (o *Outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.items = nil
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// full reports whether the outbox refused a push and has not been emptied
// since: its watchers wait for the drained call.
func (o *Outbox) full() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused
}
