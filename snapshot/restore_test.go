package snapshot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/storage"
)

// restore restores file into a new dir and opens a view of it.
func restore(t *testing.T, file string, opts RestoreOptions) (RestoreResult, *storage.View) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	res, err := Restore(file, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	db, meta, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if meta.Rev != res.Revision || meta.Compact != res.CompactRevision || meta.MemberID != res.MemberID || meta.ClusterID != res.ClusterID {
		t.Fatalf("restored dir opens with %+v, Restore said %+v", meta, res)
	}
	return res, view(t, db)
}

// survivingRecords lists the records of v that survive its compaction, as
// "rev.sub:key=value" strings (a "-" marks a tombstone), with their create
// revision, version and lease.
func survivingRecords(t *testing.T, v *storage.View) []string {
	t.Helper()
	keep, err := survivors(t.Context(), v, v.Compact())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = v.Records(func(key string, rec storage.Record, value []byte) error {
		if rec.Rev <= v.Compact() && keep[key] != revOf(rec) {
			return nil
		}
		mark := ""
		if rec.Tombstone() {
			mark = "-"
		}
		out = append(out, fmt.Sprintf("%d.%d:%s%s=%s c%d v%d l%d", rec.Rev, rec.Sub, key, mark, value, rec.Create, rec.Version, rec.Lease))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameData checks that got holds what want holds: the same revisions,
// surviving records, leases, and HashKV at every revision it can hash.
func sameData(t *testing.T, got, want *storage.View) {
	t.Helper()
	if got.Rev() != want.Rev() || got.Compact() != want.Compact() {
		t.Errorf("revision %d, compact revision %d; want %d, %d", got.Rev(), got.Compact(), want.Rev(), want.Compact())
	}
	if g, w := survivingRecords(t, got), survivingRecords(t, want); !slices.Equal(g, w) {
		t.Errorf("records\n%v\nwant\n%v", g, w)
	}
	gl, err := got.Leases()
	if err != nil {
		t.Fatal(err)
	}
	wl, err := want.Leases()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(gl, wl) {
		t.Errorf("leases %v, want %v", gl, wl)
	}
	for rev := max(want.Compact(), 1); rev <= want.Rev(); rev++ {
		g, err := HashKV(t.Context(), got, rev, got.Rev())
		if err != nil {
			t.Fatal(err)
		}
		w, err := HashKV(t.Context(), want, rev, want.Rev())
		if err != nil {
			t.Fatal(err)
		}
		if g != w {
			t.Errorf("HashKV(%d) = %+v, want %+v", rev, g, w)
		}
	}
}

// TestRestoreEtcdSnapshot: an etcd snapshot restores into a data dir that
// holds what the same history written by MetaStore holds, and etcd's
// HashKV.
func TestRestoreEtcdSnapshot(t *testing.T) {
	for _, h := range histories {
		t.Run(h.name, func(t *testing.T) {
			e := startEtcd(t)
			playEtcd(t, e, h)
			res, got := restore(t, e.snapshot(t), RestoreOptions{Shards: 3})
			want := view(t, playStore(t, h, true).db)
			sameData(t, got, want)
			if res.Leases != len(h.leases) || !res.Verified {
				t.Errorf("restored %d leases (verified %v), want %d, verified", res.Leases, res.Verified, len(h.leases))
			}
			etcdHash, err := e.cli.HashKV(context.Background(), e.e.Clients[0].Addr().String(), 0)
			if err != nil {
				t.Fatal(err)
			}
			kh, err := HashKV(t.Context(), got, 0, got.Rev())
			if err != nil {
				t.Fatal(err)
			}
			if kh.Hash != etcdHash.Hash || kh.Revision != etcdHash.HashRevision {
				t.Errorf("restored HashKV %+v, etcd's %d at %d", kh, etcdHash.Hash, etcdHash.HashRevision)
			}
			resp, err := e.cli.Get(context.Background(), "", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			if int64(res.Keys) != resp.Count {
				t.Errorf("restored %d keys, etcd has %d", res.Keys, resp.Count)
			}
		})
	}
}

// TestBuildRestoreRoundTrip: an image restores into a data dir holding
// what the image was built from, records left over from compaction aside.
func TestBuildRestoreRoundTrip(t *testing.T) {
	for _, h := range histories {
		t.Run(h.name, func(t *testing.T) {
			want := view(t, playStore(t, h, false).db)
			img := build(t, want, Info{MemberID: 1, Name: "m", Index: 10, Term: 2})
			_, got := restore(t, img.path, RestoreOptions{Shards: 1})
			sameData(t, got, want)
		})
	}
}

// TestBuildUpToRevision: an image at a revision leaves out the records
// above it.
func TestBuildUpToRevision(t *testing.T) {
	p := playStore(t, histories[0], true)
	full := view(t, p.db)
	img := build(t, full, Info{MemberID: 1, Revision: 4})
	res, got := restore(t, img.path, RestoreOptions{Shards: 1})
	if res.Revision != 4 || got.Rev() != 4 {
		t.Fatalf("image at revision 4 restores at %d", res.Revision)
	}
	for rev := int64(1); rev <= 4; rev++ {
		g, _ := HashKV(t.Context(), got, rev, 4)
		w, _ := HashKV(t.Context(), full, rev, full.Rev())
		if g != w {
			t.Errorf("HashKV(%d) = %+v, want %+v", rev, g, w)
		}
	}
}

// TestRestoreRefuses: a damaged or truncated file, a file without its
// sha256 (unless told to skip the check), and a dir that is not empty are
// refused, and the dir is left as it was.
func TestRestoreRefuses(t *testing.T) {
	v := view(t, playStore(t, histories[1], true).db)
	img := build(t, v, Info{MemberID: 1})
	good, err := os.ReadFile(img.path)
	if err != nil {
		t.Fatal(err)
	}
	bolt := good[:len(good)-sha256.Size]
	flipped := slices.Clone(good)
	flipped[len(bolt)/2] ^= 0xff
	// A file cut at a page boundary and given a valid sha256 of what is
	// left: the sha256 vouches for bytes that are not a whole bbolt file.
	cut := bolt[:len(bolt)-4096]
	sum := sha256.Sum256(cut)
	resummed := append(slices.Clone(cut), sum[:]...)
	tests := []struct {
		name     string
		file     []byte
		skip     bool
		want     error
		nonEmpty bool
	}{
		{"a byte changed", flipped, false, ErrCorrupt, false},
		{"truncated", good[:len(good)-100], false, ErrCorrupt, false},
		{"truncated, hash check skipped", cut, true, ErrCorrupt, false},
		{"truncated with a new sha256", resummed, false, ErrCorrupt, false},
		{"no sha256", bolt, false, ErrCorrupt, false},
		{"not a snapshot", make([]byte, 4096*4), true, ErrCorrupt, false},
		{"dir not empty", good, false, storage.ErrNotEmpty, true},
		{"no sha256, hash check skipped", bolt, true, nil, false},
		{"intact", good, false, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "snapshot.db")
			if err := os.WriteFile(file, tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "restored")
			if tc.nonEmpty {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Restore(file, dir, RestoreOptions{Shards: 1, SkipHashCheck: tc.skip})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Restore: %v, want %v", err, tc.want)
			}
			entries, statErr := os.ReadDir(dir)
			switch {
			case tc.want == nil:
				if res.Revision != v.Rev() || res.Verified == tc.skip {
					t.Errorf("restored at %d (verified %v), want %d (verified %v)", res.Revision, res.Verified, v.Rev(), !tc.skip)
				}
			case tc.nonEmpty:
				if len(entries) != 1 {
					t.Errorf("the dir was changed: %v", entries)
				}
			case !errors.Is(statErr, os.ErrNotExist):
				t.Errorf("a refused restore left the dir behind: %v, %v", entries, statErr)
			}
		})
	}
}
