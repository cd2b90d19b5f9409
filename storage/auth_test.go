package storage

import (
	"maps"
	"path/filepath"
	"testing"
)

// authState turns a map of auth records into strings, for comparing and
// printing.
func authState(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func checkAuth(t *testing.T, what string, got map[string][]byte, err error, want map[string]string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if g := authState(got); !maps.Equal(g, want) {
		t.Fatalf("%s: auth %q, want %q", what, g, want)
	}
}

// TestAuthCommitReopen: auth records committed with writes and leases are
// there after a reopen, a nil value deletes one, a later record of a key
// in the same commit wins, and none of them is taken for a record, a lease
// or the store's revision.
func TestAuthCommitReopen(t *testing.T) {
	dir := t.TempDir()
	db, _, err := Open(dir, Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	entries := []Entry{{Rev: 2, Base: 2, Muts: []Mutation{{Key: "k", Value: []byte("v"), Create: -1, Version: 1}}}}
	auth := []AuthRecord{
		{Key: "u/alice", Value: []byte("alice")},
		{Key: "u/bob", Value: []byte("bob")},
		// Keys that begin like other prefixes' keys, and a huge "revision".
		{Key: "r/l/m", Value: []byte("role")},
		{Key: "enabled", Value: []byte{1}},
		{Key: "revision", Value: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{Key: "u/bob", Value: []byte("bob2")},
	}
	if err := db.Commit(entries, []LeaseRecord{{ID: 5, TTL: 10}}, auth, 0); err != nil {
		t.Fatal(err)
	}
	v, err := db.View()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(nil, nil, []AuthRecord{{Key: "u/alice"}, {Key: "enabled", Value: []byte{0}}}, 0); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{"u/alice": "alice", "u/bob": "bob2", "r/l/m": "role", "enabled": "\x01", "revision": "\xff\xff\xff\xff\xff\xff\xff\xff"}
	after := map[string]string{"u/bob": "bob2", "r/l/m": "role", "enabled": "\x00", "revision": "\xff\xff\xff\xff\xff\xff\xff\xff"}
	got, err := v.Auth()
	checkAuth(t, "view opened before the delete", got, err, before)
	if v.Rev() != 2 {
		t.Errorf("view revision %d, want 2", v.Rev())
	}
	v.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, meta, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if meta.Rev != 2 || meta.Compact != 0 {
		t.Errorf("reopened at revision %d, compact %d; want 2, 0", meta.Rev, meta.Compact)
	}
	got, err = db.Auth()
	checkAuth(t, "reopened", got, err, after)
	var keys []string
	if err := db.Load(func(key string, _ Record) error { keys = append(keys, key); return nil }); err != nil || len(keys) != 1 || keys[0] != "k" {
		t.Errorf("Load read %q, %v; want only k", keys, err)
	}
	if leases, err := db.Leases(); err != nil || len(leases) != 1 || leases[5] != 10 {
		t.Errorf("leases %v, %v; want lease 5", leases, err)
	}
	if err := db.Writable(); err != nil {
		t.Fatal(err)
	}
	got, err = db.Auth()
	checkAuth(t, "writable", got, err, after)
}

// TestRestoreAuth: auth records given to a Restorer are the new dir's, an
// empty value included; one without a key is refused.
func TestRestoreAuth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	r, err := Restore(dir, Options{Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"u/root": "root", "r/root": "", "enabled": "\x01", "revision": "\x00\x00\x00\x00\x00\x00\x00\x07"}
	for k, v := range want {
		if err := r.Auth(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Auth("", []byte("x")); err == nil {
		t.Error("an auth record without a key was taken")
	}
	if _, err := r.Finish(0); err != nil {
		t.Fatal(err)
	}
	db, _, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Auth()
	checkAuth(t, "restored", got, err, want)
}
