package lease

import (
	"container/heap"
	"slices"
	"time"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// MaxTTL is the longest TTL a lease may be granted, in seconds (etcd's
// MaxLeaseTTL).
const MaxTTL = 9_000_000_000

// lease is one lease as its actor holds it. Deadlines live only here: a
// keep-alive moves one in memory and never reaches the disk.
type lease struct {
	id, ttl  int64
	deadline time.Time
	index    int // its place in core.expiry; -1 when not there
	revoking bool
	// reply is where the answer of the revoke under way goes (nil for an
	// expiry).
	reply chan<- msg.Result
}

// core is the lease actor's state machine, free of actors: the leases,
// their deadlines in a heap, the grants being logged and the revokes under
// way. The shell (actor.go) logs grants with the sequencer, runs revokes on
// the coordinator and ticks expiry.
type core struct {
	table    *Table
	minTTL   int64
	leases   map[int64]*lease
	granting map[int64]bool // grants being made durable
	expiry   deadlines
	revoking int // leases whose revoke is under way
	// nextID makes the IDs of grants that name none: etcd's scheme, the
	// member's low bits, then the time in milliseconds and a counter.
	memberBits int64
	counter    int64
}

func newCore(table *Table, minTTL int64, memberID uint64) *core {
	return &core{
		table: table, minTTL: minTTL,
		leases: make(map[int64]*lease), granting: make(map[int64]bool),
		memberBits: int64(memberID&0xffff) << 48,
	}
}

// restore adds a lease found in the data dir: its deadline starts again
// from its full TTL, as etcd's does when a member becomes leader.
func (c *core) restore(id, ttl int64, now time.Time) {
	c.insert(id, ttl, now)
}

// grant checks a grant as etcd does, picks its ID if it names none, and
// returns the record to make durable; the lease exists once granted is
// called.
func (c *core) grant(id, ttl int64, now time.Time) (storage.LeaseRecord, error) {
	if ttl > MaxTTL {
		return storage.LeaseRecord{}, msg.ErrLeaseTTLTooLarge
	}
	for id == 0 {
		c.counter++
		id = ((c.memberBits | (now.UnixMilli()&(1<<40-1))<<8) + c.counter) & (1<<63 - 1)
		if c.leases[id] != nil || c.granting[id] {
			id = 0
		}
	}
	if c.leases[id] != nil || c.granting[id] {
		return storage.LeaseRecord{}, msg.ErrLeaseExists
	}
	ttl = max(ttl, c.minTTL)
	c.granting[id] = true
	return storage.LeaseRecord{ID: id, TTL: ttl}, nil
}

// granted makes a lease whose grant is durable exist.
func (c *core) granted(r storage.LeaseRecord, now time.Time) {
	delete(c.granting, r.ID)
	c.insert(r.ID, r.TTL, now)
}

// grantFailed forgets a grant the log refused.
func (c *core) grantFailed(id int64) { delete(c.granting, id) }

func (c *core) insert(id, ttl int64, now time.Time) {
	l := &lease{id: id, ttl: ttl, deadline: now.Add(time.Duration(ttl) * time.Second)}
	c.leases[id] = l
	heap.Push(&c.expiry, l)
	c.table.add(id)
}

// revoke starts revoking lease id; the shell runs it and reports its end
// to revoked. The lease leaves the table first: from then on no write can
// attach it. A lease already being revoked is not found, as a second
// revoke ordered after the first is in etcd.
func (c *core) revoke(id int64, reply chan<- msg.Result) error {
	l := c.leases[id]
	if l == nil || l.revoking {
		return msg.ErrLeaseNotFound
	}
	l.revoking, l.reply = true, reply
	c.revoking++
	c.table.remove(id)
	if l.index >= 0 {
		heap.Remove(&c.expiry, l.index)
	}
	return nil
}

// revoked ends a revoke with its write's result. Done, the lease is gone.
// Refused (the coordinator's queue was full, or the log failed), the lease
// is back as it was, in the table and due to expire, and an expiry is
// tried again on a later tick.
func (c *core) revoked(id int64, res msg.Result) {
	l := c.leases[id]
	if l == nil || !l.revoking {
		return
	}
	if l.reply != nil {
		l.reply <- res
	}
	c.revoking--
	if res.Err == nil {
		delete(c.leases, id)
		return
	}
	l.revoking, l.reply = false, nil
	c.table.add(id)
	heap.Push(&c.expiry, l)
}

// renew is a keep-alive: the lease's deadline moves to its full TTL from
// now. It returns the TTL, or 0 for a lease that does not exist, is being
// revoked or has expired (etcd answers those with TTL 0).
func (c *core) renew(id int64, now time.Time) int64 {
	l := c.leases[id]
	if l == nil || l.revoking || !now.Before(l.deadline) {
		return 0
	}
	l.deadline = now.Add(time.Duration(l.ttl) * time.Second)
	heap.Fix(&c.expiry, l.index)
	return l.ttl
}

// timeToLive returns a lease's remaining and granted TTL in seconds, as
// etcd rounds them (down), and whether it exists.
func (c *core) timeToLive(id int64, now time.Time) (remaining, granted int64, ok bool) {
	l := c.leases[id]
	if l == nil || l.revoking {
		return 0, 0, false
	}
	return max(0, int64(l.deadline.Sub(now).Seconds())), l.ttl, true
}

// list returns the IDs of the leases that exist, soonest to expire first,
// as etcd's lessor lists them.
func (c *core) list() []int64 {
	ls := make([]*lease, 0, len(c.leases))
	for _, l := range c.leases {
		if !l.revoking {
			ls = append(ls, l)
		}
	}
	slices.SortFunc(ls, func(a, b *lease) int { return a.deadline.Compare(b.deadline) })
	ids := make([]int64, len(ls))
	for i, l := range ls {
		ids[i] = l.id
	}
	return ids
}

// maxRevoking bounds the revokes under way that expiry starts: past it,
// expired leases wait for the next tick, so a mass expiry never queues
// more than this many revokes on the coordinator.
const maxRevoking = 1000

// expire starts revoking up to limit leases whose deadline has passed,
// earliest first (fewer if maxRevoking revokes are under way), and returns
// their IDs for the shell to run.
func (c *core) expire(now time.Time, limit int) []int64 {
	limit = min(limit, maxRevoking-c.revoking)
	var out []int64
	for len(out) < limit && c.expiry.Len() > 0 && !now.Before(c.expiry[0].deadline) {
		id := c.expiry[0].id
		if c.revoke(id, nil) == nil {
			out = append(out, id)
		}
	}
	return out
}

// deadlines is a min-heap of leases by deadline (container/heap), each
// lease knowing its place so that a keep-alive fixes it in O(log n).
type deadlines []*lease

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h deadlines) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *deadlines) Push(x any) {
	l := x.(*lease)
	l.index = len(*h)
	*h = append(*h, l)
}
func (h *deadlines) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	l.index = -1
	return l
}
