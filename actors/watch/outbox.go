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
	// Control marks a response that is never refused: the answer to a
	// create or a cancel, or the news that a watcher was compacted.
	Control bool
	// answer marks the answer to a request: it holds the reservation the
	// request took (Reserve) until it is sent.
	answer bool
}

// DefaultOutboxBytes bounds the event bytes queued for one stream unless
// configured. Past it a watcher that would queue more is set aside and
// caught up from history once the stream drains (etcd's victims): a
// stream that is not read costs at most this much, plus what its sender
// holds.
const DefaultOutboxBytes = 4 << 20

// maxPending is how many of a stream's requests may be on their way (sent
// to its actor, or answered and not yet sent back) before the stream reads
// no more: a client that sends requests but reads no answers is slowed, as
// etcd's control channel of 16 slows it, rather than queueing without end.
const maxPending = 16

// Outbox is the queue between a stream's watch actor, which pushes, and the
// stream's sender, which takes everything queued at once and sends it. It
// is the only memory the two share; the push never blocks the actor.
type Outbox struct {
	mu      sync.Mutex
	items   []Item
	bytes   int
	pending int // requests reserved and not yet answered and sent
	refused bool
	closed  bool
	limit   int
	// ready has a token while items wait; room one when requests were
	// answered.
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
		select {
		case <-done:
			return nil, false
		default:
		}
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

// Sent tells the outbox that items taken were sent: the requests they
// answer make room for more.
func (o *Outbox) Sent(items []Item) {
	n := 0
	for _, it := range items {
		if it.answer {
			n++
		}
	}
	o.release(n)
}

// release ends n reservations.
func (o *Outbox) release(n int) {
	if n == 0 {
		return
	}
	o.mu.Lock()
	o.pending -= n
	o.mu.Unlock()
	select {
	case o.room <- struct{}{}:
	default:
	}
}

// Reserve waits until fewer than maxPending requests of the stream are on
// their way, and takes a place for one more; it returns false, having
// taken nothing, once done is closed. The actor ends the reservation with
// the request's answer, or when the request has none.
func (o *Outbox) Reserve(done <-chan struct{}) bool {
	for {
		o.mu.Lock()
		if o.pending < maxPending {
			o.pending++
			o.mu.Unlock()
			return true
		}
		o.mu.Unlock()
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

// maxMergedBytes bounds a response that Coalesce merges.
const maxMergedBytes = 1 << 20

// Coalesce merges, in items taken at once, each watcher's event responses
// into its first one, up to maxMergedBytes: a sender that fell behind sends
// one response per watcher instead of one per run of revisions, which is
// what lets a watcher keep up with a stream of single-revision runs. A
// merged response moves events earlier, never later, and never past a
// progress answer or a created, canceled or compacted answer for their
// watcher; a watcher's events keep their order, and the events of one
// revision stay together.
func Coalesce(items []Item) []Item {
	if len(items) < 2 {
		return items
	}
	first := make(map[int64]int) // watch ID → index in out of its open response
	size := make(map[int64]int)
	out := items[:0]
	for _, it := range items {
		r := it.Resp
		if it.Control {
			// A created, canceled or compacted answer: no event of the ID
			// may move before it (an ID may be cancelled and taken again).
			delete(first, r.WatchId)
			out = append(out, it)
			continue
		}
		if len(r.Events) == 0 {
			// A progress answer: no event of the watchers it speaks for
			// may move before it, since a client takes its revision as
			// where it has got to (clientv3 resumes from it).
			if r.WatchId == -1 {
				clear(first)
			} else {
				delete(first, r.WatchId)
			}
			out = append(out, it)
			continue
		}
		n := responseBytes(r)
		if i, ok := first[r.WatchId]; ok && size[r.WatchId]+n <= maxMergedBytes {
			m := out[i].Resp
			m.Events = append(m.Events, r.Events...)
			m.Header.Revision = r.Header.Revision
			size[r.WatchId] += n
			continue
		}
		first[r.WatchId] = len(out)
		size[r.WatchId] = n
		out = append(out, it)
	}
	return out
}

// responseBytes is about what r's events take.
func responseBytes(r *pb.WatchResponse) int {
	n := 0
	for _, ev := range r.Events {
		n += len(ev.Kv.Key) + len(ev.Kv.Value) + 32
	}
	return n
}
