package lease

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/metastore/metastore/actors/msg"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func newTestCore() *core { return newCore(NewTable(nil), 2, 0xbeef) }

// grantNow grants and makes the grant durable at once.
func grantNow(t *testing.T, c *core, id, ttl int64, now time.Time) int64 {
	t.Helper()
	rec, err := c.grant(id, ttl, now)
	if err != nil {
		t.Fatalf("grant(%d, %d): %v", id, ttl, err)
	}
	c.granted(rec, now)
	return rec.ID
}

func TestCoreGrant(t *testing.T) {
	c := newTestCore()
	grantNow(t, c, 7, 10, t0)
	pending, err := c.grant(8, 10, t0) // not durable yet
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id, ttl int64
		wantTTL int64
		wantErr error
	}{
		{"client-chosen", 9, 10, 10, nil},
		{"existing", 7, 10, 0, msg.ErrLeaseExists},
		{"being granted", 8, 10, 0, msg.ErrLeaseExists},
		{"below the minimum TTL", 10, 1, 2, nil},
		{"no TTL", 11, 0, 2, nil},
		{"longest TTL", 12, MaxTTL, MaxTTL, nil},
		{"too large", 13, MaxTTL + 1, 0, msg.ErrLeaseTTLTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := c.grant(tc.id, tc.ttl, t0)
			if !errors.Is(err, tc.wantErr) || (err == nil && (rec.ID != tc.id || rec.TTL != tc.wantTTL)) {
				t.Fatalf("grant(%d, %d) = %+v, %v; want TTL %d, %v", tc.id, tc.ttl, rec, err, tc.wantTTL, tc.wantErr)
			}
		})
	}
	seen := map[int64]bool{}
	for range 1000 {
		id := grantNow(t, c, 0, 5, t0)
		if id <= 0 || seen[id] {
			t.Fatalf("chosen ID %d: not positive, or chosen twice", id)
		}
		seen[id] = true
	}
	if c.table.Exists(pending.ID) {
		t.Fatal("a lease whose grant is not durable is in the table")
	}
	c.granted(pending, t0)
	if !c.table.Exists(pending.ID) {
		t.Fatal("a granted lease is not in the table")
	}
}

func TestCoreRenewAndTimeToLive(t *testing.T) {
	c := newTestCore()
	id := grantNow(t, c, 0, 10, t0)
	if ttl := c.renew(id, t0.Add(9*time.Second)); ttl != 10 {
		t.Fatalf("renew before the deadline: TTL %d, want 10", ttl)
	}
	if rem, granted, ok := c.timeToLive(id, t0.Add(12500*time.Millisecond)); !ok || rem != 6 || granted != 10 {
		t.Fatalf("timeToLive = %d, %d, %v; want 6 (rounded down), 10, true", rem, granted, ok)
	}
	if ttl := c.renew(id, t0.Add(19*time.Second)); ttl != 0 {
		t.Fatalf("renew after the deadline: TTL %d, want 0", ttl)
	}
	if ttl := c.renew(99, t0); ttl != 0 {
		t.Fatalf("renew of an unknown lease: TTL %d, want 0", ttl)
	}
	if _, _, ok := c.timeToLive(99, t0); ok {
		t.Fatal("timeToLive found an unknown lease")
	}
}

// TestCoreExpire: expired leases are revoked earliest first, at most limit
// at a time; a keep-alive moves a lease back; a revoke in progress takes
// the lease out of the table and keeps later revokes waiting on it.
func TestCoreExpire(t *testing.T) {
	c := newTestCore()
	for i := int64(1); i <= 5; i++ {
		grantNow(t, c, i, 10*i, t0)
	}
	c.renew(1, t0.Add(9*time.Second)) // 1 now ends at 19 s
	if got := c.expire(t0.Add(25*time.Second), 10); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("expired at 25 s: %v, want [1 2]", got)
	}
	if c.table.Exists(1) || c.table.Exists(2) || !c.table.Exists(3) {
		t.Fatal("the table does not follow the revokes")
	}
	if got := c.expire(t0.Add(time.Minute), 2); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("expired at 60 s, 2 at most: %v, want [3 4]", got)
	}
	if err := c.revoke(3, nil); !errors.Is(err, msg.ErrLeaseNotFound) {
		t.Fatalf("revoke during a revoke: %v, want not found", err)
	}
	c.revoked(3, msg.Result{})
	if err := c.revoke(3, nil); !errors.Is(err, msg.ErrLeaseNotFound) {
		t.Fatalf("revoke of a revoked lease: %v", err)
	}
	// A revoke the coordinator refused puts the lease back, still due.
	c.revoked(4, msg.Result{Err: msg.ErrTooManyRequests})
	if !c.table.Exists(4) {
		t.Fatal("a lease whose revoke was refused is not back in the table")
	}
	if got := c.expire(t0.Add(45*time.Second), 10); !slices.Equal(got, []int64{4}) {
		t.Fatalf("expired after the refused revoke: %v, want [4]", got)
	}
	reply := make(chan msg.Result, 1)
	if err := c.revoke(5, reply); err != nil {
		t.Fatal(err)
	}
	c.revoked(5, msg.Result{})
	if r := <-reply; r.Err != nil {
		t.Fatalf("revoke answered %v", r.Err)
	}
	if got := c.list(); len(got) != 0 {
		t.Fatalf("leases %v, want none (1, 2 and 4 being revoked)", got)
	}
}

// TestCoreExpireBoundsRevokes: expiry never has more than maxRevoking
// revokes under way; one that ends makes room for the next.
func TestCoreExpireBoundsRevokes(t *testing.T) {
	c := newTestCore()
	for i := int64(1); i <= maxRevoking+200; i++ {
		grantNow(t, c, i, 2, t0)
	}
	late := t0.Add(time.Minute)
	if got := len(c.expire(late, 5000)); got != maxRevoking {
		t.Fatalf("started %d revokes, want %d", got, maxRevoking)
	}
	if got := c.expire(late, 5000); len(got) != 0 {
		t.Fatalf("started %d more with %d under way", len(got), maxRevoking)
	}
	c.revoked(1, msg.Result{})
	if got := c.expire(late, 5000); len(got) != 1 {
		t.Fatalf("started %d after one ended, want 1", len(got))
	}
}
