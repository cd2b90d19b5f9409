package shards

// The byte bounds of a shard and of the coordinator, run through their
// actors with a scripted sequencer (fakeSeq): it stamps at once or holds
// the answer back, and makes revisions visible only when the test says, as
// a slow disk would.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors/msg"
)

type fakeRevs struct{ visible, compacted atomic.Int64 }

func (r *fakeRevs) Visible() int64   { return r.visible.Load() }
func (r *fakeRevs) Compacted() int64 { return r.compacted.Load() }

// stampSeen is what fakeSeq reports of each Stamp.
type stampSeen struct {
	from    *actor.PID
	writes  int   // requests that change something
	base    int64 // its first revision
	visible int64 // the visible revision when it arrived
}

// fakeSeq stamps revisions and holds replies until the test makes their
// revisions visible (seqRelease). With seqStall it leaves Stamps
// unanswered until seqUnstall; after seqAuto it answers every Stamp and
// makes every install visible at once, like an instant disk.
type fakeSeq struct {
	revs    *fakeRevs
	next    int64
	stall   bool
	auto    bool
	stalled []*stampSeen
	held    []msg.Reply
	seen    chan<- stampSeen
}

type (
	seqStall   struct{}
	seqUnstall struct{}
	seqAuto    struct{}
	seqRelease struct{ upTo int64 }
)

func (f *fakeSeq) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *msg.Stamp:
		s := &stampSeen{from: m.ReplyTo, writes: len(m.Writes), base: f.next, visible: f.revs.Visible()}
		f.next += int64(len(m.Writes))
		f.seen <- *s
		if f.stall {
			f.stalled = append(f.stalled, s)
			return
		}
		ctx.Send(m.ReplyTo, &msg.Stamped{Base: s.base})
	case *msg.Installed:
		f.held = append(f.held, m.Replies...)
		f.release(f.revs.Visible())
	case *msg.Deliver:
		f.held = append(f.held, m.Replies...)
		f.release(f.revs.Visible())
	case seqStall:
		f.stall = true
	case seqUnstall:
		f.unstall(ctx)
	case seqAuto:
		f.auto = true
		f.unstall(ctx)
	case seqRelease:
		f.release(m.upTo)
	}
	if f.auto {
		f.release(f.next - 1)
	}
}

func (f *fakeSeq) unstall(ctx actor.Context) {
	f.stall = false
	for _, s := range f.stalled {
		ctx.Send(s.from, &msg.Stamped{Base: s.base})
	}
	f.stalled = nil
}

// release makes upTo visible and sends the replies it releases.
func (f *fakeSeq) release(upTo int64) {
	f.revs.visible.Store(max(f.revs.Visible(), upTo))
	var keep []msg.Reply
	for _, r := range f.held {
		if r.Rev <= f.revs.Visible() {
			r.Send()
		} else {
			keep = append(keep, r)
		}
	}
	f.held = keep
}

// bytesRig is an actor system with a fakeSeq, for one test.
type bytesRig struct {
	t      *testing.T
	system *actor.ActorSystem
	revs   *fakeRevs
	seq    *actor.PID
	seen   chan stampSeen
}

func newBytesRig(t *testing.T) *bytesRig {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	t.Cleanup(system.Shutdown)
	r := &bytesRig{t: t, system: system, revs: &fakeRevs{}, seen: make(chan stampSeen, 1024)}
	r.revs.visible.Store(1)
	r.seq = system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &fakeSeq{revs: r.revs, next: 2, seen: r.seen}
	}))
	return r
}

// shard spawns a durable-style shard (values kept out of its records, in a
// Values with no data dir: nothing here reads one back).
func (r *bytesRig) shard(cfg ShardConfig) (*actor.PID, *Store) {
	store := NewStore(NewValues(nil, 0))
	cfg.Store = store
	cfg.Published = &atomic.Pointer[View]{}
	cfg.Sequencer = r.seq
	cfg.Revisions = r.revs
	cfg.Leases = func(int64) bool { return false }
	return r.system.Root.Spawn(NewShardProps(cfg)), store
}

// write sends req to pid and returns where its answer will come.
func (r *bytesRig) write(pid *actor.PID, req any) chan msg.Result {
	ch := make(chan msg.Result, 1)
	r.system.Root.Send(pid, &msg.Write{Req: request(req), Reply: ch})
	return ch
}

func (r *bytesRig) nextStamp() stampSeen {
	r.t.Helper()
	select {
	case s := <-r.seen:
		return s
	case <-time.After(10 * time.Second):
		r.t.Fatal("no Stamp reached the sequencer")
	}
	return stampSeen{}
}

// barrier returns once shard pid has handled every message sent to it
// before and is idle (no batch in flight): a msg.CompactShard at revision 0,
// which drops nothing, is handled only then, and its Done is closed with
// no message after it that could wake the shard.
func (r *bytesRig) barrier(pid *actor.PID) {
	r.t.Helper()
	done := make(chan struct{})
	r.system.Root.Send(pid, &msg.CompactShard{Rev: 0, Done: done})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.t.Fatal("shard did not become idle")
	}
}

func wantAnswer(t *testing.T, ch chan msg.Result, want error) {
	t.Helper()
	select {
	case res := <-ch:
		if !errors.Is(res.Err, want) {
			t.Fatalf("answer %v, want error %v", res.Err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer, want %v", want)
	}
}

func wantNoAnswer(t *testing.T, ch chan msg.Result) {
	t.Helper()
	select {
	case res := <-ch:
		t.Fatalf("answered (%+v) a write that should still wait", res)
	default:
	}
}

func bigPut(key string, n int) *pb.PutRequest {
	return &pb.PutRequest{Key: []byte(key), Value: []byte(strings.Repeat("v", n))}
}

func TestShardQueueRefusesPastItsBytes(t *testing.T) {
	r := newBytesRig(t)
	r.system.Root.Send(r.seq, seqStall{})
	size := proto.Size(bigPut("k/00", 1024))
	pid, _ := r.shard(ShardConfig{MaxQueuedBytes: 9 * size})

	first := r.write(pid, bigPut("k/00", 1024))
	r.nextStamp() // in flight, unanswered: the rest queues
	var chs []chan msg.Result
	for i := 1; i <= 12; i++ {
		chs = append(chs, r.write(pid, bigPut(fmt.Sprintf("k/%02d", i), 1024)))
	}
	// Nine fit in 9*size bytes; the other three are refused.
	for _, ch := range chs[9:] {
		wantAnswer(t, ch, msg.ErrTooManyRequests)
	}
	for _, ch := range chs[:9] {
		wantNoAnswer(t, ch)
	}
	wantNoAnswer(t, first)

	// Once the queue drains into batches, writes are taken again.
	r.system.Root.Send(r.seq, seqAuto{})
	wantAnswer(t, first, nil)
	for _, ch := range chs[:9] {
		wantAnswer(t, ch, nil)
	}
	wantAnswer(t, r.write(pid, bigPut("k/again", 1024)), nil)
}

func TestShardQueueTakesOneWriteLargerThanItsBytes(t *testing.T) {
	r := newBytesRig(t)
	r.system.Root.Send(r.seq, seqStall{})
	pid, _ := r.shard(ShardConfig{MaxQueuedBytes: 1024})
	first := r.write(pid, bigPut("a", 10))
	r.nextStamp()
	big := r.write(pid, bigPut("b", 4096)) // alone in the queue: taken
	small := r.write(pid, bigPut("c", 10)) // behind it, past the limit
	wantAnswer(t, small, msg.ErrTooManyRequests)
	wantNoAnswer(t, big)
	r.system.Root.Send(r.seq, seqAuto{})
	wantAnswer(t, first, nil)
	wantAnswer(t, big, nil)
}

func TestShardQueueRefusesPastItsCount(t *testing.T) {
	r := newBytesRig(t)
	r.system.Root.Send(r.seq, seqStall{})
	pid, _ := r.shard(ShardConfig{MaxQueued: 3})
	r.write(pid, bigPut("a", 1))
	r.nextStamp()
	var chs []chan msg.Result
	for i := range 5 {
		chs = append(chs, r.write(pid, bigPut(fmt.Sprint("k", i), 1)))
	}
	wantAnswer(t, chs[3], msg.ErrTooManyRequests)
	wantAnswer(t, chs[4], msg.ErrTooManyRequests)
	for _, ch := range chs[:3] {
		wantNoAnswer(t, ch)
	}
}

func TestShardBatchIsCutByBytes(t *testing.T) {
	r := newBytesRig(t)
	r.system.Root.Send(r.seq, seqStall{})
	size := proto.Size(bigPut("k/00", 1024))
	pid, _ := r.shard(ShardConfig{MaxBatchBytes: 3 * size})
	var chs []chan msg.Result
	chs = append(chs, r.write(pid, bigPut("k/00", 1024)))
	if s := r.nextStamp(); s.writes != 1 {
		t.Fatalf("first batch stamps %d writes, want 1", s.writes)
	}
	for i := 1; i <= 8; i++ {
		chs = append(chs, r.write(pid, bigPut(fmt.Sprintf("k/%02d", i), 1024)))
	}
	// All eight are in the shard's mailbox before the Stamped that the
	// unstall sends it.
	r.system.Root.Send(r.seq, seqUnstall{})
	r.system.Root.Send(r.seq, seqStall{})
	for _, want := range []int{3, 3, 2} {
		if s := r.nextStamp(); s.writes != want {
			t.Fatalf("batch stamps %d writes, want %d (3 of %d bytes fit in %d)", s.writes, want, size, 3*size)
		}
		r.system.Root.Send(r.seq, seqUnstall{})
		r.system.Root.Send(r.seq, seqStall{})
	}
	r.system.Root.Send(r.seq, seqAuto{})
	for _, ch := range chs {
		wantAnswer(t, ch, nil)
	}
}

// TestShardWaitsForItsUnsettledBytes: a shard whose installed values are
// not yet visible (durable) stamps nothing more past MaxUnsettledBytes,
// and, once they are visible, settles them and goes on without waiting for
// another write: after the last one nothing stays in Values' recent map.
func TestShardWaitsForItsUnsettledBytes(t *testing.T) {
	r := newBytesRig(t)
	const value = 1024
	pid, store := r.shard(ShardConfig{MaxBatch: 1, MaxUnsettledBytes: 4 * value})
	var chs []chan msg.Result
	for i := range 12 {
		chs = append(chs, r.write(pid, bigPut(fmt.Sprintf("k/%02d", i), value)))
	}
	done := 0
	for round := 0; done < 12; round++ {
		// Each write is a batch of one with 1024+4 bytes: the fourth
		// passes 4096, and the shard waits.
		want := 4
		var last stampSeen
		for range want {
			last = r.nextStamp()
		}
		r.barrier(pid) // idle: it stamps nothing more
		select {
		case s := <-r.seen:
			t.Fatalf("round %d: shard stamped revision %d with %d bytes unsettled", round, s.base, 4*value)
		default:
		}
		if n := recentLen(store); n != want {
			t.Fatalf("round %d: recent holds %d values, want %d", round, n, want)
		}
		r.system.Root.Send(r.seq, seqRelease{upTo: last.base})
		for _, ch := range chs[done : done+want] {
			wantAnswer(t, ch, nil)
		}
		done += want
	}
	// The last batch settles on its wake-up, with no write after it.
	deadline := time.Now().Add(10 * time.Second)
	for recentLen(store) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("recent still holds %d values after the last write was visible", recentLen(store))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestShardSettlesItsLastBatchOnceVisible is the burst's tail: the values
// of a shard's last batch (1 MiB or more) leave memory once they are
// visible, not at the shard's next write, which may never come.
func TestShardSettlesItsLastBatchOnceVisible(t *testing.T) {
	r := newBytesRig(t)
	pid, store := r.shard(ShardConfig{})
	a, b := r.write(pid, bigPut("a", 512<<10)), r.write(pid, bigPut("b", 512<<10))
	var last stampSeen
	for n := 0; n < 2; n += last.writes {
		last = r.nextStamp()
	}
	r.barrier(pid)
	if n := recentLen(store); n != 2 {
		t.Fatalf("recent holds %d values before they are visible, want 2", n)
	}
	r.system.Root.Send(r.seq, seqRelease{upTo: last.base + int64(last.writes) - 1})
	wantAnswer(t, a, nil)
	wantAnswer(t, b, nil)
	deadline := time.Now().Add(10 * time.Second)
	for recentLen(store) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("recent still holds %d values after the last write was visible", recentLen(store))
		}
		time.Sleep(time.Millisecond)
	}
}

func recentLen(s *Store) int { return s.vals.recent.Size() }

// TestShardSettlesSmallWritesAtItsNextMessage: below settleWakeBytes no
// wake-up is asked for (it would cost a message per batch); the values
// settle at the shard's next message.
func TestShardSettlesSmallWritesAtItsNextMessage(t *testing.T) {
	r := newBytesRig(t)
	pid, store := r.shard(ShardConfig{})
	ch := r.write(pid, bigPut("small", 10))
	s := r.nextStamp()
	r.barrier(pid)
	r.system.Root.Send(r.seq, seqRelease{upTo: s.base})
	wantAnswer(t, ch, nil)
	r.barrier(pid)
	if n := recentLen(store); n != 0 {
		t.Fatalf("recent holds %d values after the shard's next message", n)
	}
}

// TestCoordinatorQueueRefusesPastItsBytes: with its running write stuck
// on a freeze, the coordinator queues writes up to its byte limit.
func TestCoordinatorQueueRefusesPastItsBytes(t *testing.T) {
	r := newBytesRig(t)
	mute := actor.PropsFromFunc(func(actor.Context) {})
	shardPIDs := []*actor.PID{r.system.Root.Spawn(mute), r.system.Root.Spawn(mute)}
	size := proto.Size(bigPut("k/00", 1024))
	pid := r.system.Root.Spawn(NewCoordinatorProps(CoordinatorConfig{
		Router: NewRouter(2), Shards: shardPIDs, Sequencer: r.seq, Revisions: r.revs,
		Leases: func(int64) bool { return false }, MaxQueuedBytes: 5 * size,
	}))
	r.write(pid, &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("z")}) // freezes, forever
	var chs []chan msg.Result
	for i := range 8 {
		chs = append(chs, r.write(pid, bigPut(fmt.Sprintf("k/%02d", i), 1024)))
	}
	for _, ch := range chs[5:] {
		wantAnswer(t, ch, msg.ErrTooManyRequests)
	}
	for _, ch := range chs[:5] {
		wantNoAnswer(t, ch)
	}
}

// TestCoordinatorWaitsForItsUnsettledBytes: past MaxUnsettledBytes the
// coordinator starts no cross-shard write until what it wrote is visible.
// The check can fail: without the wait the second write is stamped within
// microseconds of the first, long before the test makes it visible.
func TestCoordinatorWaitsForItsUnsettledBytes(t *testing.T) {
	r := newBytesRig(t)
	router := NewRouter(2)
	var shardPIDs []*actor.PID
	for i := range 2 {
		pid, _ := r.shard(ShardConfig{ID: i})
		shardPIDs = append(shardPIDs, pid)
	}
	coord := r.system.Root.Spawn(NewCoordinatorProps(CoordinatorConfig{
		Router: router, Shards: shardPIDs, Sequencer: r.seq, Revisions: r.revs,
		Leases: func(int64) bool { return false }, MaxUnsettledBytes: 1024,
	}))
	// Two keys on different shards, so every Txn goes through the
	// coordinator and writes 2 KiB.
	keys := [2]string{}
	for i := 0; keys[0] == "" || keys[1] == ""; i++ {
		k := fmt.Sprint("k", i)
		keys[router.Shard(k)] = k
	}
	txn := func() *pb.TxnRequest {
		var ops []*pb.RequestOp
		for _, k := range keys {
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: bigPut(k, 1024)}})
		}
		return &pb.TxnRequest{Success: ops}
	}
	var chs []chan msg.Result
	for range 3 {
		chs = append(chs, r.write(coord, txn()))
	}
	for i := range 3 {
		s := r.nextStamp()
		if s.from.String() != coord.String() {
			t.Fatalf("stamp from %v, want the coordinator", s.from)
		}
		if i > 0 && s.visible < s.base-1 {
			t.Fatalf("write %d stamped at %d while revision %d, which holds 2 KiB, was not visible", i, s.base, s.base-1)
		}
		time.Sleep(50 * time.Millisecond) // time for a wrong coordinator to start the next one
		r.system.Root.Send(r.seq, seqRelease{upTo: s.base})
		wantAnswer(t, chs[i], nil)
	}
}
