package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Every loop below is bounded by an iteration count, and every subtest by
// concurrencyTimeout, so a stuck server fails the test instead of hanging it.
const concurrencyTimeout = 60 * time.Second

// TestKVConcurrency runs concurrent clients against one server. The subtests
// run one after another, so within a subtest the only writers are its own
// and revision arithmetic is exact: every acknowledged write that changed
// something took exactly one revision, and nothing else took any.
func TestKVConcurrency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		t.Run("one key", func(t *testing.T) { testConcurrentOneKey(t, tg) })
		t.Run("many keys", func(t *testing.T) { testConcurrentManyKeys(t, tg) })
		t.Run("mixed ops revision accounting", func(t *testing.T) { testConcurrentRevisionAccounting(t, tg) })
		t.Run("txn atomicity", func(t *testing.T) { testConcurrentTxnAtomicity(t, tg) })
		t.Run("transfers", func(t *testing.T) { testConcurrentTransfers(t, tg) })
	})
}

// concurrencyCtx bounds one concurrent subtest.
func concurrencyCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), concurrencyTimeout)
	t.Cleanup(cancel)
	return c
}

// revSet collects the revisions that acknowledged writes report.
type revSet struct {
	mu   sync.Mutex
	revs []int64
}

func (s *revSet) add(r int64) {
	s.mu.Lock()
	s.revs = append(s.revs, r)
	s.mu.Unlock()
}

// wantContiguous checks that the revisions are distinct and are exactly
// start+1 .. start+len, and that the store's revision is now start+len.
func (s *revSet) wantContiguous(t *testing.T, tg *Target, start int64) {
	t.Helper()
	revs := slices.Clone(s.revs)
	slices.Sort(revs)
	for i, r := range revs {
		if r != start+int64(i)+1 {
			if i > 0 && r == revs[i-1] {
				t.Fatalf("revision %d acknowledged twice", r)
			}
			t.Fatalf("acknowledged revisions are not %d..%d: #%d is %d", start+1, start+int64(len(revs)), i, r)
		}
	}
	if got, want := tg.currentRev(t), start+int64(len(revs)); got != want {
		t.Fatalf("store revision %d after %d acknowledged writes from %d, want %d", got, len(revs), start, want)
	}
}

// testConcurrentOneKey: writers hammer a single key. Each ack has its own
// revision, each writer's acks increase, and the key's history replays
// every acknowledged put at its revision.
func testConcurrentOneKey(t *testing.T, tg *Target) {
	const writers, puts = 8, 40
	c := concurrencyCtx(t)
	k := keyPrefix(t) + "k"
	start := tg.currentRev(t)
	var acked revSet
	values := make([]map[int64]string, writers) // per writer: rev -> value
	var wg sync.WaitGroup
	for w := range writers {
		values[w] = map[int64]string{}
		wg.Go(func() {
			last := int64(0)
			for i := range puts {
				v := fmt.Sprintf("w%d-%d", w, i)
				resp, err := tg.KV.Put(c, &pb.PutRequest{Key: []byte(k), Value: []byte(v)})
				if err != nil {
					t.Errorf("writer %d put %d: %v", w, i, err)
					return
				}
				r := resp.Header.Revision
				if r <= last {
					t.Errorf("writer %d: put %d acked at %d after %d", w, i, r, last)
				}
				last = r
				values[w][r] = v
				acked.add(r)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	acked.wantContiguous(t, tg, start)
	final := start + writers*puts
	resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(k)})
	if len(resp.Kvs) != 1 || resp.Kvs[0].Version != writers*puts || resp.Kvs[0].ModRevision != final || resp.Kvs[0].CreateRevision != start+1 {
		t.Fatalf("final kv %s, want version %d mod %d create %d", kvSummary(resp.Kvs), writers*puts, final, start+1)
	}
	for _, vals := range values {
		for r, v := range vals {
			h := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(k), Revision: r})
			if len(h.Kvs) != 1 || string(h.Kvs[0].Value) != v || h.Kvs[0].ModRevision != r || h.Kvs[0].Version != r-start {
				t.Fatalf("at rev %d: %s, want %q version %d", r, kvSummary(h.Kvs), v, r-start)
			}
		}
	}
}

// testConcurrentManyKeys: writers spread puts over many keys, so requests
// land on every shard at once; revisions stay one per write and each key
// ends with its last acknowledged put.
func testConcurrentManyKeys(t *testing.T, tg *Target) {
	const writers, puts, keys = 8, 100, 32
	c := concurrencyCtx(t)
	p := keyPrefix(t)
	start := tg.currentRev(t)
	var acked revSet
	type ack struct {
		rev int64
		val string
	}
	var mu sync.Mutex
	last := map[string]ack{} // key -> put with the highest revision
	count := map[string]int64{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range puts {
				// Writers overlap on keys: writer w's i-th put goes to key
				// (w*7 + i*3) mod keys.
				k := fmt.Sprintf("%sk%02d", p, (w*7+i*3)%keys)
				v := fmt.Sprintf("w%d-%d", w, i)
				var r int64
				if i%2 == 0 {
					resp, err := tg.KV.Put(c, &pb.PutRequest{Key: []byte(k), Value: []byte(v)})
					if err != nil {
						t.Errorf("writer %d put %d: %v", w, i, err)
						return
					}
					r = resp.Header.Revision
				} else {
					resp, err := tg.Client.Put(c, k, v)
					if err != nil {
						t.Errorf("writer %d put %d: %v", w, i, err)
						return
					}
					r = resp.Header.Revision
				}
				acked.add(r)
				mu.Lock()
				count[k]++
				if r > last[k].rev {
					last[k] = ack{r, v}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	acked.wantContiguous(t, tg, start)
	resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))})
	if len(resp.Kvs) != len(last) {
		t.Fatalf("%d keys, want %d", len(resp.Kvs), len(last))
	}
	for _, kv := range resp.Kvs {
		want := last[string(kv.Key)]
		if string(kv.Value) != want.val || kv.ModRevision != want.rev || kv.Version != count[string(kv.Key)] {
			t.Fatalf("%s, want value %q mod %d version %d", kvSummary([]*mvccpb.KeyValue{kv}), want.val, want.rev, count[string(kv.Key)])
		}
	}
}

// testConcurrentRevisionAccounting mixes writes with requests that change
// nothing (no-op deletes, txns whose taken branch is empty or read-only,
// reads) and checks that only the writes took revisions.
func testConcurrentRevisionAccounting(t *testing.T, tg *Target) {
	const workers, ops = 6, 40
	c := concurrencyCtx(t)
	p := keyPrefix(t)
	start := tg.currentRev(t)
	var acked revSet
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			k := fmt.Sprintf("%sw%d/", p, w)
			for i := range ops {
				var err error
				switch i % 6 {
				case 0: // write
					var resp *pb.PutResponse
					resp, err = tg.KV.Put(c, &pb.PutRequest{Key: []byte(k + "a"), Value: []byte(strconv.Itoa(i))})
					if err == nil {
						acked.add(resp.Header.Revision)
					}
				case 1: // no-op delete
					var resp *pb.DeleteRangeResponse
					resp, err = tg.KV.DeleteRange(c, &pb.DeleteRangeRequest{Key: []byte(k + "missing")})
					if err == nil && resp.Deleted != 0 {
						t.Errorf("worker %d: no-op delete deleted %d", w, resp.Deleted)
					}
				case 2: // txn taking its empty failure branch
					var resp *pb.TxnResponse
					resp, err = tg.KV.Txn(c, &pb.TxnRequest{
						Compare: []*pb.Compare{cmpVersion(k+"a", pb.Compare_EQUAL, 1000)},
						Success: []*pb.RequestOp{opPut(k+"never", "x")},
					})
					if err == nil && resp.Succeeded {
						t.Errorf("worker %d: impossible compare succeeded", w)
					}
				case 3: // multi-key write txn, one revision
					var resp *pb.TxnResponse
					resp, err = tg.KV.Txn(c, &pb.TxnRequest{Success: []*pb.RequestOp{opPut(k+"b", "1"), opPut(k+"c", "1"), opDel(k+"a", "")}})
					if err == nil {
						acked.add(resp.Header.Revision)
					}
				case 4: // read-only txn and a read
					_, err = tg.KV.Txn(c, &pb.TxnRequest{Success: []*pb.RequestOp{opGet(k + "b"), opGet(k + "a")}})
					if err == nil {
						_, err = tg.Client.Get(c, k, clientv3.WithPrefix())
					}
				case 5: // delete that removes keys: a write
					var resp *pb.DeleteRangeResponse
					resp, err = tg.KV.DeleteRange(c, &pb.DeleteRangeRequest{Key: []byte(k + "b"), RangeEnd: []byte(k + "d")})
					if err == nil {
						if resp.Deleted != 2 {
							t.Errorf("worker %d: delete of b..d deleted %d, want 2", w, resp.Deleted)
						}
						acked.add(resp.Header.Revision)
					}
				}
				if err != nil {
					t.Errorf("worker %d op %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	acked.wantContiguous(t, tg, start)
}

// testConcurrentTxnAtomicity: writers set all keys of a group to one value
// per txn; the keys are many enough to span shards. Readers, by prefix
// range and by multi-get txn, must never see two values at once, and a
// reader's linearizable reads never go back in revision.
func testConcurrentTxnAtomicity(t *testing.T, tg *Target) {
	const keys, writers, txns, readers, maxReads = 8, 4, 100, 3, 20000
	c := concurrencyCtx(t)
	p := keyPrefix(t)
	keyName := func(i int) string { return fmt.Sprintf("%sg/%d", p, i) }
	setAll := func(v string) *pb.TxnRequest {
		var ops []*pb.RequestOp
		for i := range keys {
			ops = append(ops, opPut(keyName(i), v))
		}
		return &pb.TxnRequest{Success: ops}
	}
	start := tg.currentRev(t)
	var acked revSet
	acked.add(tg.txn(t, setAll("init")).Header.Revision)

	var done atomic.Bool
	var reads atomic.Int64
	var rwg sync.WaitGroup
	for r := range readers {
		rwg.Go(func() {
			var lastRev int64
			for i := 0; i < maxReads && !done.Load(); i++ {
				var kvsAll [][]byte
				var mods []int64
				var rev int64
				if i%2 == 0 {
					opts := []clientv3.OpOption{clientv3.WithPrefix()}
					if i%4 == 2 {
						opts = append(opts, clientv3.WithSerializable())
					}
					resp, err := tg.Client.Get(c, p+"g/", opts...)
					if err != nil {
						t.Errorf("reader %d: %v", r, err)
						return
					}
					rev = resp.Header.Revision
					for _, kv := range resp.Kvs {
						kvsAll = append(kvsAll, kv.Value)
						mods = append(mods, kv.ModRevision)
					}
					if len(opts) > 1 {
						rev = 0 // serializable reads are not checked for monotonicity
					}
				} else {
					var gets []*pb.RequestOp
					for k := range keys {
						gets = append(gets, opGet(keyName(k)))
					}
					resp, err := tg.KV.Txn(c, &pb.TxnRequest{Success: gets})
					if err != nil {
						t.Errorf("reader %d: %v", r, err)
						return
					}
					rev = resp.Header.Revision
					for _, op := range resp.Responses {
						for _, kv := range op.GetResponseRange().GetKvs() {
							kvsAll = append(kvsAll, kv.Value)
							mods = append(mods, kv.ModRevision)
						}
					}
				}
				if len(kvsAll) != keys {
					t.Errorf("reader %d: saw %d keys, want %d", r, len(kvsAll), keys)
					return
				}
				for j := range kvsAll {
					if string(kvsAll[j]) != string(kvsAll[0]) || mods[j] != mods[0] {
						t.Errorf("reader %d: torn read: key 0 = %q@%d, key %d = %q@%d", r, kvsAll[0], mods[0], j, kvsAll[j], mods[j])
						return
					}
				}
				if rev != 0 {
					if rev < lastRev {
						t.Errorf("reader %d: revision went back from %d to %d", r, lastRev, rev)
						return
					}
					lastRev = rev
				}
				reads.Add(1)
			}
		})
	}

	var wwg sync.WaitGroup
	for w := range writers {
		wwg.Go(func() {
			for i := range txns {
				resp, err := tg.KV.Txn(c, setAll(fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					t.Errorf("writer %d txn %d: %v", w, i, err)
					return
				}
				acked.add(resp.Header.Revision)
			}
		})
	}
	wwg.Wait()
	done.Store(true)
	rwg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d consistent reads during %d txns", reads.Load(), writers*txns)
	acked.wantContiguous(t, tg, start)
}

// testConcurrentTransfers: workers move amounts between accounts with
// compare-and-swap txns on the two accounts' mod revisions; readers check
// that the total never changes. Failed CAS attempts take no revision.
func testConcurrentTransfers(t *testing.T, tg *Target) {
	const accounts, initial, workers, attempts, readers, maxReads = 6, 100, 4, 100, 2, 20000
	c := concurrencyCtx(t)
	p := keyPrefix(t)
	acct := func(i int) string { return fmt.Sprintf("%sacct/%d", p, i) }
	start := tg.currentRev(t)
	var acked revSet
	var ops []*pb.RequestOp
	for i := range accounts {
		ops = append(ops, opPut(acct(i), strconv.Itoa(initial)))
	}
	acked.add(tg.txn(t, &pb.TxnRequest{Success: ops}).Header.Revision)

	sum := func(kvs [][]byte) (int, error) {
		total := 0
		for _, v := range kvs {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return 0, err
			}
			total += n
		}
		return total, nil
	}

	var done atomic.Bool
	var rwg sync.WaitGroup
	for r := range readers {
		rwg.Go(func() {
			for i := 0; i < maxReads && !done.Load(); i++ {
				resp, err := tg.Client.Get(c, p+"acct/", clientv3.WithPrefix())
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				var vals [][]byte
				for _, kv := range resp.Kvs {
					vals = append(vals, kv.Value)
				}
				total, err := sum(vals)
				if err != nil || len(vals) != accounts || total != accounts*initial {
					t.Errorf("reader %d at rev %d: %d accounts totalling %d (%v), want %d totalling %d",
						r, resp.Header.Revision, len(vals), total, err, accounts, accounts*initial)
					return
				}
			}
		})
	}

	var succeeded, failed atomic.Int64
	touched := make([]atomic.Int64, accounts) // successful transfers per account
	var wwg sync.WaitGroup
	for w := range workers {
		wwg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range attempts {
				from := rng.IntN(accounts)
				to := (from + 1 + rng.IntN(accounts-1)) % accounts
				amount := 1 + rng.IntN(10)
				get, err := tg.KV.Txn(c, &pb.TxnRequest{Success: []*pb.RequestOp{opGet(acct(from)), opGet(acct(to))}})
				if err != nil {
					t.Errorf("worker %d read: %v", w, err)
					return
				}
				fkvs, tkvs := get.Responses[0].GetResponseRange().GetKvs(), get.Responses[1].GetResponseRange().GetKvs()
				if len(fkvs) != 1 || len(tkvs) != 1 {
					t.Errorf("worker %d: accounts %d and %d read as %s and %s", w, from, to, kvSummary(fkvs), kvSummary(tkvs))
					return
				}
				fkv, tkv := fkvs[0], tkvs[0]
				fv, _ := strconv.Atoi(string(fkv.Value))
				tv, _ := strconv.Atoi(string(tkv.Value))
				resp, err := tg.KV.Txn(c, &pb.TxnRequest{
					Compare: []*pb.Compare{
						cmpMod(acct(from), pb.Compare_EQUAL, fkv.ModRevision),
						cmpMod(acct(to), pb.Compare_EQUAL, tkv.ModRevision),
					},
					Success: []*pb.RequestOp{opPut(acct(from), strconv.Itoa(fv-amount)), opPut(acct(to), strconv.Itoa(tv+amount))},
				})
				if err != nil {
					t.Errorf("worker %d transfer: %v", w, err)
					return
				}
				if !resp.Succeeded {
					failed.Add(1)
					continue
				}
				succeeded.Add(1)
				touched[from].Add(1)
				touched[to].Add(1)
				acked.add(resp.Header.Revision)
			}
		})
	}
	wwg.Wait()
	done.Store(true)
	rwg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d transfers succeeded, %d lost their CAS", succeeded.Load(), failed.Load())
	if succeeded.Load() == 0 {
		t.Fatal("no transfer succeeded")
	}
	acked.wantContiguous(t, tg, start)
	resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "acct/"), RangeEnd: []byte(prefixEnd(p + "acct/"))})
	var vals [][]byte
	for i, kv := range resp.Kvs {
		vals = append(vals, kv.Value)
		if kv.Version != 1+touched[i].Load() {
			t.Fatalf("account %d: version %d, want 1 + %d transfers", i, kv.Version, touched[i].Load())
		}
	}
	if total, err := sum(vals); err != nil || total != accounts*initial {
		t.Fatalf("final total %d (%v), want %d", total, err, accounts*initial)
	}
}
