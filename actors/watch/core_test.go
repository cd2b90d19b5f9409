package watch

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

type fakeRevs struct{ visible, compacted int64 }

func (f *fakeRevs) Visible() int64   { return f.visible }
func (f *fakeRevs) Compacted() int64 { return f.compacted }

// fakeHistory serves the history a test wrote, as storage.DB.History does.
type fakeHistory struct{ entries []storage.Entry }

func (h *fakeHistory) History(from, to int64, keep func(string) bool, fn func(int64, []storage.Change) bool) error {
	for _, e := range h.entries {
		if e.Rev < from || e.Rev > to {
			continue
		}
		var cs []storage.Change
		for _, m := range e.Muts {
			if !keep(m.Key) {
				continue
			}
			rec := storage.Record{Rev: e.Rev, Create: m.Create, Version: m.Version, Lease: m.Lease}
			if m.Delete {
				rec.Create, rec.Version = 0, 0
			}
			cs = append(cs, storage.Change{Key: m.Key, Rec: rec, Value: m.Value})
		}
		if !fn(e.Rev, cs) {
			return nil
		}
	}
	return nil
}

// fixture is a core with one stream whose outbox the test reads.
type fixture struct {
	t    *testing.T
	revs *fakeRevs
	hist *fakeHistory
	c    *core
	h    *Stream
	rev  int64
	read *readReq // a history read the core asked for
}

func newFixture(t *testing.T, inMemory bool, outboxBytes int) *fixture {
	f := &fixture{t: t, revs: &fakeRevs{visible: 1, compacted: -1}, hist: &fakeHistory{}, rev: 1}
	f.c = newCore(f.revs, 1, inMemory, 1<<20)
	f.h = &Stream{}
	f.h.out = newOutbox(outboxBytes, func() {})
	f.c.open(f.h)
	return f
}

// write makes the next revision visible with puts of keys ("-k" deletes
// k) and feeds it to the core.
func (f *fixture) write(keys ...string) {
	f.rev++
	e := storage.Entry{Rev: f.rev, Base: f.rev}
	for _, k := range keys {
		if del, ok := strings.CutPrefix(k, "-"); ok {
			e.Muts = append(e.Muts, storage.Mutation{Key: del, Delete: true})
			continue
		}
		e.Muts = append(e.Muts, storage.Mutation{Key: k, Value: []byte(fmt.Sprint(f.rev)), Create: f.rev, Version: 1})
	}
	f.hist.entries = append(f.hist.entries, e)
	f.revs.visible = f.rev
	ch := &msg.Changes{Entries: []storage.Entry{e}}
	for _, m := range e.Muts {
		ch.Bytes += storage.RecordBytes(m)
	}
	f.c.changes(ch)
}

func (f *fixture) create(r *pb.WatchCreateRequest) {
	if req := f.c.create(f.h, r); req != nil {
		f.read = req
	}
}

// runRead runs the pending history read, as the actor's worker would.
func (f *fixture) runRead() {
	f.t.Helper()
	if f.read == nil {
		f.t.Fatal("no history read pending")
	}
	r := f.read
	f.read = nil
	res := readHistory(f.hist, r)
	if next := f.c.history(res); next != nil {
		f.read = next
	}
}

// take drains the outbox and summarizes each response: "c<id>@rev" for a
// creation, "x<id>" for a cancellation, "<id>@rev:k1,k2-" for events (a
// "-" after a deleted key), "p<id>@rev" for progress.
func (f *fixture) take() []string {
	done := make(chan struct{}) // never closed: Take is called only with items queued
	var out []string
	for {
		f.h.out.mu.Lock()
		n := len(f.h.out.items)
		f.h.out.mu.Unlock()
		if n == 0 {
			return out
		}
		items, _ := f.h.out.Take(done)
		for _, it := range items {
			r := it.Resp
			switch {
			case r.Created && r.Canceled:
				out = append(out, "refused:"+r.CancelReason)
			case r.Created:
				out = append(out, fmt.Sprintf("c%d@%d", r.WatchId, r.Header.Revision))
			case r.CompactRevision != 0:
				out = append(out, fmt.Sprintf("compacted%d@%d", r.WatchId, r.CompactRevision))
			case r.Canceled:
				out = append(out, fmt.Sprintf("x%d", r.WatchId))
			case len(r.Events) == 0:
				out = append(out, fmt.Sprintf("p%d@%d", r.WatchId, r.Header.Revision))
			default:
				var keys []string
				for _, ev := range r.Events {
					k := fmt.Sprintf("%s%d", ev.Kv.Key, ev.Kv.ModRevision)
					if ev.Type == mvccpb.DELETE {
						k += "-"
					}
					keys = append(keys, k)
				}
				out = append(out, fmt.Sprintf("%d@%d:%s", r.WatchId, r.Header.Revision, strings.Join(keys, ",")))
			}
		}
	}
}

func (f *fixture) want(want ...string) {
	f.t.Helper()
	if got := f.take(); !slices.Equal(got, want) {
		f.t.Fatalf("responses\n got %q\nwant %q", got, want)
	}
}

// wantAny is want for responses to different watchers, which come in no
// particular order.
func (f *fixture) wantAny(want ...string) {
	f.t.Helper()
	got := f.take()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		f.t.Fatalf("responses\n got %q\nwant %q", got, want)
	}
}

func TestCoreMatching(t *testing.T) {
	f := newFixture(t, true, DefaultOutboxBytes)
	f.create(&pb.WatchCreateRequest{Key: []byte("b")})                                                                           // 0: one key
	f.create(&pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("d")})                                                    // 1: a range
	f.create(&pb.WatchCreateRequest{Key: []byte("c"), RangeEnd: []byte{0}})                                                      // 2: from key
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}}) // 3
	f.create(&pb.WatchCreateRequest{Key: []byte("z"), StartRevision: 4})                                                         // 4: from the future
	f.want("c0@1", "c1@1", "c2@1", "c3@1", "c4@1")
	f.write("z", "b", "a") // 2
	f.wantAny("0@2:b2", "1@2:b2", "2@2:z2")
	f.write("c", "-a", "ca") // 3: in request order
	f.wantAny("1@3:c3,ca3", "2@3:c3,ca3", "3@3:a3-")
	f.write("z")
	f.wantAny("2@4:z4", "4@4:z4")
}

func TestCoreCreateRefusals(t *testing.T) {
	f := newFixture(t, true, DefaultOutboxBytes)
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7})
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7})
	f.create(&pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")})
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: -1})
	f.create(&pb.WatchCreateRequest{Key: []byte("a")})
	f.want("c7@1", "refused:"+reasonDuplicateID, "refused:"+reasonEmptyRange, "refused:"+reasonCompacted, "c0@1")
	f.c.cancel(f.h, 7)
	f.c.cancel(f.h, 99) // unknown: no answer
	f.write("a")
	f.want("x7", "0@2:a2")
}

// TestCoreStartRevisions: "from now" skips what was visible when the
// watcher was created even if the feed has not brought it yet; a past start
// is caught up from the ring, a compacted one is told so.
func TestCoreStartRevisions(t *testing.T) {
	f := newFixture(t, true, DefaultOutboxBytes)
	f.write("a")
	f.write("a")
	f.revs.visible = 4 // revision 4 is visible, not yet fed
	f.create(&pb.WatchCreateRequest{Key: []byte("a")})
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: 3})
	f.want("c0@4", "c1@4", "1@3:a3")
	f.rev = 3
	f.write("a") // revision 4
	f.want("1@4:a4")
	f.write("a")
	f.wantAny("0@5:a5", "1@5:a5")
	f.revs.compacted = 4
	f.c.ringTrim()
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: 3})
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: 4})
	f.want("c2@5", "compacted2@4", "c3@5", "3@5:a4,a5")
}

// TestCoreFromFirstRevision: in memory, a watcher from revision 1 gets
// everything, though the first change is at revision 2.
func TestCoreFromFirstRevision(t *testing.T) {
	f := newFixture(t, true, DefaultOutboxBytes)
	f.write("a")
	f.write("b")
	f.create(&pb.WatchCreateRequest{Key: []byte{0}, RangeEnd: []byte{0}, StartRevision: 1})
	f.want("c0@3", "0@3:a2,b3")
	f.c.progressAll(f.h)
	f.want("p-1@3")
}

// TestCoreSlowStream: a stream that is not read refuses events past its
// bound; its watchers are set aside and, once it drains, caught up — from
// the ring, or from history once the ring has moved on — and every event
// arrives once, in order.
func TestCoreSlowStream(t *testing.T) {
	for _, inMemory := range []bool{true, false} {
		t.Run(fmt.Sprintf("inMemory=%v", inMemory), func(t *testing.T) {
			f := newFixture(t, inMemory, 200)
			f.c.ringLimit = 300
			f.create(&pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l")})
			f.take()
			for range 40 {
				f.write("k1", "k2")
			}
			if len(f.c.unsynced) != 1 {
				t.Fatalf("%d unsynced watchers, want the slow one", len(f.c.unsynced))
			}
			var revs []int64
			for range 100 {
				for _, r := range f.take() {
					_, events, _ := strings.Cut(r, ":")
					for _, ev := range strings.Split(events, ",") {
						var rev int64
						if _, err := fmt.Sscanf(ev, "k1%d", &rev); err == nil {
							revs = append(revs, rev)
						}
					}
				}
				if len(f.c.unsynced) == 0 {
					break
				}
				if f.read != nil {
					f.runRead()
				} else if req := f.c.sync(); req != nil {
					f.read = req
				}
			}
			want := make([]int64, 40)
			for i := range want {
				want[i] = int64(i + 2)
			}
			if !slices.Equal(revs, want) {
				t.Fatalf("events at %v, want %v", revs, want)
			}
			f.write("k1")
			f.want("0@42:k142")
		})
	}
}

// TestCoreProgress: a WatchProgressRequest is answered only once the feed
// reached what was visible when it came, and only if every watcher of the
// stream is synced and past its start.
func TestCoreProgress(t *testing.T) {
	f := newFixture(t, true, DefaultOutboxBytes)
	f.c.progressAll(f.h)
	f.want() // no watcher: no answer
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), ProgressNotify: true})
	f.take()
	f.revs.visible = 2
	f.c.progressAll(f.h)
	f.want()
	f.rev = 1
	f.write("b")
	f.want("p-1@2")
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: 10})
	f.take()
	f.c.progressAll(f.h)
	f.want()
	f.c.tickProgress() // the idle watcher is told, the future one is not
	f.want("p0@2")
	f.write("a")
	f.want("0@3:a3")
	f.c.tickProgress() // it got an event this interval
	f.want()
	f.c.tickProgress()
	f.want("p0@3")
}

// TestGroupMatch checks the index against a scan of every watcher.
func TestGroupMatch(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	key := func() string { return string(rune('a' + rnd.IntN(20))) }
	g := newGroup()
	var all []*watcher
	for i := range 2000 {
		w := &watcher{id: int64(i), key: key(), single: rnd.IntN(2) == 0}
		if !w.single && rnd.IntN(4) > 0 {
			w.end = key()
			if w.end <= w.key {
				w.key, w.end = w.end, w.key+"\x00"
			}
		}
		g.add(w)
		all = append(all, w)
	}
	for _, w := range all[:500] {
		g.remove(w)
	}
	all = all[500:]
	for range 200 {
		k := key() + key()[:rnd.IntN(2)]
		var got, want []int64
		g.match(k, func(w *watcher) { got = append(got, w.id) })
		for _, w := range all {
			if (w.single && w.key == k) || (!w.single && k >= w.key && (w.end == "" || k < w.end)) {
				want = append(want, w.id)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("key %q: matched %v, want %v", k, got, want)
		}
		if g.contains(k) != (len(want) > 0) {
			t.Fatalf("contains(%q) = %v", k, !(len(want) > 0))
		}
	}
}

func TestCoalesce(t *testing.T) {
	ev := func(id, rev int64, keys ...string) Item {
		r := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: rev}, WatchId: id}
		for _, k := range keys {
			r.Events = append(r.Events, &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte(k), ModRevision: rev}})
		}
		return Item{Resp: r}
	}
	ctl := func(id int64, canceled bool) Item {
		return Item{Resp: &pb.WatchResponse{Header: &pb.ResponseHeader{}, WatchId: id, Created: !canceled, Canceled: canceled}, Control: true}
	}
	show := func(items []Item) []string {
		var out []string
		for _, it := range items {
			r := it.Resp
			s := fmt.Sprintf("%d@%d", r.WatchId, r.Header.Revision)
			switch {
			case r.Created:
				s = fmt.Sprintf("c%d", r.WatchId)
			case r.Canceled:
				s = fmt.Sprintf("x%d", r.WatchId)
			}
			for _, e := range r.Events {
				s += fmt.Sprintf(":%s%d", e.Kv.Key, e.Kv.ModRevision)
			}
			out = append(out, s)
		}
		return out
	}
	tests := []struct {
		name  string
		items []Item
		want  []string
	}{
		{"runs of one watcher merge", []Item{ev(1, 2, "a", "b"), ev(2, 2, "a"), ev(1, 3, "a"), ev(2, 4, "c")},
			[]string{"1@3:a2:b2:a3", "2@4:a2:c4"}},
		{"no event moves before a progress answer", []Item{ev(1, 2, "a"), ev(-1, 2), ev(1, 3, "a"), ev(1, 4, "b"), ev(2, 4, "b"), ev(1, 5), ev(2, 5, "c")},
			[]string{"1@2:a2", "-1@2", "1@4:a3:b4", "2@5:b4:c5", "1@5"}},
		{"no event moves before a cancel and a new creation", []Item{ev(1, 2, "a"), ctl(1, true), ctl(1, false), ev(1, 3, "b"), ev(1, 4, "c")},
			[]string{"1@2:a2", "x1", "c1", "1@4:b3:c4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := show(Coalesce(tc.items)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCoreProgressNotBelowCreated: a watcher created while the feed lags
// the visible revision reports that revision when created; no progress
// answer may report less, so both wait for the feed to get there.
func TestCoreProgressNotBelowCreated(t *testing.T) {
	f := newFixture(t, true, DefaultOutboxBytes)
	f.revs.visible = 3 // visible, not fed yet
	f.create(&pb.WatchCreateRequest{Key: []byte("a"), ProgressNotify: true})
	f.want("c0@3")
	f.c.tickProgress()
	f.c.progressAll(f.h)
	f.want()
	f.write("b") // revision 2
	f.want()
	f.write("b") // revision 3
	f.want("p-1@3")
	f.c.tickProgress()
	f.want("p0@3")
}
