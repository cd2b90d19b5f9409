package test

import (
	"hash/crc32"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestHashKVNegativeRevision: etcd refuses no negative revision. Only a
// positive one is checked against the compact and current revisions, and
// only 0 stands for the current one (mvcc's hashByRev); a negative one is
// then hashed as a revision no record is at or below, which leaves the
// hash at its start, the key bucket's name, and answers it as the
// hash_revision, with the compact revision of the store, before and after
// a compaction alike.
func TestHashKVNegativeRevision(t *testing.T) {
	empty := crc32.Checksum([]byte("key"), crc32.MakeTable(crc32.Castagnoli))
	forEachBackend(t, func(t *testing.T, tg *Target) {
		var compactions []int64
		check := func(when string) {
			t.Helper()
			cur := tg.currentRev(t)
			for _, rev := range []int64{-1, -cur - 1} {
				want := hkWant(rev, cur, compactions, nil)
				want.hash = empty
				if got := hkRaw(t, tg, rev); got != want {
					t.Errorf("HashKV at revision %d %s: got %v, want %v", rev, when, got, want)
				}
			}
		}
		tg.put(t, "hkneg/a", "1")
		tg.put(t, "hkneg/a", "2")
		tg.put(t, "hkneg/b", "1")
		check("before a compaction")
		rev := tg.currentRev(t)
		if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: rev, Physical: true}); err != nil {
			t.Fatalf("compact at %d: %v", rev, err)
		}
		compactions = append(compactions, rev)
		tg.put(t, "hkneg/c", "1")
		check("after a compaction")
	}, withDataDir())
}
