package watch

import (
	"cmp"
	"math"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// etcd's answers to a create it refuses (mvcc's and rpctypes' texts).
const (
	reasonEmptyRange  = "mvcc: watcher range is empty"
	reasonDuplicateID = "mvcc: duplicate watch ID provided on the WatchStream"
	reasonCompacted   = "etcdserver: mvcc: required revision has been compacted"
)

// Limits of one response. A watcher being caught up gets its history in
// responses of at most maxResponseRevs revisions (etcd's watchBatchMaxRevs)
// and, past maxResponseBytes, cut at the next revision: the events of one
// revision always go together.
const (
	maxResponseRevs  = 1000
	maxResponseBytes = 1 << 20
)

type state uint8

const (
	synced    state = iota // in core.synced: gets the feed as it comes
	unsynced               // in core.unsynced: behind, caught up from history
	compacted              // told its start was compacted; gets nothing more
	gone                   // cancelled, or its stream closed
)

// watcher is one watch of one stream. Its key, end and single never change
// once it is created (a history read's filter reads them off the actor).
type watcher struct {
	id       int64
	stream   *stream
	key, end string // end "" with !single: every key from key on
	single   bool
	startRev int64 // as asked; 0 for "from now"
	// minRev is the next revision the watcher needs: every matching event
	// below it has been queued for its stream. A synced watcher's may lag
	// behind (it is moved only when it gets events).
	minRev                     int64
	noPut, noDelete            bool
	prevKV, fragment, progress bool
	// progressDue says no event was queued since the last progress tick.
	progressDue bool
	state       state

	// The response being gathered for the run of revisions at hand.
	pend      []*mvccpb.Event
	pendBytes int
	pendRevs  int
	lastRev   int64 // the revision of the last event in pend
	more      int64 // the first revision left out of a full response
	touched   bool
}

// stream is a Stream as its actor sees it: its watchers by ID and its
// outbox.
type stream struct {
	out      *Outbox
	watchers map[int64]*watcher
	nextID   int64
	// progressWant is the revision a WatchProgressRequest waits for the feed
	// to reach, progressAsks how many wait.
	progressWant int64
	progressAsks int
}

// Revisions is what the watch side reads of the sequencer's published
// revisions.
type Revisions interface {
	Visible() int64
	Compacted() int64
}

// History reads the committed changes of a run of revisions, each
// revision's in request order, keeping the keys keep accepts
// (storage.DB.History).
type History interface {
	History(from, to int64, keep func(key string) bool, fn func(rev int64, changes []storage.Change) bool) error
}

// readReq asks for the history from..to of the watchers ws, whose keys
// match says (a group built for this read alone, never changed after).
type readReq struct {
	from, to int64
	ws       []*watcher
	match    *group
}

// readResult is what a history read found: the matching changes of
// from..to, to being where the read stopped.
type readResult struct {
	req     *readReq
	to      int64
	entries []storage.Entry
	err     error
}

// readBudget bounds the matching bytes one history read hands back, so that
// catching up a watcher far behind holds a bounded amount in memory;
// readRevs bounds the revisions it scans, so that a read for a watcher that
// matches little ends soon too (and a stopping actor does not wait long).
const (
	readBudget = 4 << 20
	readRevs   = 100_000
)

// readHistory runs r against h: the changes of r.from..r.to that r's
// watchers match, up to readBudget bytes or readRevs revisions, cut after a
// whole revision. It runs off the actor; r.match is not changed while it
// does.
func readHistory(h History, r *readReq) *readResult {
	res := &readResult{req: r, to: r.from - 1}
	bytes, revs := 0, 0
	full := func() bool { return bytes >= readBudget || revs >= readRevs }
	res.err = h.History(r.from, r.to, r.match.contains, func(rev int64, changes []storage.Change) bool {
		if len(changes) > 0 {
			e := storage.Entry{Rev: rev, Base: rev, Muts: make([]storage.Mutation, len(changes))}
			for i, ch := range changes {
				e.Muts[i] = mutationOf(ch)
				bytes += eventBytes(&e.Muts[i])
			}
			res.entries = append(res.entries, e)
		}
		res.to = rev
		revs++
		return !full()
	})
	if res.err == nil && !full() {
		res.to = r.to // the revisions after the last record hold nothing more
	}
	return res
}

// core is a watch actor's state machine, free of actors: the streams and
// watchers it owns, the synced watchers' index, the unsynced ones, and a
// ring of the newest feed runs for catching up without a disk read.
type core struct {
	revs      Revisions
	inMemory  bool // no History: the ring holds everything not compacted
	ringLimit int
	pos       int64 // every revision <= pos came through the feed
	streams   map[*Stream]*stream
	synced    *group
	unsynced  map[*watcher]struct{}
	ring      []*msg.Changes
	ringBytes int
	reading   bool // a history read is in flight
	waiting   map[*stream]struct{}
	touched   []*watcher
	cut       int // watchers whose catch-up response is full (see collect)
	events    int // events queued into the streams' outboxes, ever (metrics)
}

func newCore(revs Revisions, current int64, inMemory bool, ringLimit int) *core {
	return &core{
		revs: revs, inMemory: inMemory, ringLimit: ringLimit, pos: current,
		streams: make(map[*Stream]*stream), synced: newGroup(),
		unsynced: make(map[*watcher]struct{}), waiting: make(map[*stream]struct{}),
	}
}

// now is the revision control answers report: the newest visible one, or
// the feed's position if that is newer.
func (c *core) now() int64 { return max(c.pos, c.revs.Visible()) }

func (c *core) open(h *Stream) {
	c.streams[h] = &stream{out: h.out, watchers: make(map[int64]*watcher)}
}

func (c *core) close(h *Stream) {
	s := c.streams[h]
	if s == nil {
		return
	}
	for _, w := range s.watchers {
		c.drop(w)
	}
	delete(c.waiting, s)
	delete(c.streams, h)
	s.out.close()
}

// refuse answers a create request with a watcher created and canceled at
// once for reason, as etcd answers one it will not serve.
func (c *core) refuse(h *Stream, reason string) {
	s := c.streams[h]
	if s == nil {
		return
	}
	s.out.push(Item{Resp: &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: c.now()}, WatchId: -1, Created: true, Canceled: true, CancelReason: reason}, Control: true, answer: true}, 64)
}

// create starts a watcher as etcd's watch stream does, and answers it.
func (c *core) create(h *Stream, r *pb.WatchCreateRequest) *readReq {
	s := c.streams[h]
	if s == nil {
		return nil
	}
	now := c.now()
	if r.StartRevision < 0 {
		c.refuse(h, reasonCompacted)
		return nil
	}
	w := &watcher{stream: s, key: string(r.Key), startRev: r.StartRevision, prevKV: r.PrevKv, fragment: r.Fragment, progress: r.ProgressNotify, progressDue: true}
	if w.key == "" {
		w.key = "\x00" // the smallest key, as etcd takes it
	}
	switch {
	case len(r.RangeEnd) == 0:
		w.single = true
	case len(r.RangeEnd) == 1 && r.RangeEnd[0] == 0: // from key
	default:
		w.end = string(r.RangeEnd)
		if w.key >= w.end {
			c.refuse(h, reasonEmptyRange)
			return nil
		}
	}
	for _, f := range r.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			w.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			w.noDelete = true
		}
	}
	w.id = r.WatchId
	if w.id == 0 { // clientv3.AutoWatchID
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		w.id = s.nextID
		s.nextID++
	} else if s.watchers[w.id] != nil {
		c.refuse(h, reasonDuplicateID)
		return nil
	}
	s.watchers[w.id] = w
	s.out.push(Item{Resp: &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: now}, WatchId: w.id, Created: true}, Control: true, answer: true}, 64)
	switch {
	case r.StartRevision == 0:
		// From now: nothing the client may have seen answered before it.
		w.minRev = now + 1
	case r.StartRevision > c.pos:
		// The feed has yet to bring it.
		w.minRev = r.StartRevision
	default:
		w.minRev = r.StartRevision
		w.state = unsynced
		c.unsynced[w] = struct{}{}
		return c.sync()
	}
	w.state = synced
	c.synced.add(w)
	return nil
}

// cancel ends a watcher and answers; an unknown ID gets no answer (etcd).
func (c *core) cancel(h *Stream, id int64) {
	s := c.streams[h]
	if s == nil {
		return
	}
	if s.watchers[id] == nil {
		s.out.release(1)
		return
	}
	c.drop(s.watchers[id])
	delete(s.watchers, id)
	s.out.push(Item{Resp: &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: c.now()}, WatchId: id, Canceled: true}, Control: true, answer: true}, 64)
}

func (c *core) drop(w *watcher) {
	switch w.state {
	case synced:
		c.synced.remove(w)
	case unsynced:
		delete(c.unsynced, w)
	}
	w.state = gone
	w.pend = nil
}

// changes hands a run of newly visible revisions to the synced watchers.
// A watcher whose stream cannot take its events is set aside, unsynced,
// from the first revision of the run, and caught up later.
func (c *core) changes(ch *msg.Changes) {
	c.ringAdd(ch)
	c.pos = ch.To()
	if c.synced.size > 0 {
		c.touched = c.collect(c.synced, ch.Entries, c.touched[:0], false)
		for _, w := range c.touched {
			if c.deliver(w, c.pos) {
				w.minRev = c.pos + 1
				continue
			}
			c.synced.remove(w)
			w.minRev = max(w.minRev, ch.From())
			w.state = unsynced
			c.unsynced[w] = struct{}{}
		}
		clear(c.touched)
	}
	for s := range c.waiting {
		if s.progressWant <= c.pos {
			c.answerProgress(s)
		}
	}
	c.ringTrim()
}

// collect gathers, for each watcher of g, the events of entries at or after
// its minRev that its filters let through, and appends the watchers it
// touched to touched. capped cuts a watcher's response at a revision once
// it is full (see maxResponseRevs), recording where in w.more and counting
// it in c.cut; it stops once every watcher of g is cut.
func (c *core) collect(g *group, entries []storage.Entry, touched []*watcher, capped bool) []*watcher {
	for i := range entries {
		if capped && c.cut == g.size {
			return touched
		}
		e := &entries[i]
		for j := range e.Muts {
			m := &e.Muts[j]
			var ev *mvccpb.Event
			g.match(m.Key, func(w *watcher) {
				if e.Rev < w.minRev || w.more != 0 || (m.Delete && w.noDelete) || (!m.Delete && w.noPut) {
					return
				}
				if w.lastRev != e.Rev {
					if capped && w.pendRevs > 0 && (w.pendRevs >= maxResponseRevs || w.pendBytes >= maxResponseBytes) {
						w.more = e.Rev
						c.cut++
						return
					}
					w.pendRevs++
					w.lastRev = e.Rev
				}
				if ev == nil {
					ev = eventOf(e, m)
				}
				if !w.touched {
					w.touched = true
					touched = append(touched, w)
				}
				w.pend = append(w.pend, ev)
				w.pendBytes += eventBytes(m)
			})
		}
	}
	return touched
}

// deliver queues w's gathered events as one response with header revision
// rev, and reports whether its stream took it. Either way w is reset for
// the next run (w.more is left for the caller).
func (c *core) deliver(w *watcher, rev int64) bool {
	ok := w.stream.out.push(Item{
		Resp:     &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: rev}, WatchId: w.id, Events: w.pend},
		PrevKV:   w.prevKV,
		Fragment: w.fragment,
	}, w.pendBytes+64)
	if ok {
		w.progressDue = false
		c.events += len(w.pend)
	}
	w.pend, w.pendBytes, w.pendRevs, w.lastRev, w.touched = nil, 0, 0, 0, false
	return ok
}

// sync catches up the unsynced watchers it can: those below the compact
// revision are told so; those the ring covers get their history from it
// and join the synced group; for the others it returns a history read to
// run (one at a time).
func (c *core) sync() *readReq {
	for len(c.unsynced) > 0 {
		compactRev := c.revs.Compacted()
		start := c.ringStart()
		var ring []*watcher
		disk := false
		for w := range c.unsynced {
			switch {
			case w.minRev < compactRev:
				c.compact(w, compactRev)
			case w.stream.out.full():
				// Retried once its sender has drained it.
			case w.minRev > c.pos:
				c.toSynced(w)
			case w.minRev >= start || c.inMemory:
				// In memory the ring holds every run not compacted: what
				// precedes it held no change (the store starts empty).
				ring = append(ring, w)
			default:
				disk = true
			}
		}
		if len(ring) > 0 && c.catchUpFromRing(ring) {
			continue // some responses were cut: go on with them
		}
		if !disk || c.reading || c.inMemory {
			return nil
		}
		req := &readReq{to: start - 1, match: newGroup()}
		req.from = math.MaxInt64
		for w := range c.unsynced {
			if w.minRev < start && !w.stream.out.full() {
				req.ws = append(req.ws, w)
				req.match.add(w)
				req.from = min(req.from, w.minRev)
			}
		}
		c.reading = true
		return req
	}
	return nil
}

// catchUpFromRing hands ws the ring's history from their minRev to pos, and
// reports whether some of them got only part of it.
func (c *core) catchUpFromRing(ws []*watcher) (cut bool) {
	g := newGroup()
	from := int64(math.MaxInt64)
	for _, w := range ws {
		g.add(w)
		from = min(from, w.minRev)
	}
	c.cut = 0
	i, _ := slices.BinarySearchFunc(c.ring, from, func(ch *msg.Changes, rev int64) int { return cmp.Compare(ch.To(), rev) })
	for _, ch := range c.ring[i:] {
		if c.cut == g.size {
			break
		}
		entries := ch.Entries
		if first := ch.From(); first < from {
			entries = entries[from-first:]
		}
		c.collect(g, entries, nil, true)
	}
	return c.settle(ws, c.pos)
}

// settle ends a catch-up of ws through revision to: each watcher with
// events gets them in one response; one whose response was cut goes on
// from where it was cut, the others from to+1, joining the synced group
// if that is the feed's position. A watcher whose stream refused stays
// where it was. It reports whether a response was cut.
func (c *core) settle(ws []*watcher, to int64) (cut bool) {
	for _, w := range ws {
		more := w.more
		w.more = 0
		if w.touched && !c.deliver(w, c.pos) {
			continue
		}
		switch {
		case more != 0:
			w.minRev = more
			cut = true
		default:
			w.minRev = to + 1
			if to >= c.pos {
				c.toSynced(w)
			}
		}
	}
	return cut
}

func (c *core) toSynced(w *watcher) {
	delete(c.unsynced, w)
	w.state = synced
	c.synced.add(w)
}

// compact tells an unsynced watcher that its next revision was compacted,
// as etcd does (compact_revision set, canceled); it gets nothing more but
// keeps its ID until cancelled.
func (c *core) compact(w *watcher, rev int64) {
	delete(c.unsynced, w)
	w.state = compacted
	w.stream.out.push(Item{Resp: &pb.WatchResponse{Header: &pb.ResponseHeader{}, WatchId: w.id, CompactRevision: rev, Canceled: true}, Control: true}, 64)
}

// history takes a finished history read: the watchers it was for that are
// still at its start get what it found, then the catch-up goes on.
func (c *core) history(r *readResult) *readReq {
	c.reading = false
	if r.err != nil {
		return nil // retried on the next tick
	}
	compactRev := c.revs.Compacted()
	g := newGroup()
	var ws []*watcher
	for _, w := range r.req.ws {
		switch {
		case w.state != unsynced:
		case w.minRev < compactRev:
			c.compact(w, compactRev)
		case w.minRev >= r.req.from && w.minRev <= r.to && !w.stream.out.full():
			g.add(w)
			ws = append(ws, w)
		}
	}
	c.cut = 0
	c.collect(g, r.entries, nil, true)
	c.settle(ws, r.to)
	return c.sync()
}

// progressAll answers a WatchProgressRequest once the feed has reached the
// revision visible when it came: etcd answers with its current revision.
func (c *core) progressAll(h *Stream) {
	s := c.streams[h]
	if s == nil {
		return
	}
	// Its answer, if any, is an ordinary response, refused when the
	// outbox is full as etcd drops it.
	s.out.release(1)
	s.progressAsks++
	s.progressWant = max(s.progressWant, c.revs.Visible())
	if s.progressWant <= c.pos {
		c.answerProgress(s)
		return
	}
	c.waiting[s] = struct{}{}
}

// answerProgress sends the stream's waiting progress answers (watch ID -1,
// the feed's position) if every watcher of the stream is synced and has
// reached its start revision, as etcd's rule is; otherwise, and with no
// watcher, nothing is sent. A watcher created after the revision the feed
// has reached (its created answer reported a newer one) makes the answer
// wait for the feed to get there: a progress answer must not report less.
func (c *core) answerProgress(s *stream) {
	for _, w := range s.watchers {
		if w.state == synced && w.minRev-1 > c.pos {
			s.progressWant = max(s.progressWant, w.minRev-1)
			c.waiting[s] = struct{}{}
			return
		}
	}
	asks := s.progressAsks
	s.progressAsks, s.progressWant = 0, 0
	delete(c.waiting, s)
	if len(s.watchers) == 0 {
		return
	}
	for _, w := range s.watchers {
		if w.state != synced || c.pos < w.startRev {
			return
		}
	}
	for range asks {
		s.out.push(Item{Resp: &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: c.pos}, WatchId: -1}}, 64)
	}
}

// tickProgress sends each synced watcher that asked for progress_notify and
// got no event since the last tick a progress response (etcd's
// --watch-progress-notify-interval).
func (c *core) tickProgress() {
	for _, s := range c.streams {
		for _, w := range s.watchers {
			if !w.progress {
				continue
			}
			if w.progressDue && w.state == synced && c.pos >= w.startRev && c.pos >= w.minRev-1 {
				s.out.push(Item{Resp: &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: c.pos}, WatchId: w.id}}, 64)
			}
			w.progressDue = true
		}
	}
}

func (c *core) ringStart() int64 {
	if len(c.ring) == 0 {
		return c.pos + 1
	}
	return c.ring[0].From()
}

func (c *core) ringAdd(ch *msg.Changes) {
	c.ring = append(c.ring, ch)
	c.ringBytes += ch.Bytes
}

// ringTrim drops the ring's oldest runs: those below the compact revision,
// which no watcher may read, and, with a data dir to read history from,
// those past the ring's byte limit, and all of them while the actor has no
// watcher (a new one reads the data dir). In memory the ring is the only
// history.
func (c *core) ringTrim() {
	compactRev := c.revs.Compacted()
	keep := 1
	if c.synced.size == 0 && len(c.unsynced) == 0 {
		keep = 0
	}
	for len(c.ring) > 0 && (c.ring[0].To() < compactRev || (!c.inMemory && len(c.ring) > keep && c.ringBytes > c.ringLimit*keep)) {
		c.ringBytes -= c.ring[0].Bytes
		c.ring[0] = nil
		c.ring = c.ring[1:]
	}
}

// eventOf is the event etcd sends for mutation m of entry e: a delete's
// key-value holds only the key and the revision.
func eventOf(e *storage.Entry, m *storage.Mutation) *mvccpb.Event {
	if m.Delete {
		return &mvccpb.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(m.Key), ModRevision: e.Rev}}
	}
	create := m.Create
	if create < 0 {
		create = e.Base - create - 1
	}
	return &mvccpb.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{
		Key: []byte(m.Key), CreateRevision: create, ModRevision: e.Rev, Version: m.Version, Value: m.Value, Lease: m.Lease,
	}}
}

// eventBytes is about what m's event takes in a response.
func eventBytes(m *storage.Mutation) int { return len(m.Key) + len(m.Value) + 32 }

// mutationOf turns a change read from history back into a mutation.
func mutationOf(ch storage.Change) storage.Mutation {
	return storage.Mutation{Key: ch.Key, Value: ch.Value, Lease: ch.Rec.Lease, Create: ch.Rec.Create, Version: ch.Rec.Version, Delete: ch.Rec.Tombstone()}
}
