package sequencer

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/metrics"
	"github.com/metastore/metastore/storage"
)

// Log makes stamped revisions durable. Commit is called with one group at a
// time, in revision order, from a goroutine of the sequencer's own.
type Log interface {
	Commit(entries []storage.Entry, leases []storage.LeaseRecord, auth []storage.AuthRecord, compact int64) error
	// Size is the space the log uses, checked against the quota.
	Size() int64
	// SetNoSpace records the NOSPACE alarm durably.
	SetNoSpace(on bool) error
	// LowSpace reports whether the log's file system has less free space
	// than it keeps in reserve (a little more if it was low already), and
	// how much it has.
	LowSpace(wasLow bool) (low bool, avail uint64, err error)
}

// Config is what the sequencer is built from.
type Config struct {
	// Revisions is where it publishes; it is the single writer.
	Revisions *Revisions
	// Current and Compacted are the revisions to start from.
	Current, Compacted int64
	// Log, if not nil, makes revisions durable before they are visible.
	Log Log
	// Quota is the log size that raises the NOSPACE alarm (0: none).
	Quota int64
	// NoSpace is the alarm as recorded on disk.
	NoSpace bool
	// MemberID is this member's ID, which its own NOSPACE alarm names.
	MemberID uint64
	// Logger receives the alarm's changes and the log's failure; nil
	// means slog.Default().
	Logger *slog.Logger
	// CommitQueue and MaxGroupBytes bound the groups waiting for the
	// committer and the bytes one commit merges (0: DefaultCommitQueue,
	// DefaultMaxGroupBytes).
	CommitQueue, MaxGroupBytes int
	// Feed are the actors that get every run of revisions that becomes
	// visible, as msg.Changes (the watch actors).
	Feed []*actor.PID
}

// group is what the sequencer hands the committer in one message: the
// writes of one Stamp, or a compaction, with the lease and auth changes
// logged meanwhile. The committer merges every group queued while it was
// syncing into one commit, which shares one sync.
type group struct {
	entries []storage.Entry
	leases  []storage.LeaseRecord // lease changes that take no revision
	auth    []storage.AuthRecord  // auth changes, in the order they were made
	bytes   int                   // about what entries cost in a pebble batch
	last    int64                 // the newest revision in entries, or the durable one
	compact int64
	// replies are Compact, LogLeases and LogAuth answers, called with nil
	// once the group is durable, or with the log's failure if it never
	// will be.
	replies []func(err error)
}

// synced reports a finished commit back to the sequencer's mailbox.
type synced struct {
	g   *group
	err error
}

// DefaultCommitQueue is how many groups may wait for the committer unless
// configured. A full queue keeps the rest in the sequencer's pending
// groups, handed over after the next sync; it is large enough that this
// happens only when the disk falls far behind.
const DefaultCommitQueue = 1024

// DefaultMaxGroupBytes bounds the bytes of records one commit merges
// unless configured: a pebble
// batch is held in memory whole (twice, with its WAL copy) and kept until
// flushed when it is larger than half a memtable, and pebble refuses one of
// 4 GiB. A single Stamp larger than this is still committed alone: shards
// bound their batches in bytes.
const DefaultMaxGroupBytes = 16 << 20

// releaseAfterBytes is how much must have been committed since memory was
// last handed back to the operating system before an idle sequencer does
// it again (see releaseMemory).
const releaseAfterBytes = 256 << 20

// spaceCheckEvery is how often an idle sequencer looks at the free space of
// the log's file system: a disk that other files fill, or that an operator
// frees, is noticed without a write.
const spaceCheckEvery = time.Second

// stopWait bounds how long a stopping sequencer waits for a commit in
// flight. A commit that hangs (pebble stalls writes on a disk that is full
// or failing) must not keep the server from stopping: its writes were
// never acknowledged.
const stopWait = 5 * time.Second

type sequencer struct {
	cfg     Config
	core    *core
	pending []*group      // stamped, not yet handed to the committer, oldest first
	commits chan *group   // to the committer goroutine
	stopped chan struct{} // closed when the committer has returned
	// stopTicks stops the ticks that check free space while idle.
	stopTicks func()
	// spaceChecked is when the quota and free space were last checked.
	spaceChecked time.Time
	// quotaAlarm is this member's NOSPACE alarm as the quota or an
	// operator raised it (durable, as etcd's); lowSpace is the one the
	// file system's free space raised (in memory: it clears itself once
	// space is freed). Revisions.noSpace publishes either, or one raised
	// for another member (foreignNoSpace).
	quotaAlarm, lowSpace bool
	// foreignNoSpace are the NOSPACE alarms an operator raised for other
	// member IDs (alarm.go).
	foreignNoSpace map[uint64]bool
	// grown says a commit may have grown the log since the quota was last
	// checked: after an operator clears the quota alarm, it comes back
	// with the next write that finds the data over the quota, as etcd's,
	// not with the next tick.
	grown bool
	// failed is set once a commit has failed: nothing more is committed.
	failed error
	// committed counts the bytes committed since memory was last released;
	// busy says a commit finished since the last tick.
	committed int
	busy      bool
	// feed holds the writes stamped but not yet visible, oldest first:
	// feed[i] is revision core.visible+1+i. root sends them to cfg.Feed.
	feed []storage.Entry
	root *actor.RootContext
}

// tick asks the sequencer to check the free space while it is idle.
type tick struct{}

// Props returns the props of the sequencer actor.
func Props(cfg Config) *actor.Props {
	cfg.Revisions.visible.Store(cfg.Current)
	c := newCore(cfg.Current, cfg.Compacted)
	cfg.Revisions.compacted.Store(c.compact)
	cfg.Revisions.noSpace.Store(cfg.NoSpace)
	cfg.Revisions.failed = make(chan struct{})
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CommitQueue <= 0 {
		cfg.CommitQueue = DefaultCommitQueue
	}
	if cfg.MaxGroupBytes <= 0 {
		cfg.MaxGroupBytes = DefaultMaxGroupBytes
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &sequencer{cfg: cfg, core: c, quotaAlarm: cfg.NoSpace, grown: true}
	})
}

func (s *sequencer) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.root = ctx.ActorSystem().Root
		if s.cfg.Log != nil {
			s.commits = make(chan *group, s.cfg.CommitQueue)
			s.stopped = make(chan struct{})
			go s.committer(ctx.ActorSystem().Root, ctx.Self())
			s.stopTicks = msg.Tick(ctx.ActorSystem().Root, ctx.Self(), spaceCheckEvery, tick{})
			if s.quotaAlarm {
				s.cfg.Logger.Warn("the NOSPACE alarm recorded in the data dir is active: puts are refused with \"database space exceeded\" (reads, deletes and compaction run)")
			}
			s.checkSpace(true)
		}
	case *actor.Stopped:
		if s.commits != nil {
			s.stopTicks()
			s.stop()
		}
	case tick:
		s.checkSpace(true)
		s.releaseMemory()
	case *msg.Stamp:
		base := s.core.stamp(len(m.Writes), m.Parts)
		if len(m.Writes) > 0 && s.failed == nil {
			s.log(base, m.Writes, m.Leases)
		}
		ctx.Send(m.ReplyTo, &msg.Stamped{Base: base})
	case *msg.Installed:
		if m.To >= m.From {
			s.core.installed(m.From, m.To)
		}
		s.core.hold(m.Replies)
		s.release()
	case *msg.Deliver:
		s.core.hold(m.Replies)
		s.release()
	case *msg.Compact:
		s.compact(m)
	case *msg.LogLeases:
		s.logLeases(m)
	case *msg.LogAuth:
		s.logAuth(m)
	case *msg.Alarm:
		s.alarm(m)
	case *synced:
		s.synced(m)
	}
}

// stop commits what is stamped and waits for the committer, all within
// stopWait: the log is closed right after. Groups are handed over in order
// and, once one cannot be, none after it is: the log must hold a prefix of
// the commit order.
func (s *sequencer) stop() {
	deadline := time.After(stopWait)
	if s.failed == nil {
	handOver:
		for i, g := range s.pending {
			select {
			case s.commits <- g:
			case <-deadline:
				s.cfg.Logger.Error("stopping without committing stamped writes: the log did not take them (is its disk full or failing?); they were not acknowledged",
					"groups", len(s.pending)-i, "wait", stopWait)
				break handOver
			}
		}
	}
	s.pending = nil
	close(s.commits)
	select {
	case <-s.stopped:
	case <-deadline:
		s.cfg.Logger.Error("stopping with a commit still in flight: the log has not answered (is its disk full or failing?); its writes were not acknowledged", "wait", stopWait)
	}
}

// log queues stamped writes for the next commit. Without a log they are
// durable as soon as they are stamped; after the log failed they never
// will be (their clients are answered with the failure).
func (s *sequencer) log(base int64, writes [][]storage.Mutation, leases []storage.LeaseRecord) {
	last := base + int64(len(writes)) - 1
	first := len(s.feed)
	for i, w := range writes {
		s.feed = append(s.feed, storage.Entry{Rev: base + int64(i), Base: base, Muts: w})
	}
	s.feed[first].Leases = leases
	if s.cfg.Log == nil {
		s.core.synced(last)
		return
	}
	g := s.pendingGroup()
	g.entries = append(g.entries, s.feed[first:]...)
	for _, w := range writes {
		for _, m := range w {
			g.bytes += storage.RecordBytes(m)
		}
	}
	g.last = last
	s.flush()
}

// pendingGroup returns the group that takes the next stamped writes: the
// newest pending one, unless it holds MaxGroupBytes already.
func (s *sequencer) pendingGroup() *group {
	if n := len(s.pending); n > 0 && s.pending[n-1].bytes < s.cfg.MaxGroupBytes {
		return s.pending[n-1]
	}
	g := &group{last: s.core.next - 1}
	s.pending = append(s.pending, g)
	return g
}

// flush hands the pending groups to the committer's queue, oldest first,
// keeping what does not fit for the next flush.
func (s *sequencer) flush() {
handOver:
	for len(s.pending) > 0 {
		select {
		case s.commits <- s.pending[0]:
			s.pending[0] = nil
			s.pending = s.pending[1:]
		default:
			break handOver
		}
	}
	metrics.CommitQueue(len(s.commits) + len(s.pending))
}

// committer runs on its own goroutine so that the sequencer keeps stamping
// while a group syncs. Once a sync returns it commits, as one, every group
// queued meanwhile: the next sync starts at once, not after a round trip
// through the sequencer's mailbox (on a busy machine that round trip was
// a third of the time between syncs).
//
// After a commit fails it commits nothing more: a later group made durable
// after an earlier one was lost would leave a gap in the revisions.
func (s *sequencer) committer(root *actor.RootContext, self *actor.PID) {
	defer close(s.stopped)
	var carry *group
	var failed error
	for {
		g := carry
		if g == nil {
			var ok bool
			if g, ok = <-s.commits; !ok {
				return
			}
		}
		g, carry = drain(g, s.commits, s.cfg.MaxGroupBytes)
		if failed != nil {
			// Not committed; handed back so that its compactions are
			// answered with the failure.
			root.Send(self, &synced{g: g, err: failed})
			continue
		}
		start := time.Now()
		err := s.cfg.Log.Commit(g.entries, g.leases, g.auth, g.compact)
		if err == nil {
			metrics.Commit(len(g.entries), g.bytes, time.Since(start))
		}
		failed = err
		root.Send(self, &synced{g: g, err: err})
	}
}

// drain merges into g, in order, the groups queued behind it when it
// starts, up to maxBytes of records; what arrives meanwhile waits for the
// next commit, so that a steady stream of stamps cannot put the sync off.
// The first group that would pass maxBytes is returned as carry, to start
// the next commit.
func drain(g *group, queue <-chan *group, maxBytes int) (merged, carry *group) {
	for range len(queue) {
		next, ok := <-queue
		if !ok {
			break
		}
		if g.bytes+next.bytes > maxBytes {
			return g, next
		}
		g.entries = append(g.entries, next.entries...)
		g.leases = append(g.leases, next.leases...)
		g.auth = append(g.auth, next.auth...)
		g.bytes += next.bytes
		g.last = max(g.last, next.last)
		g.compact = max(g.compact, next.compact)
		g.replies = append(g.replies, next.replies...)
	}
	return g, nil
}

func (s *sequencer) synced(m *synced) {
	if m.err != nil {
		if s.failed == nil {
			s.fail(m.g, m.err)
		}
		for _, r := range m.g.replies {
			r(s.failed)
		}
		return
	}
	if s.failed != nil {
		return
	}
	s.core.synced(m.g.last)
	s.committed += m.g.bytes
	s.busy = true
	s.grown = true
	// Released first: an answer given once the group is durable (a lease
	// revoke without keys) reports a revision readers must already see.
	s.release()
	for _, r := range m.g.replies {
		r(nil)
	}
	s.checkSpace(false)
	s.flush()
}

// fail handles a commit the log refused or could not sync. Whether the
// failed group reached the disk is unknown (after a failed fsync the page
// cache cannot be trusted), so nothing is committed after it: the visible
// revision stays below it, no write of it or after it is acknowledged, and
// every write is refused from now on (Revisions.Failed). Reads keep being
// served at the visible revision, every revision of which is durable. A
// restart finds on disk a prefix of the commit order that holds every
// acknowledged write. etcd exits on a failed commit; staying up read-only
// lets clients read, and the operator see why, until the restart.
func (s *sequencer) fail(g *group, err error) {
	cause := fmt.Errorf("%w: commit of revisions %d to %d: %w", msg.ErrLogFailed, s.core.durable+1, g.last, err)
	if errors.Is(err, syscall.ENOSPC) {
		cause = fmt.Errorf("%w (%w)", cause, storage.ErrNoSpace)
		s.lowSpace = true
		s.cfg.Revisions.noSpace.Store(true)
	}
	s.failed = cause
	for _, p := range s.pending {
		for _, r := range p.replies {
			r(cause)
		}
	}
	s.pending = nil
	s.cfg.Logger.Error("the data dir's log failed: writes are refused from now on, reads are served at the last durable revision; restart the server once the cause is fixed (nothing acknowledged is lost)",
		"err", cause, "visible", s.core.visible)
	s.cfg.Revisions.failure = cause
	close(s.cfg.Revisions.failed)
}

// releaseMemory hands the heap a write burst left behind back to the
// operating system once writes have stopped for a tick. Go would do it by
// itself, but only after its forced collection two minutes later and then
// at about 15 MiB/s: measured with 500 clients putting 1 MiB values, RSS
// stayed at 1.2 GB for over two minutes after the burst, against 77 MiB
// once released. It runs only after releaseAfterBytes were committed, off
// the sequencer's goroutine (it is a full collection).
func (s *sequencer) releaseMemory() {
	if s.busy {
		s.busy = false
		return
	}
	if s.committed < releaseAfterBytes {
		return
	}
	s.committed = 0
	go debug.FreeOSMemory()
}

// spaceCheckMin spaces the space checks after commits: measuring pebble's
// disk usage costs about 4 µs and 31 allocations (measured here), on the
// sequencer's own goroutine, and a commit group may take less than that to
// sync.
const spaceCheckMin = 50 * time.Millisecond

// checkSpace raises the NOSPACE alarm when the log passes the quota (as
// etcd: durable, until disarmed) or its file system's free space falls
// below the reserve (in memory: it clears once space is freed), and clears
// the latter. idle checks are the ticker's, at most every spaceCheckEvery.
// The quota is checked once per commit that may have grown the log (and at
// the start), not again while nothing was written.
func (s *sequencer) checkSpace(idle bool) {
	now := time.Now()
	if !idle && now.Sub(s.spaceChecked) < spaceCheckMin {
		return
	}
	s.spaceChecked = now
	if s.cfg.Quota > 0 && !s.quotaAlarm && s.failed == nil && s.grown {
		s.grown = false
		if size := s.cfg.Log.Size(); size >= s.cfg.Quota {
			s.quotaAlarm = true
			s.cfg.Logger.Warn("NOSPACE alarm raised: the data passed --quota-backend-bytes; puts are refused with \"database space exceeded\" (reads, deletes and compaction run)",
				"size", size, "quota", s.cfg.Quota)
			if err := s.cfg.Log.SetNoSpace(true); err != nil {
				s.cfg.Logger.Error("could not record the NOSPACE alarm in the data dir; it holds until the server stops", "err", err)
			}
		}
	}
	if s.failed == nil {
		low, avail, err := s.cfg.Log.LowSpace(s.lowSpace)
		switch {
		case err != nil:
			s.cfg.Logger.Warn("could not measure the data dir's free space", "err", err)
		case low && !s.lowSpace:
			s.cfg.Logger.Warn("NOSPACE alarm raised: the data dir's file system is almost full; puts are refused with \"database space exceeded\" until space is freed (reads, deletes and compaction run)",
				"free_bytes", avail)
		case !low && s.lowSpace:
			s.cfg.Logger.Info("space freed on the data dir's file system: the NOSPACE alarm it raised is cleared", "free_bytes", avail)
		}
		if err == nil {
			s.lowSpace = low
		}
	}
	s.publishNoSpace()
}

func (s *sequencer) compact(m *msg.Compact) {
	if s.failed != nil {
		m.Reply <- msg.CompactResult{Current: s.core.visible, Err: s.failed}
		return
	}
	prev := s.core.compact
	if err := s.core.compactTo(m.Rev); err != nil {
		m.Reply <- msg.CompactResult{Current: s.core.visible, Err: err}
		return
	}
	current := s.core.visible
	// Readers learn of the compaction only once it is durable: a read
	// refused as compacted must stay refused after a crash.
	answer := func(err error) {
		if err != nil {
			m.Reply <- msg.CompactResult{Current: current, Err: err}
			return
		}
		s.cfg.Revisions.compacted.Store(m.Rev)
		m.Reply <- msg.CompactResult{Current: current, Prev: prev}
	}
	if s.cfg.Log == nil {
		answer(nil)
		return
	}
	g := s.pendingGroup()
	g.compact = m.Rev
	g.replies = append(g.replies, answer)
	s.flush()
}

// logLeases queues lease changes that take no revision for the next commit
// and answers once it is durable (at once without a log).
func (s *sequencer) logLeases(m *msg.LogLeases) {
	s.logUnstamped(m.Reply, func(g *group) { g.leases = append(g.leases, m.Records...) })
}

// logAuth queues auth changes for the next commit and answers once it is
// durable (at once without a log). Groups are committed in order and merged
// in order, so a later change of the same record is written after an
// earlier one and wins.
func (s *sequencer) logAuth(m *msg.LogAuth) {
	s.logUnstamped(m.Reply, func(g *group) { g.auth = append(g.auth, m.Records...) })
}

// logUnstamped adds changes that take no revision to the pending group and
// answers reply once they are durable: at once without a log, with the
// failure after the log failed.
func (s *sequencer) logUnstamped(reply func(error), add func(*group)) {
	switch {
	case s.failed != nil:
		reply(s.failed)
	case s.cfg.Log == nil:
		reply(nil)
	default:
		g := s.pendingGroup()
		add(g)
		g.replies = append(g.replies, reply)
		s.flush()
	}
}

// release publishes the visible revision, hands what became visible to
// the feed, then sends what it released: a client must never get an answer
// before readers can see its revision.
func (s *sequencer) release() {
	from := s.core.visible
	out := s.core.advance()
	s.cfg.Revisions.visible.Store(s.core.visible)
	if n := s.core.visible - from; n > 0 {
		s.publish(int(n))
		metrics.RevisionLag(s.core.next - 1 - s.core.visible)
	}
	for _, r := range out {
		r.Send()
	}
}

// publish sends the oldest n writes of the feed, now visible, to every
// actor of cfg.Feed as one msg.Changes. They are copied out and cleared
// from the feed: the feed's array would otherwise keep their values alive
// for as long as it is in use.
func (s *sequencer) publish(n int) {
	c := &msg.Changes{Entries: slices.Clone(s.feed[:n])}
	for _, e := range c.Entries {
		for _, m := range e.Muts {
			c.Bytes += storage.RecordBytes(m)
		}
	}
	clear(s.feed[:n])
	s.feed = s.feed[n:]
	for _, pid := range s.cfg.Feed {
		s.root.Send(pid, c)
	}
}
