package test

// Storage faults injected under a running server through pebble's
// fault-injecting file system (errorfs): what a full disk, a failing disk
// and a failed sync do to the KV service. These run on MetaStore only: etcd
// answers none of them (it exits on a failed write or sync, and it has no
// free-space reserve), so there is no etcd answer to compare with; the
// NOSPACE error text is etcd's own.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// faultFS injects err into the chosen operations on write-ahead log files
// while on, and reports free space as avail when avail is set.
type faultFS struct {
	*errorfs.FS
	on    atomic.Bool
	avail atomic.Uint64 // 0: the real figure
}

func newFaultFS(kinds []errorfs.OpKind, err error) *faultFS {
	f := &faultFS{}
	f.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !f.on.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		for _, k := range kinds {
			if op.Kind == k {
				return err
			}
		}
		return nil
	}))
	return f
}

func (f *faultFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	if a := f.avail.Load(); a > 0 {
		du.AvailBytes = a
	}
	return du, err
}

// within runs fn and fails the test if it has not returned after d: the
// faults below must be answered, never hang.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

var syncOps = []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}

// TestFailedLogWrite injects ENOSPC and EIO into the log's writes and
// syncs under a running server: writes are answered with an error at once
// (NOSPACE for ENOSPC), reads keep being served, Close stops the server,
// and a restart on a sound disk has every acknowledged write and takes new
// ones.
func TestFailedLogWrite(t *testing.T) {
	cases := []struct {
		name  string
		kinds []errorfs.OpKind
		err   error
		want  error // the gRPC error of a write after the fault
	}{
		{"ENOSPC on write", []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}, syscall.ENOSPC, rpctypes.ErrGRPCNoSpace},
		{"EIO on write", []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}, syscall.EIO, nil},
		{"ENOSPC on sync", syncOps, syscall.ENOSPC, rpctypes.ErrGRPCNoSpace},
		{"EIO on sync", syncOps, syscall.EIO, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := newFaultFS(c.kinds, c.err)
			cfg := durConfig(dir, 2)
			cfg.FS = ffs
			ds := durStart(t, cfg)
			acked := map[string]int64{}
			for i := range 50 {
				k := fmt.Sprintf("k%03d", i)
				acked[k] = ds.put(t, k, "before")
			}
			rev := ds.currentRev(t)

			ffs.on.Store(true)
			// A put and a compaction in flight together when the log
			// fails: both are answered, with errors.
			var putErr, compactErr error
			within(t, 30*time.Second, "a put and a compaction on a failing log", func() {
				var wg sync.WaitGroup
				wg.Add(2)
				go func() {
					defer wg.Done()
					_, putErr = ds.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte("during"), Value: []byte("x")})
				}()
				go func() {
					defer wg.Done()
					_, compactErr = ds.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: rev - 1})
				}()
				wg.Wait()
			})
			if putErr == nil {
				t.Fatal("a put on a failing log succeeded")
			}
			if compactErr == nil {
				t.Fatal("a compaction on a failing log succeeded")
			}
			// The fault stays; later writes are refused at once, whatever
			// the disk does now.
			ffs.on.Store(false)
			for _, req := range []func() error{
				func() error {
					_, err := ds.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte("after"), Value: []byte("x")})
					return err
				},
				func() error {
					_, err := ds.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte("k000")})
					return err
				},
				func() error {
					_, err := ds.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: rev})
					return err
				},
			} {
				var err error
				within(t, 10*time.Second, "a write after the log failed", func() { err = req() })
				if err == nil {
					t.Fatal("a write after the log failed succeeded")
				}
				if c.want != nil {
					wantRPCErr(t, err, c.want)
				} else if status.Code(err) != codes.Unavailable {
					t.Fatalf("write after the log failed: %v, want code Unavailable", err)
				}
			}
			// Reads are served at the last durable revision.
			resp, err := ds.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")})
			if err != nil {
				t.Fatalf("read after the log failed: %v", err)
			}
			if len(resp.Kvs) != len(acked) || resp.Header.Revision != rev {
				t.Fatalf("read after the log failed: %d keys at revision %d, want %d at %d", len(resp.Kvs), resp.Header.Revision, len(acked), rev)
			}
			// /health says so: the member is read-only until a restart
			// (ENOSPC raised the NOSPACE alarm, which /health names first).
			wantReason := "storage failed"
			if c.want != nil {
				wantReason = "ALARM NOSPACE"
			}
			hr, err := http.Get("http://" + ds.Endpoint + "/health")
			if err != nil {
				t.Fatalf("GET /health after the log failed: %v", err)
			}
			body, _ := io.ReadAll(hr.Body)
			hr.Body.Close()
			if hr.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"health":"false"`) || !strings.Contains(string(body), wantReason) {
				t.Fatalf("GET /health after the log failed: %d %s, want 503, unhealthy, %q", hr.StatusCode, body, wantReason)
			}
			if log := ds.log.String(); !strings.Contains(log, "log failed") || !strings.Contains(log, c.err.Error()) {
				t.Errorf("the server's log does not say the log failed and why:\n%s", log)
			}
			within(t, 30*time.Second, "Close after the log failed", func() { ds.close(t) })

			again := durStart(t, durConfig(dir, 2))
			for k, rev := range acked {
				r := again.rangeKV(t, &pb.RangeRequest{Key: []byte(k)})
				if len(r.Kvs) != 1 || r.Kvs[0].ModRevision != rev || string(r.Kvs[0].Value) != "before" {
					t.Fatalf("after restart, %s = %v, want the value written at %d", k, kvSummary(r.Kvs), rev)
				}
			}
			if got := again.currentRev(t); got < rev {
				t.Fatalf("restarted at revision %d, below the acknowledged %d", got, rev)
			}
			again.put(t, "resumed", "x")
		})
	}
}

// TestLowDiskSpace fills the disk (as the file system reports it) under a
// running server: the NOSPACE alarm is raised, puts get etcd's "database
// space exceeded" while reads and deletes run, and once space is freed puts
// resume without a restart, nothing acknowledged lost.
func TestLowDiskSpace(t *testing.T) {
	dir := t.TempDir()
	ffs := newFaultFS(nil, nil)
	cfg := durConfig(dir, 2)
	cfg.FS = ffs
	ds := durStart(t, cfg)
	first := ds.put(t, "a", "1")
	ds.put(t, "b", "1")

	ffs.avail.Store(1 << 20)
	wantRPCErr(t, putUntil(t, ds, true), rpctypes.ErrGRPCNoSpace)
	if r := ds.rangeKV(t, &pb.RangeRequest{Key: []byte("a")}); len(r.Kvs) != 1 || r.Kvs[0].ModRevision != first {
		t.Fatalf("read under NOSPACE: %s", kvSummary(r.Kvs))
	}
	if _, err := ds.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte("b")}); err != nil {
		t.Fatalf("delete under NOSPACE: %v", err)
	}
	if !strings.Contains(ds.log.String(), "NOSPACE alarm raised") {
		t.Errorf("raising the alarm was not logged:\n%s", ds.log.String())
	}

	ffs.avail.Store(0)
	if err := putUntil(t, ds, false); err != nil {
		t.Fatalf("put once space is freed: %v", err)
	}
	ds.close(t)

	ffs.avail.Store(1 << 20)
	cfg.FS = ffs
	if _, err := durTryStart(t, cfg); err == nil || !strings.Contains(err.Error(), "free some space") {
		t.Fatalf("start on a full disk = %v, want a refusal that says what to do", err)
	}
	again := durStart(t, durConfig(dir, 2))
	if r := again.rangeKV(t, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("d")}); len(r.Kvs) != 2 {
		t.Fatalf("after restart: %s, want a and c", kvSummary(r.Kvs))
	}
}

// TestDamagedWALRefused damages the newest write-ahead log of a data dir
// in its middle, as a failing disk would: the server refuses to start,
// naming the file, rather than come up below a revision it acknowledged.
func TestDamagedWALRefused(t *testing.T) {
	dir := t.TempDir()
	ds := durStart(t, durConfig(dir, 2))
	value := strings.Repeat("v", 500)
	var last int64
	for i := range 600 {
		last = ds.put(t, fmt.Sprintf("key-%04d", i), value)
	}
	ds.close(t)

	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no write-ahead log in %s (%v)", dir, err)
	}
	slices.Sort(logs)
	newest := logs[len(logs)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(newest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err = durTryStart(t, durConfig(dir, 2))
	if err == nil {
		t.Fatalf("started on a damaged log at revision %d, after acknowledging %d", ds.currentRev(t), last)
	}
	for _, want := range []string{"corrupt data dir", filepath.Base(newest), "offset"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
}

// TestCloseWithCommitHanging makes the log's sync hang, as a disk that
// stopped answering does: the write waits (it is never acknowledged), reads
// are served, and Close still stops the server.
func TestCloseWithCommitHanging(t *testing.T) {
	release := make(chan struct{})
	var hang atomic.Bool
	fsys := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if hang.Load() && strings.HasSuffix(op.Path, ".log") && slices.Contains(syncOps, op.Kind) {
			<-release
		}
		return nil
	}))
	defer close(release)
	cfg := durConfig(t.TempDir(), 2)
	cfg.FS = fsys
	ds := durStart(t, cfg)
	rev := ds.put(t, "a", "1")

	hang.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := ds.KV.Put(ctx, &pb.PutRequest{Key: []byte("b"), Value: []byte("2")}); err == nil {
		t.Fatal("a put was acknowledged while its sync hangs")
	}
	if r := ds.rangeKV(t, &pb.RangeRequest{Key: []byte("a")}); len(r.Kvs) != 1 || r.Kvs[0].ModRevision != rev {
		t.Fatalf("read while a sync hangs: %s", kvSummary(r.Kvs))
	}
	within(t, 60*time.Second, "Close with a hanging sync", func() { ds.close(t) })
}

// putUntil puts key c until the put fails (failing) or succeeds (not
// failing), for at most 20 s: the sequencer notices free space at its next
// check, within a second. It returns the last put's error.
func putUntil(t *testing.T, ds *durServer, failing bool) error {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err := ds.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte("c"), Value: []byte("1")})
		if (err != nil) == failing || time.Now().After(deadline) {
			return err
		}
	}
}
