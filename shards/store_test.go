package shards

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/storage"
)

// TestStoreGenerations walks one key through put, delete, re-create and
// compaction, checking every revision read against etcd's key-index rules.
func TestStoreGenerations(t *testing.T) {
	s := NewStore(nil)
	s.put("k", []byte("a"), 0, 2)
	s.put("k", []byte("b"), 7, 4)
	if !s.del("k", 6) {
		t.Fatal("delete of a live key reported nothing deleted")
	}
	if s.del("k", 7) {
		t.Fatal("delete of a deleted key reported a delete")
	}
	s.put("k", []byte("c"), 0, 8)
	v := s.Snapshot()

	tests := []struct {
		rev                     int64
		wantOK                  bool
		wantValue               string
		wantCreate, wantVersion int64
		wantLease               int64
	}{
		{rev: 1},
		{rev: 2, wantOK: true, wantValue: "a", wantCreate: 2, wantVersion: 1},
		{rev: 3, wantOK: true, wantValue: "a", wantCreate: 2, wantVersion: 1},
		{rev: 4, wantOK: true, wantValue: "b", wantCreate: 2, wantVersion: 2, wantLease: 7},
		{rev: 6},
		{rev: 7},
		{rev: 8, wantOK: true, wantValue: "c", wantCreate: 8, wantVersion: 1},
		{rev: latest, wantOK: true, wantValue: "c", wantCreate: 8, wantVersion: 1},
	}
	for _, tt := range tests {
		kv, ok := getKV(t, v, "k", tt.rev)
		if ok != tt.wantOK {
			t.Fatalf("rev %d: found=%v, want %v", tt.rev, ok, tt.wantOK)
		}
		if !ok {
			continue
		}
		if string(kv.Value) != tt.wantValue || kv.CreateRevision != tt.wantCreate || kv.Version != tt.wantVersion || kv.Lease != tt.wantLease {
			t.Fatalf("rev %d: got %+v, want value %q create %d version %d lease %d", tt.rev, kv, tt.wantValue, tt.wantCreate, tt.wantVersion, tt.wantLease)
		}
	}
}

func TestStoreCompact(t *testing.T) {
	tests := []struct {
		name     string
		compact  int64
		wantRecs []int64 // revisions left in k's history
	}{
		{name: "below everything", compact: 1, wantRecs: []int64{2, 4, 6, 8}},
		{name: "keeps the version visible at the compact revision", compact: 5, wantRecs: []int64{4, 6, 8}},
		{name: "keeps a tombstone made at the compact revision, as etcd", compact: 6, wantRecs: []int64{6, 8}},
		{name: "drops a generation ended by a tombstone", compact: 7, wantRecs: []int64{8}},
		{name: "keeps the last live version", compact: 9, wantRecs: []int64{8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore(nil)
			s.put("k", []byte("a"), 0, 2)
			s.put("k", []byte("b"), 0, 4)
			s.del("k", 6)
			s.put("k", []byte("c"), 0, 8)
			s.put("gone", []byte("x"), 0, 3)
			s.del("gone", 5)
			old := s.Snapshot()
			dropped := s.Compact(tt.compact)
			h, ok := s.tree.Get(&history{key: "k"})
			if !ok {
				t.Fatal("k vanished")
			}
			var revs []int64
			for _, r := range h.recs {
				revs = append(revs, r.rev)
			}
			if len(revs) != len(tt.wantRecs) {
				t.Fatalf("revisions %v, want %v", revs, tt.wantRecs)
			}
			for i := range revs {
				if revs[i] != tt.wantRecs[i] {
					t.Fatalf("revisions %v, want %v", revs, tt.wantRecs)
				}
			}
			gone := 0
			for _, d := range dropped {
				if d.Key == "gone" {
					gone++
				}
			}
			// "gone" was put at 3 and deleted at 5: its tombstone outlives
			// a compaction at 5, not one after it.
			wantGone := 0
			switch {
			case tt.compact == 5:
				wantGone = 1
			case tt.compact > 5:
				wantGone = 2
			}
			if gone != wantGone {
				t.Fatalf("dropped %d records of the deleted key, want %d", gone, wantGone)
			}
			if len(dropped)-gone != 4-len(tt.wantRecs) {
				t.Fatalf("dropped %v, want %d records of k", dropped, 4-len(tt.wantRecs))
			}
			// A snapshot taken before compaction still has all history.
			if kv, ok := getKV(t, old, "k", 2); !ok || string(kv.Value) != "a" {
				t.Fatalf("old snapshot lost history: %v %v", kv, ok)
			}
		})
	}
}

// TestSnapshotIsolation checks that a published view never changes while
// the store goes on writing, including appends that share its arrays.
func TestSnapshotIsolation(t *testing.T) {
	s := NewStore(nil)
	for rev := int64(1); rev <= 100; rev++ {
		s.put("k", []byte{byte(rev)}, 0, rev)
	}
	v := s.Snapshot()
	for rev := int64(101); rev <= 200; rev++ {
		s.put("k", []byte{byte(rev)}, 0, rev)
		s.put(string(rune('a'+rev%26)), nil, 0, rev)
	}
	kv, ok := getKV(t, v, "k", latest)
	if !ok || kv.ModRevision != 100 || kv.Version != 100 {
		t.Fatalf("snapshot changed: %+v", kv)
	}
	if es, n := v.collect("", "", latest, -1); n != 1 || len(es) != 1 {
		t.Fatalf("snapshot sees %d keys, want 1", n)
	}
}

// getKV reads key at revision rev from v as a Range answer would show it.
func getKV(t testing.TB, v *View, key string, rev int64) (*mvccpb.KeyValue, bool) {
	t.Helper()
	e, ok := v.get(key, rev)
	if !ok {
		return nil, false
	}
	kv, err := e.keyValue()
	if err != nil {
		t.Fatalf("value of %q at %d: %v", key, rev, err)
	}
	return kv, true
}

// TestStoreValues checks a store that keeps its values out of the tree: a
// value is readable from install on, through recent while its revision is
// not visible and from the data dir once it is settled, and a view that
// outlives a compaction gets storage.ErrNoRecord, which makes readers start
// over — unless the value is cached, which is as right an answer for it.
func TestStoreValues(t *testing.T) {
	for _, cacheBytes := range []int64{0, 1 << 20} {
		t.Run(fmt.Sprintf("cache=%d", cacheBytes), func(t *testing.T) { testStoreValues(t, cacheBytes) })
	}
}

func testStoreValues(t *testing.T, cacheBytes int64) {
	db, _, err := storage.Open(t.TempDir(), storage.Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vals := NewValues(db, cacheBytes)
	s := NewStore(vals)
	s.put("k", []byte("a"), 0, 2)
	s.put("k", []byte("b"), 0, 3)
	s.put("e", nil, 0, 3)
	v := s.Snapshot()
	check := func(when string, view *View, key string, rev int64, want string) {
		t.Helper()
		kv, ok := getKV(t, view, key, rev)
		if !ok || string(kv.Value) != want {
			t.Fatalf("%s: %s at %d = %v, want %q", when, key, rev, kv, want)
		}
	}
	check("before commit", v, "k", 2, "a")
	check("before commit", v, "k", 3, "b")
	check("before commit", v, "e", 3, "")
	if vals.recent.Size() != 3 {
		t.Fatalf("recent holds %d values before they are durable, want 3", vals.recent.Size())
	}
	err = db.Commit([]storage.Entry{
		{Rev: 2, Base: 2, Muts: []storage.Mutation{{Key: "k", Value: []byte("a"), Create: 2, Version: 1}}},
		{Rev: 3, Base: 3, Muts: []storage.Mutation{{Key: "k", Value: []byte("b"), Create: 2, Version: 2}, {Key: "e", Create: 3, Version: 1}}},
	}, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.settle(2)
	if vals.recent.Size() != 2 {
		t.Fatalf("recent holds %d values after settling revision 2, want 2", vals.recent.Size())
	}
	s.settle(3)
	if vals.recent.Size() != 0 || len(s.unsettled) != 0 {
		t.Fatalf("recent holds %d values after settling everything", vals.recent.Size())
	}
	check("from disk", v, "k", 2, "a")
	check("from disk", v, "k", 3, "b")
	check("from disk", v, "e", 3, "")
	if err := db.Drop(s.Compact(3)); err != nil {
		t.Fatal(err)
	}
	check("after compaction", s.Snapshot(), "k", 3, "b")
	e, _ := v.get("k", 2)
	kv, err := e.keyValue()
	switch {
	case cacheBytes > 0 && (err != nil || string(kv.Value) != "a"):
		t.Fatalf("cached value of a compacted record read through an old view: %v, %v; want \"a\"", kv, err)
	case cacheBytes == 0 && !errors.Is(err, storage.ErrNoRecord):
		t.Fatalf("compacted record read through an old view: %v, want storage.ErrNoRecord", err)
	}
}

// TestStoreLeaseKeys: the lease index follows each key's newest record.
func TestStoreLeaseKeys(t *testing.T) {
	s := NewStore(nil)
	s.put("a", nil, 1, 2)
	s.put("b", nil, 1, 3)
	s.put("c", nil, 2, 4)
	s.put("b", nil, 2, 5) // moves to lease 2
	s.put("c", nil, 0, 6) // leaves lease 2
	s.put("d", nil, 1, 7)
	s.del("d", 8) // detaches
	tests := []struct {
		lease int64
		want  []string
	}{{1, []string{"a"}}, {2, []string{"b"}}, {3, []string{}}}
	for _, tc := range tests {
		if got := s.LeaseKeys(tc.lease); !slices.Equal(got, tc.want) {
			t.Errorf("lease %d: keys %v, want %v", tc.lease, got, tc.want)
		}
	}
	// Rebuilt from records as a restart loads them.
	r := NewStore(nil)
	for _, rec := range []struct {
		key string
		rec storage.Record
	}{
		{"a", storage.Record{Rev: 2, Create: 2, Version: 1, Lease: 1}},
		{"b", storage.Record{Rev: 3, Create: 3, Version: 1, Lease: 1}},
		{"b", storage.Record{Rev: 5, Create: 3, Version: 2, Lease: 2}},
		{"d", storage.Record{Rev: 7, Create: 7, Version: 1, Lease: 1}},
		{"d", storage.Record{Rev: 8}},
	} {
		r.Restore(rec.key, rec.rec)
	}
	if got := r.LeaseKeys(1); !slices.Equal(got, []string{"a"}) {
		t.Errorf("restored lease 1: keys %v, want [a]", got)
	}
	if got := r.LeaseKeys(2); !slices.Equal(got, []string{"b"}) {
		t.Errorf("restored lease 2: keys %v, want [b]", got)
	}
}
