package storage

import (
	"bytes"
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzRecordKey checks that record keys decode to what was encoded and sort
// like (revision, key) pairs, so that a load reads them in revision order.
func FuzzRecordKey(f *testing.F) {
	f.Add("a", int64(1), "a\x00", int64(2))
	f.Add("a\x00b", int64(7), "a", int64(9))
	f.Add("\x00\x01", int64(3), "\x00", int64(3))
	f.Add("k\xff", int64(1<<40), "k", int64(1))
	f.Fuzz(func(t *testing.T, k1 string, r1 int64, k2 string, r2 int64) {
		if r1 < 1 || r2 < 1 || k1 == "" || k2 == "" {
			return
		}
		e1, e2 := recordKey(r1, k1), recordKey(r2, k2)
		for _, c := range []struct {
			enc []byte
			key string
			rev int64
		}{{e1, k1, r1}, {e2, k2, r2}} {
			r, k, err := decodeRecordKey(c.enc)
			if err != nil || k != c.key || r != c.rev {
				t.Fatalf("decode(%q) = %d, %q, %v; want %d, %q", c.enc, r, k, err, c.rev, c.key)
			}
		}
		want := cmp.Or(cmp.Compare(r1, r2), strings.Compare(k1, k2))
		if got := bytes.Compare(e1, e2); got != want {
			t.Fatalf("order of (%d,%q) vs (%d,%q): %d, want %d", r1, k1, r2, k2, got, want)
		}
	})
}

func TestOpenRefusesOtherDirs(t *testing.T) {
	t.Run("not a pebble database", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Open(dir, Options{DefaultShards: 1}); !errors.Is(err, ErrNotMetaStore) {
			t.Fatalf("err %v, want ErrNotMetaStore", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("the dir was changed: %v", entries)
		}
	})
	t.Run("newer format", func(t *testing.T) {
		dir := t.TempDir()
		db, _, err := Open(dir, Options{DefaultShards: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.db.Set(keyFormat, []byte("4"), nil); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, _, err = Open(dir, Options{DefaultShards: 1})
		if err == nil || !strings.Contains(err.Error(), `format "4"`) {
			t.Fatalf("err %v, want a format error", err)
		}
	})
}

func TestCommitLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	db, meta, err := Open(dir, Options{DefaultShards: 3})
	if err != nil {
		t.Fatal(err)
	}
	if meta.Shards != 3 || meta.Rev != 1 {
		t.Fatalf("fresh meta %+v", meta)
	}
	// Leases are granted in a commit of their own: a revoke starts only
	// once its grant is durable, so the two never share a commit.
	if err := db.Commit(nil, []LeaseRecord{{ID: 5, TTL: 10}, {ID: 6, TTL: 20}}, nil, 0); err != nil {
		t.Fatal(err)
	}
	// Revisions 2 and 3 were stamped together: the second put of b names
	// its create revision as a placeholder for the stamp's first revision.
	err = db.Commit([]Entry{
		{Rev: 2, Base: 2, Muts: []Mutation{{Key: "a", Value: []byte("1"), Create: -1, Version: 1}, {Key: "b", Value: []byte("x"), Lease: 5, Create: -1, Version: 1}}},
		{Rev: 3, Base: 2, Muts: []Mutation{{Key: "b", Value: []byte("y"), Create: -1, Version: 2}, {Key: "a", Delete: true}},
			Leases: []LeaseRecord{{ID: 6, Revoke: true}}},
	}, []LeaseRecord{{ID: 7, TTL: 30}}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, meta, err = Open(dir, Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if meta.Rev != 3 || meta.Compact != 2 || meta.Shards != 3 {
		t.Fatalf("meta after reopen %+v", meta)
	}
	if leases, err := db.Leases(); err != nil || len(leases) != 2 || leases[5] != 10 || leases[7] != 30 {
		t.Fatalf("leases after reopen %v, %v; want 5 and 7 (6 was revoked)", leases, err)
	}
	got := map[string][]Record{}
	if err := db.Load(func(k string, rec Record) error { got[k] = append(got[k], rec); return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string][]Record{
		"a": {{Rev: 2, Create: 2, Version: 1}, {Rev: 3, Sub: 1}},
		"b": {{Rev: 2, Create: 2, Version: 1, Lease: 5, Sub: 1}, {Rev: 3, Create: 2, Version: 2}},
	}
	for k, recs := range want {
		if !slices.Equal(got[k], recs) {
			t.Fatalf("%s: %+v, want %+v", k, got[k], recs)
		}
	}
	values := []struct {
		key  string
		rev  int64
		want string
		err  error
	}{
		{"a", 2, "1", nil},
		{"b", 2, "x", nil},
		{"b", 3, "y", nil},
		{"a", 3, "", nil}, // a tombstone has no value
		{"a", 4, "", ErrNoRecord},
		{"c", 2, "", ErrNoRecord},
	}
	for _, v := range values {
		got, err := db.Value(v.key, v.rev)
		if !errors.Is(err, v.err) || string(got) != v.want {
			t.Errorf("Value(%q, %d) = %q, %v; want %q, %v", v.key, v.rev, got, err, v.want, v.err)
		}
	}
}
