package actors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/msg"
)

// startNode starts a node in memory, or with a data dir in a temp dir.
func startNode(t testing.TB, shards int, durable bool) *Node {
	t.Helper()
	return startNodeWith(t, Config{Shards: shards}, durable)
}

// startNodeWith is startNode with more of the config given.
func startNodeWith(t testing.TB, cfg Config, durable bool) *Node {
	t.Helper()
	cfg.InMemory = !durable
	cfg.OnFatal = func(who string, reason any) {
		panic(fmt.Sprintf("core actor %s failed: %v", who, reason))
	}
	if durable {
		cfg.DataDir = t.TempDir()
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func put(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

// TestConcurrentWritesAndReads drives single-shard puts and cross-shard
// Txns from many goroutines while readers scan and a compactor follows the
// revision, under the race detector: every acknowledged revision is unique,
// the final revision counts them all, no reader ever sees half of a
// cross-shard Txn, and no read of the current revision fails, though
// compaction keeps removing values (in the durable node, from the data dir)
// that a reader may be about to read.
func TestConcurrentWritesAndReads(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-memory", true: "durable"}[durable], func(t *testing.T) {
			testConcurrentWritesAndReads(t, startNode(t, 4, durable))
		})
	}
}

// TestMailboxKinds runs the concurrent test on every dispatcher and queue
// the Mailbox knob offers, in memory and (on the kind furthest from the
// default) durable: the knob must change how fast, never what.
func TestMailboxKinds(t *testing.T) {
	const shardCount = 4
	type run struct {
		mailbox Mailbox
		durable bool
	}
	var runs []run
	for _, m := range Mailboxes {
		runs = append(runs, run{m, false})
	}
	runs = append(runs, run{Mailbox{DispatcherGoroutine, QueueMPSC}, true})
	for _, r := range runs {
		t.Run(r.mailbox.String()+map[bool]string{false: "/in-memory", true: "/durable"}[r.durable], func(t *testing.T) {
			n := startNodeWith(t, Config{Shards: shardCount, Mailbox: r.mailbox}, r.durable)
			// Pinned goroutines: one per shard, the coordinator, the
			// sequencer, the lease actor.
			want := map[string]int{DispatcherPinned: shardCount + 3, DispatcherGoroutine: 0}[r.mailbox.Dispatcher]
			if got := len(n.dispatchers); got != want {
				t.Fatalf("%d pinned goroutines, want %d", got, want)
			}
			testConcurrentWritesAndReads(t, n)
		})
	}
}

// TestUnknownMailboxRefused checks that a mailbox the knob does not offer
// stops the start before the data dir is touched.
func TestUnknownMailboxRefused(t *testing.T) {
	for _, m := range []Mailbox{{Dispatcher: "threads"}, {Queue: "priority"}} {
		dir := filepath.Join(t.TempDir(), "data")
		n, err := Start(Config{Shards: 2, DataDir: dir, Mailbox: m})
		if err == nil {
			n.Stop()
			t.Fatalf("%+v: started, want an error", m)
		}
		if _, statErr := os.Stat(dir); !errors.Is(statErr, fs.ErrNotExist) {
			t.Fatalf("%+v: the data dir was touched (%v)", m, statErr)
		}
	}
}

func testConcurrentWritesAndReads(t *testing.T, n *Node) {
	ctx := context.Background()
	const writers, perWriter = 8, 200
	group := []string{"g/a", "g/b", "g/c", "g/d", "g/e"}

	var mu sync.Mutex
	seen := map[int64]bool{}
	record := func(rev int64) {
		mu.Lock()
		defer mu.Unlock()
		if seen[rev] {
			t.Errorf("revision %d acknowledged twice", rev)
		}
		seen[rev] = true
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	// background runs step until stop is closed or step returns false.
	background := func(step func() bool) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !step() {
					return
				}
			}
		}()
	}
	for range 2 {
		background(func() bool {
			resp, err := n.Range(&pb.RangeRequest{Key: []byte("g/"), RangeEnd: []byte("g0")})
			if err != nil {
				t.Error(err)
				return false
			}
			for _, kv := range resp.Kvs {
				if string(kv.Value) != string(resp.Kvs[0].Value) {
					t.Errorf("reader saw half a Txn at revision %d: %q vs %q", resp.Header.Revision, kv.Value, resp.Kvs[0].Value)
					return false
				}
			}
			return true
		})
	}
	background(func() bool {
		if _, err := n.Compact(ctx, n.Revision(), false); err != nil && err != msg.ErrCompacted {
			t.Error(err)
			return false
		}
		return true
	})
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := range perWriter {
				if i%4 == 0 {
					v := fmt.Sprintf("%d-%d", w, i)
					var ops []*pb.RequestOp
					for _, k := range group {
						ops = append(ops, put(k, v))
					}
					resp, err := n.Txn(ctx, &pb.TxnRequest{Success: ops})
					if err != nil {
						t.Error(err)
						return
					}
					record(resp.Header.Revision)
					continue
				}
				resp, err := n.Put(ctx, &pb.PutRequest{Key: []byte(fmt.Sprintf("k/%d/%d", w, i%7)), Value: []byte("v")})
				if err != nil {
					t.Error(err)
					return
				}
				record(resp.Header.Revision)
			}
		}()
	}
	writersWG.Wait()
	close(stop)
	readers.Wait()
	if got, want := n.Revision(), int64(1+writers*perWriter); got != want {
		t.Fatalf("final revision %d, want %d", got, want)
	}
	if len(seen) != writers*perWriter {
		t.Fatalf("%d distinct revisions acknowledged, want %d", len(seen), writers*perWriter)
	}
}

// TestNoopWritesKeepRevision checks that a delete of nothing and a Txn
// whose taken branch writes nothing leave the revision alone, on the shard
// path and the coordinator path alike.
func TestNoopWritesKeepRevision(t *testing.T) {
	n := startNode(t, 4, false)
	ctx := context.Background()
	if _, err := n.Put(ctx, &pb.PutRequest{Key: []byte("x"), Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	before := n.Revision()
	noops := []struct {
		name string
		run  func() (int64, error)
	}{
		{"delete missing key", func() (int64, error) {
			r, err := n.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte("missing")})
			return r.GetHeader().GetRevision(), err
		}},
		{"delete empty range", func() (int64, error) {
			r, err := n.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte("zz"), RangeEnd: []byte("zzz")})
			return r.GetHeader().GetRevision(), err
		}},
		{"txn failing into an empty branch", func() (int64, error) {
			r, err := n.Txn(ctx, &pb.TxnRequest{
				Compare: []*pb.Compare{{Key: []byte("x"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("2")}}},
				Success: []*pb.RequestOp{put("x", "3"), put("y", "3")},
			})
			return r.GetHeader().GetRevision(), err
		}},
	}
	for _, tt := range noops {
		rev, err := tt.run()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if rev != before || n.Revision() != before {
			t.Fatalf("%s: header revision %d, store revision %d; want both %d", tt.name, rev, n.Revision(), before)
		}
	}
}

// TestRestartKeepsHistory writes, compacts and restarts on the same data
// dir: keys, their histories above the compact revision, the revision
// itself, the compact revision and the member's IDs all come back.
func TestRestartKeepsHistory(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := func(shards int) *Node {
		n, err := Start(Config{Shards: shards, DefaultShards: 3, DataDir: dir, OnFatal: func(who string, reason any) {
			panic(fmt.Sprintf("core actor %s failed: %v", who, reason))
		}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := start(0)
	for i := range 20 {
		if _, err := n.Put(ctx, &pb.PutRequest{Key: []byte(fmt.Sprintf("k%d", i%5)), Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte("k4")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Compact(ctx, 12, true); err != nil {
		t.Fatal(err)
	}
	meta, rev := n.Meta(), n.Revision()
	before, err := n.Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Revision: 15})
	if err != nil {
		t.Fatal(err)
	}
	n.Stop()

	n = start(0)
	defer n.Stop()
	if got := n.Meta(); got.ClusterID != meta.ClusterID || got.MemberID != meta.MemberID || got.Shards != 3 {
		t.Fatalf("meta after restart %+v, want %+v", got, meta)
	}
	if n.Revision() != rev {
		t.Fatalf("revision %d after restart, want %d", n.Revision(), rev)
	}
	after, err := n.Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Revision: 15})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after.Kvs) != fmt.Sprint(before.Kvs) || after.Count != before.Count {
		t.Fatalf("history at 15 after restart:\n%v\nwant\n%v", after.Kvs, before.Kvs)
	}
	if _, err := n.Range(&pb.RangeRequest{Key: []byte("k1"), Revision: 11}); err == nil {
		t.Fatal("read below the compact revision succeeded after restart")
	}
}
