package test

// The Lease conformance suite: grants, revokes, keys attached by Put and
// Txn, keep-alives, TimeToLive, LeaseLeases and expiry, through the raw
// Lease service (pb.NewLeaseClient) and clientv3. Responses are compared
// whole where they are deterministic, headers included (ids and raft term
// from the same server's KV responses, wtHeadersOf). Remaining TTLs are
// checked against bounds computed from the time the test measured around
// the grant, never against a speed: etcd truncates remaining seconds, so a
// lease whose deadline was set between minAge and maxAge ago answers
// within [floor(ttl-maxAge), ceil(ttl-minAge)-1].
// etcd is the oracle: an expectation that fails against etcd is a wrong
// test. Both backends' shortest lease TTL is 1 s here (startMetaStore).

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const (
	// ltLongTTL is the TTL of leases that must not expire while their test
	// runs: an expiry would delete keys and take a revision behind the
	// back of a test that counts revisions.
	ltLongTTL = 600
	// ltMinTTL is the shortest TTL both test servers grant, in seconds.
	ltMinTTL = 1
	// ltExpirySlack bounds how long after its deadline an expired lease
	// may take to be revoked (etcd looks every 500 ms): generous, no
	// speed test.
	ltExpirySlack = 10 * time.Second
	// ltMaxTTL is etcd's MaxLeaseTTL, the longest TTL granted.
	ltMaxTTL = 9_000_000_000
	// ltNoSuchLease names a lease no test grants.
	ltNoSuchLease = 0x7eadbeef
)

func ltLeases(tg *Target) pb.LeaseClient { return pb.NewLeaseClient(tg.Conn) }

// ltGrant is a raw LeaseGrant that must succeed; id 0 lets the server
// choose.
func ltGrant(t testing.TB, tg *Target, id, ttl int64) *pb.LeaseGrantResponse {
	t.Helper()
	resp, err := ltLeases(tg).LeaseGrant(reqCtx(t), &pb.LeaseGrantRequest{ID: id, TTL: ttl})
	if err != nil {
		t.Fatalf("grant id %d ttl %d: %v", id, ttl, err)
	}
	return resp
}

// ltRevoke is a raw LeaseRevoke that must succeed.
func ltRevoke(t testing.TB, tg *Target, id int64) *pb.LeaseRevokeResponse {
	t.Helper()
	resp, err := ltLeases(tg).LeaseRevoke(reqCtx(t), &pb.LeaseRevokeRequest{ID: id})
	if err != nil {
		t.Fatalf("revoke %d: %v", id, err)
	}
	return resp
}

// ltTimeToLive is a raw LeaseTimeToLive that must succeed (it does for a
// lease that does not exist, with TTL -1).
func ltTimeToLive(t testing.TB, tg *Target, id int64, keys bool) *pb.LeaseTimeToLiveResponse {
	t.Helper()
	resp, err := ltLeases(tg).LeaseTimeToLive(reqCtx(t), &pb.LeaseTimeToLiveRequest{ID: id, Keys: keys})
	if err != nil {
		t.Fatalf("time to live of %d: %v", id, err)
	}
	return resp
}

// ltLeaseIDs lists the leases with a raw LeaseLeases, in the server's order.
func ltLeaseIDs(t testing.TB, tg *Target) []int64 {
	t.Helper()
	resp, err := ltLeases(tg).LeaseLeases(reqCtx(t), &pb.LeaseLeasesRequest{})
	if err != nil {
		t.Fatalf("lease leases: %v", err)
	}
	ids := make([]int64, len(resp.Leases))
	for i, l := range resp.Leases {
		ids[i] = l.ID
	}
	return ids
}

// ltPut is a raw Put with a lease that must succeed; it returns the
// revision.
func ltPut(t testing.TB, tg *Target, k, v string, lease int64) int64 {
	t.Helper()
	resp, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), Value: []byte(v), Lease: lease})
	if err != nil {
		t.Fatalf("put %q with lease %d: %v", k, lease, err)
	}
	return resp.Header.Revision
}

func ltOpPut(k, v string, lease int64) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v), Lease: lease}}}
}

// ltWantKeys checks the keys a TimeToLive answer lists against want, as
// sets: etcd lists them in the order of a Go map, so any order is right.
func ltWantKeys(t testing.TB, resp *pb.LeaseTimeToLiveResponse, want ...string) {
	t.Helper()
	got := make([]string, len(resp.Keys))
	for i, k := range resp.Keys {
		got[i] = string(k)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("lease %d lists keys %q, want %q", resp.ID, got, want)
	}
}

// ltWantLeaseOf checks which lease each key under prefix p holds; keys
// not in want must not exist.
func ltWantLeaseOf(t testing.TB, tg *Target, p string, want map[string]int64) {
	t.Helper()
	got := map[string]int64{}
	for _, kv := range tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))}).Kvs {
		got[strings.TrimPrefix(string(kv.Key), p)] = kv.Lease
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("leases of the keys under %q: got %v, want %v", p, got, want)
	}
}

// ltWantRemaining checks a TimeToLive answer for lease id, granted ttl
// seconds, whose deadline was set (or renewed) between minAge and maxAge
// ago: etcd truncates the remaining time to whole seconds.
func ltWantRemaining(t testing.TB, resp *pb.LeaseTimeToLiveResponse, id, ttl int64, minAge, maxAge time.Duration) {
	t.Helper()
	lo := int64(math.Floor(float64(ttl) - maxAge.Seconds()))
	hi := int64(math.Ceil(float64(ttl)-minAge.Seconds())) - 1
	if resp.ID != id || resp.GrantedTTL != ttl || resp.TTL < lo || resp.TTL > hi {
		t.Fatalf("time to live: got id %d ttl %d granted %d, want id %d ttl in [%d, %d] granted %d (deadline set %v to %v ago)",
			resp.ID, resp.TTL, resp.GrantedTTL, id, lo, hi, ttl, minAge, maxAge)
	}
}

// ltWaitDeletes waits for the next response on ws, bounded by the lease's
// deadline plus ltExpirySlack, and checks it is watcher id's deletes of
// keys (the watcher sees only them): one response, every delete at one
// revision, in key order, headed by that revision. It returns the revision.
func ltWaitDeletes(t *testing.T, ws *wtStream, h wtHeaders, id int64, deadline time.Time, keys ...string) int64 {
	t.Helper()
	var got *pb.WatchResponse
	select {
	case got = <-ws.resps:
	case err := <-ws.errc:
		t.Fatalf("watch stream ended: %v", err)
	case <-time.After(time.Until(deadline) + ltExpirySlack):
		t.Fatalf("keys %q still there %v after their lease's deadline", keys, ltExpirySlack)
	}
	rev := got.GetHeader().GetRevision()
	want := h.events(rev, id)
	for _, k := range slices.Sorted(slices.Values(keys)) {
		want.Events = append(want.Events, wtDel(k, rev))
	}
	if !proto.Equal(got, want) {
		t.Fatalf("deletes of the lease's keys:\n got %s\nwant %s", wtSummary(got), wtSummary(want))
	}
	return rev
}

// ltWatchPrefix opens a raw watch stream with watcher 0 on every key under
// p from the next revision on.
func ltWatchPrefix(t *testing.T, tg *Target, h wtHeaders, p string) *wtStream {
	t.Helper()
	ws := wtOpen(t, tg)
	cur := tg.currentRev(t)
	ws.create(&pb.WatchCreateRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), StartRevision: cur + 1})
	ws.want(h.created(cur, 0))
	return ws
}

// ltGrantAttached grants a lease, asking for ask seconds (ttl granted), and
// attaches keys to it in one Txn; it returns the lease, the Txn's revision
// and a time taken before the grant. A lease as short as the minimum may
// run out before the Txn on a slow machine: then, and only then, it tries
// again with a new lease.
func ltGrantAttached(t *testing.T, tg *Target, ask, ttl int64, keys []string) (id, rev int64, start time.Time) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		start = time.Now()
		id = ltGrant(t, tg, 0, ask).ID
		var ops []*pb.RequestOp
		for _, k := range keys {
			ops = append(ops, ltOpPut(k, "v", id))
		}
		resp, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: ops})
		if err == nil {
			return id, resp.Header.Revision, start
		}
		late := time.Since(start)
		if attempt < 3 && ltIsLeaseNotFound(err) && late >= time.Duration(ttl)*time.Second {
			t.Logf("lease of %ds ran out before its keys were attached, %v after the grant; again", ttl, late)
			continue
		}
		t.Fatalf("attach keys to lease %d, %v after the grant: %v", id, late, err)
	}
}

// ltIsLeaseNotFound reports whether err is etcd's "requested lease not
// found", code and message.
func ltIsLeaseNotFound(err error) bool {
	got, want := status.Convert(err), status.Convert(rpctypes.ErrGRPCLeaseNotFound)
	return got.Code() == want.Code() && got.Message() == want.Message()
}

// ltAtOnce runs call n times at once and returns the errors.
func ltAtOnce(n int, call func() error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = call()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// ltWantOneWinner checks that exactly one of errs is nil and every other
// is loser: of requests that change one lease at once, etcd applies one
// and the others find it already changed.
func ltWantOneWinner(t testing.TB, errs []error, loser error) {
	t.Helper()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		wantRPCErr(t, err, loser)
	}
	if won != 1 {
		t.Fatalf("%d of %d requests at once succeeded, want 1 (the others: %v)", won, len(errs), loser)
	}
}

// ltKeys names n keys under p that spread over the shards, listed out of
// key order so that an answer in key order is the server's doing. n must
// not be a multiple of 7.
func ltKeys(p string, n int) []string {
	keys := make([]string, n)
	for i := range n {
		keys[i] = fmt.Sprintf("%sk%02d", p, (i*7+3)%n)
	}
	return keys
}

// TestLeaseGrant checks LeaseGrant: the ID the server picks (positive, new
// each time) or the one asked for, the errors for an existing ID and a TTL
// over etcd's maximum, the minimum TTL that shorter ones are raised to, and
// the header (the current revision: a grant takes none).
func TestLeaseGrant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)

		t.Run("server-chosen ID", func(t *testing.T) {
			cur := tg.currentRev(t)
			seen := map[int64]bool{}
			for range 5 {
				resp := ltGrant(t, tg, 0, 30)
				if resp.ID <= 0 || seen[resp.ID] {
					t.Fatalf("server chose id %d (seen before: %v), want a new positive id", resp.ID, seen[resp.ID])
				}
				seen[resp.ID] = true
				if want := (&pb.LeaseGrantResponse{Header: h(cur), ID: resp.ID, TTL: 30}); !proto.Equal(resp, want) {
					t.Fatalf("grant:\n got %v\nwant %v", resp, want)
				}
			}
			if got := tg.currentRev(t); got != cur {
				t.Fatalf("grants moved the revision from %d to %d", cur, got)
			}
			// clientv3 lets the server choose too.
			cresp, err := tg.Client.Grant(reqCtx(t), 30)
			if err != nil {
				t.Fatal(err)
			}
			if cresp.ID <= 0 || seen[int64(cresp.ID)] || cresp.TTL != 30 || cresp.Error != "" {
				t.Fatalf("clientv3 grant: id %d ttl %d error %q", cresp.ID, cresp.TTL, cresp.Error)
			}
		})

		t.Run("client-chosen ID", func(t *testing.T) {
			for _, id := range []int64{1, 0x1234, math.MaxInt64, -7} {
				cur := tg.currentRev(t)
				resp := ltGrant(t, tg, id, 40)
				if want := (&pb.LeaseGrantResponse{Header: h(cur), ID: id, TTL: 40}); !proto.Equal(resp, want) {
					t.Fatalf("grant id %d:\n got %v\nwant %v", id, resp, want)
				}
				if ttl := ltTimeToLive(t, tg, id, false); ttl.ID != id || ttl.GrantedTTL != 40 {
					t.Fatalf("time to live of granted %d: %v", id, ttl)
				}
			}
		})

		t.Run("existing ID", func(t *testing.T) {
			id := ltGrant(t, tg, 0, 30).ID
			ltGrant(t, tg, 0x4321, 30)
			for _, again := range []int64{id, 0x4321} {
				_, err := ltLeases(tg).LeaseGrant(reqCtx(t), &pb.LeaseGrantRequest{ID: again, TTL: 50})
				wantRPCErr(t, err, rpctypes.ErrGRPCLeaseExist)
				// The lease is left as it was.
				if ttl := ltTimeToLive(t, tg, again, false); ttl.GrantedTTL != 30 {
					t.Fatalf("after a refused grant, lease %d has granted ttl %d, want 30", again, ttl.GrantedTTL)
				}
			}
		})

		t.Run("same ID at once", func(t *testing.T) {
			for round := range 5 {
				id := int64(0x6000 + round)
				errs := ltAtOnce(8, func() error {
					_, err := ltLeases(tg).LeaseGrant(reqCtx(t), &pb.LeaseGrantRequest{ID: id, TTL: 30})
					return err
				})
				ltWantOneWinner(t, errs, rpctypes.ErrGRPCLeaseExist)
			}
		})

		t.Run("TTL too large", func(t *testing.T) {
			const id = 0x5151
			start := time.Now()
			for _, ttl := range []int64{ltMaxTTL + 1, math.MaxInt64} {
				_, err := ltLeases(tg).LeaseGrant(reqCtx(t), &pb.LeaseGrantRequest{ID: id, TTL: ttl})
				wantRPCErr(t, err, rpctypes.ErrGRPCLeaseTTLTooLarge)
				if resp := ltTimeToLive(t, tg, id, false); resp.TTL != -1 {
					t.Fatalf("a refused grant made lease %d: %v", id, resp)
				}
			}
			_, err := tg.Client.Grant(reqCtx(t), ltMaxTTL+1)
			wantRPCErr(t, err, rpctypes.ErrGRPCLeaseTTLTooLarge)
			// The maximum itself is granted.
			if resp := ltGrant(t, tg, id, ltMaxTTL); resp.TTL != ltMaxTTL {
				t.Fatalf("grant of the maximum ttl answered ttl %d", resp.TTL)
			}
			ltWantRemaining(t, ltTimeToLive(t, tg, id, false), id, ltMaxTTL, 0, time.Since(start))
		})

		t.Run("minimum TTL", func(t *testing.T) {
			for _, tc := range []struct{ ask, want int64 }{
				{0, ltMinTTL}, {-5, ltMinTTL}, {math.MinInt64, ltMinTTL}, {1, 1}, {2, 2},
			} {
				resp := ltGrant(t, tg, 0, tc.ask)
				ttl := ltTimeToLive(t, tg, resp.ID, false)
				if resp.TTL != tc.want || ttl.GrantedTTL != tc.want {
					t.Fatalf("grant of ttl %d: answered %d, time to live says granted %d; want %d", tc.ask, resp.TTL, ttl.GrantedTTL, tc.want)
				}
			}
		})
	})
}

// TestLeaseRevoke checks LeaseRevoke: every key attached is deleted at one
// revision, which heads the answer and which a watcher sees as one
// response of deletes in key order; a lease without keys goes without a
// revision; an unknown or already revoked lease is "requested lease not
// found".
func TestLeaseRevoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)

		t.Run("keys deleted at one revision", func(t *testing.T) {
			p := keyPrefix(t)
			id := ltGrant(t, tg, 0, ltLongTTL).ID
			keys := ltKeys(p, 12)
			prev := map[string]*mvccpb.KeyValue{}
			for _, k := range keys {
				r := ltPut(t, tg, k, "v", id)
				prev[k] = &mvccpb.KeyValue{Key: []byte(k), Value: []byte("v"), CreateRevision: r, ModRevision: r, Version: 1, Lease: id}
			}
			kept := tg.put(t, p+"kept", "v")
			ws := ltWatchPrefix(t, tg, h, p)
			before := tg.currentRev(t)
			// Watcher 1 asks for prev_kv: the deleted keys as they were,
			// lease included.
			ws.create(&pb.WatchCreateRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), PrevKv: true})
			ws.want(h.created(before, 1))

			resp := ltRevoke(t, tg, id)
			rev := before + 1
			if want := (&pb.LeaseRevokeResponse{Header: h(rev)}); !proto.Equal(resp, want) {
				t.Fatalf("revoke:\n got %v\nwant %v", resp, want)
			}
			if got := tg.currentRev(t); got != rev {
				t.Fatalf("revision %d after the revoke, want %d", got, rev)
			}
			var dels, delsPrev []*mvccpb.Event
			for _, k := range slices.Sorted(slices.Values(keys)) {
				dels = append(dels, wtDel(k, rev))
				delsPrev = append(delsPrev, wtWithPrev(wtDel(k, rev), prev[k]))
			}
			ws.wantSet(h.events(rev, 0, dels...), h.events(rev, 1, delsPrev...))
			ws.quiet()
			tg.wantKV(t, p+"kept", "v", kept, kept, 1)
			ltWantLeaseOf(t, tg, p, map[string]int64{"kept": 0})
			if resp := ltTimeToLive(t, tg, id, true); resp.TTL != -1 {
				t.Fatalf("revoked lease: %v", resp)
			}
			if slices.Contains(ltLeaseIDs(t, tg), id) {
				t.Fatalf("revoked lease %d still listed", id)
			}
		})

		t.Run("without keys takes no revision", func(t *testing.T) {
			id := ltGrant(t, tg, 0, ltLongTTL).ID
			cur := tg.currentRev(t)
			if resp := ltRevoke(t, tg, id); !proto.Equal(resp, &pb.LeaseRevokeResponse{Header: h(cur)}) {
				t.Fatalf("revoke:\n got %v\nwant header at %d", resp, cur)
			}
			if got := tg.currentRev(t); got != cur {
				t.Fatalf("a revoke without keys moved the revision from %d to %d", cur, got)
			}
		})

		t.Run("unknown lease", func(t *testing.T) {
			cur := tg.currentRev(t)
			for _, id := range []int64{ltNoSuchLease, 0, -1} {
				_, err := ltLeases(tg).LeaseRevoke(reqCtx(t), &pb.LeaseRevokeRequest{ID: id})
				wantRPCErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
			}
			_, err := tg.Client.Revoke(reqCtx(t), ltNoSuchLease)
			wantRPCErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
			if got := tg.currentRev(t); got != cur {
				t.Fatalf("failed revokes moved the revision from %d to %d", cur, got)
			}
		})

		t.Run("same lease at once", func(t *testing.T) {
			p := keyPrefix(t)
			for round := range 5 {
				id := ltGrant(t, tg, 0, ltLongTTL).ID
				var ops []*pb.RequestOp
				for _, k := range ltKeys(fmt.Sprintf("%s%d/", p, round), 16) {
					ops = append(ops, ltOpPut(k, "v", id))
				}
				tg.txn(t, &pb.TxnRequest{Success: ops})
				errs := ltAtOnce(8, func() error {
					_, err := ltLeases(tg).LeaseRevoke(reqCtx(t), &pb.LeaseRevokeRequest{ID: id})
					return err
				})
				ltWantOneWinner(t, errs, rpctypes.ErrGRPCLeaseNotFound)
			}
		})

		t.Run("twice", func(t *testing.T) {
			p := keyPrefix(t)
			id := ltGrant(t, tg, 0, ltLongTTL).ID
			ltPut(t, tg, p+"k", "v", id)
			rev := ltRevoke(t, tg, id).Header.Revision
			_, err := ltLeases(tg).LeaseRevoke(reqCtx(t), &pb.LeaseRevokeRequest{ID: id})
			wantRPCErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
			if got := tg.currentRev(t); got != rev {
				t.Fatalf("second revoke moved the revision from %d to %d", rev, got)
			}
			// The ID is free again.
			ltGrant(t, tg, id, 30)
		})
	})
}

// TestLeaseAttach checks how keys come to hold a lease: a Put or a Txn's put
// attaches it, a Put with another lease or none moves the key, a delete
// detaches it, ignore_lease keeps it; TimeToLive with keys and the key's
// lease field say the same. A write naming a lease that does not exist, on
// the Txn branch that runs, fails whole and changes nothing.
func TestLeaseAttach(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		t.Run("put moves the key", func(t *testing.T) {
			p := keyPrefix(t)
			a := ltGrant(t, tg, 0, ltLongTTL).ID
			b := ltGrant(t, tg, 0, ltLongTTL).ID
			wantKeys := func(aKeys, bKeys []string) {
				t.Helper()
				ltWantKeys(t, ltTimeToLive(t, tg, a, true), aKeys...)
				ltWantKeys(t, ltTimeToLive(t, tg, b, true), bKeys...)
			}
			ltPut(t, tg, p+"k", "1", a)
			ltPut(t, tg, p+"j", "1", a)
			ltWantLeaseOf(t, tg, p, map[string]int64{"k": a, "j": a})
			wantKeys([]string{p + "j", p + "k"}, nil)

			// prev_kv shows the lease the key held.
			put, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "k"), Value: []byte("2"), Lease: b, PrevKv: true})
			if err != nil {
				t.Fatal(err)
			}
			if put.PrevKv.GetLease() != a {
				t.Fatalf("prev_kv of a put moving the key to lease %d: %s, want lease %d", b, kvSummary([]*mvccpb.KeyValue{put.PrevKv}), a)
			}
			ltWantLeaseOf(t, tg, p, map[string]int64{"k": b, "j": a})
			wantKeys([]string{p + "j"}, []string{p + "k"})

			tg.put(t, p+"k", "3")
			ltWantLeaseOf(t, tg, p, map[string]int64{"k": 0, "j": a})
			wantKeys([]string{p + "j"}, nil)

			// A key no longer attached is not deleted by its old lease.
			cur := tg.currentRev(t)
			if resp := ltRevoke(t, tg, b); resp.Header.Revision != cur {
				t.Fatalf("revoke of a lease whose key moved away: header at %d, want %d", resp.Header.Revision, cur)
			}
			ltWantLeaseOf(t, tg, p, map[string]int64{"k": 0, "j": a})
		})

		t.Run("delete detaches", func(t *testing.T) {
			p := keyPrefix(t)
			a := ltGrant(t, tg, 0, ltLongTTL).ID
			ltPut(t, tg, p+"k", "1", a)
			ltPut(t, tg, p+"j", "1", a)
			tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opDel(p+"k", "")}})
			ltWantKeys(t, ltTimeToLive(t, tg, a, true), p+"j")
			others := ltKeys(p+"r/", 6)
			for _, k := range others {
				ltPut(t, tg, k, "1", a)
			}
			ltWantKeys(t, ltTimeToLive(t, tg, a, true), append([]string{p + "j"}, others...)...)
			wtDelete(t, tg, p+"j", "")
			wtDelete(t, tg, p+"r/", prefixEnd(p+"r/"))
			ltWantKeys(t, ltTimeToLive(t, tg, a, true))
			// A new key by the same name holds no lease.
			tg.put(t, p+"k", "2")
			ltWantKeys(t, ltTimeToLive(t, tg, a, true))
			cur := tg.currentRev(t)
			if resp := ltRevoke(t, tg, a); resp.Header.Revision != cur {
				t.Fatalf("revoke of a lease whose keys were deleted: header at %d, want %d", resp.Header.Revision, cur)
			}
			ltWantLeaseOf(t, tg, p, map[string]int64{"k": 0})
		})

		t.Run("txn attaches", func(t *testing.T) {
			p := keyPrefix(t)
			a := ltGrant(t, tg, 0, ltLongTTL).ID
			b := ltGrant(t, tg, 0, ltLongTTL).ID
			keys := ltKeys(p, 8)
			var ops []*pb.RequestOp
			for _, k := range keys {
				ops = append(ops, ltOpPut(k, "v", a))
			}
			ops = append(ops, opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{ltOpPut(p+"nested", "v", b)}}))
			tg.txn(t, &pb.TxnRequest{Success: ops})
			ltWantKeys(t, ltTimeToLive(t, tg, a, true), keys...)
			ltWantKeys(t, ltTimeToLive(t, tg, b, true), p+"nested")
			// A LEASE compare sees the attachment.
			resp := tg.txn(t, &pb.TxnRequest{Compare: []*pb.Compare{{
				Key: []byte(keys[0]), Target: pb.Compare_LEASE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Lease{Lease: a},
			}}})
			if !resp.Succeeded {
				t.Fatalf("lease compare of %q with %d failed", keys[0], a)
			}
		})

		t.Run("ignore_lease keeps it", func(t *testing.T) {
			p := keyPrefix(t)
			a := ltGrant(t, tg, 0, ltLongTTL).ID
			ltPut(t, tg, p+"k", "1", a)
			if _, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "k"), Value: []byte("2"), IgnoreLease: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.Client.Put(reqCtx(t), p+"k", "3", clientv3.WithIgnoreLease()); err != nil {
				t.Fatal(err)
			}
			tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{
				{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(p + "k"), Value: []byte("4"), IgnoreLease: true}}},
			}})
			ltWantLeaseOf(t, tg, p, map[string]int64{"k": a})
			ltWantKeys(t, ltTimeToLive(t, tg, a, true), p+"k")
		})

		t.Run("lease field of a range", func(t *testing.T) {
			p := keyPrefix(t)
			a := ltGrant(t, tg, 0, ltLongTTL).ID
			ltPut(t, tg, p+"k", "v", a)
			for _, tc := range []struct {
				name string
				req  *pb.RangeRequest
				want int64
			}{
				{"whole", &pb.RangeRequest{}, a},
				// etcd leaves the lease out with the value, unless it
				// sorts by value and so reads it.
				{"keys_only", &pb.RangeRequest{KeysOnly: true}, 0},
				{"keys_only sorted by key", &pb.RangeRequest{KeysOnly: true, SortTarget: pb.RangeRequest_KEY, SortOrder: pb.RangeRequest_DESCEND}, 0},
				{"keys_only sorted by value", &pb.RangeRequest{KeysOnly: true, SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_ASCEND}, a},
			} {
				tc.req.Key = []byte(p + "k")
				if kvs := tg.rangeKV(t, tc.req).Kvs; len(kvs) != 1 || kvs[0].Lease != tc.want {
					t.Fatalf("%s: %s, want lease %d", tc.name, kvSummary(kvs), tc.want)
				}
			}
		})

		t.Run("unknown lease", func(t *testing.T) {
			p := keyPrefix(t)
			a := ltGrant(t, tg, 0, ltLongTTL).ID
			gone := ltGrant(t, tg, 0, ltLongTTL).ID
			ltRevoke(t, tg, gone)
			ltPut(t, tg, p+"k", "v", a)
			refused := []struct {
				name string
				call func() error
			}{
				{"put", func() error {
					_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "k"), Value: []byte("x"), Lease: ltNoSuchLease})
					return err
				}},
				{"put of a revoked lease", func() error {
					_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "new"), Value: []byte("x"), Lease: gone})
					return err
				}},
				{"clientv3 put", func() error {
					_, err := tg.Client.Put(reqCtx(t), p+"new", "x", clientv3.WithLease(ltNoSuchLease))
					return err
				}},
				{"txn success branch", func() error {
					_, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{
						opPut(p+"new", "x"), ltOpPut(p+"k", "x", a), ltOpPut(p+"other", "x", ltNoSuchLease),
					}})
					return err
				}},
				{"txn failure branch", func() error {
					_, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{
						Compare: []*pb.Compare{cmpVersion(p+"k", pb.Compare_EQUAL, 0)},
						Success: []*pb.RequestOp{opPut(p+"new", "x")},
						Failure: []*pb.RequestOp{opPut(p+"new", "x"), ltOpPut(p+"k", "x", ltNoSuchLease)},
					})
					return err
				}},
				{"nested txn", func() error {
					_, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{
						opPut(p+"new", "x"),
						opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{ltOpPut(p+"other", "x", gone)}}),
					}})
					return err
				}},
			}
			cur := tg.currentRev(t)
			for _, tc := range refused {
				t.Run(tc.name, func(t *testing.T) {
					wantRPCErr(t, tc.call(), rpctypes.ErrGRPCLeaseNotFound)
					if got := tg.currentRev(t); got != cur {
						t.Fatalf("refused write moved the revision from %d to %d", cur, got)
					}
					tg.wantKV(t, p+"k", "v", cur, cur, 1)
					ltWantLeaseOf(t, tg, p, map[string]int64{"k": a})
				})
			}

			// A put naming a missing lease on the branch that does not run
			// is not looked at.
			resp := tg.txn(t, &pb.TxnRequest{
				Compare: []*pb.Compare{cmpVersion(p+"k", pb.Compare_EQUAL, 1)},
				Success: []*pb.RequestOp{opPut(p+"new", "x")},
				Failure: []*pb.RequestOp{ltOpPut(p+"k", "x", ltNoSuchLease)},
			})
			if !resp.Succeeded || resp.Header.Revision != cur+1 {
				t.Fatalf("txn with a missing lease on the other branch: succeeded %v at %d, want true at %d", resp.Succeeded, resp.Header.Revision, cur+1)
			}
			ltWantLeaseOf(t, tg, p, map[string]int64{"k": a, "new": 0})
		})
	})
}

// ltKeepAliveStream is a raw LeaseKeepAlive stream. A goroutine reads its
// answers into a channel so that every wait for one is bounded.
type ltKeepAliveStream struct {
	t     *testing.T
	s     pb.Lease_LeaseKeepAliveClient
	resps chan *pb.LeaseKeepAliveResponse
	errc  chan error
}

// ltOpenKeepAlive opens a keep-alive stream on tg.Conn for the life of t;
// buffer is how many answers may wait unread.
func ltOpenKeepAlive(t *testing.T, tg *Target, buffer int) *ltKeepAliveStream {
	t.Helper()
	ctx := t.Context()
	s, err := ltLeases(tg).LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatalf("open keep-alive stream: %v", err)
	}
	ka := &ltKeepAliveStream{t: t, s: s, resps: make(chan *pb.LeaseKeepAliveResponse, buffer), errc: make(chan error, 1)}
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				ka.errc <- err
				return
			}
			select {
			case ka.resps <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ka
}

func (ka *ltKeepAliveStream) send(id int64) {
	ka.t.Helper()
	if err := ka.s.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
		ka.t.Fatalf("send keep-alive of %d: %v", id, err)
	}
}

// recv returns the next answer; it fails the test if none comes in
// wtRecvTimeout or the stream ends.
func (ka *ltKeepAliveStream) recv() *pb.LeaseKeepAliveResponse {
	ka.t.Helper()
	return wtRecvFrom(ka.t, ka.resps, ka.errc, "keep-alive answer")
}

// TestLeaseKeepAlive checks the bidirectional keep-alive stream: one answer
// per request, in order, with the lease's granted TTL (0 for a lease that
// does not exist) and the current revision; a renewal restarts the
// countdown; leases kept alive outlive their TTL with their keys; a
// thousand leases renew over one stream.
func TestLeaseKeepAlive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)

		t.Run("many leases on one stream", func(t *testing.T) {
			ids := []int64{ltGrant(t, tg, 0, 50).ID, ltGrant(t, tg, 0, 70).ID, ltGrant(t, tg, 0x7171, 90).ID}
			ttls := map[int64]int64{ids[0]: 50, ids[1]: 70, ids[2]: 90}
			ka := ltOpenKeepAlive(t, tg, 16)
			cur := tg.currentRev(t)
			asks := []int64{ids[1], ltNoSuchLease, ids[0], ids[2], ids[1], 0, -3}
			for _, id := range asks {
				ka.send(id)
			}
			for _, id := range asks {
				want := &pb.LeaseKeepAliveResponse{Header: h(cur), ID: id, TTL: ttls[id]}
				if got := ka.recv(); !proto.Equal(got, want) {
					t.Fatalf("keep-alive:\n got %v\nwant %v", got, want)
				}
			}
			// The stream goes on after answering.
			ka.send(ids[2])
			if got := ka.recv(); got.ID != ids[2] || got.TTL != 90 {
				t.Fatalf("keep-alive after the first round: %v", got)
			}
			// clientv3's single keep-alive: the TTL, or an error for a
			// lease that does not exist.
			once, err := tg.Client.KeepAliveOnce(reqCtx(t), clientv3.LeaseID(ids[0]))
			if err != nil || once.ID != clientv3.LeaseID(ids[0]) || once.TTL != 50 {
				t.Fatalf("clientv3 keep-alive once: %v, %v", once, err)
			}
			_, err = tg.Client.KeepAliveOnce(reqCtx(t), ltNoSuchLease)
			if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
				t.Fatalf("clientv3 keep-alive once of a missing lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
			}
		})

		t.Run("renewal restarts the countdown", func(t *testing.T) {
			const ttl = 30
			start := time.Now()
			id := ltGrant(t, tg, 0, ttl).ID
			const wait = 2 * time.Second
			time.Sleep(wait)
			ltWantRemaining(t, ltTimeToLive(t, tg, id, false), id, ttl, wait, time.Since(start))
			ka := ltOpenKeepAlive(t, tg, 1)
			renewStart := time.Now()
			ka.send(id)
			if got := ka.recv(); got.TTL != ttl {
				t.Fatalf("keep-alive answered ttl %d, want %d", got.TTL, ttl)
			}
			ltWantRemaining(t, ltTimeToLive(t, tg, id, false), id, ttl, 0, time.Since(renewStart))
		})

		t.Run("kept past its TTL", func(t *testing.T) {
			p := keyPrefix(t)
			const ttl = 2
			keys := ltKeys(p, 4)
			id, _, _ := ltGrantAttached(t, tg, ttl, ttl, keys)
			ka := ltOpenKeepAlive(t, tg, 1)
			// Renew every half second for twice the TTL.
			for end := time.Now().Add(2 * ttl * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
				ka.send(id)
				if got := ka.recv(); got.ID != id || got.TTL != ttl {
					t.Fatalf("keep-alive of a live lease: %v", got)
				}
			}
			ltWantKeys(t, ltTimeToLive(t, tg, id, true), keys...)
			if got := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))}); len(got.Kvs) != len(keys) {
				t.Fatalf("keys of a lease kept alive: %s", kvSummary(got.Kvs))
			}
			// clientv3's KeepAlive does the same on its own.
			ch, err := tg.Client.KeepAlive(t.Context(), clientv3.LeaseID(id))
			if err != nil {
				t.Fatal(err)
			}
			for end := time.Now().Add(2 * ttl * time.Second); time.Now().Before(end); {
				select {
				case r, ok := <-ch:
					if !ok || r.TTL != ttl {
						t.Fatalf("clientv3 keep-alive: %v (open %v)", r, ok)
					}
				case <-time.After(wtRecvTimeout):
					t.Fatalf("no clientv3 keep-alive answer in %v", wtRecvTimeout)
				}
			}
			ltWantKeys(t, ltTimeToLive(t, tg, id, true), keys...)
			ltRevoke(t, tg, id)
		})

		t.Run("a thousand leases", func(t *testing.T) {
			const n, ttl = 1000, 60
			ids := make([]int64, n)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			const granters = 10
			for g := range granters {
				wg.Go(func() {
					for i := g; i < n; i += granters {
						resp, err := ltLeases(tg).LeaseGrant(reqCtx(t), &pb.LeaseGrantRequest{TTL: ttl})
						if err != nil {
							errs <- err
							return
						}
						ids[i] = resp.ID
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("grant: %v", err)
			}
			ka := ltOpenKeepAlive(t, tg, n)
			sendErr := make(chan error, 1)
			go func() {
				for _, id := range ids {
					if err := ka.s.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
						sendErr <- err
						return
					}
				}
				sendErr <- nil
			}()
			for i, id := range ids {
				if got := ka.recv(); got.ID != id || got.TTL != ttl {
					t.Fatalf("answer %d: id %d ttl %d, want id %d ttl %d", i, got.ID, got.TTL, id, ttl)
				}
			}
			if err := <-sendErr; err != nil {
				t.Fatalf("send keep-alive: %v", err)
			}
			if got := ltLeaseIDs(t, tg); len(got) < n {
				t.Fatalf("%d leases listed, want at least %d", len(got), n)
			}
		})
	})
}

// TestLeaseTimeToLive checks LeaseTimeToLive: the remaining TTL counts down
// (truncated to whole seconds) while the granted TTL stays; keys lists the
// attached keys; a lease that does not exist answers TTL -1 with its ID and
// the current revision, not an error.
func TestLeaseTimeToLive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)

		t.Run("counts down", func(t *testing.T) {
			const ttl = 10
			start := time.Now()
			id := ltGrant(t, tg, 0, ttl).ID
			granted := time.Now()
			first := ltTimeToLive(t, tg, id, false)
			ltWantRemaining(t, first, id, ttl, 0, time.Since(start))
			time.Sleep(2 * time.Second)
			minAge := time.Since(granted)
			second := ltTimeToLive(t, tg, id, false)
			ltWantRemaining(t, second, id, ttl, minAge, time.Since(start))
			if second.TTL >= first.TTL {
				t.Fatalf("ttl went from %d to %d in 2s", first.TTL, second.TTL)
			}
			cresp, err := tg.Client.TimeToLive(reqCtx(t), clientv3.LeaseID(id))
			if err != nil || cresp.ID != clientv3.LeaseID(id) || cresp.GrantedTTL != ttl || cresp.TTL > second.TTL || len(cresp.Keys) != 0 {
				t.Fatalf("clientv3 time to live: %+v, %v", cresp, err)
			}
		})

		t.Run("keys", func(t *testing.T) {
			p := keyPrefix(t)
			id := ltGrant(t, tg, 0, ltLongTTL).ID
			cur := tg.currentRev(t)
			resp := ltTimeToLive(t, tg, id, true)
			if resp.Keys != nil || !proto.Equal(resp.Header, h(cur)) {
				t.Fatalf("time to live of a lease without keys: %v", resp)
			}
			keys := ltKeys(p, 20)
			for _, k := range keys {
				ltPut(t, tg, k, "v", id)
			}
			ltWantKeys(t, ltTimeToLive(t, tg, id, true), keys...)
			// Without keys: true, none are listed.
			if resp := ltTimeToLive(t, tg, id, false); resp.Keys != nil {
				t.Fatalf("keys listed unasked: %q", resp.Keys)
			}
			cresp, err := tg.Client.TimeToLive(reqCtx(t), clientv3.LeaseID(id), clientv3.WithAttachedKeys())
			if err != nil {
				t.Fatal(err)
			}
			ltWantKeys(t, &pb.LeaseTimeToLiveResponse{ID: id, Keys: cresp.Keys}, keys...)
		})

		t.Run("unknown lease", func(t *testing.T) {
			cur := tg.currentRev(t)
			for _, id := range []int64{ltNoSuchLease, 0, -1} {
				for _, keys := range []bool{false, true} {
					want := &pb.LeaseTimeToLiveResponse{Header: h(cur), ID: id, TTL: -1}
					if got := ltTimeToLive(t, tg, id, keys); !proto.Equal(got, want) {
						t.Fatalf("time to live of missing %d (keys %v):\n got %v\nwant %v", id, keys, got, want)
					}
				}
			}
			cresp, err := tg.Client.TimeToLive(reqCtx(t), ltNoSuchLease, clientv3.WithAttachedKeys())
			if err != nil || cresp.TTL != -1 || cresp.GrantedTTL != 0 || len(cresp.Keys) != 0 {
				t.Fatalf("clientv3 time to live of a missing lease: %+v, %v", cresp, err)
			}
		})
	})
}

// TestLeaseLeases checks LeaseLeases: it lists exactly the leases that
// exist, soonest deadline first as etcd does, revoked ones gone, headed by
// the current revision.
func TestLeaseLeases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)
		resp, err := ltLeases(tg).LeaseLeases(reqCtx(t), &pb.LeaseLeasesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if want := (&pb.LeaseLeasesResponse{Header: h(tg.currentRev(t))}); !proto.Equal(resp, want) {
			t.Fatalf("leases of a fresh server:\n got %v\nwant %v", resp, want)
		}
		// Granted out of deadline order, so that a list in deadline order
		// is the server's doing.
		ttls := []int64{300, 100, 500, 200, 400}
		var ids []int64
		for _, ttl := range ttls {
			ids = append(ids, ltGrant(t, tg, 0, ttl).ID)
		}
		// etcd lists them soonest deadline first.
		byDeadline := []int64{ids[1], ids[3], ids[0], ids[4], ids[2]}
		if got := ltLeaseIDs(t, tg); !slices.Equal(got, byDeadline) {
			t.Fatalf("leases listed %v, want %v (soonest deadline first)", got, byDeadline)
		}
		ltRevoke(t, tg, ids[3])
		byDeadline = slices.DeleteFunc(byDeadline, func(id int64) bool { return id == ids[3] })
		cresp, err := tg.Client.Leases(reqCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, l := range cresp.Leases {
			got = append(got, int64(l.ID))
		}
		if !slices.Equal(got, byDeadline) {
			t.Fatalf("clientv3 leases after a revoke: %v, want %v", got, byDeadline)
		}
	})
}

// TestLeaseExpiry lets leases run out: every attached key is deleted at one
// revision (one watch response, deletes in key order), no sooner than the
// TTL and within ltExpirySlack of it; then the lease is neither listed nor
// found, and writes naming it fail. A TTL below the minimum expires at the
// minimum.
func TestLeaseExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		h := wtHeadersOf(t, tg)
		for _, tc := range []struct {
			name     string
			ask, ttl int64
		}{
			{"raised to the minimum", 0, ltMinTTL},
			{"ttl 2", 2, 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := keyPrefix(t)
				keys := ltKeys(p, 6)
				ws := ltWatchPrefix(t, tg, h, p)
				id, put, start := ltGrantAttached(t, tg, tc.ask, tc.ttl, keys)
				deadline := start.Add(time.Duration(tc.ttl) * time.Second)
				var puts []*mvccpb.Event
				for _, k := range keys {
					ev := wtPut(k, "v", put, put, 1)
					ev.Kv.Lease = id
					puts = append(puts, ev)
				}
				ws.want(h.events(put, 0, puts...))

				rev := ltWaitDeletes(t, ws, h, 0, deadline, keys...)
				if gone := time.Since(start); gone < time.Duration(tc.ttl)*time.Second {
					t.Fatalf("keys deleted %v after the grant, before the %ds TTL", gone, tc.ttl)
				}
				if rev != put+1 {
					t.Fatalf("keys deleted at %d, want the next revision %d", rev, put+1)
				}
				ws.quiet()
				if resp := ltTimeToLive(t, tg, id, true); resp.TTL != -1 {
					t.Fatalf("expired lease: %v", resp)
				}
				if slices.Contains(ltLeaseIDs(t, tg), id) {
					t.Fatalf("expired lease %d still listed", id)
				}
				_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(keys[0]), Lease: id})
				wantRPCErr(t, err, rpctypes.ErrGRPCLeaseNotFound)
				ka := ltOpenKeepAlive(t, tg, 1)
				ka.send(id)
				if got := ka.recv(); got.TTL != 0 {
					t.Fatalf("keep-alive of an expired lease: %v", got)
				}
			})
		}
	})
}

// TestLeaseExpiryMany lets many leases with keys run out at about the
// same time: each is revoked on its own, its keys deleted together at a
// revision of their own.
func TestLeaseExpiryMany(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		const n, ttl = 40, 2
		p := keyPrefix(t)
		h := wtHeadersOf(t, tg)
		ws := ltWatchPrefix(t, tg, h, p)
		leaseOf := map[string]int64{}
		var last time.Time
		for i := range n {
			keys := ltKeys(fmt.Sprintf("%s%02d/", p, i), 3)
			id, put, start := ltGrantAttached(t, tg, ttl, ttl, keys)
			for _, k := range keys {
				leaseOf[k] = id
			}
			if got := ws.recv(); len(got.Events) != len(keys) || got.Header.Revision != put {
				t.Fatalf("puts of lease %d at %d: %s", id, put, wtSummary(got))
			}
			last = start
		}
		// Collect the deletes; the lease's deadline bounds the wait.
		revOf := map[int64]int64{} // lease → revision of its deletes
		leaseAt := map[int64]int64{}
		for deleted := 0; deleted < len(leaseOf); {
			var r *pb.WatchResponse
			select {
			case r = <-ws.resps:
			case err := <-ws.errc:
				t.Fatalf("watch stream ended: %v", err)
			case <-time.After(time.Until(last.Add(ttl*time.Second)) + ltExpirySlack):
				t.Fatalf("%d of %d keys deleted %v after the last lease's deadline", deleted, len(leaseOf), ltExpirySlack)
			}
			for _, ev := range r.Events {
				id, rev := leaseOf[string(ev.Kv.Key)], ev.Kv.ModRevision
				if ev.Type != mvccpb.DELETE {
					t.Fatalf("unexpected event %s", wtSummary(r))
				}
				if prev, ok := revOf[id]; ok && prev != rev {
					t.Fatalf("keys of lease %d deleted at %d and %d", id, prev, rev)
				}
				if other, ok := leaseAt[rev]; ok && other != id {
					t.Fatalf("keys of leases %d and %d deleted at one revision %d", id, other, rev)
				}
				revOf[id], leaseAt[rev] = rev, id
				deleted++
			}
		}
		ws.quiet()
		if len(revOf) != n {
			t.Fatalf("keys of %d leases deleted, want %d", len(revOf), n)
		}
		for id := range revOf {
			if slices.Contains(ltLeaseIDs(t, tg), id) {
				t.Fatalf("expired lease %d still listed", id)
			}
		}
	})
}

// The race of Puts with a lease against its revoke.
const (
	ltRaceRounds  = 10
	ltRaceWriters = 8
	// ltRaceMinPuts is how many writes must have succeeded before the
	// revoke is sent, so that it always has keys to delete.
	ltRaceMinPuts = 40
)

// ltRaceWrite is one acknowledged write of a racing writer: the keys it
// attached and its revision.
type ltRaceWrite struct {
	keys []string
	rev  int64
}

// TestLeaseRevokeRacingPuts races writers attaching keys to lease L (Puts,
// and Txns putting two keys on different shards) against the revoke of L.
// Every write either succeeded before the revoke (at a lower revision,
// its keys then deleted at the revoke's revision) or failed with
// "requested lease not found"; afterwards no key holds L.
func TestLeaseRevokeRacingPuts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		for round := range ltRaceRounds {
			t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) { ltRaceRound(t, tg) })
		}
	})
}

// ltRaceWriteOnce attaches k to lease id with a Put, or k/a and k/b with a
// Txn if txn.
func ltRaceWriteOnce(t *testing.T, tg *Target, id int64, k string, txn bool) (ltRaceWrite, error) {
	if !txn {
		resp, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: id})
		if err != nil {
			return ltRaceWrite{}, err
		}
		return ltRaceWrite{keys: []string{k}, rev: resp.Header.Revision}, nil
	}
	keys := []string{k + "/a", k + "/b"}
	resp, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{ltOpPut(keys[0], "v", id), ltOpPut(keys[1], "v", id)}})
	if err != nil {
		return ltRaceWrite{}, err
	}
	return ltRaceWrite{keys: keys, rev: resp.Header.Revision}, nil
}

// ltRaceRound is one race of writers against a revoke, on a lease of its own.
func ltRaceRound(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	id := ltGrant(t, tg, 0, ltLongTTL).ID
	var acked atomic.Int64
	writes := make([][]ltRaceWrite, ltRaceWriters)
	errs := make([]error, ltRaceWriters)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range ltRaceWriters {
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					errs[w] = errors.New("still writing after the revoke was answered")
					return
				default:
				}
				wr, err := ltRaceWriteOnce(t, tg, id, fmt.Sprintf("%sw%d/%d", p, w, j), w%2 == 1)
				if err != nil {
					if !ltIsLeaseNotFound(err) {
						errs[w] = err
					}
					return
				}
				writes[w] = append(writes[w], wr)
				acked.Add(1)
			}
		})
	}
	// Once the writers have attached keys, revoke while they go on.
	for wait := time.Now().Add(opTimeout); acked.Load() < ltRaceMinPuts; time.Sleep(time.Millisecond) {
		if time.Now().After(wait) {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d writes acknowledged in %v", acked.Load(), opTimeout)
		}
	}
	revoke := ltRevoke(t, tg, id).Header.Revision
	// Every writer's next write fails now; one still writing after an
	// answer must be told to stop.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(opTimeout):
		close(stop)
		<-done
	}
	for w, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", w, err)
		}
	}

	var all []string
	for _, ws := range writes {
		for _, wr := range ws {
			if wr.rev >= revoke {
				t.Errorf("write of %q acknowledged at %d, not before the revoke at %d", wr.keys, wr.rev, revoke)
			}
			all = append(all, wr.keys...)
		}
	}
	slices.Sort(all)
	// Just before the revoke every acknowledged key held the lease; at the
	// revoke they are all gone, and no key anywhere holds it.
	beforeKVs := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), Revision: revoke - 1}).Kvs
	if got := keysOf(beforeKVs); !slices.Equal(got, all) {
		t.Errorf("keys before the revoke at %d: got %d, want the %d acknowledged", revoke, len(got), len(all))
	}
	for _, kv := range beforeKVs {
		if kv.Lease != id {
			t.Errorf("key %q held lease %d before the revoke, want %d", kv.Key, kv.Lease, id)
		}
	}
	if left := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), Revision: revoke}).Kvs; len(left) != 0 {
		t.Errorf("keys left at the revoke's revision %d: %s", revoke, kvSummary(left))
	}
	for _, kv := range tg.rangeKV(t, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}).Kvs {
		if kv.Lease == id {
			t.Errorf("key %q still holds revoked lease %d", kv.Key, id)
		}
	}
	if resp := ltTimeToLive(t, tg, id, true); resp.TTL != -1 {
		t.Errorf("revoked lease: %v", resp)
	}
	t.Logf("%d writes acknowledged before the revoke", len(all))
}

// TestLeaseClientv3 goes through a lease's life with clientv3 alone, the
// way applications use it.
func TestLeaseClientv3(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		cli := tg.Client
		g, err := cli.Grant(reqCtx(t), 60)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(reqCtx(t), p+"a", "1", clientv3.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Txn(reqCtx(t)).Then(clientv3.OpPut(p+"b", "2", clientv3.WithLease(g.ID))).Commit(); err != nil {
			t.Fatal(err)
		}
		get, err := cli.Get(reqCtx(t), p, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range get.Kvs {
			if kv.Lease != int64(g.ID) {
				t.Fatalf("key %q holds lease %d, want %d", kv.Key, kv.Lease, g.ID)
			}
		}
		ttl, err := cli.TimeToLive(reqCtx(t), g.ID, clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatal(err)
		}
		ltWantKeys(t, &pb.LeaseTimeToLiveResponse{ID: int64(g.ID), Keys: ttl.Keys}, p+"a", p+"b")
		if _, err := cli.KeepAliveOnce(reqCtx(t), g.ID); err != nil {
			t.Fatal(err)
		}
		rev, err := cli.Revoke(reqCtx(t), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		get, err = cli.Get(reqCtx(t), p, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(get.Kvs) != 0 || get.Header.Revision != rev.Header.Revision {
			t.Fatalf("after the revoke at %d: %s at %d", rev.Header.Revision, kvSummary(get.Kvs), get.Header.Revision)
		}
	})
}
