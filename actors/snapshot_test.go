package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/snapshot"
)

// TestSnapshotNeedsDataDir: in memory there is no backend to hash or copy.
func TestSnapshotNeedsDataDir(t *testing.T) {
	n := startNode(t, 2, false)
	if _, _, err := n.HashKV(t.Context(), 0); !errors.Is(err, ErrNoDataDir) {
		t.Errorf("HashKV in memory: %v, want ErrNoDataDir", err)
	}
	if _, err := n.Snapshot(t.Context(), snapshot.Info{}); !errors.Is(err, ErrNoDataDir) {
		t.Errorf("Snapshot in memory: %v, want ErrNoDataDir", err)
	}
}

// saveImage writes img out as `etcdctl snapshot save` would, and closes it.
func saveImage(t *testing.T, img *snapshot.Image) string {
	t.Helper()
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
	if n, err := io.Copy(f, r); err != nil || n != img.Size() {
		t.Fatalf("copied %d bytes of %d: %v", n, img.Size(), err)
	}
	return path
}

// TestNodeHashKVAndSnapshot: a durable node hashes its visible history;
// at a compaction's revision it answers the hash the compaction kept (from
// the compaction before), as etcd does, until it restarts; and its
// snapshot restores into a node holding the same keys and hash.
func TestNodeHashKVAndSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// start starts a node on dataDir, and returns it and how to stop it
	// (once: the test stops it, or its cleanup does).
	start := func(dataDir string) (*Node, func()) {
		n, err := Start(Config{Shards: 4, DataDir: dataDir, OnFatal: func(who string, reason any) {
			panic(fmt.Sprintf("core actor %s failed: %v", who, reason))
		}})
		if err != nil {
			t.Fatal(err)
		}
		stop := sync.OnceFunc(n.Stop)
		t.Cleanup(stop)
		return n, stop
	}
	n, stop := start(dir)
	for i := range 12 {
		if _, err := n.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{put(fmt.Sprintf("k%d", i%5), fmt.Sprint(i)), put(fmt.Sprintf("j%d", i%3), "x")}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: []byte("j"), RangeEnd: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	first := n.Revision()
	if _, err := n.Compact(ctx, first, true); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Put(ctx, &pb.PutRequest{Key: []byte("k1"), Value: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	second := n.Revision()
	if _, err := n.Compact(ctx, second, true); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Put(ctx, &pb.PutRequest{Key: []byte("k2"), Value: []byte("later")}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		rev         int64
		wantCompact int64
		wantErr     error
	}{
		{0, second, nil},
		{first, -1, nil},     // kept from the first compaction
		{second, first, nil}, // kept from the second
		{first - 1, 0, snapshot.ErrCompacted},
		{n.Revision() + 1, 0, snapshot.ErrFutureRev},
	}
	for _, tc := range tests {
		h, current, err := n.HashKV(t.Context(), tc.rev)
		if !errors.Is(err, tc.wantErr) || current != n.Revision() || (err == nil && h.CompactRevision != tc.wantCompact) {
			t.Errorf("HashKV(%d) = %+v at %d, %v; want compact revision %d at %d, %v", tc.rev, h, current, err, tc.wantCompact, n.Revision(), tc.wantErr)
		}
	}
	now, _, err := n.HashKV(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	img, err := n.Snapshot(t.Context(), snapshot.Info{Name: "m", Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	if img.Revision() != n.Revision() {
		t.Errorf("image at revision %d, want the visible %d", img.Revision(), n.Revision())
	}
	file := saveImage(t, img)
	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := snapshot.Restore(file, restored, snapshot.RestoreOptions{Shards: 2}); err != nil {
		t.Fatal(err)
	}
	want, err := n.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	stop()

	for name, dataDir := range map[string]string{"restarted": dir, "restored": restored} {
		m, stop := start(dataDir)
		if h, _, err := m.HashKV(t.Context(), 0); err != nil || h != now {
			t.Errorf("%s: HashKV(0) = %+v, %v; want %+v", name, h, err, now)
		}
		// No compaction since it started: the hash at the compact
		// revision is computed afresh.
		if h, _, err := m.HashKV(t.Context(), second); err != nil || h.CompactRevision != second {
			t.Errorf("%s: HashKV(%d) = %+v, %v; want it computed at compact revision %d", name, second, h, err, second)
		}
		got, err := m.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Kvs) != fmt.Sprint(want.Kvs) {
			t.Errorf("%s: keys\n%v\nwant\n%v", name, got.Kvs, want.Kvs)
		}
		stop()
	}
}
