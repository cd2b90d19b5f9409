package test

// TestWatchConcurrency: dozens of watchers against concurrent writers that
// span shards, with a compaction in the middle, checked event by event
// against a truth the writers themselves derive from their requests and the
// responses the store acknowledged them with.
//
// Why the truth comes from the writers and not from a reference watcher: a
// watcher is what is under test, and a second one would share its bugs.
// Every write asks for prev_kv, so its response says exactly what it
// changed: a put's new create revision and version follow from the pair it
// replaced, a delete names every pair it removed (in key order), and a Txn
// changes its keys in the order of its operations, all at the one revision
// its header reports. No two acknowledged writes that changed something may
// share a revision, and together they must cover every revision of the run;
// the store's state at the end is compared with the truth too, so a wrong
// derivation fails the test rather than hiding a server bug.
//
// Watchers: single keys, prefixes, ranges within and across key groups and
// a from-key range, half of them with prev_kv, spread over several clients
// and several gRPC streams per client (clientv3 shares one stream among the
// watches of one client whose contexts carry the same metadata). They are
// created before the writers start (from the current revision, and from
// past revisions), while they run (from past revisions, and from the
// current revision with a created notification, whose start is only known
// within bounds), and after the compaction. Some read their channel slowly
// while the writers run; raw gRPC streams with a small flow-control window
// stop reading altogether until the writers are done, so that the server,
// not the client library, has to hold their events back and catch them up.
//
// The compaction revision lies in a history written before the watchers
// exist, below the start of every watcher that is meant to complete: a
// watcher that falls behind a compaction is legitimately cancelled by etcd
// (it cannot be caught up), and which one falls behind would depend on
// timing. One watcher is created below the compaction revision on purpose
// and must get the compacted answer.
//
// The run ends with one Txn that puts "end" to every key: every watcher sees
// at least one of its events, so each knows when it has everything.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

const (
	wcGroups       = 8 // key groups g0..g7
	wcKeysPerGroup = 8 // keys k0..k7 per group
	// wcValuePad makes events big enough that a stalled raw stream
	// exhausts its flow-control window after a few hundred of them.
	wcValuePad = 120
	// wcEndValue is the value only the final Txn writes.
	wcEndValue = "end"
	// wcWait bounds the writers as a whole, and then the watchers catching
	// up: a server that blocks writers behind a slow watcher, or never
	// catches a watcher up, fails here instead of hanging the suite.
	wcWait = 60 * time.Second
	// wcSlowPause is how long a slow watcher sleeps after each response
	// while the writers run.
	wcSlowPause = 3 * time.Millisecond
	// wcRawWindow is the stalled raw streams' flow-control window (gRPC's
	// minimum); setting it also turns off gRPC's window growth.
	wcRawWindow = 64 << 10
)

// wcKV is a KeyValue as a comparable value.
type wcKV struct {
	Key, Value                  string
	Create, Mod, Version, Lease int64
}

func wcKVOf(kv *mvccpb.KeyValue) wcKV {
	return wcKV{
		Key: string(kv.Key), Value: string(kv.Value),
		Create: kv.CreateRevision, Mod: kv.ModRevision, Version: kv.Version, Lease: kv.Lease,
	}
}

func (kv wcKV) String() string {
	v := kv.Value
	if len(v) > 16 {
		v = v[:16] + "…"
	}
	return fmt.Sprintf("%s=%q(c%d,m%d,v%d,l%d)", kv.Key, v, kv.Create, kv.Mod, kv.Version, kv.Lease)
}

// wcEvent is one watch event as a comparable value; Rev is the revision of
// the write that made it.
type wcEvent struct {
	Rev     int64
	Type    mvccpb.Event_EventType
	KV      wcKV
	HasPrev bool
	Prev    wcKV
}

func wcEventOf(ev *mvccpb.Event) wcEvent {
	e := wcEvent{Rev: ev.Kv.ModRevision, Type: ev.Type, KV: wcKVOf(ev.Kv)}
	if ev.PrevKv != nil {
		e.HasPrev, e.Prev = true, wcKVOf(ev.PrevKv)
	}
	return e
}

func (e wcEvent) String() string {
	s := fmt.Sprintf("@%d %s %s", e.Rev, e.Type, e.KV)
	if e.HasPrev {
		s += " prev " + e.Prev.String()
	}
	return s
}

// wcPutEvent is the event of a put of key=value at rev that replaced prev
// (nil: the key did not exist).
func wcPutEvent(rev int64, key, value []byte, prev *mvccpb.KeyValue) wcEvent {
	e := wcEvent{Rev: rev, Type: mvccpb.Event_PUT, KV: wcKV{Key: string(key), Value: string(value), Create: rev, Mod: rev, Version: 1}}
	if prev != nil {
		e.KV.Create, e.KV.Version = prev.CreateRevision, prev.Version+1
		e.HasPrev, e.Prev = true, wcKVOf(prev)
	}
	return e
}

// wcDeleteEvents are the events of a delete at rev that removed prevs:
// etcd's delete event carries only the key and the revision.
func wcDeleteEvents(rev int64, prevs []*mvccpb.KeyValue) []wcEvent {
	var evs []wcEvent
	for _, p := range prevs {
		evs = append(evs, wcEvent{Rev: rev, Type: mvccpb.Event_DELETE, KV: wcKV{Key: string(p.Key), Mod: rev}, HasPrev: true, Prev: wcKVOf(p)})
	}
	return evs
}

// wcTxnEvents derives a Txn's events from its operations and their
// results, in operation order.
func wcTxnEvents(req *pb.TxnRequest, resp *pb.TxnResponse) ([]wcEvent, error) {
	ops := req.Success
	if !resp.Succeeded {
		ops = req.Failure
	}
	if len(resp.Responses) != len(ops) {
		return nil, fmt.Errorf("txn: %d results for %d ops", len(resp.Responses), len(ops))
	}
	rev := resp.Header.Revision
	var evs []wcEvent
	for i, op := range ops {
		switch r := op.Request.(type) {
		case *pb.RequestOp_RequestPut:
			pr := resp.Responses[i].GetResponsePut()
			if pr == nil {
				return nil, fmt.Errorf("txn op %d: put answered with %T", i, resp.Responses[i].Response)
			}
			evs = append(evs, wcPutEvent(rev, r.RequestPut.Key, r.RequestPut.Value, pr.PrevKv))
		case *pb.RequestOp_RequestDeleteRange:
			dr := resp.Responses[i].GetResponseDeleteRange()
			if dr == nil {
				return nil, fmt.Errorf("txn op %d: delete answered with %T", i, resp.Responses[i].Response)
			}
			evs = append(evs, wcDeleteEvents(rev, dr.PrevKvs)...)
		default:
			return nil, fmt.Errorf("txn op %d: unexpected %T", i, op.Request)
		}
	}
	return evs, nil
}

// wcTruth collects, per revision, the events the writes acknowledged at
// that revision made.
type wcTruth struct {
	mu   sync.Mutex
	revs map[int64][]wcEvent
	dups []int64
}

// add records the events of one acknowledged write; a write that changed
// nothing took no revision and adds nothing.
func (tr *wcTruth) add(evs []wcEvent) {
	if len(evs) == 0 {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	rev := evs[0].Rev
	if _, ok := tr.revs[rev]; ok {
		tr.dups = append(tr.dups, rev)
	}
	tr.revs[rev] = evs
}

// events lists every event in order, after checking that the writes took
// each revision from first to last exactly once.
func (tr *wcTruth) events(t *testing.T, first, last int64) []wcEvent {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.dups) > 0 {
		t.Fatalf("writes acknowledged at the same revision: %v", tr.dups)
	}
	var out []wcEvent
	for r := first; r <= last; r++ {
		evs, ok := tr.revs[r]
		if !ok {
			t.Fatalf("no acknowledged write took revision %d (writes cover %d..%d)", r, first, last)
		}
		out = append(out, evs...)
	}
	if len(tr.revs) != int(last-first+1) {
		t.Fatalf("writes took %d revisions, want %d (%d..%d)", len(tr.revs), last-first+1, first, last)
	}
	return out
}

// wcWriter issues the writes. Its methods return the error of a failed
// write; they never call t, as they run on writer goroutines.
type wcWriter struct {
	kv    pb.KVClient
	p     string
	truth *wcTruth
}

func (w *wcWriter) key(g, i int) string { return fmt.Sprintf("%sg%d/k%d", w.p, g, i) }

func wcValue(tag string) []byte {
	return []byte(tag + "/" + strings.Repeat("v", wcValuePad))
}

func (w *wcWriter) put(ctx context.Context, key string, value []byte) error {
	req := &pb.PutRequest{Key: []byte(key), Value: value, PrevKv: true}
	resp, err := w.kv.Put(ctx, req)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	w.truth.add([]wcEvent{wcPutEvent(resp.Header.Revision, req.Key, req.Value, resp.PrevKv)})
	return nil
}

func (w *wcWriter) deleteRange(ctx context.Context, key, end string) error {
	resp, err := w.kv.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end), PrevKv: true})
	if err != nil {
		return fmt.Errorf("delete %s..%s: %w", key, end, err)
	}
	if int(resp.Deleted) != len(resp.PrevKvs) {
		return fmt.Errorf("delete %s..%s: deleted %d but %d prev_kvs", key, end, resp.Deleted, len(resp.PrevKvs))
	}
	w.truth.add(wcDeleteEvents(resp.Header.Revision, resp.PrevKvs))
	return nil
}

func (w *wcWriter) txn(ctx context.Context, ops []*pb.RequestOp) error {
	req := &pb.TxnRequest{Success: ops}
	resp, err := w.kv.Txn(ctx, req)
	if err != nil {
		return fmt.Errorf("txn of %d ops: %w", len(ops), err)
	}
	evs, err := wcTxnEvents(req, resp)
	if err != nil {
		return err
	}
	w.truth.add(evs)
	return nil
}

// randomPut puts a random key.
func (w *wcWriter) randomPut(ctx context.Context, rng *rand.Rand, tag string) error {
	return w.put(ctx, w.key(rng.IntN(wcGroups), rng.IntN(wcKeysPerGroup)), wcValue(tag))
}

// randomTxn puts and deletes one key in each of 3 to 6 groups, in random
// (so not key-sorted) order, and sometimes also deletes a range of a group
// it does not otherwise touch (a Txn may not touch a key twice).
func (w *wcWriter) randomTxn(ctx context.Context, rng *rand.Rand, tag string) error {
	groups := rng.Perm(wcGroups)
	n := 3 + rng.IntN(4)
	var ops []*pb.RequestOp
	for j, g := range groups[:n] {
		k := []byte(w.key(g, rng.IntN(wcKeysPerGroup)))
		if rng.IntN(10) < 7 {
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{
				Key: k, Value: wcValue(fmt.Sprintf("%s.%d", tag, j)), PrevKv: true}}})
		} else {
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{
				Key: k, PrevKv: true}}})
		}
	}
	if rng.IntN(3) == 0 {
		g := groups[n]
		a := rng.IntN(wcKeysPerGroup - 1)
		b := a + 1 + rng.IntN(wcKeysPerGroup-a)
		ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{
			Key: []byte(w.key(g, a)), RangeEnd: []byte(w.key(g, b)), PrevKv: true}}})
	}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	return w.txn(ctx, ops)
}

// randomDeleteRange deletes part of a group, a whole group, or now and
// then a range across groups.
func (w *wcWriter) randomDeleteRange(ctx context.Context, rng *rand.Rand) error {
	switch x := rng.IntN(10); {
	case x < 6:
		g, a := rng.IntN(wcGroups), rng.IntN(wcKeysPerGroup-1)
		return w.deleteRange(ctx, w.key(g, a), w.key(g, a+1+rng.IntN(wcKeysPerGroup-1-a)))
	case x < 9:
		g := fmt.Sprintf("%sg%d/", w.p, rng.IntN(wcGroups))
		return w.deleteRange(ctx, g, prefixEnd(g))
	default:
		g := rng.IntN(wcGroups - 1)
		return w.deleteRange(ctx, fmt.Sprintf("%sg%d/", w.p, g), fmt.Sprintf("%sg%d/", w.p, g+2))
	}
}

// wcRange is what a watcher watches. end is "" for a single key and
// "\x00" for every key from key on, as in a WatchCreateRequest.
type wcRange struct {
	name     string
	key, end string
}

func (r wcRange) has(k string) bool {
	switch r.end {
	case "":
		return k == r.key
	case "\x00":
		return k >= r.key
	}
	return k >= r.key && k < r.end
}

// wcRanges are the ranges the watchers watch.
func wcRanges(p string) []wcRange {
	g := func(n int) string { return fmt.Sprintf("%sg%d/", p, n) }
	return []wcRange{
		{name: "key g0/k0", key: g(0) + "k0"},
		{name: "key g3/k5", key: g(3) + "k5"},
		{name: "prefix g1/", key: g(1), end: prefixEnd(g(1))},
		{name: "prefix all", key: p, end: prefixEnd(p)},
		{name: "range g2/k2..g2/k6", key: g(2) + "k2", end: g(2) + "k6"},
		{name: "range g5/..g7/", key: g(5), end: g(7)},
		{name: "from g6/k4", key: g(6) + "k4", end: "\x00"},
	}
}

// wcWatcher is one watch and what it received. Its reader goroutine owns
// got and err until done is closed.
type wcWatcher struct {
	name   string
	rng    wcRange
	prevKV bool
	// The first revision it must report is between startLo and startHi:
	// equal for a watch from a given revision; for one created from the
	// current revision while writes go on, the revision read before it
	// was created, plus one, and its created response's revision, plus one.
	startLo, startHi int64
	// ends is the number of keys in its range: it has everything once it
	// has that many events of the final Txn.
	ends int
	got  []wcEvent
	err  error
	done chan struct{}
}

func newWCWatcher(name string, r wcRange, prevKV bool, start int64, allKeys []string) *wcWatcher {
	w := &wcWatcher{name: name, rng: r, prevKV: prevKV, startLo: start, startHi: start, done: make(chan struct{})}
	for _, k := range allKeys {
		if r.has(k) {
			w.ends++
		}
	}
	return w
}

// add records events and reports whether the watcher has them all.
func (w *wcWatcher) add(evs []*mvccpb.Event) bool {
	for _, ev := range evs {
		w.got = append(w.got, wcEventOf(ev))
		if ev.Type == mvccpb.Event_PUT && string(ev.Kv.Value) == wcEndValue {
			w.ends--
		}
	}
	return w.ends <= 0
}

// watch starts w on cli with ctx (which selects the gRPC stream) from rev
// (0: the current revision) and reads it on a goroutine. A slow watcher
// sleeps after each response while slow reports true.
func (w *wcWatcher) watch(ctx context.Context, cli *clientv3.Client, rev int64, slow func() bool) {
	go w.read(ctx, cli.Watch(ctx, w.rng.key, w.opts(rev)...), slow)
}

func (w *wcWatcher) opts(rev int64) []clientv3.OpOption {
	var opts []clientv3.OpOption
	if w.rng.end != "" {
		opts = append(opts, clientv3.WithRange(w.rng.end))
	}
	if w.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	return opts
}

func (w *wcWatcher) read(ctx context.Context, ch clientv3.WatchChan, slow func() bool) {
	defer close(w.done)
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				w.err = errors.New("watch channel closed")
				return
			}
			if err := resp.Err(); err != nil {
				w.err = err
				return
			}
			if w.add(resp.Events) {
				return
			}
			if slow != nil && slow() {
				time.Sleep(wcSlowPause)
			}
		case <-ctx.Done():
			w.err = fmt.Errorf("not complete: %w", ctx.Err())
			return
		}
	}
}

// check compares what w received with the truth.
func (w *wcWatcher) check(t *testing.T, truth []wcEvent) {
	t.Helper()
	if w.err != nil {
		t.Errorf("%s: %v (after %d events)", w.name, w.err, len(w.got))
		return
	}
	from := w.startHi
	if len(w.got) > 0 && w.got[0].Rev < from {
		from = w.got[0].Rev
		if from < w.startLo {
			t.Errorf("%s: first event %v is before the watch's start %d", w.name, w.got[0], w.startLo)
			return
		}
	}
	var want []wcEvent
	for _, e := range truth {
		if e.Rev >= from && w.rng.has(e.KV.Key) {
			if !w.prevKV {
				e.HasPrev, e.Prev = false, wcKV{}
			}
			want = append(want, e)
		}
	}
	for i := range min(len(w.got), len(want)) {
		if w.got[i] != want[i] {
			t.Errorf("%s (from %d): event %d of %d\n got %v\nwant %v", w.name, from, i, len(want), w.got[i], want[i])
			return
		}
	}
	if len(w.got) != len(want) {
		t.Errorf("%s (from %d): got %d events, want %d", w.name, from, len(w.got), len(want))
	}
}

// wcRawStream is a raw gRPC watch stream on a connection of its own with
// the smallest flow-control window, which stops reading once its watchers
// are created until it is released: the server has to hold the events back.
type wcRawStream struct {
	stream pb.Watch_WatchClient
	byID   map[int64]*wcWatcher
	all    []*wcWatcher
}

func wcOpenRaw(t *testing.T, ctx context.Context, endpoint string) *wcRawStream {
	t.Helper()
	conn, err := grpc.NewClient(endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(wcRawWindow))
	if err != nil {
		t.Fatalf("grpc client for %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	stream, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatalf("open raw watch stream: %v", err)
	}
	return &wcRawStream{stream: stream, byID: map[int64]*wcWatcher{}}
}

// create creates w on the stream from rev and waits for its created
// response, keeping the events of the stream's earlier watchers that
// arrive meanwhile.
func (s *wcRawStream) create(t *testing.T, w *wcWatcher, rev int64) {
	t.Helper()
	req := &pb.WatchCreateRequest{Key: []byte(w.rng.key), RangeEnd: []byte(w.rng.end), StartRevision: rev, PrevKv: w.prevKV}
	if err := s.stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: req}}); err != nil {
		t.Fatalf("%s: send create: %v", w.name, err)
	}
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			t.Fatalf("%s: waiting for created: %v", w.name, err)
		}
		if resp.Created {
			if resp.Canceled {
				t.Fatalf("%s: created canceled: %q", w.name, resp.CancelReason)
			}
			s.byID[resp.WatchId] = w
			s.all = append(s.all, w)
			return
		}
		if err := s.route(resp); err != nil {
			t.Fatalf("%s: while creating: %v", w.name, err)
		}
	}
}

// route hands a response's events to their watcher.
func (s *wcRawStream) route(resp *pb.WatchResponse) error {
	if resp.Canceled {
		return fmt.Errorf("watch %d canceled: %q (compact revision %d)", resp.WatchId, resp.CancelReason, resp.CompactRevision)
	}
	if len(resp.Events) == 0 {
		return nil // a progress notification
	}
	w, ok := s.byID[resp.WatchId]
	if !ok {
		return fmt.Errorf("events for unknown watch id %d", resp.WatchId)
	}
	w.add(resp.Events)
	return nil
}

// run reads the stream on a goroutine once release is closed, until every
// watcher has everything. A failed Recv (the stream's context ends it at
// the latest) ends every watcher still incomplete.
func (s *wcRawStream) run(release <-chan struct{}) {
	go func() {
		defer func() {
			for _, w := range s.all {
				close(w.done)
			}
		}()
		<-release
		for slices.ContainsFunc(s.all, func(w *wcWatcher) bool { return w.ends > 0 }) {
			resp, err := s.stream.Recv()
			if err == nil {
				err = s.route(resp)
			}
			if err != nil {
				for _, w := range s.all {
					if w.ends > 0 {
						w.err = err
					}
				}
				return
			}
		}
	}()
}

func TestWatchConcurrency(t *testing.T) {
	forEachBackend(t, testWatchConcurrency)
}

func testWatchConcurrency(t *testing.T, tg *Target) {
	putWriters, puts, txnWriters, txns, deletes := 4, 1500, 2, 600, 400
	if testing.Short() {
		puts, txns, deletes = 120, 50, 40
	}
	p := keyPrefix(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*wcWait)
	defer cancel()
	truth := &wcTruth{revs: map[int64][]wcEvent{}}
	wr := &wcWriter{kv: tg.KV, p: p, truth: truth}
	var allKeys []string
	for g := range wcGroups {
		for i := range wcKeysPerGroup {
			allKeys = append(allKeys, wr.key(g, i))
		}
	}
	ranges := wcRanges(p)

	// History before any watcher: every key created, then mixed writes.
	// The compaction revision lies in it, after the creates, and is a Txn
	// that puts and deletes.
	first := tg.currentRev(t) + 1
	rng := rand.New(rand.NewPCG(1, 2))
	for _, i := range rng.Perm(len(allKeys)) {
		if err := wr.put(ctx, allKeys[i], wcValue("seed")); err != nil {
			t.Fatal(err)
		}
	}
	seeded := 0
	seed := func(until int64) {
		for ; tg.currentRev(t) < until; seeded++ {
			var err error
			switch seeded % 3 {
			case 0:
				err = wr.randomPut(ctx, rng, fmt.Sprintf("seed-%d", seeded))
			case 1:
				err = wr.randomTxn(ctx, rng, fmt.Sprintf("seed-%d", seeded))
			default:
				err = wr.randomDeleteRange(ctx, rng)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	compactRev := tg.currentRev(t) + 10
	seed(compactRev - 3)
	// The compaction revision deletes keys as well as putting one: etcd
	// keeps a tombstone at the compaction revision, so that a watch from
	// there still reports the delete.
	for _, k := range []string{wr.key(1, 2), wr.key(2, 3)} {
		if err := wr.put(ctx, k, wcValue("before-compaction")); err != nil {
			t.Fatal(err)
		}
	}
	if err := wr.txn(ctx, []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(wr.key(0, 1)), Value: wcValue("compaction"), PrevKv: true}}},
		{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(wr.key(2, 3)), PrevKv: true}}},
		{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(wr.key(1, 2)), PrevKv: true}}},
	}); err != nil {
		t.Fatal(err)
	}
	if rev := tg.currentRev(t); rev != compactRev {
		t.Fatalf("the compaction revision's Txn took revision %d, want %d", rev, compactRev)
	}
	seed(compactRev + 20)
	base := tg.currentRev(t)
	pastRev := func() int64 { return compactRev + 1 + rng.Int64N(tg.currentRev(t)-compactRev) }

	// Streams: two per client, told apart by metadata.
	var streams []context.Context
	var clients []*clientv3.Client
	for range 3 {
		cli := newClient(t, tg.Endpoint)
		for _, s := range []string{"a", "b"} {
			clients = append(clients, cli)
			streams = append(streams, metadata.AppendToOutgoingContext(ctx, "wc-stream", s))
		}
	}
	var writing atomic.Bool
	writing.Store(true)
	slow := writing.Load
	var watchers []*wcWatcher
	n := 0
	// start creates a clientv3 watcher on the next stream, from rev (0:
	// the current one, which must then be base).
	start := func(name string, r wcRange, prevKV bool, rev int64, isSlow bool) {
		from := rev
		if rev == 0 {
			from = base + 1
		}
		w := newWCWatcher(fmt.Sprintf("%s %s prevkv=%v slow=%v", name, r.name, prevKV, isSlow), r, prevKV, from, allKeys)
		var s func() bool
		if isSlow {
			s = slow
		}
		w.watch(streams[n%len(streams)], clients[n%len(clients)], rev, s)
		n++
		watchers = append(watchers, w)
	}
	for i, r := range ranges {
		start("initial", r, false, 0, i%3 == 0)
		start("initial", r, true, 0, i%3 == 1)
		start("initial past", r, i%2 == 0, pastRev(), i%3 == 2)
	}
	// Raw streams that stall: one created now, one after the compaction.
	release := make(chan struct{})
	raw := func(s *wcRawStream, name string, r wcRange, prevKV bool, rev int64) {
		w := newWCWatcher(fmt.Sprintf("raw %s %s prevkv=%v", name, r.name, prevKV), r, prevKV, rev, allKeys)
		s.create(t, w, rev)
		watchers = append(watchers, w)
	}
	rawA := wcOpenRaw(t, ctx, tg.Endpoint)
	raw(rawA, "initial", ranges[3], true, base+1)
	raw(rawA, "initial past", ranges[5], false, compactRev+1)
	raw(rawA, "initial", ranges[0], true, base+1)
	rawA.run(release)

	// The writers. Each counts its writes; one that did not finish them
	// all was blocked (or failed, and says why).
	type writer struct {
		name      string
		ops, done int
		err       error
		op        func(rng *rand.Rand, i int) error
	}
	var ws []*writer
	for w := range putWriters {
		ws = append(ws, &writer{name: fmt.Sprintf("put writer %d", w), ops: puts, op: func(rng *rand.Rand, i int) error {
			return wr.randomPut(ctx, rng, fmt.Sprintf("p%d-%d", w, i))
		}})
	}
	for w := range txnWriters {
		ws = append(ws, &writer{name: fmt.Sprintf("txn writer %d", w), ops: txns, op: func(rng *rand.Rand, i int) error {
			return wr.randomTxn(ctx, rng, fmt.Sprintf("t%d-%d", w, i))
		}})
	}
	ws = append(ws, &writer{name: "delete-range writer", ops: deletes, op: func(rng *rand.Rand, _ int) error {
		return wr.randomDeleteRange(ctx, rng)
	}})
	total := 0
	for _, w := range ws {
		total += w.ops
	}
	var progress atomic.Int64
	var wg sync.WaitGroup
	writersDone := make(chan struct{})
	for i, w := range ws {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for ; w.done < w.ops; w.done++ {
				if w.err = w.op(rng, w.done); w.err != nil {
					return
				}
				progress.Add(1)
			}
		})
	}
	go func() { wg.Wait(); close(writersDone) }()
	// On a failure below, the writers stop before the test returns.
	defer func() { cancel(); <-writersDone }()
	// waitProgress waits until the writers have made frac of their writes,
	// or are done.
	waitProgress := func(frac float64) {
		for progress.Load() < int64(frac*float64(total)) {
			select {
			case <-writersDone:
				return
			case <-ctx.Done():
				t.Fatalf("writers made %d of %d writes: %v", progress.Load(), total, ctx.Err())
			case <-time.After(time.Millisecond):
			}
		}
	}

	// A third in: watchers from past revisions, and from the current one.
	waitProgress(1.0 / 3)
	for i, r := range ranges {
		start("mid past", r, i%2 == 1, pastRev(), i%2 == 0)
	}
	for i, r := range ranges[:4] {
		lo := tg.currentRev(t) + 1
		w := newWCWatcher(fmt.Sprintf("mid now %s prevkv=%v", r.name, i%2 == 0), r, i%2 == 0, lo, allKeys)
		sctx := streams[n%len(streams)]
		ch := clients[n%len(clients)].Watch(sctx, r.key, append(w.opts(0), clientv3.WithCreatedNotify())...)
		n++
		select {
		case resp := <-ch:
			if !resp.Created || resp.Err() != nil {
				t.Fatalf("%s: first response is not the created one: %+v (err %v)", w.name, resp, resp.Err())
			}
			w.startHi = resp.Header.Revision + 1
		case <-time.After(opTimeout):
			t.Fatalf("%s: no created response after %v", w.name, opTimeout)
		}
		go w.read(sctx, ch, nil)
		watchers = append(watchers, w)
	}

	// Half way: the compaction, physical so that it is done with before
	// the watchers at and around it replay what it left.
	waitProgress(1.0 / 2)
	if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: compactRev, Physical: true}); err != nil {
		t.Fatalf("compact at %d: %v", compactRev, err)
	}
	below := tg.Client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(compactRev-1))
	select {
	case resp := <-below:
		if resp.CompactRevision != compactRev || !resp.Canceled {
			t.Errorf("watch from %d, below the compaction at %d: got compact revision %d canceled %v events %d, want compact revision %d canceled",
				compactRev-1, compactRev, resp.CompactRevision, resp.Canceled, len(resp.Events), compactRev)
		}
	case <-time.After(opTimeout):
		t.Errorf("watch from below the compaction: no answer after %v", opTimeout)
	}
	// From the compaction revision itself, which must report its deletes
	// too; without prev_kv, since etcd reads an event's prev_kv at the
	// revision before it, which is compacted.
	start("at compaction", ranges[3], false, compactRev, false)
	start("above compaction", ranges[3], true, compactRev+1, true)
	start("above compaction", ranges[6], true, compactRev+1, false)
	rawB := wcOpenRaw(t, ctx, tg.Endpoint)
	raw(rawB, "after compaction", ranges[3], true, compactRev+1)
	raw(rawB, "after compaction", ranges[2], false, pastRev())
	rawB.run(release)

	select {
	case <-writersDone:
	case <-time.After(wcWait):
		t.Fatalf("writers made %d of %d writes in %v: blocked", progress.Load(), total, wcWait)
	}
	for _, w := range ws {
		if w.err != nil || w.done != w.ops {
			t.Fatalf("%s made %d of %d writes: %v", w.name, w.done, w.ops, w.err)
		}
	}
	// The writers' last state, to check the truth against.
	beforeEnd := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))})
	var ends []*pb.RequestOp
	for _, k := range allKeys {
		ends = append(ends, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{
			Key: []byte(k), Value: []byte(wcEndValue), PrevKv: true}}})
	}
	if err := wr.txn(reqCtx(t), ends); err != nil {
		t.Fatal(err)
	}
	last := tg.currentRev(t)
	writing.Store(false)
	close(release)

	deadline := time.After(wcWait)
	for _, w := range watchers {
		select {
		case <-w.done:
		case <-deadline:
			t.Fatalf("%s: not caught up %v after the writers finished", w.name, wcWait)
		}
	}
	events := truth.events(t, first, last)
	wcCheckState(t, events, beforeEnd)
	for _, w := range watchers {
		w.check(t, events)
	}
	t.Logf("%d writes over revisions %d..%d, %d events; %d watchers; compacted at %d",
		total, first, last, len(events), len(watchers), compactRev)
}

// wcCheckState checks the truth against the store: the last event of each
// key before the final Txn must describe what a read then returned.
func wcCheckState(t *testing.T, events []wcEvent, read *pb.RangeResponse) {
	t.Helper()
	want := map[string]wcKV{}
	for _, e := range events {
		if e.Rev > read.Header.Revision {
			break
		}
		if e.Type == mvccpb.Event_PUT {
			want[e.KV.Key] = e.KV
		} else {
			delete(want, e.KV.Key)
		}
	}
	got := map[string]wcKV{}
	for _, kv := range read.Kvs {
		got[string(kv.Key)] = wcKVOf(kv)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("truth says %v at revision %d, the store has %v (present %v)", w, read.Header.Revision, g, ok)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("truth says %s is absent at revision %d, the store has %v", k, read.Header.Revision, g)
		}
	}
}
