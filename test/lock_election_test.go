package test

// Locks, elections and software transactions: clientv3's concurrency
// recipes (Mutex, Election, STM) and etcd's v3lock and v3election gRPC
// services, which run the same recipes inside the server. The recipes are
// built from Txn compares on create and mod revisions, leases kept alive by
// sessions, and watches on the predecessor's key, so these tests hold the
// server to exactly those: the order of create revisions decides who holds
// a lock or leads an election, a dead session's lease must end and delete
// its keys, and a watch must report that delete.
//
// Every wait is bounded by elWait, and a test's whole run by elCtx. The few
// "still waiting" checks (elQuiet) watch for a short while that something
// does not happen; they cannot fail on a slow server, only on a wrong one.

import (
	"context"
	"errors"
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
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// elSessionTTL is the TTL of the sessions that stay alive for the
	// whole test; their keep-alives run every TTL/3.
	elSessionTTL = 5
	// elTimeout bounds a wait for something that must happen, such as the
	// next waiter taking a lock; it covers a lease's expiry (TTL 1 s, which
	// etcd checks every 500 ms) many times over.
	elTimeout = 30 * time.Second
	// elQuietFor is how long a check that something does not happen
	// watches for it.
	elQuietFor = 500 * time.Millisecond
)

// elCtx bounds one whole test against one backend.
func elCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// elSession starts a session with its own lease of ttl seconds on cli. The
// cleanup closes it, which revokes the lease; that fails harmlessly if a
// test already revoked it or closed cli.
func elSession(t *testing.T, cli *clientv3.Client, ttl int) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		t.Fatalf("new session (TTL %d s): %v", ttl, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// elGo runs fn in a goroutine and returns the channel its error arrives on.
func elGo(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

// elWait waits for the result of elGo, which must come within elTimeout
// and be nil.
func elWait(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(elTimeout):
		t.Fatalf("%s: nothing after %v", what, elTimeout)
	}
}

// elQuiet requires that nothing arrives on ch for elQuietFor.
func elQuiet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s, but got %v", what, v)
	case <-time.After(elQuietFor):
	}
}

// elWaitKeys waits until exactly n keys exist under prefix and returns
// them in create order: the queue of a lock or an election. It is how a
// test knows that a waiter it started has queued before it goes on.
func elWaitKeys(t *testing.T, tg *Target, prefix string, n int) []*mvccpb.KeyValue {
	t.Helper()
	deadline := time.Now().Add(elTimeout)
	for {
		resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(prefix), RangeEnd: []byte(prefixEnd(prefix)),
			SortTarget: pb.RangeRequest_CREATE, SortOrder: pb.RangeRequest_ASCEND})
		if len(resp.Kvs) == n {
			return resp.Kvs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys under %q after %v, want %d: %s", len(resp.Kvs), prefix, elTimeout, n, kvSummary(resp.Kvs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// elOwner is the key that holds the lock or leads the election on prefix:
// the one with the lowest create revision, as the recipes decide.
func elOwner(t *testing.T, ctx context.Context, cli *clientv3.Client, prefix string) *mvccpb.KeyValue {
	t.Helper()
	resp, err := cli.Get(ctx, prefix, clientv3.WithFirstCreate()...)
	if err != nil {
		t.Fatalf("get the owner of %q: %v", prefix, err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("%q has %d owners: %s", prefix, len(resp.Kvs), kvSummary(resp.Kvs))
	}
	return resp.Kvs[0]
}

// elLeaseKey is the key a recipe makes for lease under name: name, "/",
// the lease ID in lower-case hex without padding.
func elLeaseKey(name string, lease int64) string {
	return fmt.Sprintf("%s/%x", name, lease)
}

// TestLockMutualExclusion races many sessions for one concurrency.Mutex,
// many times each. Inside the critical section a counter must show one
// holder, and the server must agree that the holder's key is the oldest.
// Waiters queue by create revision, so the holders' keys, in the order
// they held the lock, must have increasing create revisions: every waiter
// gets the lock in its turn, and all of them get it.
func TestLockMutualExclusion(t *testing.T) {
	const clients, rounds = 20, 5
	forEachBackend(t, func(t *testing.T, tg *Target) {
		ctx := elCtx(t)
		name := keyPrefix(t) + "mutex"
		var (
			holders atomic.Int32
			mu      sync.Mutex
			order   []int64 // create revisions of the holders' keys, in holding order
			wg      sync.WaitGroup
		)
		for i := range clients {
			s := elSession(t, tg.Client, elSessionTTL)
			wg.Go(func() {
				m := concurrency.NewMutex(s, name)
				for r := range rounds {
					if err := m.Lock(ctx); err != nil {
						t.Errorf("client %d round %d: lock: %v", i, r, err)
						return
					}
					if n := holders.Add(1); n != 1 {
						t.Errorf("client %d round %d: %d holders at once", i, r, n)
					}
					resp, err := tg.Client.Get(ctx, name+"/", clientv3.WithFirstCreate()...)
					switch {
					case err != nil:
						t.Errorf("client %d round %d: get owner: %v", i, r, err)
					case len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != m.Key() || resp.Kvs[0].Lease != int64(s.Lease()):
						t.Errorf("client %d round %d holds the lock with key %q (lease %x), but the oldest key is %s",
							i, r, m.Key(), s.Lease(), kvSummary(resp.Kvs))
					default:
						mu.Lock()
						order = append(order, resp.Kvs[0].CreateRevision)
						mu.Unlock()
					}
					holders.Add(-1)
					if err := m.Unlock(ctx); err != nil {
						t.Errorf("client %d round %d: unlock: %v", i, r, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if len(order) != clients*rounds {
			t.Fatalf("%d acquisitions, want %d", len(order), clients*rounds)
		}
		for i := 1; i < len(order); i++ {
			if order[i] <= order[i-1] {
				t.Fatalf("acquisition %d holds a key created at %d, after one created at %d: not in queue order", i, order[i], order[i-1])
			}
		}
		elWaitKeys(t, tg, name+"/", 0)
	})
}

// TestLockSessionDeath: a lock whose holder's session dies passes to the
// next waiter, whether the holder's lease is revoked or its keep-alives
// stop and it expires. While the keep-alives run, a lease of 1 s must
// outlive its TTL and keep the lock.
func TestLockSessionDeath(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		t.Run("lease revoked", func(t *testing.T) {
			holder := elSession(t, tg.Client, elSessionTTL)
			elLockHandover(t, tg, holder, 0, func() {
				if _, err := tg.Client.Revoke(reqCtx(t), holder.Lease()); err != nil {
					t.Fatalf("revoke the holder's lease: %v", err)
				}
				// The session sees its lease end at its next keep-alive.
				select {
				case <-holder.Done():
				case <-time.After(elTimeout):
					t.Fatalf("the holder's session not done %v after its lease was revoked", elTimeout)
				}
			})
		})
		t.Run("keep-alive stopped", func(t *testing.T) {
			cli := newClient(t, tg.Endpoint)
			holder := elSession(t, cli, 1)
			// Closing the client stops the keep-alives without a revoke.
			elLockHandover(t, tg, holder, 3*time.Second, func() { _ = cli.Close() })
		})
	})
}

// elLockHandover locks a mutex with holder, queues a waiter with a session
// of its own, and checks that the waiter does not get the lock for hold
// (at least elQuietFor) while the holder lives; then it runs kill and
// requires that the waiter gets the lock, that the holder's key is gone
// and that its lease no longer exists.
func elLockHandover(t *testing.T, tg *Target, holder *concurrency.Session, hold time.Duration, kill func()) {
	t.Helper()
	ctx := elCtx(t)
	name := keyPrefix(t) + "mutex"
	hm := concurrency.NewMutex(holder, name)
	if err := hm.Lock(ctx); err != nil {
		t.Fatalf("holder: lock: %v", err)
	}
	waiter := elSession(t, tg.Client, elSessionTTL)
	wm := concurrency.NewMutex(waiter, name)
	locked := elGo(func() error { return wm.Lock(ctx) })
	elWaitKeys(t, tg, name+"/", 2)
	elQuiet(t, locked, "the waiter must wait while the holder lives")
	time.Sleep(max(0, hold-elQuietFor))
	if owner := elOwner(t, ctx, tg.Client, name+"/"); string(owner.Key) != hm.Key() {
		t.Fatalf("after %v the lock is held by %s, want the holder's %q", max(hold, elQuietFor), kvSummary([]*mvccpb.KeyValue{owner}), hm.Key())
	}
	elQuiet(t, locked, "the waiter must wait while the holder lives")

	kill()
	elWait(t, locked, "the waiter's lock after the holder died")
	if owner := elOwner(t, ctx, tg.Client, name+"/"); string(owner.Key) != wm.Key() || owner.Lease != int64(waiter.Lease()) {
		t.Fatalf("the waiter got the lock, but the owner is %s, want its key %q", kvSummary([]*mvccpb.KeyValue{owner}), wm.Key())
	}
	elWaitKeys(t, tg, name+"/", 1)
	ttl, err := tg.Client.TimeToLive(ctx, holder.Lease())
	if err != nil || ttl.TTL != -1 {
		t.Fatalf("the dead holder's lease: TimeToLive %+v, %v; want TTL -1 (gone)", ttl, err)
	}
	if err := wm.Unlock(ctx); err != nil {
		t.Fatalf("waiter: unlock: %v", err)
	}
}

// elObserved is one value an election observer saw.
type elObserved struct {
	key, value string
}

// elObserve requires that the next thing o delivers is the leader key and
// value want, with a header no older than the kv.
func elObserve(t *testing.T, o <-chan *clientv3.GetResponse, want elObserved) {
	t.Helper()
	select {
	case r, ok := <-o:
		if !ok {
			t.Fatalf("observer closed, waiting for %+v", want)
		}
		if len(r.Kvs) != 1 {
			t.Fatalf("observer delivered %d kvs, want 1: %s", len(r.Kvs), kvSummary(r.Kvs))
		}
		kv := r.Kvs[0]
		if got := (elObserved{string(kv.Key), string(kv.Value)}); got != want {
			t.Fatalf("observer delivered %+v, want %+v", got, want)
		}
		if r.Header == nil || r.Header.Revision < kv.ModRevision {
			t.Fatalf("observer delivered %s with header %v, older than the kv", kvSummary(r.Kvs), r.Header)
		}
	case <-time.After(elTimeout):
		t.Fatalf("observer: nothing after %v, waiting for %+v", elTimeout, want)
	}
}

// elLeader requires that the election on name reports want as its leader.
func elLeader(t *testing.T, ctx context.Context, e *concurrency.Election, want elObserved) {
	t.Helper()
	resp, err := e.Leader(ctx)
	if err != nil {
		t.Fatalf("leader: %v, want %+v", err, want)
	}
	if got := (elObserved{string(resp.Kvs[0].Key), string(resp.Kvs[0].Value)}); got != want {
		t.Fatalf("leader is %+v, want %+v", got, want)
	}
}

// TestElection runs concurrency.Election with three candidates and an
// observer. The first to campaign leads; the others wait in the order they
// campaigned. Only the leader's Campaign returns; Leader reports it;
// Proclaim changes its value; Resign, or the end of the leader's session,
// hands over to the next candidate only; the observer sees every leader
// and every value, in order. Each change is observed before the next is
// made: Observe promises the latest value, not every one in between.
func TestElection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		ctx := elCtx(t)
		name := keyPrefix(t) + "election"
		watcher := concurrency.NewElection(elSession(t, tg.Client, elSessionTTL), name)
		obsCtx, stopObs := context.WithCancel(ctx)
		defer stopObs()
		obs := make(chan *clientv3.GetResponse)
		go func() {
			for r := range watcher.Observe(obsCtx) {
				select {
				case obs <- r:
				case <-obsCtx.Done():
				}
			}
		}()

		var sessions []*concurrency.Session
		var cands []*concurrency.Election
		for range 3 {
			s := elSession(t, tg.Client, elSessionTTL)
			sessions = append(sessions, s)
			cands = append(cands, concurrency.NewElection(s, name))
		}
		key := func(i int) string { return elLeaseKey(name, int64(sessions[i].Lease())) }

		if err := cands[0].Campaign(ctx, "c0"); err != nil {
			t.Fatalf("candidate 0, alone, campaigns: %v", err)
		}
		if cands[0].Key() != key(0) {
			t.Fatalf("candidate 0 leads with key %q, want %q", cands[0].Key(), key(0))
		}
		elObserve(t, obs, elObserved{key(0), "c0"})
		elLeader(t, ctx, watcher, elObserved{key(0), "c0"})

		won := make([]<-chan error, 3)
		for i := 1; i <= 2; i++ {
			won[i] = elGo(func() error { return cands[i].Campaign(ctx, "c"+strconv.Itoa(i)) })
			elWaitKeys(t, tg, name+"/", i+1)
		}
		elQuiet(t, won[1], "candidate 1 must wait while candidate 0 leads")
		elQuiet(t, won[2], "candidate 2 must wait while candidate 0 leads")

		for _, v := range []string{"c0-a", "c0-b"} {
			if err := cands[0].Proclaim(ctx, v); err != nil {
				t.Fatalf("candidate 0 proclaims %q: %v", v, err)
			}
			elObserve(t, obs, elObserved{key(0), v})
			elLeader(t, ctx, watcher, elObserved{key(0), v})
		}
		if rev := cands[0].Rev(); rev != elOwner(t, ctx, tg.Client, name+"/").CreateRevision {
			t.Fatalf("candidate 0's Rev %d is not its key's create revision", rev)
		}

		if err := cands[0].Resign(ctx); err != nil {
			t.Fatalf("candidate 0 resigns: %v", err)
		}
		elWait(t, won[1], "candidate 1's campaign after candidate 0 resigned")
		elObserve(t, obs, elObserved{key(1), "c1"})
		elLeader(t, ctx, watcher, elObserved{key(1), "c1"})
		elQuiet(t, won[2], "candidate 2 must wait while candidate 1 leads")
		if err := cands[1].Proclaim(ctx, "c1-a"); err != nil {
			t.Fatalf("candidate 1 proclaims: %v", err)
		}
		elObserve(t, obs, elObserved{key(1), "c1-a"})

		// Closing the session revokes its lease, which deletes the key.
		if err := sessions[1].Close(); err != nil {
			t.Fatalf("close candidate 1's session: %v", err)
		}
		elWait(t, won[2], "candidate 2's campaign after candidate 1's session closed")
		elObserve(t, obs, elObserved{key(2), "c2"})
		elLeader(t, ctx, watcher, elObserved{key(2), "c2"})

		if err := cands[2].Resign(ctx); err != nil {
			t.Fatalf("candidate 2 resigns: %v", err)
		}
		if _, err := watcher.Leader(ctx); !errors.Is(err, concurrency.ErrElectionNoLeader) {
			t.Fatalf("leader after everyone left: %v, want %v", err, concurrency.ErrElectionNoLeader)
		}
		elQuiet(t, obs, "the observer must see nothing once no one leads")
	})
}

// elHeader checks a recipe response's header: it must name this server
// (cluster, member and term as a plain Range reports them) and revision
// rev.
func elHeader(t *testing.T, tg *Target, what string, h *pb.ResponseHeader, rev int64) {
	t.Helper()
	ref := tg.rangeKV(t, &pb.RangeRequest{Key: []byte("\x00never-written")}).Header
	if h == nil {
		t.Fatalf("%s: no header", what)
	}
	if h.ClusterId != ref.ClusterId || h.MemberId != ref.MemberId || h.RaftTerm != ref.RaftTerm {
		t.Fatalf("%s: header cluster %x member %x term %d, but a Range says cluster %x member %x term %d",
			what, h.ClusterId, h.MemberId, h.RaftTerm, ref.ClusterId, ref.MemberId, ref.RaftTerm)
	}
	if h.Revision != rev {
		t.Fatalf("%s: header revision %d, want %d", what, h.Revision, rev)
	}
}

// elGrant grants a lease of ttl seconds through the raw Lease service; the
// cleanup revokes it, if it still exists.
func elGrant(t *testing.T, tg *Target, ttl int64) int64 {
	t.Helper()
	lc := pb.NewLeaseClient(tg.Conn)
	resp, err := lc.LeaseGrant(reqCtx(t), &pb.LeaseGrantRequest{TTL: ttl})
	if err != nil {
		t.Fatalf("grant a lease of %d s: %v", ttl, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_, _ = lc.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: resp.ID})
	})
	return resp.ID
}

// elKV reads key, which must exist.
func elKV(t *testing.T, tg *Target, key string) *mvccpb.KeyValue {
	t.Helper()
	resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(key)})
	if len(resp.Kvs) != 1 {
		t.Fatalf("%q: %d kvs, want 1", key, len(resp.Kvs))
	}
	return resp.Kvs[0]
}

// TestLockRPC drives the v3lock service raw. Lock puts the key
// <name>/<lease in hex> on the caller's lease and answers it once that key
// is the oldest under the name; Unlock deletes the key it is given. The
// headers are the recipe's: a Lock granted at once answers with the header
// of its own put, a Lock that waited with that of the read it makes after
// its predecessor is gone.
func TestLockRPC(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		ctx := elCtx(t)
		lk := v3lockpb.NewLockClient(tg.Conn)
		name := keyPrefix(t) + "lock"
		l1, l2, l3 := elGrant(t, tg, 60), elGrant(t, tg, 60), elGrant(t, tg, 60)

		r1, err := lk.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: l1})
		if err != nil {
			t.Fatalf("lock with lease 1: %v", err)
		}
		rev := tg.currentRev(t)
		if string(r1.Key) != elLeaseKey(name, l1) {
			t.Fatalf("lock key %q, want %q", r1.Key, elLeaseKey(name, l1))
		}
		elHeader(t, tg, "lock", r1.Header, rev)
		if kv := elKV(t, tg, string(r1.Key)); kv.Lease != l1 || kv.CreateRevision != rev || kv.Version != 1 || len(kv.Value) != 0 {
			t.Fatalf("lock key %s, want an empty value created at %d on lease %x", kvSummary([]*mvccpb.KeyValue{kv}), rev, l1)
		}

		// The same lease locks again at once, without a write.
		again, err := lk.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: l1})
		if err != nil || string(again.Key) != string(r1.Key) {
			t.Fatalf("lock again with lease 1: %v, %v; want key %q", again, err, r1.Key)
		}
		elHeader(t, tg, "lock again", again.Header, rev)

		// Another lease waits, with its key in the queue.
		type lockResult struct {
			resp *v3lockpb.LockResponse
			err  error
		}
		second := make(chan lockResult, 1)
		go func() {
			r, err := lk.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: l2})
			second <- lockResult{r, err}
		}()
		if kvs := elWaitKeys(t, tg, name+"/", 2); string(kvs[1].Key) != elLeaseKey(name, l2) || kvs[1].Lease != l2 {
			t.Fatalf("waiting keys %s, want the second on lease %x", kvSummary(kvs), l2)
		}
		elQuiet(t, second, "a lock with another lease must wait")

		// A caller that gives up takes its key out of the queue.
		giveUp, cancel := context.WithCancel(ctx)
		third := elGo(func() error {
			_, err := lk.Lock(giveUp, &v3lockpb.LockRequest{Name: []byte(name), Lease: l3})
			return err
		})
		if kvs := elWaitKeys(t, tg, name+"/", 3); kvs[2].Lease != l3 {
			t.Fatalf("waiting keys %s, want the third on lease %x", kvSummary(kvs), l3)
		}
		cancel()
		select {
		case err := <-third:
			wantCode(t, err, codes.Canceled)
		case <-time.After(elTimeout):
			t.Fatalf("a canceled lock: no answer after %v", elTimeout)
		}
		elWaitKeys(t, tg, name+"/", 2)

		ur, err := lk.Unlock(ctx, &v3lockpb.UnlockRequest{Key: r1.Key})
		if err != nil {
			t.Fatalf("unlock: %v", err)
		}
		unlockRev := tg.currentRev(t)
		elHeader(t, tg, "unlock", ur.Header, unlockRev)
		var r2 lockResult
		select {
		case r2 = <-second:
		case <-time.After(elTimeout):
			t.Fatalf("the second lock: nothing %v after the unlock", elTimeout)
		}
		if r2.err != nil || string(r2.resp.Key) != elLeaseKey(name, l2) {
			t.Fatalf("the second lock: %v, %v; want key %q", r2.resp, r2.err, elLeaseKey(name, l2))
		}
		elHeader(t, tg, "the second lock", r2.resp.Header, unlockRev)

		// Unlocking a key that is gone deletes nothing and is no error.
		ur, err = lk.Unlock(ctx, &v3lockpb.UnlockRequest{Key: r1.Key})
		if err != nil {
			t.Fatalf("unlock again: %v", err)
		}
		elHeader(t, tg, "unlock again", ur.Header, unlockRev)

		// A lease that does not exist cannot hold a key.
		_, err = lk.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: l1 ^ 0x5a5a})
		wantRPCErr(t, err, elUnknown("etcdserver: requested lease not found"))

		// Revoking the holder's lease deletes its key: the lock is free.
		if _, err := tg.Client.Revoke(ctx, clientv3.LeaseID(l2)); err != nil {
			t.Fatalf("revoke lease 2: %v", err)
		}
		elWaitKeys(t, tg, name+"/", 0)
	})
}

// elUnknown is the error the recipe services answer when the recipe fails:
// they return its error as it is, so gRPC sends its text with code Unknown,
// even for an etcd error that has a code of its own.
func elUnknown(msg string) error {
	return status.Error(codes.Unknown, msg)
}

// TestElectionRPC drives the v3election service raw: Campaign answers the
// leader key (name, key, create revision, lease) once the caller leads,
// with the header of its own put; Leader and Observe answer the leader's
// kv; Proclaim and Resign act only while the leader key still has the
// create revision they name.
func TestElectionRPC(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		ctx := elCtx(t)
		ec := v3electionpb.NewElectionClient(tg.Conn)
		name := keyPrefix(t) + "election"
		l1, l2 := elGrant(t, tg, 60), elGrant(t, tg, 60)

		_, err := ec.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte(name)})
		wantRPCErr(t, err, elUnknown("election: no leader"))

		// The observer is started before anyone leads; it reports from the
		// first leader on.
		obsCtx, stopObs := context.WithCancel(ctx)
		defer stopObs()
		stream, err := ec.Observe(obsCtx, &v3electionpb.LeaderRequest{Name: []byte(name)})
		if err != nil {
			t.Fatalf("observe: %v", err)
		}
		obs := make(chan *v3electionpb.LeaderResponse)
		go func() {
			defer close(obs)
			for {
				r, err := stream.Recv()
				if err != nil {
					return
				}
				select {
				case obs <- r:
				case <-obsCtx.Done():
					return
				}
			}
		}()
		observe := func(what string, want *mvccpb.KeyValue, rev int64) {
			t.Helper()
			select {
			case r, ok := <-obs:
				if !ok {
					t.Fatalf("observe stream ended, waiting for %s", what)
				}
				if kvSummary([]*mvccpb.KeyValue{r.Kv}) != kvSummary([]*mvccpb.KeyValue{want}) {
					t.Fatalf("observe, %s: kv %s, want %s", what, kvSummary([]*mvccpb.KeyValue{r.Kv}), kvSummary([]*mvccpb.KeyValue{want}))
				}
				elHeader(t, tg, "observe, "+what, r.Header, rev)
			case <-time.After(elTimeout):
				t.Fatalf("observe: nothing after %v, waiting for %s", elTimeout, what)
			}
		}
		leader := func(what string, want *mvccpb.KeyValue) {
			t.Helper()
			r, err := ec.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte(name)})
			if err != nil {
				t.Fatalf("leader, %s: %v", what, err)
			}
			if kvSummary([]*mvccpb.KeyValue{r.Kv}) != kvSummary([]*mvccpb.KeyValue{want}) {
				t.Fatalf("leader, %s: kv %s, want %s", what, kvSummary([]*mvccpb.KeyValue{r.Kv}), kvSummary([]*mvccpb.KeyValue{want}))
			}
			elHeader(t, tg, "leader, "+what, r.Header, tg.currentRev(t))
		}

		c1, err := ec.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte(name), Lease: l1, Value: []byte("v1")})
		if err != nil {
			t.Fatalf("campaign with lease 1: %v", err)
		}
		rev1 := tg.currentRev(t)
		want1 := &v3electionpb.LeaderKey{Name: []byte(name), Key: []byte(elLeaseKey(name, l1)), Rev: rev1, Lease: l1}
		if elLeaderKey(c1.Leader) != elLeaderKey(want1) {
			t.Fatalf("campaign leader %s, want %s", elLeaderKey(c1.Leader), elLeaderKey(want1))
		}
		elHeader(t, tg, "campaign", c1.Header, rev1)
		kv1 := &mvccpb.KeyValue{Key: want1.Key, Value: []byte("v1"), CreateRevision: rev1, ModRevision: rev1, Version: 1, Lease: l1}
		observe("the first leader", kv1, rev1)
		leader("the first leader", kv1)

		type campaignResult struct {
			resp *v3electionpb.CampaignResponse
			err  error
		}
		second := make(chan campaignResult, 1)
		go func() {
			r, err := ec.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte(name), Lease: l2, Value: []byte("v2")})
			second <- campaignResult{r, err}
		}()
		rev2 := elWaitKeys(t, tg, name+"/", 2)[1].CreateRevision
		elQuiet(t, second, "a second candidate must wait")

		pr, err := ec.Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: c1.Leader, Value: []byte("v1b")})
		if err != nil {
			t.Fatalf("proclaim: %v", err)
		}
		rev := tg.currentRev(t)
		elHeader(t, tg, "proclaim", pr.Header, rev)
		kv1b := &mvccpb.KeyValue{Key: want1.Key, Value: []byte("v1b"), CreateRevision: rev1, ModRevision: rev, Version: 2, Lease: l1}
		observe("a proclaim", kv1b, rev)
		leader("after a proclaim", kv1b)

		// A leader key with another create revision no longer leads.
		stale := &v3electionpb.LeaderKey{Name: c1.Leader.Name, Key: c1.Leader.Key, Rev: rev1 - 1, Lease: l1}
		_, err = ec.Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: stale, Value: []byte("stale")})
		wantRPCErr(t, err, elUnknown("election: not leader"))
		_, err = ec.Proclaim(ctx, &v3electionpb.ProclaimRequest{Value: []byte("nobody")})
		wantRPCErr(t, err, elUnknown(`"leader" field must be provided`))
		_, err = ec.Resign(ctx, &v3electionpb.ResignRequest{})
		wantRPCErr(t, err, elUnknown(`"leader" field must be provided`))
		if got := tg.currentRev(t); got != rev {
			t.Fatalf("failed proclaims moved the revision from %d to %d", rev, got)
		}

		rr, err := ec.Resign(ctx, &v3electionpb.ResignRequest{Leader: c1.Leader})
		if err != nil {
			t.Fatalf("resign: %v", err)
		}
		resignRev := tg.currentRev(t)
		elHeader(t, tg, "resign", rr.Header, resignRev)
		var r2 campaignResult
		select {
		case r2 = <-second:
		case <-time.After(elTimeout):
			t.Fatalf("the second campaign: nothing %v after the resign", elTimeout)
		}
		if r2.err != nil {
			t.Fatalf("the second campaign: %v", r2.err)
		}
		want2 := &v3electionpb.LeaderKey{Name: []byte(name), Key: []byte(elLeaseKey(name, l2)), Rev: rev2, Lease: l2}
		if elLeaderKey(r2.resp.Leader) != elLeaderKey(want2) {
			t.Fatalf("the second campaign's leader %s, want %s", elLeaderKey(r2.resp.Leader), elLeaderKey(want2))
		}
		// The header is still that of the candidate's put, from before
		// it waited.
		elHeader(t, tg, "the second campaign", r2.resp.Header, rev2)
		kv2 := &mvccpb.KeyValue{Key: want2.Key, Value: []byte("v2"), CreateRevision: rev2, ModRevision: rev2, Version: 1, Lease: l2}
		observe("the second leader", kv2, resignRev)
		leader("the second leader", kv2)

		// Resigning a leadership already given up deletes nothing.
		rr, err = ec.Resign(ctx, &v3electionpb.ResignRequest{Leader: c1.Leader})
		if err != nil {
			t.Fatalf("resign again: %v", err)
		}
		elHeader(t, tg, "resign again", rr.Header, resignRev)

		if _, err := ec.Resign(ctx, &v3electionpb.ResignRequest{Leader: r2.resp.Leader}); err != nil {
			t.Fatalf("the second leader resigns: %v", err)
		}
		_, err = ec.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte(name)})
		wantRPCErr(t, err, elUnknown("election: no leader"))
		elQuiet(t, obs, "the observer must see nothing once no one leads")
	})
}

// elLeaderKey renders a leader key for comparisons and messages.
func elLeaderKey(k *v3electionpb.LeaderKey) string {
	if k == nil {
		return "<nil>"
	}
	return fmt.Sprintf("name %q key %q rev %d lease %x", k.Name, k.Key, k.Rev, k.Lease)
}

// TestSTM checks concurrency.STM under each isolation level that promises
// serializable writes (ReadCommitted does not). The server decides every
// conflict through the Txn compares the STM sends: a write between an
// STM's read and its commit must fail the commit and run the STM again
// (elForcedConflict), and transfers between accounts from many goroutines
// at once must keep the books straight (elTransfers).
func TestSTM(t *testing.T) {
	isolations := []struct {
		name string
		opts []concurrency.STMOption
	}{
		{"serializable snapshot (default)", nil},
		{"serializable", []concurrency.STMOption{concurrency.WithIsolation(concurrency.Serializable)}},
		{"repeatable reads", []concurrency.STMOption{concurrency.WithIsolation(concurrency.RepeatableReads)}},
	}
	forEachBackend(t, func(t *testing.T, tg *Target) {
		for _, iso := range isolations {
			t.Run(iso.name, func(t *testing.T) {
				t.Run("forced conflict", func(t *testing.T) { elForcedConflict(t, tg, iso.opts) })
				t.Run("transfers", func(t *testing.T) { elTransfers(t, tg, iso.opts) })
			})
		}
	})
}

// elForcedConflict writes a key the STM has read before the STM commits:
// the commit must fail, and the second run must see the write and commit
// on top of it.
func elForcedConflict(t *testing.T, tg *Target, isolation []concurrency.STMOption) {
	ctx := elCtx(t)
	k := keyPrefix(t) + "counter"
	tg.put(t, k, "1")
	runs := 0
	_, err := concurrency.NewSTM(tg.Client, func(s concurrency.STM) error {
		runs++
		n, err := strconv.Atoi(s.Get(k))
		if err != nil {
			return err
		}
		if runs == 1 {
			tg.put(t, k, "10")
		}
		s.Put(k, strconv.Itoa(n+1))
		return nil
	}, append([]concurrency.STMOption{concurrency.WithAbortContext(ctx)}, isolation...)...)
	if err != nil {
		t.Fatalf("STM: %v", err)
	}
	if kv := elKV(t, tg, k); runs != 2 || string(kv.Value) != "11" {
		t.Fatalf("STM ran %d times and left %q, want 2 runs and 11 (the write between read and commit, plus one)", runs, kv.Value)
	}
}

// elTransfers moves money between accounts from many goroutines at once:
//   - the balances always add up, in every atomic read and in every
//     read-only STM that commits;
//   - the final balances are the start plus exactly the transfers whose
//     STM committed, each once: no lost update, no double apply.
func elTransfers(t *testing.T, tg *Target, isolation []concurrency.STMOption) {
	const accounts, start, workers, transfers = 5, 100, 8, 25
	ctx := elCtx(t)
	opts := append([]concurrency.STMOption{concurrency.WithAbortContext(ctx)}, isolation...)
	acct := func(i int) string { return keyPrefix(t) + "acct-" + strconv.Itoa(i) }
	for i := range accounts {
		tg.put(t, acct(i), strconv.Itoa(start))
	}
	balance := func(s concurrency.STM, i int) int {
		n, err := strconv.Atoi(s.Get(acct(i)))
		if err != nil {
			// A torn or missing read: the check after the run reports it.
			return -1 << 30
		}
		return n
	}

	var (
		mu    sync.Mutex
		moved = make([]int, accounts) // net change per account, from committed transfers
		wg    sync.WaitGroup
	)
	for w := range workers {
		rnd := rand.New(rand.NewPCG(uint64(w), 1))
		wg.Go(func() {
			for range transfers {
				from := rnd.IntN(accounts)
				to := (from + 1 + rnd.IntN(accounts-1)) % accounts
				amount := 1 + rnd.IntN(30)
				var applied bool // as decided by the run of apply that committed
				_, err := concurrency.NewSTM(tg.Client, func(s concurrency.STM) error {
					applied = false
					b := balance(s, from)
					if b < amount {
						return nil
					}
					s.Put(acct(from), strconv.Itoa(b-amount))
					s.Put(acct(to), strconv.Itoa(balance(s, to)+amount))
					applied = true
					return nil
				}, opts...)
				if err != nil {
					t.Errorf("worker %d: transfer: %v", w, err)
					return
				}
				if applied {
					mu.Lock()
					moved[from] -= amount
					moved[to] += amount
					mu.Unlock()
				}
			}
		})
	}

	// Auditors run until the workers are done: one reads every account in
	// one Range, one in a read-only STM, which only returns once the
	// server has confirmed that nothing it read changed.
	done := make(chan struct{})
	var audits atomic.Int64
	var auditors sync.WaitGroup
	auditors.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			resp, err := tg.Client.Get(ctx, keyPrefix(t)+"acct-", clientv3.WithPrefix())
			if err != nil {
				t.Errorf("audit read: %v", err)
				return
			}
			total := 0
			for _, kv := range resp.Kvs {
				n, _ := strconv.Atoi(string(kv.Value))
				total += n
			}
			if len(resp.Kvs) != accounts || total != accounts*start {
				t.Errorf("audit read at revision %d: %s adds up to %d, want %d", resp.Header.Revision, kvSummary(resp.Kvs), total, accounts*start)
				return
			}
			audits.Add(1)
		}
	})
	auditors.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			var seen []int
			_, err := concurrency.NewSTM(tg.Client, func(s concurrency.STM) error {
				seen = seen[:0]
				for i := range accounts {
					seen = append(seen, balance(s, i))
				}
				return nil
			}, opts...)
			if err != nil {
				t.Errorf("audit STM: %v", err)
				return
			}
			total := 0
			for _, b := range seen {
				total += b
			}
			if total != accounts*start {
				t.Errorf("audit STM committed balances %v, which add up to %d, want %d", seen, total, accounts*start)
				return
			}
			audits.Add(1)
		}
	})
	wg.Wait()
	close(done)
	auditors.Wait()
	if t.Failed() {
		return
	}

	resp, err := tg.Client.Get(ctx, keyPrefix(t)+"acct-", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("final read: %v", err)
	}
	var got, want []int
	for i, kv := range resp.Kvs {
		n, err := strconv.Atoi(string(kv.Value))
		if err != nil || n < 0 {
			t.Fatalf("account %s holds %q", kv.Key, kv.Value)
		}
		got = append(got, n)
		want = append(want, start+moved[i])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("final balances %v, want %v (the start plus the committed transfers)", got, want)
	}
	if audits.Load() == 0 {
		t.Fatalf("no audit completed")
	}
}
