package test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLeaseMassExpiry: 3,000 leases, each holding a key, expire at once
// while writers keep writing. Every lease is revoked (its key gone, the
// lease no longer listed) and the writers get through all their writes:
// expiry is spread out (etcd revokes at most 1,000 leases a second) without
// starving writes or being starved by them. Counts only, no timing: the
// bound is only how long the test waits.
func TestLeaseMassExpiry(t *testing.T) {
	const leases, writers, writesEach = 3000, 8, 300
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		// One bound for the whole test, which takes as long as the expiry
		// does (longer under the race detector).
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		ids := make([]clientv3.LeaseID, leases)
		sem := make(chan struct{}, 50)
		for i := range ids {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				g, err := tg.Client.Grant(ctx, 1)
				if err != nil {
					t.Errorf("grant: %v", err)
					return
				}
				ids[i] = g.ID
				if _, err := tg.Client.Put(ctx, fmt.Sprintf("%sleased/%05d", p, i), "v", clientv3.WithLease(g.ID)); err != nil {
					t.Errorf("put with lease: %v", err)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		var written atomic.Int64
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range writesEach {
					if _, err := tg.Client.Put(ctx, fmt.Sprintf("%swriter/%d/%d", p, w, i), "v"); err != nil {
						t.Errorf("write during the expiry: %v", err)
						return
					}
					written.Add(1)
				}
			}()
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			r, err := tg.Client.Get(ctx, p+"leased/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			if r.Count == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d leased keys left after 60 s", r.Count)
			}
			time.Sleep(200 * time.Millisecond)
		}
		wg.Wait()
		if got := written.Load(); got != writers*writesEach {
			t.Fatalf("writers got %d writes through, want %d", got, writers*writesEach)
		}
		left, err := tg.Client.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mine := map[clientv3.LeaseID]bool{}
		for _, id := range ids {
			mine[id] = true
		}
		for _, l := range left.Leases {
			if mine[l.ID] {
				t.Fatalf("lease %x still listed after its keys were deleted", l.ID)
			}
		}
	})
}
