package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metastore/metastore/snapshot"
	"github.com/metastore/metastore/storage"
)

// image writes a snapshot file of a small data dir: a and b put, a
// overwritten, b deleted (revision 5), with one lease.
func image(t *testing.T) string {
	t.Helper()
	db, _, err := storage.Open(t.TempDir(), storage.Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	entries := []storage.Entry{
		{Rev: 2, Base: 2, Muts: []storage.Mutation{{Key: "a", Value: []byte("1"), Create: -1, Version: 1, Lease: 9}}},
		{Rev: 3, Base: 2, Muts: []storage.Mutation{{Key: "b", Value: []byte("2"), Create: -2, Version: 1}}},
		{Rev: 4, Base: 2, Muts: []storage.Mutation{{Key: "a", Value: []byte("3"), Create: 2, Version: 2, Lease: 9}}},
		{Rev: 5, Base: 2, Muts: []storage.Mutation{{Key: "b", Delete: true}}},
	}
	if err := db.Commit(entries, []storage.LeaseRecord{{ID: 9, TTL: 60}}, nil, 0); err != nil {
		t.Fatal(err)
	}
	v, err := db.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	img, err := snapshot.Build(t.Context(), v, snapshot.Info{MemberID: 1, Name: "m"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	r, err := img.Reader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	path := filepath.Join(t.TempDir(), "snapshot.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSnapshotCommands drives `metastore snapshot` as a user would: the
// exit code and what it prints.
func TestSnapshotCommands(t *testing.T) {
	file := image(t)
	used := t.TempDir()
	if err := os.WriteFile(filepath.Join(used, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "new")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantErr    string
		wantOpened bool
	}{
		{"no command", nil, 2, "", "Usage:", false},
		{"unknown command", []string{"save"}, 2, "", `unknown command "save"`, false},
		{"restore without a dir", []string{"restore", file}, 2, "", "--data-dir is required", false},
		{"restore without a file", []string{"restore", "--data-dir", fresh}, 2, "", "expected one snapshot file, got 0", false},
		{"restore a missing file", []string{"restore", filepath.Join(used, "none"), "--data-dir", fresh}, 1, "", "no such file", false},
		{"restore into a used dir", []string{"restore", file, "--data-dir", used}, 1, "", "not empty", false},
		{"restore", []string{"restore", file, "--data-dir", fresh, "--shards", "3"}, 0, "revision 5, compact revision 0, 1 keys (4 records), 1 leases, 0 users, 0 roles, 3 shards", "", true},
		{"status", []string{"status", file}, 0, ", 5, 1, ", "", false},
		{"status as json", []string{"status", "--write-out", "json", file}, 0, `"revision":5,"totalKey":1`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runSnapshot(tc.args, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stdout.String(), tc.wantOut) || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					code, stdout.String(), stderr.String(), tc.wantCode, tc.wantOut, tc.wantErr)
			}
			if tc.wantOpened {
				db, meta, err := storage.Open(fresh, storage.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if meta.Rev != 5 || meta.Shards != 3 {
					t.Errorf("restored dir opens at revision %d with %d shards, want 5 and 3", meta.Rev, meta.Shards)
				}
			}
		})
	}
}
