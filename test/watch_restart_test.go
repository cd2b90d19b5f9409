package test

// TestWatchAfterRestart: the events a watch replays from history are the
// same after MetaStore restarts on its data dir, after a clean close and
// after SIGKILL, and they are the events etcd sends for the same history.
//
// A watch from a past revision is served from the stored history, not from
// anything the running server remembers of the writes, so this is the test
// that what the store keeps per revision is complete: every key a Txn or a
// range delete changed, in the order it changed them, with the values and
// metadata of each pair and of the pair it replaced (prev_kv). The history
// spans all four shards within single Txns, whose keys are not in key
// order, and holds every kind of change a watch reports: creates,
// overwrites, a put that keeps the value (ignore_value), deletes by key and
// by range, a recreate, the failure branch of a Txn and a nested Txn, plus
// writes that change nothing and must not appear at all. A compaction after
// the restart checks that the compacted revision survives the next one too.
//
// etcd runs the same history as the reference, whichever backends
// METASTORE_BACKENDS selects: it is the oracle here, not a backend under
// test; the restarts are MetaStore's alone (etcd's own durability is not in
// question).

import (
	"context"
	"fmt"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/shards"
)

// wrPrefix holds every key of the history. It is fixed, not keyPrefix(t),
// because the backends must see the same keys to send the same events.
const wrPrefix = "wr/"

// wrShards is the durable server's shard count; the Txn keys below are
// chosen to span all of them.
const wrShards = 4

func wrKey(name string) string { return wrPrefix + name }

// wrObserved is what watches of one history returned.
type wrObserved struct {
	// all is a watch from revision 1 with prev_kv.
	all []wcEvent
	// fromMid is a watch from the middle revision without prev_kv.
	fromMid []wcEvent
}

// wrHistory writes the history on a fresh store (so at revision 1) and
// returns the revision of its first Txn, the middle of the history, and its
// last revision. Every revision is checked, since the watches are compared
// by absolute revision.
func wrHistory(t *testing.T, tg *Target) (mid, last int64) {
	t.Helper()
	// The first Txn's keys in the order it writes them: on shards 2, 0, 3,
	// then 1 twice in the nested Txn, then 1.
	r := shards.NewRouter(wrShards)
	if got := []int{r.Shard(wrKey("f")), r.Shard(wrKey("d")), r.Shard(wrKey("b")), r.Shard(wrKey("g"))}; !slices.Equal(got, []int{2, 0, 3, 1}) {
		t.Fatalf("the history's Txn keys f, d, b, g are on shards %v; pick keys that span all %d shards again", got, wrShards)
	}
	wantRev := func(what string, got, want int64) {
		t.Helper()
		if got != want {
			t.Fatalf("%s at revision %d, want %d", what, got, want)
		}
	}
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		wantRev("put "+k, tg.put(t, wrKey(k), k+"1"), int64(2+i)) // revs 2-6
	}
	wantRev("overwrite a", tg.put(t, wrKey("a"), "a2"), 7)
	wantRev("overwrite a", tg.put(t, wrKey("a"), "a3"), 8)
	txn := tg.txn(t, &pb.TxnRequest{
		Compare: []*pb.Compare{cmpValue(wrKey("a"), pb.Compare_EQUAL, "a3")},
		Success: []*pb.RequestOp{
			opPut(wrKey("f"), "f1"),
			opPut(wrKey("d"), "d2"),
			opDel(wrKey("b"), ""),
			opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut(wrKey("g"), "g1"), opDel(wrKey("e"), "")}}),
			opPut(wrKey("c"), "c2"),
		},
	})
	if !txn.Succeeded {
		t.Fatal("the history's first Txn took its failure branch")
	}
	wantRev("first txn", txn.Header.Revision, 9)
	// c and d; e is gone already.
	wantRev("delete c..f", tg.durDelete(t, wrKey("c"), wrKey("f")).Header.Revision, 10)
	wantRev("recreate c", tg.put(t, wrKey("c"), "c3"), 11)
	txn = tg.txn(t, &pb.TxnRequest{
		Compare: []*pb.Compare{cmpValue(wrKey("a"), pb.Compare_EQUAL, "nope")},
		Success: []*pb.RequestOp{opPut(wrKey("i"), "never")},
		Failure: []*pb.RequestOp{opPut(wrKey("h"), "h1"), opDel(wrKey("a"), "")},
	})
	if txn.Succeeded {
		t.Fatal("the history's second Txn took its success branch")
	}
	wantRev("failed txn", txn.Header.Revision, 12)
	// Changes nothing, so takes no revision and makes no event.
	wantRev("delete of a missing key", tg.durDelete(t, wrKey("zz"), "").Header.Revision, 12)
	wantRev("txn deleting a missing key", tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opDel(wrKey("zz"), "")}}).Header.Revision, 12)
	resp, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(wrKey("f")), IgnoreValue: true})
	if err != nil {
		t.Fatalf("put f with ignore_value: %v", err)
	}
	wantRev("put f with ignore_value", resp.Header.Revision, 13)
	wantRev("delete everything", tg.durDelete(t, wrPrefix, prefixEnd(wrPrefix)).Header.Revision, 14)
	// The last revision has one event, which ends every collection.
	wantRev("put a again", tg.put(t, wrKey("a"), "a4"), 15)
	return 9, 15
}

// wrCollect watches the history's keys from revision from and returns the
// events up to and including the one at last (the only one there).
func wrCollect(t *testing.T, cli *clientv3.Client, from, last int64, prevKV bool) []wcEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(from)}
	if prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	var got []wcEvent
	ch := cli.Watch(ctx, wrPrefix, opts...)
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				t.Fatalf("watch from %d: channel closed after %d events", from, len(got))
			}
			if err := resp.Err(); err != nil {
				t.Fatalf("watch from %d: %v after %d events", from, err, len(got))
			}
			for _, ev := range resp.Events {
				got = append(got, wcEventOf(ev))
			}
			if len(got) > 0 && got[len(got)-1].Rev >= last {
				return got
			}
		case <-ctx.Done():
			t.Fatalf("watch from %d: no event at %d after %v (%d events)", from, last, opTimeout, len(got))
		}
	}
}

// wrObserve collects both watches of the history.
func wrObserve(t *testing.T, cli *clientv3.Client, mid, last int64) wrObserved {
	t.Helper()
	return wrObserved{all: wrCollect(t, cli, 1, last, true), fromMid: wrCollect(t, cli, mid, last, false)}
}

// wrLive puts once more after the history, with a watch from the revision
// it will take already open, and returns what that watch reports.
func wrLive(t *testing.T, tg *Target, last int64) []wcEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	ch := tg.Client.Watch(ctx, wrPrefix, clientv3.WithPrefix(), clientv3.WithRev(last+1), clientv3.WithPrevKV())
	if rev := tg.put(t, wrKey("a"), "a5"); rev != last+1 {
		t.Fatalf("put after the history at revision %d, want %d", rev, last+1)
	}
	select {
	case resp, ok := <-ch:
		if !ok || resp.Err() != nil {
			t.Fatalf("live watch from %d: closed %v, error %v", last+1, !ok, resp.Err())
		}
		var got []wcEvent
		for _, ev := range resp.Events {
			got = append(got, wcEventOf(ev))
		}
		return got
	case <-ctx.Done():
		t.Fatalf("live watch from %d: nothing after %v", last+1, opTimeout)
	}
	return nil
}

// wrCompacted watches from a compacted revision and returns the compact
// revision the answer names.
func wrCompacted(t *testing.T, cli *clientv3.Client, from int64) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	select {
	case resp := <-cli.Watch(ctx, wrPrefix, clientv3.WithPrefix(), clientv3.WithRev(from)):
		if !resp.Canceled || len(resp.Events) > 0 {
			t.Fatalf("watch from compacted revision %d: canceled %v with %d events, want canceled", from, resp.Canceled, len(resp.Events))
		}
		return resp.CompactRevision
	case <-ctx.Done():
		t.Fatalf("watch from compacted revision %d: no answer after %v", from, opTimeout)
	}
	return 0
}

// wrSame reports the first difference between two event lists.
func wrSame(t *testing.T, what string, got, want []wcEvent) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s: event %d\n got %v\nwant %v", what, i, got[i], want[i])
			return
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d", what, len(got), len(want))
	}
}

// wrSameObserved compares two observations of the history.
func wrSameObserved(t *testing.T, what string, got, want wrObserved) {
	t.Helper()
	wrSame(t, what+", watch from 1 with prev_kv", got.all, want.all)
	wrSame(t, what+", watch from the middle", got.fromMid, want.fromMid)
}

func TestWatchAfterRestart(t *testing.T) {
	// etcd's answers; nil if its run failed (and said why).
	var ref *wrObserved
	var refLive, refAfterCompact []wcEvent
	t.Run("etcd", func(t *testing.T) {
		tg := connect(t, "etcd", startBackend(t, "etcd"))
		mid, last := wrHistory(t, tg)
		obs := wrObserve(t, tg.Client, mid, last)
		// The watch from the middle is the watch from 1 from there on,
		// without prev_kv; etcd is held to that too.
		var tail []wcEvent
		for _, e := range obs.all {
			if e.Rev >= mid {
				e.HasPrev, e.Prev = false, wcKV{}
				tail = append(tail, e)
			}
		}
		wrSame(t, "etcd, watch from the middle vs from 1", obs.fromMid, tail)
		live := wrLive(t, tg, last)
		tg.durCompact(t, mid)
		if got := wrCompacted(t, tg.Client, mid-1); got != mid {
			t.Errorf("watch below the compaction: compact revision %d, want %d", got, mid)
		}
		afterCompact := wrCollect(t, tg.Client, mid, last+1, false)
		if !t.Failed() {
			ref, refLive, refAfterCompact = &obs, live, afterCompact
		}
	})
	if !slices.Contains(selectedBackends(t), "metastore") {
		t.Skipf("%s does not select metastore; the restarts are MetaStore's", backendsEnv)
	}
	same := func(t *testing.T, what string, got wrObserved) {
		t.Helper()
		if ref != nil {
			wrSameObserved(t, what+" vs etcd", got, *ref)
		}
	}

	t.Run("close and start", func(t *testing.T) {
		dir := t.TempDir()
		ds := durStart(t, durConfig(dir, wrShards))
		mid, last := wrHistory(t, ds.Target)
		before := wrObserve(t, ds.Client, mid, last)
		same(t, "before the restart", before)
		ds.close(t)

		ds = durStart(t, durConfig(dir, wrShards))
		if rev := ds.currentRev(t); rev != last {
			t.Fatalf("revision after the restart %d, want %d", rev, last)
		}
		wrSameObserved(t, "after the restart vs before", wrObserve(t, ds.Client, mid, last), before)
		// Writes after the restart reach a watch with the right prev_kv.
		live := wrLive(t, ds.Target, last)
		if refLive != nil {
			wrSame(t, "a write after the restart vs etcd", live, refLive)
		}
		// The compaction holds across the next restart. Checked before it
		// too, so that a failure says which one is wrong.
		ds.durCompact(t, mid)
		if refAfterCompact != nil {
			wrSame(t, "after compaction, watch from the compaction vs etcd", wrCollect(t, ds.Client, mid, last+1, false), refAfterCompact)
		}
		ds.close(t)
		ds = durStart(t, durConfig(dir, wrShards))
		if got := wrCompacted(t, ds.Client, mid-1); got != mid {
			t.Errorf("after a restart, watch below the compaction: compact revision %d, want %d", got, mid)
		}
		afterCompact := wrCollect(t, ds.Client, mid, last+1, false)
		if refAfterCompact != nil {
			wrSame(t, "after compaction and restart, watch from the compaction vs etcd", afterCompact, refAfterCompact)
		}
	})

	t.Run("kill -9", func(t *testing.T) {
		dir := t.TempDir()
		args := []string{"--data-dir", dir, "--shards", fmt.Sprint(wrShards)}
		p := durStartProc(t, args...)
		tg := connect(t, "metastore", p.endpoint)
		mid, last := wrHistory(t, tg)
		before := wrObserve(t, tg.Client, mid, last)
		same(t, "before the kill", before)
		// Closed first: they would go on redialing the dead process.
		_ = tg.Client.Close()
		_ = tg.Conn.Close()
		p.kill()

		p = durStartProc(t, args...)
		tg = connect(t, "metastore", p.endpoint)
		wrSameObserved(t, "after kill -9 vs before", wrObserve(t, tg.Client, mid, last), before)
	})
}
