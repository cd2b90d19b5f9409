package storage

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// historyOf reads revisions from..to back as "rev:key" strings, a "-" after
// a tombstone's key.
func historyOf(t *testing.T, db *DB, from, to int64) []string {
	t.Helper()
	var out []string
	err := db.History(from, to, func(string) bool { return true }, func(rev int64, cs []Change) bool {
		for _, c := range cs {
			s := fmt.Sprintf("%d:%s", rev, c.Key)
			if c.Rec.Tombstone() {
				s += "-"
			}
			out = append(out, s)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHistoryOrder: a revision's changes come back in the order its
// request made them, not in the key order they are stored in.
func TestHistoryOrder(t *testing.T) {
	db, _, err := Open(t.TempDir(), Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	entries := []Entry{
		{Rev: 2, Base: 2, Muts: []Mutation{{Key: "z", Create: -1, Version: 1}, {Key: "a", Create: -1, Version: 1}, {Key: "m", Create: -1, Version: 1}}},
		{Rev: 3, Base: 2, Muts: []Mutation{{Key: "m", Delete: true}, {Key: "b", Create: -2, Version: 1}}},
		{Rev: 4, Base: 2, Muts: []Mutation{{Key: "a", Create: 2, Version: 2}}},
	}
	if err := db.Commit(entries, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from, to int64
		want     []string
	}{
		{2, 4, []string{"2:z", "2:a", "2:m", "3:m-", "3:b", "4:a"}},
		{3, 3, []string{"3:m-", "3:b"}},
		{0, 2, []string{"2:z", "2:a", "2:m"}},
		{5, 9, nil},
	}
	for _, tc := range tests {
		if got := historyOf(t, db, tc.from, tc.to); !slices.Equal(got, tc.want) {
			t.Errorf("History(%d, %d) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
	var kept []string
	_ = db.History(2, 4, func(k string) bool { return k < "n" }, func(rev int64, cs []Change) bool {
		kept = append(kept, fmt.Sprint(rev, len(cs)))
		return true
	})
	if want := []string{"2 2", "3 2", "4 1"}; !slices.Equal(kept, want) {
		t.Errorf("History keeping keys below n: revisions and changes %v, want %v", kept, want)
	}
	stopped := 0
	_ = db.History(2, 4, func(string) bool { return true }, func(int64, []Change) bool { stopped++; return false })
	if stopped != 1 {
		t.Errorf("History called fn %d times after it returned false", stopped)
	}
}

// TestUpgradeFromNoSub: a dir written before records carried their sub
// revision opens, reads its old records in key order within a revision,
// and records the sub revision of every write from then on.
func TestUpgradeFromNoSub(t *testing.T) {
	dir := t.TempDir()
	writeNoSubDir(t, dir)

	db, meta, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var loaded []string
	if err := db.Load(func(key string, rec Record) error {
		loaded = append(loaded, fmt.Sprintf("%s/%d", key, rec.Sub))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/0", "b/1"}; !slices.Equal(loaded, want) || meta.Rev != 2 {
		t.Fatalf("loaded %v at revision %d, want %v at 2", loaded, meta.Rev, want)
	}
	if err := db.Writable(); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit([]Entry{{Rev: 3, Base: 3, Muts: []Mutation{{Key: "d", Create: -1, Version: 1}, {Key: "c", Create: -1, Version: 1}}}}, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	if got, want := historyOf(t, db, 1, 3), []string{"2:a", "2:b", "3:d", "3:c"}; !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	if v, err := db.Value("b", 2); err != nil || string(v) != "vb" {
		t.Fatalf("old value %q, %v", v, err)
	}
	db.Close()
	db, _, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.format != Format || db.subFrom != 3 {
		t.Fatalf("reopened as format %q with sub revisions from %d, want %q from 3", db.format, db.subFrom, Format)
	}
	if got, want := historyOf(t, db, 1, 3), []string{"2:a", "2:b", "3:d", "3:c"}; !slices.Equal(got, want) {
		t.Fatalf("history after reopening %v, want %v", got, want)
	}
}

// writeNoSubDir makes dir a format "2" data dir: revision 2 put "b" then
// "a", as the old format wrote them (three varints, then the value, no sub
// revision).
func writeNoSubDir(t *testing.T, dir string) {
	t.Helper()
	db, _, err := Open(dir, Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b", "a"} {
		rec := append(appendRecordHeader(nil, 2, 1, 0, 0)[:3], "v"+k...)
		if err := db.db.Set(recordKey(2, k), rec, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.db.Set(keyFormat, []byte(formatNoSub), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
}
