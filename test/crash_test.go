package test

// The crash test: a metastore process takes concurrent puts, deletes,
// cross-shard Txns and range deletes, is killed with SIGKILL at a random
// moment, and is started again on the same data dir, over several rounds.
// After every restart:
//
//   - every acknowledged write is there, or was overwritten by a later
//     write of the same writer (each key or key group has one sequential
//     writer and every value is unique, so the value names the write);
//   - a key holds only what an acknowledged write left, or what a write
//     that was in flight at the kill wrote (it may or may not have been
//     durable; it must then have been durable entirely);
//   - the store's revision is at least every revision acknowledged, and
//     new writes take higher ones;
//   - a Txn or range delete over three keys on three shards is never half
//     applied;
//   - a read at an acknowledged write's revision returns what it wrote
//     (nothing is compacted here, so all history must survive).
//
// It runs the real binary, because a SIGKILL of the process is the crash
// being tested, and it is bounded to about a minute.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/shards"
)

const (
	crashShards      = 4
	crashPutWriters  = 4
	crashPutKeys     = 8 // keys per put writer
	crashTxnWriters  = 3
	crashMaxRounds   = 8
	crashMinRounds   = 5
	crashRoundBudget = 40 * time.Second // no new round starts after this
	crashOpTimeout   = 10 * time.Second
)

// crashState is what one key, or one Txn group of keys, holds.
type crashState struct {
	present bool
	value   string
}

func (s crashState) String() string {
	if !s.present {
		return "<absent>"
	}
	return strconv.Quote(s.value)
}

// crashOp is one write, acknowledged or not.
type crashOp struct {
	desc   string
	result crashState // what the key or group holds after it
	acked  bool
	rev    int64 // the revision it was acknowledged at, if it took one
}

// crashTrack follows one key or group: what the last verification found,
// and the writes since. Only its writer's goroutine appends to ops during a
// round; verification runs between rounds.
type crashTrack struct {
	name    string
	keys    []string // one key, or the Txn group's keys
	prefix  string   // the group's prefix (ranges select exactly its keys)
	base    crashState
	baseRev int64 // the mod revision of base, if present
	ops     []crashOp
}

// rangeReq reads the whole key or group at rev (0: the latest).
func (tr *crashTrack) rangeReq(rev int64) *pb.RangeRequest {
	if tr.prefix != "" {
		return &pb.RangeRequest{Key: []byte(tr.prefix), RangeEnd: []byte(prefixEnd(tr.prefix)), Revision: rev}
	}
	return &pb.RangeRequest{Key: []byte(tr.keys[0]), Revision: rev}
}

// stateOf turns what a read returned into the track's state; for a group,
// anything but all keys with one value at one revision is half a write.
func (tr *crashTrack) stateOf(resp *pb.RangeResponse) (crashState, int64, error) {
	if len(resp.Kvs) == 0 {
		return crashState{}, 0, nil
	}
	if len(resp.Kvs) != len(tr.keys) {
		return crashState{}, 0, fmt.Errorf("%s half applied: %s", tr.name, kvSummary(resp.Kvs))
	}
	for _, kv := range resp.Kvs {
		if string(kv.Value) != string(resp.Kvs[0].Value) || kv.ModRevision != resp.Kvs[0].ModRevision {
			return crashState{}, 0, fmt.Errorf("%s half applied: %s", tr.name, kvSummary(resp.Kvs))
		}
	}
	return crashState{present: true, value: string(resp.Kvs[0].Value)}, resp.Kvs[0].ModRevision, nil
}

// crashGroupKeys picks three keys under prefix that hash to three
// different shards, so that every write to the group is a cross-shard one.
func crashGroupKeys(prefix string) []string {
	r := shards.NewRouter(crashShards)
	var keys []string
	used := map[int]bool{}
	for i := 0; len(keys) < 3; i++ {
		k := fmt.Sprintf("%s%c", prefix, 'a'+i)
		if s := r.Shard(k); !used[s] {
			used[s] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// crashCheck is an acknowledged write whose revision can be read back.
type crashCheck struct {
	tr *crashTrack
	op crashOp
}

// crashRun is the state of the whole test. The writers' fields are each
// touched by one writer goroutine during a round and by the test goroutine
// between rounds.
type crashRun struct {
	t        *testing.T
	puts     [crashPutWriters][]*crashTrack
	groups   [crashTxnWriters]*crashTrack
	lastRev  [crashPutWriters + crashTxnWriters]int64 // each writer's last acknowledged revision
	checked  []crashCheck                             // acknowledged writes read back already
	seq      atomic.Int64                             // makes every written value unique
	maxAcked atomic.Int64                             // the highest revision acknowledged so far
	killed   atomic.Bool                              // set just before the SIGKILL: errors are expected after it
}

var crashRevLine = regexp.MustCompile(`at revision (\d+)`)

// TestCrashRecovery kills a loaded server with SIGKILL over several rounds
// and checks every acknowledged write after each restart.
func TestCrashRecovery(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	c := &crashRun{t: t}
	for w := range c.puts {
		for j := range crashPutKeys {
			k := fmt.Sprintf("crash/p%d/%d", w, j)
			c.puts[w] = append(c.puts[w], &crashTrack{name: "key " + k, keys: []string{k}})
		}
	}
	for w := range c.groups {
		prefix := fmt.Sprintf("crash/t%d/", w)
		c.groups[w] = &crashTrack{name: "group " + prefix, keys: crashGroupKeys(prefix), prefix: prefix}
	}
	args := []string{"--data-dir", t.TempDir(), "--shards", strconv.Itoa(crashShards)}

	start := time.Now()
	p := c.restart(args)
	c.verify(p, rng)
	round := 0
	var sent, acked int
	for ; round < crashMaxRounds && (round < crashMinRounds || time.Since(start) < crashRoundBudget); round++ {
		run := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		s, a := c.load(p, run, rng.Uint64())
		sent, acked = sent+s, acked+a
		if t.Failed() {
			return
		}
		p = c.restart(args)
		c.verify(p, rng)
		if t.Failed() {
			return
		}
		t.Logf("round %d: killed after %v: %d writes sent, %d acknowledged; revision %d", round, run, s, a, c.maxAcked.Load())
	}
	// A graceful stop must keep everything too.
	p.stop(t)
	p = c.restart(args)
	c.verify(p, rng)
	p.stop(t)
	t.Logf("%d rounds in %v: %d writes sent, %d acknowledged, %d read back at their revision",
		round, time.Since(start).Round(time.Millisecond), sent, acked, len(c.checked))
	if acked < 50*round {
		t.Errorf("only %d writes acknowledged over %d rounds: the load did not run", acked, round)
	}
}

// restart starts the binary on the data dir and checks that the revision it
// reports is no lower than any acknowledged.
func (c *crashRun) restart(args []string) *durProc {
	c.t.Helper()
	p := durStartProc(c.t, args...)
	m := crashRevLine.FindStringSubmatch(p.startup)
	if m == nil {
		c.t.Fatalf("startup line names no revision: %s", p.startup)
	}
	rev, _ := strconv.ParseInt(m[1], 10, 64)
	if acked := c.maxAcked.Load(); rev < acked {
		c.t.Errorf("restarted at revision %d, below the acknowledged %d", rev, acked)
	}
	c.killed.Store(false)
	return p
}

// load runs the writers and a reader against p for d, then kills p with
// SIGKILL while they are still at it. It returns the writes sent and
// acknowledged.
func (c *crashRun) load(p *durProc, d time.Duration, seed uint64) (sent, acked int) {
	kv, closeConn := p.kvClient(c.t)
	defer closeConn()
	var wg sync.WaitGroup
	var nSent, nAcked atomic.Int64
	// Each writer writes until a write fails, which the kill makes happen.
	writer := func(w int, step func(rng *rand.Rand) bool) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		for {
			ok := step(rng)
			nSent.Add(1)
			if !ok {
				return
			}
			nAcked.Add(1)
		}
	}
	for w := range crashPutWriters {
		wg.Add(1)
		go writer(w, func(rng *rand.Rand) bool { return c.putStep(kv, w, rng) })
	}
	for g := range crashTxnWriters {
		wg.Add(1)
		go writer(crashPutWriters+g, func(rng *rand.Rand) bool { return c.txnStep(kv, g, rng) })
	}
	stopReads := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		c.read(kv, stopReads)
	}()

	time.Sleep(d)
	c.killed.Store(true)
	p.kill()
	wg.Wait()
	close(stopReads)
	<-readDone
	return int(nSent.Load()), int(nAcked.Load())
}

// failed reports a write or read that got no answer. Once the process is
// being killed that is the point; before, it is a server bug.
func (c *crashRun) failed(desc string, err error) {
	if !c.killed.Load() {
		c.t.Errorf("%s failed while the server was up: %v", desc, err)
	}
}

// acked records that the last write of tr was acknowledged at rev, after
// checking rev against the writer's previous one: a write that changed
// something takes a new, higher revision; one that changed nothing takes
// none and reports the current one.
func (c *crashRun) acked(w int, tr *crashTrack, rev int64, changed bool) {
	op := &tr.ops[len(tr.ops)-1]
	prev := c.lastRev[w]
	if changed && rev <= prev || rev < prev {
		c.t.Errorf("%s: %s acknowledged at revision %d after a write at %d", tr.name, op.desc, rev, prev)
	}
	c.lastRev[w] = rev
	op.acked = true
	if changed {
		op.rev = rev
		for {
			cur := c.maxAcked.Load()
			if rev <= cur || c.maxAcked.CompareAndSwap(cur, rev) {
				break
			}
		}
	}
}

func crashCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), crashOpTimeout)
}

// putStep makes one write of put writer w on one of its keys: mostly a put
// of a new value, sometimes a delete. The write is recorded before it is
// sent, so that one cut short by the kill is known as in doubt. It
// reports whether it was acknowledged.
func (c *crashRun) putStep(kv pb.KVClient, w int, rng *rand.Rand) bool {
	tr := c.puts[w][rng.IntN(crashPutKeys)]
	key := []byte(tr.keys[0])
	ctx, cancel := crashCtx()
	defer cancel()
	if rng.IntN(100) < 15 {
		tr.ops = append(tr.ops, crashOp{desc: "delete " + tr.keys[0]})
		resp, err := kv.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: key})
		if err != nil {
			c.failed(tr.ops[len(tr.ops)-1].desc, err)
			return false
		}
		c.acked(w, tr, resp.Header.Revision, resp.Deleted > 0)
		return true
	}
	v := fmt.Sprintf("p%d-%d", w, c.seq.Add(1))
	tr.ops = append(tr.ops, crashOp{desc: "put " + tr.keys[0] + "=" + v, result: crashState{present: true, value: v}})
	resp, err := kv.Put(ctx, &pb.PutRequest{Key: key, Value: []byte(v)})
	if err != nil {
		c.failed(tr.ops[len(tr.ops)-1].desc, err)
		return false
	}
	c.acked(w, tr, resp.Header.Revision, true)
	return true
}

// txnStep makes one write of Txn writer g on its group of three keys on
// three shards: mostly a Txn putting one new value to all of them (behind
// a compare that holds, so the coordinator evaluates it), otherwise a range
// delete of the group, or a Txn deleting each key.
func (c *crashRun) txnStep(kv pb.KVClient, g int, rng *rand.Rand) bool {
	tr := c.groups[g]
	w := crashPutWriters + g
	ctx, cancel := crashCtx()
	defer cancel()
	switch n := rng.IntN(100); {
	case n < 70:
		v := fmt.Sprintf("t%d-%d", g, c.seq.Add(1))
		tr.ops = append(tr.ops, crashOp{desc: "txn put " + tr.prefix + "*=" + v, result: crashState{present: true, value: v}})
		req := &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte(tr.keys[0]), Target: pb.Compare_MOD, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_ModRevision{ModRevision: 1 << 62}}},
			Failure: []*pb.RequestOp{opPut(tr.keys[0], "compare failed")},
		}
		for _, k := range tr.keys {
			req.Success = append(req.Success, opPut(k, v))
		}
		resp, err := kv.Txn(ctx, req)
		if err != nil {
			c.failed(tr.ops[len(tr.ops)-1].desc, err)
			return false
		}
		if !resp.Succeeded {
			c.t.Errorf("%s: compare mod < 2^62 failed", tr.name)
		}
		c.acked(w, tr, resp.Header.Revision, true)
		return true
	case n < 85:
		tr.ops = append(tr.ops, crashOp{desc: "delete range " + tr.prefix})
		resp, err := kv.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte(tr.prefix), RangeEnd: []byte(prefixEnd(tr.prefix))})
		if err != nil {
			c.failed(tr.ops[len(tr.ops)-1].desc, err)
			return false
		}
		if resp.Deleted != 0 && resp.Deleted != int64(len(tr.keys)) {
			c.t.Errorf("%s: range delete removed %d keys: it was half applied", tr.name, resp.Deleted)
		}
		c.acked(w, tr, resp.Header.Revision, resp.Deleted > 0)
		return true
	default:
		tr.ops = append(tr.ops, crashOp{desc: "txn delete " + tr.prefix + "*"})
		req := &pb.TxnRequest{}
		for _, k := range tr.keys {
			req.Success = append(req.Success, opDel(k, ""))
		}
		resp, err := kv.Txn(ctx, req)
		if err != nil {
			c.failed(tr.ops[len(tr.ops)-1].desc, err)
			return false
		}
		var deleted int64
		for _, r := range resp.Responses {
			deleted += r.GetResponseDeleteRange().GetDeleted()
		}
		if deleted != 0 && deleted != int64(len(tr.keys)) {
			c.t.Errorf("%s: txn delete removed %d keys: it was half applied", tr.name, deleted)
		}
		c.acked(w, tr, resp.Header.Revision, deleted > 0)
		return true
	}
}

// read reads every key over and over while the writers run: no answer may
// be older than a write acknowledged before the read was sent, and no
// group may be seen half written.
func (c *crashRun) read(kv pb.KVClient, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(2 * time.Millisecond):
		}
		floor := c.maxAcked.Load()
		ctx, cancel := crashCtx()
		resp, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("crash/"), RangeEnd: []byte(prefixEnd("crash/"))})
		cancel()
		if err != nil {
			c.failed("read", err)
			return
		}
		if resp.Header.Revision < floor {
			c.t.Errorf("read answered at revision %d after a write was acknowledged at %d", resp.Header.Revision, floor)
		}
		for _, tr := range c.groups {
			if _, _, err := tr.stateOf(crashSubset(resp, tr)); err != nil {
				c.t.Errorf("read at revision %d: %v", resp.Header.Revision, err)
			}
		}
	}
}

// crashSubset is the part of a read of every key that belongs to tr.
func crashSubset(resp *pb.RangeResponse, tr *crashTrack) *pb.RangeResponse {
	out := &pb.RangeResponse{Header: resp.Header}
	for _, kv := range resp.Kvs {
		if slices.Contains(tr.keys, string(kv.Key)) {
			out.Kvs = append(out.Kvs, kv)
		}
	}
	return out
}

// verify checks the restarted p against everything acknowledged, then takes
// what it found as the new starting point of every key and group.
func (c *crashRun) verify(p *durProc, rng *rand.Rand) {
	t := c.t
	t.Helper()
	kv, closeConn := p.kvClient(t)
	defer closeConn()
	ctx, cancel := crashCtx()
	defer cancel()
	all, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("crash/"), RangeEnd: []byte(prefixEnd("crash/"))})
	if err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	rev := all.Header.Revision
	if acked := c.maxAcked.Load(); rev < acked {
		t.Errorf("revision %d after the restart, below the acknowledged %d", rev, acked)
	}
	var tracks []*crashTrack
	for _, keys := range c.puts {
		tracks = append(tracks, keys...)
	}
	tracks = append(tracks, c.groups[:]...)
	var fresh []crashCheck
	for _, tr := range tracks {
		got, mod, err := tr.stateOf(crashSubset(all, tr))
		if err != nil {
			t.Errorf("after restart: %v", err)
			continue
		}
		c.checkTrack(tr, got, mod)
		for _, op := range tr.ops {
			if op.acked && op.rev > 0 {
				fresh = append(fresh, crashCheck{tr, op})
			}
		}
		tr.base, tr.baseRev, tr.ops = got, mod, nil
	}
	// Read back every write acknowledged since the last restart at its
	// revision, and a sample of the older ones: history must survive too.
	checks := fresh
	for _, i := range rng.Perm(len(c.checked))[:min(300, len(c.checked))] {
		checks = append(checks, c.checked[i])
	}
	c.checkHistory(kv, checks)
	c.checked = append(c.checked, fresh...)
	for w := range c.lastRev {
		c.lastRev[w] = rev
	}
}

// checkTrack checks what tr holds after a restart: what its last
// acknowledged write left (at exactly that write's revision), or what a
// later write in doubt wrote (at a later revision).
func (c *crashRun) checkTrack(tr *crashTrack, got crashState, mod int64) {
	want, wantMod := tr.base, tr.baseRev
	last := -1
	for i, op := range tr.ops {
		if op.acked {
			last, want = i, op.result
			if op.rev > 0 {
				wantMod = op.rev
			}
		}
	}
	if got == want {
		if got.present && mod != wantMod {
			c.t.Errorf("%s holds %v at revision %d, want it at %d", tr.name, got, mod, wantMod)
		}
		return
	}
	var doubt []string
	for _, op := range tr.ops[last+1:] {
		if op.acked {
			continue
		}
		if got == op.result {
			if got.present && mod <= wantMod {
				c.t.Errorf("%s holds %v from %q (in doubt) at revision %d, not after the acknowledged %d", tr.name, got, op.desc, mod, wantMod)
			}
			return
		}
		doubt = append(doubt, op.desc)
	}
	c.t.Errorf("%s holds %v at revision %d; want %v (at %d) from the last acknowledged write, or the result of one in doubt %q",
		tr.name, got, mod, want, wantMod, doubt)
}

// checkHistory reads each write back at its revision, a few at a time.
func (c *crashRun) checkHistory(kv pb.KVClient, checks []crashCheck) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(checks) {
					return
				}
				ch := checks[i]
				ctx, cancel := crashCtx()
				resp, err := kv.Range(ctx, ch.tr.rangeReq(ch.op.rev))
				cancel()
				if err != nil {
					c.t.Errorf("%s: read at the revision %d of %q: %v", ch.tr.name, ch.op.rev, ch.op.desc, err)
					return
				}
				got, mod, err := ch.tr.stateOf(resp)
				switch {
				case err != nil:
					c.t.Errorf("read at revision %d of %q: %v", ch.op.rev, ch.op.desc, err)
				case got != ch.op.result || got.present && mod != ch.op.rev:
					c.t.Errorf("%s at revision %d of %q: holds %v (mod %d), want %v", ch.tr.name, ch.op.rev, ch.op.desc, got, mod, ch.op.result)
				}
			}
		}()
	}
	wg.Wait()
}
