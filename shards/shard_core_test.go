package shards

// The shard's core, driven without an actor system: the test plays the
// sequencer (coreRig.stamp), so every batch's cut, Stamp, Installed and
// reply is seen as the core returns it.

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// coreRig is a shard core over an in-memory store, with the test as its
// sequencer: revisions from 2 on, visible when the test releases them.
type coreRig struct {
	t     *testing.T
	core  *shardCore
	revs  *fakeRevs
	next  int64 // the next revision to stamp
	wakes int   // wake-ups the core's replies sent
}

func newCoreRig(t *testing.T, cfg ShardConfig) *coreRig {
	r := &coreRig{t: t, revs: &fakeRevs{}, next: 2}
	r.revs.visible.Store(1)
	r.revs.compacted.Store(-1)
	cfg.Store = NewStore(nil)
	cfg.Published = &atomic.Pointer[View]{}
	cfg.Revisions = r.revs
	cfg.Leases = func(id int64) bool { return id == 7 }
	r.core = newShardCore(cfg)
	r.core.wake = func() { r.wakes++ }
	return r
}

// write hands req to the core and returns where its answer will come, or
// the core's refusal.
func (r *coreRig) write(req any) (chan msg.Result, error) {
	ch := make(chan msg.Result, 1)
	return ch, r.core.write(&msg.Write{Req: request(req), Reply: ch})
}

func (r *coreRig) mustWrite(req any) chan msg.Result {
	r.t.Helper()
	ch, err := r.write(req)
	if err != nil {
		r.t.Fatalf("write refused: %v", err)
	}
	return ch
}

// plan pumps the core and returns the Stamp of the batch it planned and
// how many writes that batch holds; nil and 0 if it planned none.
func (r *coreRig) plan() (*msg.Stamp, int) {
	r.t.Helper()
	f, _, st := r.core.pump()
	if f != nil {
		r.t.Fatal("the core answered a freeze nobody sent")
	}
	if st == nil {
		return nil, 0
	}
	if st.Parts != 1 || st.ReplyTo != nil {
		r.t.Fatalf("Stamp with Parts %d, ReplyTo %v: want 1 and none (the shell's)", st.Parts, st.ReplyTo)
	}
	return st, len(r.core.inflight.writes)
}

// stamp answers st as the sequencer would: its writes get the next
// revisions. It returns the base.
func (r *coreRig) stamp(st *msg.Stamp) int64 {
	base := r.next
	r.next += int64(len(st.Writes))
	return base
}

// release makes every revision up to rev visible and sends the replies
// held for them, as the sequencer does; the core settles at its next
// message.
func (r *coreRig) release(rev int64, replies []msg.Reply) {
	r.t.Helper()
	r.revs.visible.Store(max(r.revs.Visible(), rev))
	for _, rp := range replies {
		if rp.Rev > r.revs.Visible() {
			r.t.Fatalf("reply at revision %d, above what was installed (%d)", rp.Rev, rev)
		}
		rp.Send()
	}
	r.core.settle()
}

// drain plans, stamps, installs and releases batches until the core plans
// no more. It returns the writes in each batch and the Stamps.
func (r *coreRig) drain() (sizes []int, stamps []*msg.Stamp) {
	r.t.Helper()
	for {
		st, n := r.plan()
		if st == nil {
			return sizes, stamps
		}
		in := r.core.install(r.stamp(st))
		r.release(in.To, in.Replies)
		sizes, stamps = append(sizes, n), append(stamps, st)
	}
}

func answer(t *testing.T, ch chan msg.Result) msg.Result {
	t.Helper()
	select {
	case res := <-ch:
		return res
	default:
		t.Fatal("no answer")
	}
	return msg.Result{}
}

func put(key, value string) *pb.PutRequest {
	return &pb.PutRequest{Key: []byte(key), Value: []byte(value)}
}

func putOp(key, value string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: put(key, value)}}
}

// ifThen is a Txn: if the compare holds, put key=then.
func ifThen(c *pb.Compare, key, then string) *pb.TxnRequest {
	return &pb.TxnRequest{Compare: []*pb.Compare{c}, Success: []*pb.RequestOp{putOp(key, then)}}
}

func cmpMod(key string, rev int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_MOD, Result: pb.Compare_GREATER,
		TargetUnion: &pb.Compare_ModRevision{ModRevision: rev}}
}

func cmpCreate(key string, rev int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_CREATE, Result: pb.Compare_GREATER,
		TargetUnion: &pb.Compare_CreateRevision{CreateRevision: rev}}
}

func cmpVersion(key string, v int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL,
		TargetUnion: &pb.Compare_Version{Version: v}}
}

// TestCoreBatchCut checks where plan ends a batch: at MaxBatch writes,
// before the write that would pass MaxBatchBytes (but never before the
// first), and before a write that compares the create or mod revision of
// a key an earlier write of the batch gave a revision not stamped yet.
func TestCoreBatchCut(t *testing.T) {
	size := proto.Size(put("k/0", "vvvv"))
	puts := func(n int) []any {
		var reqs []any
		for i := range n {
			reqs = append(reqs, put(fmt.Sprint("k/", i), "vvvv"))
		}
		return reqs
	}
	tests := []struct {
		name        string
		cfg         ShardConfig
		setup       []any // written and settled before
		reqs        []any
		wantBatches []int // writes per batch
	}{
		{name: "one batch", reqs: puts(5), wantBatches: []int{5}},
		{name: "by count", cfg: ShardConfig{MaxBatch: 2}, reqs: puts(5), wantBatches: []int{2, 2, 1}},
		{name: "no batching", cfg: ShardConfig{MaxBatch: 1}, reqs: puts(3), wantBatches: []int{1, 1, 1}},
		{name: "by bytes", cfg: ShardConfig{MaxBatchBytes: 2 * size}, reqs: puts(5), wantBatches: []int{2, 2, 1}},
		{name: "by bytes, one byte short", cfg: ShardConfig{MaxBatchBytes: 2*size - 1}, reqs: puts(3), wantBatches: []int{1, 1, 1}},
		{name: "a write larger than the batch still goes", cfg: ShardConfig{MaxBatchBytes: 1},
			reqs: []any{put("big", strings.Repeat("v", 100)), put("a", "1")}, wantBatches: []int{1, 1}},
		{name: "mod revision of a key the batch wrote",
			reqs:        []any{put("a", "1"), put("b", "1"), ifThen(cmpMod("a", 0), "c", "1"), put("d", "1")},
			wantBatches: []int{2, 2}},
		{name: "create revision of a key the batch created",
			reqs:        []any{put("a", "1"), ifThen(cmpCreate("a", 0), "c", "1")},
			wantBatches: []int{1, 1}},
		{name: "create revision of a key the batch only updated is known",
			setup:       []any{put("a", "0")},
			reqs:        []any{put("a", "1"), ifThen(cmpCreate("a", 0), "c", "1")},
			wantBatches: []int{2}},
		{name: "version of a key the batch wrote is known",
			reqs:        []any{put("a", "1"), ifThen(cmpVersion("a", 1), "c", "1")},
			wantBatches: []int{2}},
		{name: "mod revision of a key the batch did not write",
			setup:       []any{put("a", "0")},
			reqs:        []any{put("b", "1"), ifThen(cmpMod("a", 0), "c", "1")},
			wantBatches: []int{2}},
		{name: "mod revision inside a range compare",
			reqs: []any{put("a/1", "1"), &pb.TxnRequest{Compare: []*pb.Compare{{
				Key: []byte("a/"), RangeEnd: []byte("a0"), Target: pb.Compare_MOD, Result: pb.Compare_GREATER,
				TargetUnion: &pb.Compare_ModRevision{ModRevision: 0},
			}}}},
			wantBatches: []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCoreRig(t, tt.cfg)
			for _, req := range tt.setup {
				r.mustWrite(req)
			}
			r.drain()
			var chs []chan msg.Result
			for _, req := range tt.reqs {
				chs = append(chs, r.mustWrite(req))
			}
			sizes, _ := r.drain()
			if fmt.Sprint(sizes) != fmt.Sprint(tt.wantBatches) {
				t.Fatalf("batches %v, want %v", sizes, tt.wantBatches)
			}
			for i, ch := range chs {
				if res := answer(t, ch); res.Err != nil {
					t.Fatalf("write %d: %v", i, res.Err)
				}
			}
			if len(r.core.queue.ws) != 0 || r.core.queue.bytes != 0 {
				t.Fatalf("queue left with %d writes, %d bytes", len(r.core.queue.ws), r.core.queue.bytes)
			}
		})
	}
}

// TestCoreRevisions checks which writes of a batch take a revision and
// what each answer reports: a write whose dry run fails is answered with
// its error, and one that changes nothing with the revision current at its
// turn; neither takes a revision.
func TestCoreRevisions(t *testing.T) {
	tests := []struct {
		name         string
		reqs         []any
		wantStamped  int     // revisions the batch asks for
		wantErrs     []error // per write
		wantRevs     []int64 // per write: the answer's header revision, or the reply's revision for an error
		wantModified []int64 // per write that succeeds with a put: the mod revision it reports (0: skip)
	}{
		{
			name:        "every write fails its dry run",
			reqs:        []any{&pb.PutRequest{Key: []byte("a"), Lease: 99}, &pb.PutRequest{Key: []byte("b"), IgnoreValue: true}},
			wantStamped: 0,
			wantErrs:    []error{msg.ErrLeaseNotFound, msg.ErrKeyNotFound},
			wantRevs:    []int64{1, 1},
		},
		{
			name: "writes that change nothing",
			reqs: []any{
				&pb.DeleteRangeRequest{Key: []byte("nothing")},
				ifThen(cmpVersion("nothing", 5), "x", "1"),
				&pb.TxnRequest{},
			},
			wantStamped: 0,
			wantErrs:    []error{nil, nil, nil},
			wantRevs:    []int64{1, 1, 1},
		},
		{
			name: "mixed",
			reqs: []any{
				&pb.DeleteRangeRequest{Key: []byte("a")},       // nothing: 1
				put("a", "1"),                                  // 2
				&pb.PutRequest{Key: []byte("b"), Lease: 99},    // fails at 2
				&pb.DeleteRangeRequest{Key: []byte("nothing")}, // nothing: 2
				put("a", "2"),                                  // 3
				&pb.PutRequest{Key: []byte("a"), Lease: 7},     // 4
				&pb.DeleteRangeRequest{Key: []byte("a")},       // 5
			},
			wantStamped: 4,
			wantErrs:    []error{nil, nil, msg.ErrLeaseNotFound, nil, nil, nil, nil},
			wantRevs:    []int64{1, 2, 2, 2, 3, 4, 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCoreRig(t, ShardConfig{})
			var chs []chan msg.Result
			for _, req := range tt.reqs {
				chs = append(chs, r.mustWrite(req))
			}
			st, n := r.plan()
			if n != len(tt.reqs) || len(st.Writes) != tt.wantStamped {
				t.Fatalf("batch of %d writes asks for %d revisions, want %d and %d", n, len(st.Writes), len(tt.reqs), tt.wantStamped)
			}
			base := r.stamp(st)
			in := r.core.install(base)
			if in.From != base || in.To != base+int64(tt.wantStamped)-1 {
				t.Fatalf("installed %d..%d, want %d..%d", in.From, in.To, base, base+int64(tt.wantStamped)-1)
			}
			if len(in.Replies) != len(tt.reqs) {
				t.Fatalf("%d replies for %d writes", len(in.Replies), len(tt.reqs))
			}
			for i, rp := range in.Replies {
				if rp.Rev != tt.wantRevs[i] {
					t.Errorf("write %d: reply held for revision %d, want %d", i, rp.Rev, tt.wantRevs[i])
				}
			}
			r.release(in.To, in.Replies)
			for i, ch := range chs {
				res := answer(t, ch)
				if !errors.Is(res.Err, tt.wantErrs[i]) {
					t.Fatalf("write %d: error %v, want %v", i, res.Err, tt.wantErrs[i])
				}
				if res.Err == nil {
					if rev := headerRev(res.Resp.Message()); rev != tt.wantRevs[i] {
						t.Errorf("write %d: header revision %d, want %d", i, rev, tt.wantRevs[i])
					}
				}
			}
			if tt.wantStamped == 0 && r.core.cfg.Published.Load() == nil {
				t.Fatal("nothing published after an install")
			}
		})
	}
}

func headerRev(resp any) int64 {
	switch r := resp.(type) {
	case *pb.PutResponse:
		return r.Header.Revision
	case *pb.DeleteRangeResponse:
		return r.Header.Revision
	case *pb.TxnResponse:
		return r.Header.Revision
	}
	panic(fmt.Sprintf("unexpected response %T", resp))
}

// agreementReqs is a batch whose writes read each other's: versions,
// previous values, compares on values and versions, a delete that
// re-creates, and ranges inside a Txn.
func agreementReqs() []any {
	return []any{
		put("a", "1"),
		&pb.PutRequest{Key: []byte("a"), Value: []byte("2"), PrevKv: true},
		ifThen(cmpVersion("a", 2), "b", "a was 2"),
		&pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("b"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
				TargetUnion: &pb.Compare_Value{Value: []byte("a was 2")}}},
			Success: []*pb.RequestOp{
				{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c")}}},
				putOp("c", "3"),
				{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), PrevKv: true}}},
			},
		},
		&pb.DeleteRangeRequest{Key: []byte("a")}, // gone already: no revision
		&pb.PutRequest{Key: []byte("a"), Value: []byte("new generation"), Lease: 7},
		&pb.PutRequest{Key: []byte("c"), IgnoreValue: true, PrevKv: true},
		&pb.PutRequest{Key: []byte("zz"), IgnoreLease: true}, // fails: absent
		&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00"), PrevKv: true},
	}
}

// TestCoreDryRunAgreesWithRealRun runs one batch and checks that its dry
// run, which stamped placeholders, wrote what the real run wrote at the
// stamped revisions (the Stamp's mutations are what the sequencer makes
// durable), and that every answer is the one the write gets alone, in a
// batch of its own.
func TestCoreDryRunAgreesWithRealRun(t *testing.T) {
	batched := newCoreRig(t, ShardConfig{})
	alone := newCoreRig(t, ShardConfig{MaxBatch: 1})
	var got, want []chan msg.Result
	for _, req := range agreementReqs() {
		got = append(got, batched.mustWrite(req))
	}
	for _, req := range agreementReqs() {
		want = append(want, alone.mustWrite(req))
	}
	st, n := batched.plan()
	if n != len(agreementReqs()) {
		t.Fatalf("the batch holds %d writes, want all %d", n, len(agreementReqs()))
	}
	base := batched.stamp(st)
	in := batched.core.install(base)
	batched.release(in.To, in.Replies)
	if sizes, _ := alone.drain(); len(sizes) != len(agreementReqs()) {
		t.Fatalf("unbatched: %d batches", len(sizes))
	}

	// The Stamp's mutations, resolved at base, are what the store holds.
	view := batched.core.cfg.Store.Snapshot()
	for i, muts := range st.Writes {
		rev := base + int64(i)
		for _, m := range muts {
			e, ok := view.get(m.Key, rev)
			if m.Delete {
				if ok {
					t.Errorf("revision %d deletes %q, the store has it", rev, m.Key)
				}
				continue
			}
			create := m.Create
			if create < 0 {
				create = base - create - 1 // as storage.Entry resolves it
			}
			if !ok || e.rec.rev != rev || e.rec.create != create || e.rec.version != m.Version ||
				e.rec.lease != m.Lease || string(e.rec.value) != string(m.Value) {
				t.Errorf("revision %d: stamped %+v (create %d), store has %+v", rev, m, create, e.rec)
			}
		}
	}
	if in.To != alone.next-1 {
		t.Fatalf("batched to revision %d, unbatched to %d", in.To, alone.next-1)
	}
	for i := range got {
		g, w := answer(t, got[i]), answer(t, want[i])
		if !errors.Is(g.Err, w.Err) {
			t.Fatalf("write %d: error %v batched, %v alone", i, g.Err, w.Err)
		}
		if g.Err == nil && !proto.Equal(g.Resp.Message(), w.Resp.Message()) {
			t.Errorf("write %d:\nbatched %v\nalone   %v", i, g.Resp.Message(), w.Resp.Message())
		}
	}
	gv, wv := batched.core.cfg.Published.Load(), alone.core.cfg.Published.Load()
	for rev := int64(1); rev <= in.To; rev++ {
		ge, _ := gv.collect("", "", rev, -1)
		we, _ := wv.collect("", "", rev, -1)
		if fmt.Sprint(entryRecs(ge)) != fmt.Sprint(entryRecs(we)) {
			t.Fatalf("published views differ at revision %d:\nbatched %v\nalone   %v", rev, entryRecs(ge), entryRecs(we))
		}
	}
}

func entryRecs(es []entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s@%d c%d v%d l%d %q", e.key, e.rec.rev, e.rec.create, e.rec.version, e.rec.lease, e.rec.value))
	}
	return out
}

// TestCoreInstallPanicsWhenTheRunsDisagree is the check's broken twin: a
// store changed behind the batch's back between plan and install makes
// the real run decide differently, and install panics rather than answer.
func TestCoreInstallPanicsWhenTheRunsDisagree(t *testing.T) {
	r := newCoreRig(t, ShardConfig{})
	r.mustWrite(ifThen(cmpVersion("a", 0), "a", "first"))
	st, _ := r.plan()
	base := r.stamp(st)
	r.core.cfg.Store.put("a", []byte("sneaked in"), 0, base) // no shard would
	defer func() {
		if recover() == nil {
			t.Fatal("install answered a write its dry run decided otherwise")
		}
	}()
	r.core.install(base)
}

// TestCoreWaitsForUnsettledBytes: past MaxUnsettledBytes the core plans
// nothing; the install that passed it carries a reply that wakes the shard
// once its revision is visible, and then the core plans again.
func TestCoreWaitsForUnsettledBytes(t *testing.T) {
	const value = 60 // and a 3-byte key: 63 bytes a write
	r := newCoreRig(t, ShardConfig{MaxBatch: 1, MaxUnsettledBytes: 100})
	var chs []chan msg.Result
	for i := range 3 {
		chs = append(chs, r.mustWrite(put(fmt.Sprint("k/", i), strings.Repeat("v", value))))
	}
	st, _ := r.plan()
	first := r.core.install(r.stamp(st))
	if len(first.Replies) != 1 {
		t.Fatalf("63 of 100 bytes unsettled: %d replies, want the answer only", len(first.Replies))
	}
	st, _ = r.plan()
	second := r.core.install(r.stamp(st))
	if len(second.Replies) != 2 || second.Replies[1].Rev != second.To {
		t.Fatalf("126 of 100 bytes unsettled: replies %+v, want the answer and a wake-up at %d", second.Replies, second.To)
	}
	if st, _ := r.plan(); st != nil {
		t.Fatal("planned with 126 of 100 bytes unsettled")
	}
	// The first revision alone leaves 63 bytes: under the limit again.
	r.release(first.To, first.Replies)
	if r.core.unsettled.bytes != 63 {
		t.Fatalf("%d bytes unsettled, want 63", r.core.unsettled.bytes)
	}
	r.release(second.To, second.Replies)
	if r.wakes != 1 || r.core.unsettled.bytes != 0 {
		t.Fatalf("%d wake-ups and %d bytes unsettled once all is visible, want 1 and 0", r.wakes, r.core.unsettled.bytes)
	}
	if st, n := r.plan(); st == nil || n != 1 {
		t.Fatal("no batch planned after the wake-up")
	}
	for _, ch := range chs[:2] {
		if res := answer(t, ch); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
}

// TestCoreQueueRefusals: a write past MaxQueued or MaxQueuedBytes is
// refused with msg.ErrTooManyRequests and leaves the queue as it was; one
// larger than MaxQueuedBytes is taken into an empty queue.
func TestCoreQueueRefusals(t *testing.T) {
	size := proto.Size(put("k/0", "vvvv"))
	tests := []struct {
		name      string
		cfg       ShardConfig
		reqs      []any
		wantTaken int // the first ones; the rest are refused
	}{
		{name: "by count", cfg: ShardConfig{MaxQueued: 3},
			reqs: []any{put("k/0", "vvvv"), put("k/1", "vvvv"), put("k/2", "vvvv"), put("k/3", "vvvv"), put("k/4", "vvvv")}, wantTaken: 3},
		{name: "by bytes", cfg: ShardConfig{MaxQueuedBytes: 2*size + 1},
			reqs: []any{put("k/0", "vvvv"), put("k/1", "vvvv"), put("k/2", "vvvv"), put("k", "")}, wantTaken: 2},
		{name: "one large write into an empty queue", cfg: ShardConfig{MaxQueuedBytes: size},
			reqs: []any{put("big", strings.Repeat("v", 10*size)), put("k/0", "vvvv")}, wantTaken: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCoreRig(t, tt.cfg)
			bytes := 0
			for i, req := range tt.reqs {
				_, err := r.write(req)
				if i < tt.wantTaken {
					if err != nil {
						t.Fatalf("write %d refused: %v", i, err)
					}
					bytes += requestBytes(request(req))
				} else if !errors.Is(err, msg.ErrTooManyRequests) {
					t.Fatalf("write %d: %v, want %v", i, err, msg.ErrTooManyRequests)
				}
			}
			if len(r.core.queue.ws) != tt.wantTaken || r.core.queue.bytes != bytes {
				t.Fatalf("queue holds %d writes, %d bytes; want %d, %d", len(r.core.queue.ws), r.core.queue.bytes, tt.wantTaken, bytes)
			}
			if sizes, _ := r.drain(); len(sizes) != 1 || sizes[0] != tt.wantTaken {
				t.Fatalf("batches %v, want one of %d", sizes, tt.wantTaken)
			}
			if _, err := r.write(put("again", "")); err != nil {
				t.Fatalf("drained queue refuses: %v", err)
			}
		})
	}
}

// TestCoreFreeze: a freeze is answered only once the batch in flight is
// installed, with a view that holds it; while frozen the shard plans
// nothing; the thaw installs what the cross-shard write wrote here.
func TestCoreFreeze(t *testing.T) {
	r := newCoreRig(t, ShardConfig{})
	r.mustWrite(put("a", "1"))
	st, _ := r.plan()
	f := &freeze{}
	r.core.queueFreeze(f)
	if got, _, _ := r.core.pump(); got != nil {
		t.Fatal("freeze answered with a batch in flight")
	}
	base := r.stamp(st)
	in := r.core.install(base)
	r.release(in.To, in.Replies)
	r.mustWrite(put("b", "1"))
	got, view, stamp := r.core.pump()
	if got != f || stamp != nil {
		t.Fatalf("pump after install: freeze %v, stamp %v; want the freeze answered, nothing planned", got, stamp)
	}
	if _, ok := view.View.get("a", latest); !ok {
		t.Fatal("the frozen view misses the batch installed before it")
	}
	if st, _ := r.plan(); st != nil {
		t.Fatal("a frozen shard planned a batch")
	}
	rev := r.next
	r.next++
	done := r.core.applyThaw(&thaw{Rev: rev, Muts: []storage.Mutation{{Key: "x", Value: []byte("cross"), Create: rev, Version: 1}}})
	if done == nil || done.From != rev || done.To != rev {
		t.Fatalf("thaw installed %+v, want revision %d", done, rev)
	}
	if e, ok := r.core.cfg.Published.Load().get("x", latest); !ok || e.rec.rev != rev {
		t.Fatal("the thaw's write is not published")
	}
	if st, n := r.plan(); st == nil || n != 1 {
		t.Fatal("no batch planned after the thaw")
	}
	if in := r.core.install(r.stamp(st)); in.From != rev+1 {
		t.Fatalf("batch after the thaw at %d, want %d", in.From, rev+1)
	}
}
