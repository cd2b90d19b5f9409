package test

// The Watch conformance suite. Raw bidirectional streams (pb.Watch) show
// every response exactly as the server sends it; clientv3's Watch shows what
// users see. Expected responses are compared whole (proto.Equal), with the
// header's ids and raft term taken from the same server's KV responses.
// etcd is the oracle: an expectation that fails against etcd is a wrong test.
// No test here runs in parallel: etcd keeps the progress notify interval in
// a package variable (see withProgressNotifyInterval).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

const (
	// wtRecvTimeout bounds every wait for a response that must come.
	wtRecvTimeout = 10 * time.Second
	// wtQuiet is how long a stream must stay silent to count as sending
	// nothing: ample for a server that answers at once, and no speed test.
	wtQuiet = 300 * time.Millisecond
	// wtGRPCOverhead is what etcd adds to --max-request-bytes to get the size
	// at which it splits a fragmenting watcher's response
	// (ServerConfig.MaxRequestBytesWithOverhead).
	wtGRPCOverhead = 512 * 1024
)

// The cancel reasons of a create request that makes no watcher (etcd's
// error strings, sent in a response with watch_id -1, created and canceled).
const (
	wtReasonDuplicate  = "mvcc: duplicate watch ID provided on the WatchStream"
	wtReasonEmptyRange = "mvcc: watcher range is empty"
	// A negative start_revision is answered like a compacted one, with the
	// client-side error text of ErrCompacted.
	wtReasonNegative = "etcdserver: mvcc: required revision has been compacted"
)

// wtStream is a raw Watch stream. A goroutine reads its responses into a
// channel so that every wait for one is bounded and the test never hangs.
type wtStream struct {
	t     *testing.T
	s     pb.Watch_WatchClient
	resps chan *pb.WatchResponse
	errc  chan error
	// rest is what is left of a merged response once want has matched its
	// first events (see want).
	rest *pb.WatchResponse
}

// wtOpen opens a raw Watch stream on tg.Conn for the life of t.
func wtOpen(t *testing.T, tg *Target) *wtStream {
	t.Helper()
	return wtOpenCtx(t, tg, t.Context())
}

// wtOpenCtx is wtOpen with a context of the caller's (its metadata goes
// with the stream), which must last as long as t.
func wtOpenCtx(t *testing.T, tg *Target, ctx context.Context) *wtStream {
	t.Helper()
	s, err := pb.NewWatchClient(tg.Conn).Watch(ctx)
	if err != nil {
		t.Fatalf("open watch stream: %v", err)
	}
	ws := &wtStream{t: t, s: s, resps: make(chan *pb.WatchResponse, 1024), errc: make(chan error, 1)}
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				ws.errc <- err
				return
			}
			select {
			case ws.resps <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ws
}

func (ws *wtStream) send(req *pb.WatchRequest) {
	ws.t.Helper()
	if err := ws.s.Send(req); err != nil {
		ws.t.Fatalf("send %v: %v", req, err)
	}
}

func (ws *wtStream) create(cr *pb.WatchCreateRequest) {
	ws.t.Helper()
	ws.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}})
}

func (ws *wtStream) cancel(id int64) {
	ws.t.Helper()
	ws.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}})
}

func (ws *wtStream) requestProgress() {
	ws.t.Helper()
	ws.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
}

// recv returns the next response; it fails the test if none comes in
// wtRecvTimeout or the stream ends. Responses already read win over the end.
func (ws *wtStream) recv() *pb.WatchResponse {
	ws.t.Helper()
	if r := ws.rest; r != nil {
		ws.rest = nil
		return r
	}
	return wtRecvFrom(ws.t, ws.resps, ws.errc, "watch response")
}

// wtRecvFrom returns the next value a stream's reader goroutine put on
// resps; it fails the test if none comes in wtRecvTimeout or the stream
// ends (errc). Values already read win over the end.
func wtRecvFrom[T any](t *testing.T, resps <-chan T, errc <-chan error, what string) T {
	t.Helper()
	select {
	case r := <-resps:
		return r
	default:
	}
	select {
	case r := <-resps:
		return r
	case err := <-errc:
		t.Fatalf("stream ended waiting for a %s: %v", what, err)
	case <-time.After(wtRecvTimeout):
		t.Fatalf("no %s in %v", what, wtRecvTimeout)
	}
	var zero T
	return zero
}

// quiet checks that nothing arrives for wtQuiet.
func (ws *wtStream) quiet() {
	ws.t.Helper()
	select {
	case r := <-ws.resps:
		ws.t.Fatalf("unexpected response: %s", wtSummary(r))
	case err := <-ws.errc:
		ws.t.Fatalf("watch stream ended: %v", err)
	case <-time.After(wtQuiet):
	}
}

// want receives len(want) responses and checks each against want, in order.
//
// A response may hold several consecutive wanted event responses of one
// watcher: MetaStore's sender merges the responses that queued up while it
// was sending (docs/compatibility.md), which the client cannot tell from
// several responses but for the header, the last one's. want then matches
// the wanted events at its head and keeps the rest for what comes next.
func (ws *wtStream) want(want ...*pb.WatchResponse) {
	ws.t.Helper()
	for i, w := range want {
		got := ws.recv()
		if proto.Equal(got, w) {
			continue
		}
		if n := len(w.Events); n > 0 && len(got.Events) > n && got.WatchId == w.WatchId &&
			got.Header.Revision > w.Header.Revision && proto.Equal(wtWithEvents(got, got.Events[:n], w.Header), w) {
			ws.rest = wtWithEvents(got, got.Events[n:], got.Header)
			continue
		}
		ws.t.Fatalf("response %d:\n got %s\nwant %s", i, wtSummary(got), wtSummary(w))
	}
}

// wtWithEvents is r with other events and header.
func wtWithEvents(r *pb.WatchResponse, evs []*mvccpb.Event, h *pb.ResponseHeader) *pb.WatchResponse {
	c := proto.Clone(r).(*pb.WatchResponse)
	c.Events, c.Header = evs, h
	return c
}

// wantSet is want for responses to different watchers: etcd orders a
// stream's responses per watcher only (the watchers a revision concerns are
// a map), so both lists are compared sorted by watch_id, stably.
func (ws *wtStream) wantSet(want ...*pb.WatchResponse) {
	ws.t.Helper()
	got := make([]*pb.WatchResponse, len(want))
	for i := range got {
		got[i] = ws.recv()
	}
	byID := func(a, b *pb.WatchResponse) int { return int(a.WatchId - b.WatchId) }
	want = slices.Clone(want)
	slices.SortStableFunc(got, byID)
	slices.SortStableFunc(want, byID)
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			ws.t.Fatalf("response %d by watch id:\n got %s\nwant %s", i, wtSummary(got[i]), wtSummary(want[i]))
		}
	}
}

// wtHeaders makes the header a watch response of one server carries at a
// revision: the ids and raft term are those of the server's KV responses.
type wtHeaders func(rev int64) *pb.ResponseHeader

func wtHeadersOf(t *testing.T, tg *Target) wtHeaders {
	t.Helper()
	kv := tg.rangeKV(t, &pb.RangeRequest{Key: []byte("\x00never-written")}).Header
	if kv.ClusterId == 0 || kv.MemberId == 0 || kv.RaftTerm == 0 {
		t.Fatalf("KV header %v has a zero id or term", kv)
	}
	return func(rev int64) *pb.ResponseHeader {
		return &pb.ResponseHeader{ClusterId: kv.ClusterId, MemberId: kv.MemberId, RaftTerm: kv.RaftTerm, Revision: rev}
	}
}

// created is the answer to a create request that made watcher id.
func (h wtHeaders) created(rev, id int64) *pb.WatchResponse {
	return &pb.WatchResponse{Header: h(rev), WatchId: id, Created: true}
}

// failed is the answer to a create request that made no watcher.
func (h wtHeaders) failed(rev int64, reason string) *pb.WatchResponse {
	return &pb.WatchResponse{Header: h(rev), WatchId: -1, Created: true, Canceled: true, CancelReason: reason}
}

// canceled is the answer to a cancel request.
func (h wtHeaders) canceled(rev, id int64) *pb.WatchResponse {
	return &pb.WatchResponse{Header: h(rev), WatchId: id, Canceled: true}
}

// events is an event response, or with no events a progress notification.
func (h wtHeaders) events(rev, id int64, evs ...*mvccpb.Event) *pb.WatchResponse {
	return &pb.WatchResponse{Header: h(rev), WatchId: id, Events: evs}
}

// compacted is etcd's answer to a watcher whose start revision was
// compacted away: header revision 0, canceled, compact_revision set.
func (h wtHeaders) compacted(id, compactRev int64) *pb.WatchResponse {
	return &pb.WatchResponse{Header: h(0), WatchId: id, Canceled: true, CompactRevision: compactRev}
}

func wtKV(k, v string, create, mod, ver int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(k), Value: []byte(v), CreateRevision: create, ModRevision: mod, Version: ver}
}

func wtPut(k, v string, create, mod, ver int64) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: wtKV(k, v, create, mod, ver)}
}

// wtDel is a delete event: its kv has only the key and mod_revision.
func wtDel(k string, mod int64) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte(k), ModRevision: mod}}
}

func wtWithPrev(ev *mvccpb.Event, prev *mvccpb.KeyValue) *mvccpb.Event {
	ev.PrevKv = prev
	return ev
}

// wtDelete is a raw DeleteRange that must succeed; it returns the revision.
func wtDelete(t *testing.T, tg *Target, key, end string) int64 {
	t.Helper()
	resp, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end)})
	if err != nil {
		t.Fatalf("delete %q..%q: %v", key, end, err)
	}
	return resp.Header.Revision
}

// wtSummary renders a response on one line, long values cut short, for
// failure messages.
func wtSummary(r *pb.WatchResponse) string {
	if r == nil {
		return "<nil>"
	}
	var b strings.Builder
	h := r.GetHeader()
	fmt.Fprintf(&b, "{id=%d hdr=(c%d m%d t%d rev%d)", r.WatchId, h.GetClusterId(), h.GetMemberId(), h.GetRaftTerm(), h.GetRevision())
	if r.Created {
		b.WriteString(" created")
	}
	if r.Canceled {
		fmt.Fprintf(&b, " canceled(%q)", r.CancelReason)
	}
	if r.CompactRevision != 0 {
		fmt.Fprintf(&b, " compact=%d", r.CompactRevision)
	}
	if r.Fragment {
		b.WriteString(" fragment")
	}
	b.WriteString(" events=[" + wtEventsSummary(r.Events) + "]}")
	return b.String()
}

func wtEventsSummary(evs []*mvccpb.Event) string {
	kv := func(kv *mvccpb.KeyValue) string {
		v := fmt.Sprintf("%q", kv.Value)
		if len(kv.Value) > 16 {
			v = fmt.Sprintf("%q...(%d bytes)", kv.Value[:16], len(kv.Value))
		}
		return fmt.Sprintf("%s=%s(c%d,m%d,v%d,l%d)", kv.Key, v, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	var parts []string
	for _, ev := range evs {
		s := ev.Type.String() + " " + kv(ev.Kv)
		if ev.PrevKv != nil {
			s += " prev " + kv(ev.PrevKv)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// wtSameEvents checks events got through clientv3 against want.
func wtSameEvents(t *testing.T, got, want []*mvccpb.Event) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(a, b *mvccpb.Event) bool { return proto.Equal(a, b) }) {
		t.Fatalf("events:\n got [%s]\nwant [%s]", wtEventsSummary(got), wtEventsSummary(want))
	}
}

// wtNext returns the next response of a clientv3 watch, bounded.
func wtNext(t *testing.T, wch clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case wr, ok := <-wch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return wr
	case <-time.After(wtRecvTimeout):
		t.Fatalf("no watch response in %v", wtRecvTimeout)
	}
	return clientv3.WatchResponse{}
}

// wtNextEvents reads n events from wch, in as many responses as they come
// in (etcd sends one per revision; MetaStore may merge consecutive ones),
// checking that each response's header revision is its last event's.
func wtNextEvents(t *testing.T, wch clientv3.WatchChan, n int) []*mvccpb.Event {
	t.Helper()
	var evs []*mvccpb.Event
	for len(evs) < n {
		wr := wtNext(t, wch)
		if len(wr.Events) == 0 {
			t.Fatalf("response without events: %+v", wr)
		}
		if last := wr.Events[len(wr.Events)-1].Kv.ModRevision; wr.Header.Revision != last {
			t.Fatalf("header revision %d, last event at %d", wr.Header.Revision, last)
		}
		evs = append(evs, wr.Events...)
	}
	return evs
}

// wtClientQuiet checks that none of the clientv3 watches gets anything
// within wtQuiet.
func wtClientQuiet(t *testing.T, wchs ...clientv3.WatchChan) {
	t.Helper()
	time.Sleep(wtQuiet)
	for i, wch := range wchs {
		select {
		case wr, ok := <-wch:
			t.Fatalf("watch %d: unexpected response (open %v): %+v", i, ok, wr)
		default:
		}
	}
}

// TestWatchStreamIDs runs many watchers on one raw stream: automatic ids
// count from 0 per stream and skip ids a client chose, chosen ids are kept,
// a duplicate id makes no watcher, and each watcher's events carry its id.
// A cancel is answered (header = current revision) and stops the events; a
// cancel of an unknown id is not answered at all.
func TestWatchStreamIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)

		t.Run("auto and chosen", func(t *testing.T) {
			p := keyPrefix(t)
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			watchers := []struct {
				key       string
				ask, want int64 // ask 0: let the server choose
			}{
				{"a", 0, 0}, {"b", 0, 1}, {"c", 0, 2},
				{"d", 10, 10},
				{"e", 0, 3}, // auto ids go on from the last auto id
				{"f", 4, 4}, // the client takes the next auto id...
				{"g", 0, 5}, // ...so the server skips it
			}
			for _, w := range watchers {
				ws.create(&pb.WatchCreateRequest{Key: []byte(p + w.key), WatchId: w.ask})
				ws.want(h.created(cur, w.want))
			}
			for _, id := range []int64{10, 1, 4} {
				ws.create(&pb.WatchCreateRequest{Key: []byte(p + "x"), WatchId: id})
				ws.want(h.failed(cur, wtReasonDuplicate))
			}
			var ops []*pb.RequestOp
			for _, w := range watchers {
				ops = append(ops, opPut(p+w.key, w.key))
			}
			r := tg.txn(t, &pb.TxnRequest{Success: ops}).Header.Revision
			var want []*pb.WatchResponse
			for _, w := range watchers {
				want = append(want, h.events(r, w.want, wtPut(p+w.key, w.key, r, r, 1)))
			}
			ws.wantSet(want...)
			ws.quiet()
		})

		t.Run("ids are per stream", func(t *testing.T) {
			p := keyPrefix(t)
			cur := tg.currentRev(t)
			for range 2 {
				ws := wtOpen(t, tg)
				ws.create(&pb.WatchCreateRequest{Key: []byte(p + "a"), WatchId: 10})
				ws.create(&pb.WatchCreateRequest{Key: []byte(p + "a")})
				ws.want(h.created(cur, 10), h.created(cur, 0))
			}
		})

		t.Run("cancel", func(t *testing.T) {
			p := keyPrefix(t)
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "a")})
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "b"), WatchId: 7})
			ws.want(h.created(cur, 0), h.created(cur, 7))
			ws.cancel(0)
			ws.want(h.canceled(cur, 0))
			tg.put(t, p+"a", "1")
			ws.quiet()
			for _, id := range []int64{0, 99, -1} {
				ws.cancel(id)
			}
			ws.quiet()
			// The other watcher goes on; its cancelled id can be chosen again.
			r := tg.put(t, p+"b", "1")
			ws.want(h.events(r, 7, wtPut(p+"b", "1", r, r, 1)))
			ws.cancel(7)
			ws.want(h.canceled(r, 7))
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "b"), WatchId: 7})
			ws.want(h.created(r, 7))
		})
	})
}

// TestWatchKeyRanges checks which keys a watcher sees: one key, a
// [key, range_end) range, a prefix, from a key on (range_end "\x00"), and the
// empty key (the key "\x00", or every key with range_end "\x00"); and the
// create requests that make no watcher.
func TestWatchKeyRanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)
		// Every case puts these keys under its prefix, one put each, in order.
		writes := []string{"a", "b", "ba", "c", "d"}
		tests := []struct {
			name, key, end string // under the case's prefix, but an end of "\x00"
			seen           []string
		}{
			{"one key", "b", "", []string{"b"}},
			{"range", "b", "d", []string{"b", "ba", "c"}},
			{"prefix", "b", prefixEnd("b"), []string{"b", "ba"}},
			{"from key", "ba", "\x00", []string{"ba", "c", "d"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := keyPrefix(t)
				end := tc.end
				if end != "" && end != "\x00" {
					end = p + end
				}
				ws := wtOpen(t, tg)
				cur := tg.currentRev(t)
				ws.create(&pb.WatchCreateRequest{Key: []byte(p + tc.key), RangeEnd: []byte(end)})
				ws.want(h.created(cur, 0))
				revs := map[string]int64{}
				for _, k := range writes {
					revs[k] = tg.put(t, p+k, "v")
				}
				for _, k := range tc.seen {
					r := revs[k]
					ws.want(h.events(r, 0, wtPut(p+k, "v", r, r, 1)))
				}
				ws.quiet()
			})
		}

		// Nothing else writes to the server meanwhile.
		t.Run("empty key", func(t *testing.T) {
			p := keyPrefix(t)
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			ws.create(&pb.WatchCreateRequest{})                    // the key "\x00"
			ws.create(&pb.WatchCreateRequest{RangeEnd: []byte{0}}) // every key
			ws.want(h.created(cur, 0), h.created(cur, 1))
			r1 := tg.put(t, p+"a", "v")
			ws.want(h.events(r1, 1, wtPut(p+"a", "v", r1, r1, 1)))
			r2 := tg.put(t, "\x00", "v")
			ws.wantSet(h.events(r2, 0, wtPut("\x00", "v", r2, r2, 1)), h.events(r2, 1, wtPut("\x00", "v", r2, r2, 1)))
			ws.quiet()
		})

		t.Run("no watcher", func(t *testing.T) {
			p := keyPrefix(t)
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			for _, tc := range []struct {
				req    *pb.WatchCreateRequest
				reason string
			}{
				{&pb.WatchCreateRequest{Key: []byte(p + "b"), RangeEnd: []byte(p + "a")}, wtReasonEmptyRange},
				{&pb.WatchCreateRequest{Key: []byte(p + "b"), RangeEnd: []byte(p + "b")}, wtReasonEmptyRange},
				{&pb.WatchCreateRequest{Key: []byte(p + "b"), StartRevision: -1}, wtReasonNegative},
				{&pb.WatchCreateRequest{Key: []byte(p + "b"), StartRevision: -1, WatchId: 5}, wtReasonNegative},
			} {
				ws.create(tc.req)
				ws.want(h.failed(cur, tc.reason))
			}
			// None of them used an id, and the stream still works.
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "b")})
			ws.want(h.created(cur, 0))
			r := tg.put(t, p+"b", "v")
			ws.want(h.events(r, 0, wtPut(p+"b", "v", r, r, 1)))
		})

		t.Run("clientv3 options", func(t *testing.T) {
			p := keyPrefix(t)
			ctx := t.Context()
			chans := []clientv3.WatchChan{
				tg.Client.Watch(ctx, p+"b", clientv3.WithPrefix()),
				tg.Client.Watch(ctx, p+"ba", clientv3.WithFromKey()),
				tg.Client.Watch(ctx, p+"b", clientv3.WithRange(p+"d")),
			}
			seen := [][]string{{"b", "ba"}, {"ba", "c", "d"}, {"b", "ba", "c"}}
			revs := map[string]int64{}
			for _, k := range writes {
				revs[k] = tg.put(t, p+k, "v")
			}
			for i, wch := range chans {
				var want []*mvccpb.Event
				for _, k := range seen[i] {
					want = append(want, wtPut(p+k, "v", revs[k], revs[k], 1))
				}
				wtSameEvents(t, wtNextEvents(t, wch, len(want)), want)
			}
			wtClientQuiet(t, chans...)
		})
	})
}

// TestWatchStartRevision checks start_revision: from a past revision a
// watcher gets the history in one response (header = current revision),
// then the live events, with no gap and no duplicate even while writes go
// on; from a future revision it gets the events from that revision on.
func TestWatchStartRevision(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)

		t.Run("past", func(t *testing.T) {
			p := keyPrefix(t)
			r1 := tg.put(t, p+"a", "1")
			r2 := tg.put(t, p+"b", "1")
			r3 := tg.put(t, p+"a", "2")
			tg.put(t, p+"other", "1")
			r5 := wtDelete(t, tg, p+"b", "")
			ws := wtOpen(t, tg)
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "a"), RangeEnd: []byte(p + "c"), StartRevision: r2})
			ws.want(
				h.created(r5, 0),
				h.events(r5, 0, wtPut(p+"b", "1", r2, r2, 1), wtPut(p+"a", "2", r1, r3, 2), wtDel(p+"b", r5)),
			)
			r6 := tg.put(t, p+"a", "3")
			ws.want(h.events(r6, 0, wtPut(p+"a", "3", r1, r6, 3)))
			ws.quiet()
		})

		t.Run("catch up while writing", func(t *testing.T) {
			p := keyPrefix(t)
			k := p + "k"
			const n = 60
			first := tg.put(t, k, "0")
			for i := 1; i < n/2; i++ {
				tg.put(t, k, strconv.Itoa(i))
			}
			ws := wtOpen(t, tg)
			ws.create(&pb.WatchCreateRequest{Key: []byte(k), StartRevision: first})
			done := make(chan error, 1)
			go func() {
				for i := n / 2; i < n; i++ {
					if _, err := tg.KV.Put(t.Context(), &pb.PutRequest{Key: []byte(k), Value: []byte(strconv.Itoa(i))}); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			if r := ws.recv(); !r.Created || r.WatchId != 0 || r.Canceled {
				t.Fatalf("first response %s, want created", wtSummary(r))
			}
			var got []*mvccpb.Event
			var lastHdr int64
			for len(got) < n {
				r := ws.recv()
				if len(r.Events) == 0 || r.Header.Revision < lastHdr || r.Header.Revision < r.Events[len(r.Events)-1].Kv.ModRevision {
					t.Fatalf("after %d events (last header %d): %s", len(got), lastHdr, wtSummary(r))
				}
				lastHdr = r.Header.Revision
				got = append(got, r.Events...)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(wtRecvTimeout):
				t.Fatal("writer did not finish")
			}
			want := make([]*mvccpb.Event, n)
			for i := range want {
				want[i] = wtPut(k, strconv.Itoa(i), first, first+int64(i), int64(i)+1)
			}
			wtSameEvents(t, got, want)
			ws.quiet()
		})

		t.Run("future", func(t *testing.T) {
			k := keyPrefix(t) + "k"
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			ws.create(&pb.WatchCreateRequest{Key: []byte(k), StartRevision: cur + 3})
			ws.want(h.created(cur, 0))
			for i := int64(1); i <= 5; i++ {
				tg.put(t, k, strconv.FormatInt(i, 10))
			}
			for i := int64(3); i <= 5; i++ {
				ws.want(h.events(cur+i, 0, wtPut(k, strconv.FormatInt(i, 10), cur+1, cur+i, i)))
			}
			ws.quiet()
		})
	})
}

// TestWatchCompacted has a server of its own, as compaction is global. A
// watcher may start at the compact revision; below it, etcd creates the
// watcher, then sends one response with compact_revision and canceled and
// header revision 0, and nothing more; the id stays taken until cancelled.
// clientv3 reports ErrCompacted and closes the channel.
func TestWatchCompacted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)
		k := keyPrefix(t) + "k"
		var revs [5]int64 // revs[i] put k=v<i>
		for i := 1; i <= 4; i++ {
			revs[i] = tg.put(t, k, fmt.Sprintf("v%d", i))
		}
		compactRev := revs[3]
		if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: compactRev}); err != nil {
			t.Fatal(err)
		}
		version := func(i int) *mvccpb.Event { return wtPut(k, fmt.Sprintf("v%d", i), revs[1], revs[i], int64(i)) }

		t.Run("from the compact revision", func(t *testing.T) {
			ws := wtOpen(t, tg)
			ws.create(&pb.WatchCreateRequest{Key: []byte(k), StartRevision: compactRev})
			ws.want(h.created(revs[4], 0), h.events(revs[4], 0, version(3), version(4)))
			ws.quiet()
		})

		t.Run("below the compact revision", func(t *testing.T) {
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			ws.create(&pb.WatchCreateRequest{Key: []byte(k), StartRevision: revs[2]})
			ws.create(&pb.WatchCreateRequest{Key: []byte(k), StartRevision: 1, WatchId: 5})
			ws.wantSet(h.created(cur, 0), h.compacted(0, compactRev), h.created(cur, 5), h.compacted(5, compactRev))
			r := tg.put(t, k, "after")
			ws.quiet()
			ws.create(&pb.WatchCreateRequest{Key: []byte(k), WatchId: 5})
			ws.want(h.failed(r, wtReasonDuplicate))
			ws.cancel(5)
			ws.want(h.canceled(r, 5))
		})

		t.Run("clientv3", func(t *testing.T) {
			wch := tg.Client.Watch(t.Context(), k, clientv3.WithRev(revs[2]))
			wr := wtNext(t, wch)
			if wr.CompactRevision != compactRev || !wr.Canceled || len(wr.Events) != 0 || wr.Header.Revision != 0 || !errors.Is(wr.Err(), rpctypes.ErrCompacted) {
				t.Fatalf("got %+v (err %v), want compact revision %d, canceled, header revision 0, ErrCompacted", wr, wr.Err(), compactRev)
			}
			select {
			case wr, ok := <-wch:
				if ok {
					t.Fatalf("after the compaction: %+v", wr)
				}
			case <-time.After(wtRecvTimeout):
				t.Fatal("watch channel not closed after the compaction")
			}
		})
	})
}

// TestWatchPrevKV checks prev_kv: the previous version on a put over an
// existing key and on a delete, none on a create (also a re-create after a
// delete), for live events and for history.
func TestWatchPrevKV(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)
		p := keyPrefix(t)
		a, b := p+"a", p+"b"
		ws := wtOpen(t, tg)
		all := &pb.WatchCreateRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), PrevKv: true}
		ws.create(all)
		ws.want(h.created(tg.currentRev(t), 0))

		var history []*mvccpb.Event
		step := func(r int64, evs ...*mvccpb.Event) {
			t.Helper()
			ws.want(h.events(r, 0, evs...))
			history = append(history, evs...)
		}
		r1 := tg.put(t, a, "1")
		step(r1, wtPut(a, "1", r1, r1, 1))
		r2 := tg.put(t, a, "2")
		step(r2, wtWithPrev(wtPut(a, "2", r1, r2, 2), wtKV(a, "1", r1, r1, 1)))
		r3 := wtDelete(t, tg, a, "")
		step(r3, wtWithPrev(wtDel(a, r3), wtKV(a, "2", r1, r2, 2)))
		r4 := tg.put(t, a, "3")
		step(r4, wtPut(a, "3", r4, r4, 1))
		r5 := tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opPut(b, "1"), opPut(a, "4")}}).Header.Revision
		step(r5, wtPut(b, "1", r5, r5, 1), wtWithPrev(wtPut(a, "4", r4, r5, 2), wtKV(a, "3", r4, r4, 1)))
		r6 := wtDelete(t, tg, p, prefixEnd(p))
		step(r6, wtWithPrev(wtDel(a, r6), wtKV(a, "4", r4, r5, 2)), wtWithPrev(wtDel(b, r6), wtKV(b, "1", r5, r5, 1)))

		all.StartRevision = r1
		ws.create(all)
		ws.want(h.created(r6, 1), h.events(r6, 1, history...))
		ws.quiet()
	})
}

// TestWatchFilters checks NOPUT and NODELETE: filtered events are left out,
// and a response whose events are all filtered out is not sent at all.
func TestWatchFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)

		t.Run("raw", func(t *testing.T) {
			p := keyPrefix(t)
			a, b := p+"a", p+"b"
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			for _, f := range [][]pb.WatchCreateRequest_FilterType{
				{pb.WatchCreateRequest_NOPUT},
				{pb.WatchCreateRequest_NODELETE},
				{pb.WatchCreateRequest_NOPUT, pb.WatchCreateRequest_NODELETE},
			} {
				ws.create(&pb.WatchCreateRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), Filters: f})
			}
			ws.want(h.created(cur, 0), h.created(cur, 1), h.created(cur, 2))
			r1 := tg.put(t, a, "1")
			ws.want(h.events(r1, 1, wtPut(a, "1", r1, r1, 1)))
			r2 := wtDelete(t, tg, a, "")
			ws.want(h.events(r2, 0, wtDel(a, r2)))
			r3 := tg.put(t, a, "2")
			ws.want(h.events(r3, 1, wtPut(a, "2", r3, r3, 1)))
			r4 := tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opPut(b, "1"), opDel(a, "")}}).Header.Revision
			ws.wantSet(h.events(r4, 0, wtDel(a, r4)), h.events(r4, 1, wtPut(b, "1", r4, r4, 1)))
			ws.quiet()
		})

		t.Run("clientv3", func(t *testing.T) {
			p := keyPrefix(t)
			a := p + "a"
			noPut := tg.Client.Watch(t.Context(), p, clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithPrevKV())
			noDel := tg.Client.Watch(t.Context(), p, clientv3.WithPrefix(), clientv3.WithFilterDelete())
			r1 := tg.put(t, a, "1")
			r2 := wtDelete(t, tg, a, "")
			wr := wtNext(t, noPut)
			wtSameEvents(t, wr.Events, []*mvccpb.Event{wtWithPrev(wtDel(a, r2), wtKV(a, "1", r1, r1, 1))})
			wr = wtNext(t, noDel)
			wtSameEvents(t, wr.Events, []*mvccpb.Event{wtPut(a, "1", r1, r1, 1)})
			wtClientQuiet(t, noPut, noDel)
		})
	})
}

// TestWatchProgressNotify checks progress_notify with a 300 ms interval: an
// idle watcher gets notifications (no events, header = current revision,
// its own watch_id), a watcher without the flag gets none, and no
// notification on a stream ever reports a revision below an event already
// sent on it. etcd skips a notification to a watcher that got events in the
// last interval; that is timing, so it is not asserted.
func TestWatchProgressNotify(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)

		t.Run("idle", func(t *testing.T) {
			p := keyPrefix(t)
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "k")})
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "k"), ProgressNotify: true})
			ws.want(h.created(cur, 0), h.created(cur, 1), h.events(cur, 1), h.events(cur, 1))
		})

		t.Run("busy and idle", func(t *testing.T) {
			p := keyPrefix(t)
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "busy"), ProgressNotify: true})
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "idle"), ProgressNotify: true})
			var (
				created   int
				events    []int64 // revisions of the busy watcher's events
				maxEvent  int64   // highest event revision sent on the stream
				idleNotes int     // notifications to the idle watcher while the other was busy
			)
			// next reads and checks one response; for a progress
			// notification it returns the watcher and revision, else id -2.
			next := func() (id, rev int64) {
				t.Helper()
				r := ws.recv()
				switch {
				case r.Created:
					if !proto.Equal(r, h.created(cur, int64(created))) {
						t.Fatalf("create response %d: %s", created, wtSummary(r))
					}
					created++
					return -2, 0
				case len(r.Events) > 0:
					ev := r.Events[0]
					if r.WatchId != 0 || len(r.Events) != 1 || !proto.Equal(r, h.events(ev.Kv.ModRevision, 0, ev)) {
						t.Fatalf("event response %s", wtSummary(r))
					}
					events = append(events, ev.Kv.ModRevision)
					maxEvent = ev.Kv.ModRevision
					return -2, 0
				}
				rev = r.Header.Revision
				if (r.WatchId != 0 && r.WatchId != 1) || !proto.Equal(r, h.events(rev, r.WatchId)) {
					t.Fatalf("progress notification %s", wtSummary(r))
				}
				if rev < maxEvent {
					t.Fatalf("progress notification at %d after an event at %d", rev, maxEvent)
				}
				return r.WatchId, rev
			}
			// Both watchers must exist before the writes; a notification may
			// come first, as the ticker runs from the stream's start.
			for created < 2 {
				next()
			}
			var puts []int64
			for i := range 15 {
				puts = append(puts, tg.put(t, p+"busy", strconv.Itoa(i)))
				time.Sleep(100 * time.Millisecond)
			}
			last := puts[len(puts)-1]
			// Read until the busy watcher, all its events in, reports
			// progress at the last put.
			for {
				id, rev := next()
				if id == 1 && rev < last {
					idleNotes++
				}
				if id == 0 && rev == last && len(events) == len(puts) {
					break
				}
			}
			if !slices.Equal(events, puts) {
				t.Fatalf("busy watcher got events at %v, want %v", events, puts)
			}
			if idleNotes == 0 {
				t.Fatal("the idle watcher got no notification while the other was busy")
			}
		})

		t.Run("clientv3", func(t *testing.T) {
			cur := tg.currentRev(t)
			wch := tg.Client.Watch(t.Context(), keyPrefix(t)+"k", clientv3.WithProgressNotify())
			if wr := wtNext(t, wch); !wr.IsProgressNotify() || wr.Header.Revision != cur {
				t.Fatalf("got %+v, want a progress notification at %d", wr, cur)
			}
		})
	}, withProgressNotifyInterval(300*time.Millisecond))
}

// TestWatchProgressRequest checks WatchProgressRequest: when every watcher
// of the stream is synced, one response with watch_id -1 and header =
// current revision, after the events before it; nothing on a stream without
// watchers, nor while a watcher waits for a future start revision.
// (A watcher still catching up on history also silences it in etcd, but
// cannot be caught in that state deterministically.)
func TestWatchProgressRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)

		t.Run("no watchers", func(t *testing.T) {
			ws := wtOpen(t, tg)
			ws.requestProgress()
			ws.quiet()
		})

		t.Run("synced", func(t *testing.T) {
			p := keyPrefix(t)
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "a")})
			ws.want(h.created(cur, 0))
			ws.requestProgress()
			ws.want(h.events(cur, -1))
			ws.quiet()
			// One answer for the stream, not one per watcher; it follows
			// the events of the revisions it reports.
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "b")})
			ws.want(h.created(cur, 1))
			r := tg.put(t, p+"a", "1")
			ws.requestProgress()
			ws.want(h.events(r, 0, wtPut(p+"a", "1", r, r, 1)), h.events(r, -1))
			ws.quiet()
		})

		t.Run("future watcher", func(t *testing.T) {
			p := keyPrefix(t)
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "a")})
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "b"), StartRevision: cur + 2})
			ws.want(h.created(cur, 0), h.created(cur, 1))
			ws.requestProgress()
			ws.quiet()
			tg.put(t, p+"c", "1")
			ws.requestProgress()
			ws.quiet()
			// At its start revision the watcher counts as synced.
			r := tg.put(t, p+"c", "2")
			ws.requestProgress()
			ws.want(h.events(r, -1))
		})

		t.Run("clientv3", func(t *testing.T) {
			p := keyPrefix(t)
			ctx := t.Context()
			wch := tg.Client.Watch(ctx, p+"a")
			progress := func(rev int64) {
				t.Helper()
				if err := tg.Client.RequestProgress(ctx); err != nil {
					t.Fatal(err)
				}
				if wr := wtNext(t, wch); !wr.IsProgressNotify() || wr.Header.Revision != rev {
					t.Fatalf("got %+v, want a progress notification at %d", wr, rev)
				}
			}
			progress(tg.currentRev(t))
			r := tg.put(t, p+"a", "1")
			wtSameEvents(t, wtNext(t, wch).Events, []*mvccpb.Event{wtPut(p+"a", "1", r, r, 1)})
			progress(r)
		})
	})
}

// TestWatchFragment makes one revision (a DeleteRange seen with prev_kv)
// carry events far larger than the request limit. A watcher with fragment
// gets them split greedily into pieces below limit+512 KiB, each marked
// fragment but the last; one without gets a single response; clientv3's
// WithFragment reassembles.
func TestWatchFragment(t *testing.T) {
	const maxRequest = 64 * 1024
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)
		p := keyPrefix(t)
		const n = 24
		key := func(i int) string { return fmt.Sprintf("%sk%02d", p, i) }
		puts := make([]int64, n)
		for i := range n {
			puts[i] = tg.put(t, key(i), strings.Repeat(string(rune('a'+i)), 60000))
		}
		ws := wtOpen(t, tg)
		cur := tg.currentRev(t)
		ws.create(&pb.WatchCreateRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), PrevKv: true, Fragment: true})
		ws.create(&pb.WatchCreateRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), PrevKv: true})
		ws.want(h.created(cur, 0), h.created(cur, 1))
		wch := tg.Client.Watch(t.Context(), p, clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithFragment())

		r := wtDelete(t, tg, p, prefixEnd(p))
		want := make([]*mvccpb.Event, n)
		for i := range n {
			want[i] = wtWithPrev(wtDel(key(i), r), wtKV(key(i), strings.Repeat(string(rune('a'+i)), 60000), puts[i], puts[i], 1))
		}
		var pieces []*pb.WatchResponse
		var whole *pb.WatchResponse
		for whole == nil || len(pieces) == 0 || pieces[len(pieces)-1].Fragment {
			got := ws.recv()
			if got.WatchId == 0 {
				pieces = append(pieces, got)
			} else {
				whole = got
			}
		}
		if !proto.Equal(whole, h.events(r, 1, want...)) {
			t.Fatalf("without fragment: %s", wtSummary(whole))
		}
		limit := maxRequest + wtGRPCOverhead
		var events []*mvccpb.Event
		for i, pc := range pieces {
			last := i == len(pieces)-1
			events = append(events, pc.Events...)
			evs := pc.Events
			pc.Events = nil
			if !proto.Equal(pc, &pb.WatchResponse{Header: h(r), Fragment: !last}) || len(evs) == 0 {
				t.Fatalf("piece %d of %d: %s with %d events", i, len(pieces), wtSummary(pc), len(evs))
			}
			pc.Events = evs
			if size := proto.Size(pc); size >= limit && len(evs) > 1 {
				t.Fatalf("piece %d has %d events in %d bytes, limit %d", i, len(evs), size, limit)
			}
			if !last {
				grown := proto.Clone(pc).(*pb.WatchResponse)
				grown.Events = append(grown.Events, pieces[i+1].Events[0])
				if size := proto.Size(grown); size < limit {
					t.Fatalf("piece %d stops at %d events, but one more fits (%d bytes, limit %d)", i, len(evs), size, limit)
				}
			}
		}
		if len(pieces) < 2 {
			t.Fatalf("%d events in one piece", len(events))
		}
		wtSameEvents(t, events, want)
		ws.quiet()

		wr := wtNext(t, wch)
		if wr.Header.Revision != r {
			t.Fatalf("clientv3: header revision %d, want %d", wr.Header.Revision, r)
		}
		wtSameEvents(t, wr.Events, want)

		// A small response is not split, nor marked.
		r2 := tg.put(t, key(0), "small")
		ws.wantSet(h.events(r2, 0, wtPut(key(0), "small", r2, r2, 1)), h.events(r2, 1, wtPut(key(0), "small", r2, r2, 1)))
	}, withMaxRequestBytes(maxRequest))
}

// TestWatchRevisionOrder checks that all events of one revision come in one
// response (header = that revision), in the order the request made the
// changes: a Txn's puts in request order (not key order, and over several
// MetaStore shards), puts mixed with deletes, nested Txns, and a
// DeleteRange's deletes in key order.
func TestWatchRevisionOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)
		// watchAll opens a stream with watcher 0 on every key under p.
		watchAll := func(t *testing.T, p string) *wtStream {
			t.Helper()
			ws := wtOpen(t, tg)
			cur := tg.currentRev(t)
			ws.create(&pb.WatchCreateRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))})
			ws.want(h.created(cur, 0))
			return ws
		}
		txn := func(t *testing.T, r *pb.TxnRequest) int64 { t.Helper(); return tg.txn(t, r).Header.Revision }

		t.Run("txn puts", func(t *testing.T) {
			p := keyPrefix(t)
			ws := watchAll(t, p)
			// Watcher 1 sees part of the keys, also in request order.
			ws.create(&pb.WatchCreateRequest{Key: []byte(p + "b"), RangeEnd: []byte(p + "n")})
			ws.want(h.created(tg.currentRev(t), 1))
			r := txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"z", "1"), opPut(p+"a", "2"), opPut(p+"m", "3"), opPut(p+"b", "4")}})
			put := func(k, v string) *mvccpb.Event { return wtPut(p+k, v, r, r, 1) }
			ws.wantSet(
				h.events(r, 0, put("z", "1"), put("a", "2"), put("m", "3"), put("b", "4")),
				h.events(r, 1, put("m", "3"), put("b", "4")),
			)
			ws.quiet()
		})

		t.Run("txn puts and deletes", func(t *testing.T) {
			p := keyPrefix(t)
			tg.put(t, p+"y", "old")
			rw := tg.put(t, p+"w", "old")
			ws := watchAll(t, p)
			r := txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"x", "1"), opDel(p+"y", ""), opPut(p+"w", "new")}})
			ws.want(h.events(r, 0, wtPut(p+"x", "1", r, r, 1), wtDel(p+"y", r), wtPut(p+"w", "new", rw, r, 2)))
			r2 := txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opDel(p+"x", ""), opPut(p+"y", "again")}})
			ws.want(h.events(r2, 0, wtDel(p+"x", r2), wtPut(p+"y", "again", r2, r2, 1)))
			ws.quiet()
		})

		t.Run("nested txn", func(t *testing.T) {
			p := keyPrefix(t)
			ws := watchAll(t, p)
			r := txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{
				opPut(p+"c", "1"),
				opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"a", "2"), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"e", "3")}})}}),
				opTxn(&pb.TxnRequest{
					Compare: []*pb.Compare{cmpVersion(p+"none", pb.Compare_GREATER, 0)},
					Success: []*pb.RequestOp{opPut(p+"s", "x")},
					Failure: []*pb.RequestOp{opPut(p+"f", "4")},
				}),
				opPut(p+"b", "5"),
			}})
			put := func(k, v string) *mvccpb.Event { return wtPut(p+k, v, r, r, 1) }
			ws.want(h.events(r, 0, put("c", "1"), put("a", "2"), put("e", "3"), put("f", "4"), put("b", "5")))
			ws.quiet()
		})

		t.Run("delete range", func(t *testing.T) {
			p := keyPrefix(t)
			const n = 20
			revs := make([]int64, n)
			for i := range n {
				j := i * 7 % n // not in key order
				revs[j] = tg.put(t, fmt.Sprintf("%sk%02d", p, j), "v")
			}
			tg.put(t, p+"a", "v")
			tg.put(t, p+"b", "v")
			ws := watchAll(t, p)
			r := wtDelete(t, tg, p+"k", prefixEnd(p+"k"))
			var want []*mvccpb.Event
			for i := range n {
				want = append(want, wtDel(fmt.Sprintf("%sk%02d", p, i), r))
			}
			ws.want(h.events(r, 0, want...))
			// A DeleteRange inside a Txn, between puts.
			r2 := txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"z", "1"), opDel(p+"a", p+"c"), opPut(p+"m", "2")}})
			ws.want(h.events(r2, 0, wtPut(p+"z", "1", r2, r2, 1), wtDel(p+"a", r2), wtDel(p+"b", r2), wtPut(p+"m", "2", r2, r2, 1)))
			ws.quiet()
		})
	})
}

// TestWatchEventFields checks every field of a key's events through its
// life: create_revision, mod_revision, version, value (also kept by
// ignore_value and empty), lease 0; a delete's kv has only key and
// mod_revision; a re-create starts over at version 1.
func TestWatchEventFields(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)
		k := keyPrefix(t) + "k"
		ws := wtOpen(t, tg)
		ws.create(&pb.WatchCreateRequest{Key: []byte(k)})
		ws.want(h.created(tg.currentRev(t), 0))
		r1 := tg.put(t, k, "v1")
		ws.want(h.events(r1, 0, wtPut(k, "v1", r1, r1, 1)))
		r2 := tg.put(t, k, "v2")
		ws.want(h.events(r2, 0, wtPut(k, "v2", r1, r2, 2)))
		resp, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), IgnoreValue: true})
		if err != nil {
			t.Fatal(err)
		}
		r3 := resp.Header.Revision
		ws.want(h.events(r3, 0, wtPut(k, "v2", r1, r3, 3)))
		r4 := tg.put(t, k, "")
		ws.want(h.events(r4, 0, wtPut(k, "", r1, r4, 4)))
		r5 := wtDelete(t, tg, k, "")
		ws.want(h.events(r5, 0, wtDel(k, r5)))
		r6 := tg.put(t, k, "v3")
		ws.want(h.events(r6, 0, wtPut(k, "v3", r6, r6, 1)))
		ws.quiet()
	})
}

// TestWatchResponseHeaders checks the header of each kind of watch
// response on its own: cluster_id and member_id nonzero and those of the
// KV responses, raft_term the KV responses' term, and the revision (current
// for control responses, the event's for events). The ids differ between
// backends, so only this behaviour is compared.
func TestWatchResponseHeaders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		kv := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p)}).Header
		check := func(what string, r *pb.WatchResponse, rev int64) {
			t.Helper()
			hd := r.GetHeader()
			if hd.GetClusterId() == 0 || hd.GetMemberId() == 0 || hd.GetRaftTerm() == 0 {
				t.Fatalf("%s: header %v has a zero id or term", what, hd)
			}
			if hd.ClusterId != kv.ClusterId || hd.MemberId != kv.MemberId || hd.RaftTerm != kv.RaftTerm || hd.Revision != rev {
				t.Fatalf("%s: header %v, want the KV header %v at revision %d", what, hd, kv, rev)
			}
		}
		ws := wtOpen(t, tg)
		cur := kv.Revision
		ws.create(&pb.WatchCreateRequest{Key: []byte(p + "a")})
		check("created", ws.recv(), cur)
		ws.create(&pb.WatchCreateRequest{Key: []byte(p + "b"), RangeEnd: []byte(p + "a")})
		check("failed create", ws.recv(), cur)
		r := tg.put(t, p+"a", "1")
		check("event", ws.recv(), r)
		ws.requestProgress()
		check("progress", ws.recv(), r)
		ws.cancel(0)
		check("canceled", ws.recv(), r)
	})
}
