package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// fill commits n revisions of one key each, one sync per commit, as the
// sequencer does under light load, and returns the newest revision.
func fill(t *testing.T, db *DB, from, n int) int64 {
	t.Helper()
	value := []byte(strings.Repeat("v", 900))
	for i := from; i < from+n; i++ {
		rev := int64(i + 1)
		muts := []Mutation{{Key: fmt.Sprintf("key-%05d", i), Value: value, Create: rev, Version: 1}}
		if err := db.Commit([]Entry{{Rev: rev, Base: rev, Muts: muts}}, nil, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	return int64(from + n)
}

// newestLog returns the path of the newest write-ahead log in dir.
func newestLog(t *testing.T, dir string) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no write-ahead log in %s (%v)", dir, err)
	}
	slices.Sort(logs)
	return logs[len(logs)-1]
}

// TestWALDamage checks that a write-ahead log damaged in the middle is
// refused with the file and offset named, leaving the dir as it was, while
// a torn tail (what a crash mid-write leaves) is not: every synced commit
// comes back.
func TestWALDamage(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, path string, size int64)
		refused bool
	}{
		{"one flipped byte", func(t *testing.T, path string, size int64) {
			b := readFile(t, path)
			b[size/2] ^= 0x10
			writeFile(t, path, b)
		}, true},
		{"4 KiB of garbage", func(t *testing.T, path string, size int64) {
			b := readFile(t, path)
			for i := range 4096 {
				b[size/2+int64(i)] = byte(i*7 + 3)
			}
			writeFile(t, path, b)
		}, true},
		{"torn tail", func(t *testing.T, path string, size int64) {
			b := readFile(t, path)
			writeFile(t, path, append(b[:size], "\x17\x00\x2a partial chunk"...))
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			db, _, err := Open(dir, Options{DefaultShards: 1})
			if err != nil {
				t.Fatal(err)
			}
			last := fill(t, db, 1, 400)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			log := newestLog(t, dir)
			size := int64(len(readFile(t, log)))
			if size < 3*32<<10 {
				t.Fatalf("log %s holds %d bytes, too few to damage its middle", log, size)
			}
			c.damage(t, log, size)
			before := readFile(t, log)

			db, meta, err := Open(dir, Options{})
			if !c.refused {
				if err != nil {
					t.Fatalf("torn tail refused: %v", err)
				}
				defer db.Close()
				if meta.Rev != last {
					t.Fatalf("revision after a torn tail = %d, want %d", meta.Rev, last)
				}
				return
			}
			if err == nil {
				db.Close()
				t.Fatalf("damaged log accepted; started at revision %d after %d was synced", meta.Rev, last)
			}
			t.Logf("refused: %v", err)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			for _, want := range []string{filepath.Base(log), "offset", "truncate"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if after := readFile(t, log); string(after) != string(before) {
				t.Error("refusing the dir changed its log")
			}
			// The way out the message offers: truncate at the damage.
			var off int64
			if _, err := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "truncate that file to "):], "truncate that file to %d bytes", &off); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(log, off); err != nil {
				t.Fatal(err)
			}
			db, meta, err = Open(dir, Options{})
			if err != nil {
				t.Fatalf("open after truncating at the damage: %v", err)
			}
			defer db.Close()
			if meta.Rev < 2 || meta.Rev >= last {
				t.Fatalf("revision after truncating at the damage = %d, want between 2 and %d", meta.Rev, last-1)
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fullFS reports a file system with avail bytes free.
type fullFS struct {
	vfs.FS
	avail uint64
}

func (f fullFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	du.AvailBytes = f.avail
	return du, err
}

func TestOpenRefusesWithoutFreeSpace(t *testing.T) {
	dir := t.TempDir()
	db, _, err := Open(dir, Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db, 1, 10)
	db.Close()

	db, _, err = Open(dir, Options{FS: fullFS{vfs.Default, 1 << 20}})
	if err != nil {
		t.Fatalf("a read-only open needs no free space: %v", err)
	}
	err = db.Writable()
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "free some space") {
		t.Fatalf("Writable on a full disk = %v, want ErrNoSpace and what to do", err)
	}
	if _, _, err := Open(filepath.Join(t.TempDir(), "new"), Options{DefaultShards: 1, FS: fullFS{vfs.Default, 1 << 20}}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("creating a dir on a full disk = %v, want ErrNoSpace", err)
	}
}

// TestOpenExplains checks the messages for dirs that cannot be opened for
// reasons other than their contents.
func TestOpenExplains(t *testing.T) {
	dir := t.TempDir()
	db, _, err := Open(dir, Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t.Run("locked by another process", func(t *testing.T) {
		_, _, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "locked by another process") || strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("second open = %v", err)
		}
	})
	for _, c := range []struct {
		errno syscall.Errno
		want  string
	}{
		{syscall.EACCES, "not accessible to this user for writing (permission denied)"},
		{syscall.EROFS, "on a read-only file system"},
	} {
		t.Run(c.errno.Error(), func(t *testing.T) {
			inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
				if op.Kind == errorfs.OpLock {
					return &os.PathError{Op: "open", Path: op.Path, Err: c.errno}
				}
				return nil
			})
			_, _, err := Open(dir, Options{FS: errorfs.Wrap(vfs.Default, inj)})
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "corrupt") {
				t.Fatalf("open = %v, want it to say %q", err, c.want)
			}
		})
	}
}

// TestWritesAfterFailureOrClose checks that a write after one that failed
// returns that failure without reaching pebble (whose commit pipeline is
// unusable then), and that a write after Close is refused, not a panic.
func TestWritesAfterFailureOrClose(t *testing.T) {
	var fail atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && strings.HasSuffix(op.Path, ".log") && op.Kind == errorfs.OpFileWrite {
			return syscall.EIO
		}
		return nil
	})
	db, _, err := Open(t.TempDir(), Options{DefaultShards: 1, FS: errorfs.Wrap(vfs.Default, inj)})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db, 1, 3)
	fail.Store(true)
	first := db.Commit([]Entry{{Rev: 5, Base: 5, Muts: []Mutation{{Key: "x", Create: 5, Version: 1}}}}, nil, nil, 0)
	if !errors.Is(first, syscall.EIO) {
		t.Fatalf("commit on a failing log = %v, want EIO", first)
	}
	fail.Store(false)
	for name, write := range map[string]func() error{
		"commit": func() error { return db.Commit(nil, nil, nil, 3) },
		"drop":   func() error { return db.Drop([]KeyRev{{Key: "key-00001", Rev: 2}}) },
		"alarm":  func() error { return db.SetNoSpace(true) },
	} {
		if err := write(); !errors.Is(err, syscall.EIO) {
			t.Errorf("%s after a failed commit = %v, want the failure again", name, err)
		}
	}
	db.Close()
	if err := db.Commit(nil, nil, nil, 3); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after Close = %v, want ErrClosed", err)
	}
}
