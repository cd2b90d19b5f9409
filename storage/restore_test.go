package storage

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type restoredRecord struct {
	key   string
	rec   Record
	value string
}

// TestRestoreRoundTrip: a restored dir opens with the records exactly as
// given (sub revisions with gaps included), the leases, the compact
// revision and the shard count, under fresh IDs; its revision is the newest
// record's, or the compact revision when that is newer.
func TestRestoreRoundTrip(t *testing.T) {
	recs := []restoredRecord{
		{"a", Record{Rev: 3, Create: 2, Version: 2, Lease: 7, Sub: 1}, "v1"},
		{"c", Record{Rev: 3, Create: 3, Version: 1, Sub: 4}, "v2"},
		{"b", Record{Rev: 5, Sub: 0}, ""},
		{"a", Record{Rev: 6, Create: 2, Version: 3, Sub: 2}, strings.Repeat("x", restoreBatchBytes)},
	}
	tests := []struct {
		name             string
		compact, wantRev int64
	}{
		{"compact below the records", 4, 6},
		{"compact above the records", 9, 9},
		{"never compacted", 0, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new")
			r, err := Restore(dir, Options{Shards: 3})
			if err != nil {
				t.Fatal(err)
			}
			for _, rr := range recs {
				if err := r.Record(rr.key, rr.rec, []byte(rr.value)); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Lease(7, 30); err != nil {
				t.Fatal(err)
			}
			made, err := r.Finish(tc.compact)
			if err != nil {
				t.Fatal(err)
			}
			db, meta, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if meta != made || meta.Rev != tc.wantRev || meta.Compact != tc.compact || meta.Shards != 3 || meta.ClusterID == 0 || meta.MemberID == 0 {
				t.Errorf("opened with %+v, Finish said %+v; want rev %d, compact %d, 3 shards, IDs", meta, made, tc.wantRev, tc.compact)
			}
			var got []restoredRecord
			if err := db.Load(func(key string, rec Record) error {
				v, err := db.Value(key, rec.Rev)
				got = append(got, restoredRecord{key, rec, string(v)})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, func(x, y restoredRecord) int {
				return cmp.Or(cmp.Compare(x.rec.Rev, y.rec.Rev), cmp.Compare(x.rec.Sub, y.rec.Sub))
			})
			if !slices.Equal(got, recs) {
				t.Errorf("records %v, want %v", got, recs)
			}
			leases, err := db.Leases()
			if err != nil {
				t.Fatal(err)
			}
			if want := map[int64]int64{7: 30}; !maps.Equal(leases, want) {
				t.Errorf("leases %v, want %v", leases, want)
			}
		})
	}
}

// TestRestoreRefusesAUsedDir: restoring never writes over anything.
func TestRestoreRefusesAUsedDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(dir, Options{Shards: 1}); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore into a dir with a file: %v, want a refusal", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the dir was changed: %v", entries)
	}
}

// TestRestoreRefusesBadRecords: records out of order or inconsistent are
// refused, and the restore is abandoned, leaving the dir empty.
func TestRestoreRefusesBadRecords(t *testing.T) {
	first := Record{Rev: 3, Create: 3, Version: 1, Sub: 1}
	tests := []struct {
		name string
		key  string
		rec  Record
	}{
		{"no key", "", Record{Rev: 4, Create: 4, Version: 1}},
		{"revision 0", "b", Record{Rev: 0, Create: 1, Version: 1}},
		{"negative sub", "b", Record{Rev: 4, Create: 4, Version: 1, Sub: -1}},
		{"older revision", "b", Record{Rev: 2, Create: 2, Version: 1}},
		{"same sub revision", "b", Record{Rev: 3, Create: 3, Version: 1, Sub: 1}},
		{"lower sub revision", "b", Record{Rev: 3, Create: 3, Version: 1, Sub: 0}},
		{"created later", "b", Record{Rev: 4, Create: 5, Version: 1}},
		{"created at 0", "b", Record{Rev: 4, Create: 0, Version: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := Restore(dir, Options{Shards: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Abort()
			if err := r.Record("a", first, nil); err != nil {
				t.Fatal(err)
			}
			if err := r.Record(tc.key, tc.rec, nil); err == nil {
				t.Fatalf("record %q %+v accepted", tc.key, tc.rec)
			}
			r.Abort()
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("the dir was left with %d entries", len(entries))
			}
		})
	}
}

// TestRestoreUnfinishedIsRefused: a dir whose restore never finished (the
// process died) has no format marker, and Open refuses it rather than
// serving part of the data.
func TestRestoreUnfinishedIsRefused(t *testing.T) {
	dir := t.TempDir()
	r, err := Restore(dir, Options{Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := r.Record(fmt.Sprint(i), Record{Rev: int64(i + 2), Create: int64(i + 2), Version: 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.batch.Commit(nil); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "no format marker") {
		t.Fatalf("open of an unfinished restore: %v, want a refusal", err)
	}
	if errors.Is(err, ErrCorrupt) {
		t.Fatalf("an unfinished restore is not corruption: %v", err)
	}
}

// TestRestoreAbortRemovesTheDirItMade: a restore into a dir that did not
// exist leaves none behind when abandoned.
func TestRestoreAbortRemovesTheDirItMade(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	r, err := Restore(dir, Options{Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Record("a", Record{Rev: 2, Create: 2, Version: 1}, []byte("v")); err != nil {
		t.Fatal(err)
	}
	r.Abort()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dir is still there: %v", err)
	}
}
