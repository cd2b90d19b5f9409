package snapshot

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestHashKVMatchesEtcd plays each history against etcd and into a data
// dir, and finds etcd's HashKV at 0, at every revision it can hash, and at
// each compaction's revision, whose hash etcd keeps from the compaction
// (CompactionHash); whether or not the records compaction removed are
// still stored.
func TestHashKVMatchesEtcd(t *testing.T) {
	for _, h := range histories {
		t.Run(h.name, func(t *testing.T) {
			e := startEtcd(t)
			playEtcd(t, e, h)
			endpoint := e.e.Clients[0].Addr().String()
			for _, drop := range []bool{false, true} {
				t.Run(fmt.Sprintf("dropped=%v", drop), func(t *testing.T) {
					p := playStore(t, h, drop)
					v := view(t, p.db)
					current := v.Rev()
					revs := []int64{0}
					for rev := max(v.Compact(), 1); rev <= current; rev++ {
						revs = append(revs, rev)
					}
					for rev := range p.hashes {
						if rev < v.Compact() {
							revs = append(revs, rev)
						}
					}
					for _, rev := range revs {
						want, err := e.cli.HashKV(context.Background(), endpoint, rev)
						if err != nil {
							t.Fatalf("etcd HashKV(%d): %v", rev, err)
						}
						if want.Header.Revision != current {
							t.Fatalf("etcd is at revision %d, the data dir at %d: the histories differ", want.Header.Revision, current)
						}
						got, kept := p.hashes[rev]
						if !kept {
							if got, err = HashKV(t.Context(), v, rev, current); err != nil {
								t.Fatalf("HashKV(%d): %v", rev, err)
							}
						}
						if got != (KVHash{Hash: want.Hash, CompactRevision: want.CompactRevision, Revision: want.HashRevision}) {
							t.Errorf("HashKV(%d) = %+v (kept from a compaction: %v), etcd says hash %d, compact revision %d, revision %d",
								rev, got, kept, want.Hash, want.CompactRevision, want.HashRevision)
						}
					}
				})
			}
		})
	}
}

// TestHashKVBounds: revisions outside what can be hashed get etcd's
// errors.
func TestHashKVBounds(t *testing.T) {
	v := view(t, playStore(t, histories[1], true).db) // compacted at 5, at revision 9
	tests := []struct {
		rev, current int64
		want         error
	}{
		{4, 9, ErrCompacted},
		{10, 9, ErrFutureRev},
		{9, 8, ErrFutureRev},
		{5, 9, nil},
		{0, 9, nil},
	}
	for _, tc := range tests {
		if _, err := HashKV(t.Context(), v, tc.rev, tc.current); !errors.Is(err, tc.want) {
			t.Errorf("HashKV(%d) at %d: %v, want %v", tc.rev, tc.current, err, tc.want)
		}
	}
}
