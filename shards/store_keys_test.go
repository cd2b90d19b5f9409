package shards

import (
	"testing"

	"github.com/metastore/metastore/storage"
)

// TestStoreKeys follows the count of existing keys (etcd's
// etcd_debugging_mvcc_keys_total) through writes, compaction and a
// restore, each step checked in a snapshot taken after it.
func TestStoreKeys(t *testing.T) {
	s := NewStore(nil)
	steps := []struct {
		name     string
		do       func()
		wantKeys int
	}{
		{"empty", func() {}, 0},
		{"put a", func() { s.put("a", []byte("1"), 0, 2) }, 1},
		{"put b", func() { s.put("b", []byte("1"), 0, 3) }, 2},
		{"overwrite a", func() { s.put("a", []byte("2"), 0, 4) }, 2},
		{"delete a", func() { s.del("a", 5) }, 1},
		{"delete a again", func() { s.del("a", 6) }, 1},
		{"re-create a", func() { s.put("a", []byte("3"), 0, 7) }, 2},
		{"delete b", func() { s.del("b", 8) }, 1},
		{"compact past b's delete", func() { s.Compact(9) }, 1},
	}
	for _, st := range steps {
		st.do()
		if got := s.Snapshot().Keys(); got != st.wantKeys {
			t.Fatalf("after %s: %d keys, want %d", st.name, got, st.wantKeys)
		}
	}

	// The same history loaded from disk, as a durable node starts.
	r := NewStore(nil)
	for _, rec := range []struct {
		key string
		rec storage.Record
	}{
		{"a", storage.Record{Rev: 2, Create: 2, Version: 1}},
		{"b", storage.Record{Rev: 3, Create: 3, Version: 1}},
		{"a", storage.Record{Rev: 4, Create: 2, Version: 2}},
		{"a", storage.Record{Rev: 5}},
		{"a", storage.Record{Rev: 7, Create: 7, Version: 1}},
		{"b", storage.Record{Rev: 8}},
	} {
		r.Restore(rec.key, rec.rec)
	}
	if got := r.Snapshot().Keys(); got != 1 {
		t.Fatalf("restored: %d keys, want 1", got)
	}
}
