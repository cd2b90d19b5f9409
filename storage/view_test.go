package storage

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
)

// viewRecords reads a view's records back as "rev.sub:key=value" strings,
// a "-" after a tombstone's key.
func viewRecords(t *testing.T, v *View) []string {
	t.Helper()
	var out []string
	err := v.Records(func(key string, rec Record, value []byte) error {
		s := fmt.Sprintf("%d.%d:%s", rec.Rev, rec.Sub, key)
		if rec.Tombstone() {
			s += "-"
		}
		out = append(out, s+"="+string(value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, _, err := Open(t.TempDir(), Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestViewIsOneInstant: a view holds the records, leases and compact
// revision of the moment it was opened, in etcd's order (revision, then
// sub revision, not the key order they are stored in), whatever is written
// after it.
func TestViewIsOneInstant(t *testing.T) {
	db := openTestDB(t)
	entries := []Entry{
		{Rev: 2, Base: 2, Muts: []Mutation{{Key: "z", Value: []byte("1"), Create: -1, Version: 1}, {Key: "a", Value: []byte("2"), Create: -1, Version: 1, Lease: 7}}},
		{Rev: 3, Base: 2, Muts: []Mutation{{Key: "z", Delete: true}}},
	}
	if err := db.Commit(entries, []LeaseRecord{{ID: 7, TTL: 30}, {ID: 8, TTL: 60}}, nil, 2); err != nil {
		t.Fatal(err)
	}
	v, err := db.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	later := []Entry{{Rev: 4, Base: 4, Muts: []Mutation{{Key: "b", Value: []byte("3"), Create: -1, Version: 1}}}}
	if err := db.Commit(later, []LeaseRecord{{ID: 8, Revoke: true}, {ID: 9, TTL: 5}}, nil, 3); err != nil {
		t.Fatal(err)
	}
	if err := db.Drop([]KeyRev{{Key: "z", Rev: 2}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"2.0:z=1", "2.1:a=2", "3.0:z-="}
	if got := viewRecords(t, v); !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
	if v.Compact() != 2 || v.Rev() != 3 {
		t.Errorf("compact %d, rev %d; want 2, 3", v.Compact(), v.Rev())
	}
	leases, err := v.Leases()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int64]int64{7: 30, 8: 60}; !maps.Equal(leases, want) {
		t.Errorf("leases %v, want %v", leases, want)
	}
	now, err := db.View()
	if err != nil {
		t.Fatal(err)
	}
	defer now.Close()
	if got, want := viewRecords(t, now), []string{"2.1:a=2", "3.0:z-=", "4.0:b=3"}; !slices.Equal(got, want) {
		t.Errorf("a new view's records %v, want %v", got, want)
	}
}

// TestViewRevs: the newest revision is the newest record's, or the compact
// revision when compaction removed every record above it; 1 when empty.
func TestViewRevs(t *testing.T) {
	tests := []struct {
		name              string
		entries           []Entry
		compact           int64
		wantRev, wantComp int64
	}{
		{"empty", nil, 0, 1, 0},
		{"records", []Entry{{Rev: 2, Base: 2, Muts: []Mutation{{Key: "a", Create: -1, Version: 1}}}}, 0, 2, 0},
		{"compacted above the records", []Entry{{Rev: 2, Base: 2, Muts: []Mutation{{Key: "a", Create: -1, Version: 1}}}}, 5, 5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openTestDB(t)
			if err := db.Commit(tc.entries, nil, nil, tc.compact); err != nil {
				t.Fatal(err)
			}
			v, err := db.View()
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if v.Rev() != tc.wantRev || v.Compact() != tc.wantComp {
				t.Errorf("rev %d, compact %d; want %d, %d", v.Rev(), v.Compact(), tc.wantRev, tc.wantComp)
			}
		})
	}
}

// TestViewRanksRecordsWithoutSub: in a dir upgraded from format "2", the
// records written before the upgrade have no sub revision; a view numbers
// them in key order within their revision, as Load does.
func TestViewRanksRecordsWithoutSub(t *testing.T) {
	dir := t.TempDir()
	writeNoSubDir(t, dir)
	db, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Writable(); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit([]Entry{{Rev: 3, Base: 3, Muts: []Mutation{{Key: "d", Create: -1, Version: 1}, {Key: "c", Create: -1, Version: 1}}}}, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	v, err := db.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got, want := viewRecords(t, v), []string{"2.0:a=va", "2.1:b=vb", "3.0:d=", "3.1:c="}; !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
}

// TestViewAfterClose: a closed dir gives no view, and a view's Records
// stops at the first error its callback returns.
func TestViewAfterClose(t *testing.T) {
	db, _, err := Open(t.TempDir(), Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Commit([]Entry{{Rev: 2, Base: 2, Muts: []Mutation{{Key: "a", Create: -1, Version: 1}, {Key: "b", Create: -1, Version: 1}}}}, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	v, err := db.View()
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	calls := 0
	if err := v.Records(func(string, Record, []byte) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Records returned %v after %d calls; want the callback's error after 1", err, calls)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.View(); !errors.Is(err, ErrClosed) {
		t.Fatalf("View on a closed dir: %v, want ErrClosed", err)
	}
}
