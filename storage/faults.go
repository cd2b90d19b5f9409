package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

var (
	// ErrCorrupt marks a data dir whose contents are damaged: the server
	// refuses to start on it rather than serve less than it acknowledged.
	ErrCorrupt = errors.New("corrupt data dir")
	// ErrNoSpace marks a file system without the free space the data dir
	// needs (Options.MinFreeBytes), or a write that failed for lack of it.
	ErrNoSpace = errors.New("no space left for the data dir")
)

// explain names the cause of an operating-system error in words an
// operator can act on, keeping err in the chain; other errors are returned
// as they are.
func explain(err error) error {
	var reason string
	switch {
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK),
		strings.Contains(err.Error(), "lock held by current process"): // pebble's own, within one process
		reason = "locked by another process (is another metastore running on it?)"
	case errors.Is(err, syscall.EROFS):
		reason = "on a read-only file system"
	case errors.Is(err, fs.ErrPermission):
		reason = "not accessible to this user for writing (permission denied)"
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %v", ErrNoSpace, err)
	case errors.Is(err, syscall.EIO):
		reason = "its disk reported an I/O error"
	default:
		return err
	}
	return fmt.Errorf("%s: %w", reason, err)
}

// bounded runs fn, giving up after limit: on a disk that is full or
// failing pebble can retry without end, and the server must say why rather
// than hang. fn goes on in the background after a timeout; the caller must
// not use what it sets then. what names the work in the error.
func bounded(limit time.Duration, what string, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return fmt.Errorf("%s did not finish in %v: is its disk full or failing? (pebble's lines above may say)", what, limit)
	}
}

// walDamage is where a write-ahead log is damaged.
type walDamage struct {
	File   string
	Offset int64
}

func (w walDamage) String() string {
	return fmt.Sprintf("the write-ahead log %s is damaged at offset %d, and records the log had synced follow it (a crash leaves a torn tail, never this)", w.File, w.Offset)
}

// findWALDamage reads every write-ahead log in dir as pebble replays it and
// returns the first damaged record that synced records follow. pebble's
// reader confirms such damage only from a later block of the same log (a
// chunk in the same 32 KiB block as the damage is not looked at).
func findWALDamage(fsys vfs.FS, dir string) (walDamage, bool) {
	logs, err := wal.Scan(wal.Dir{FS: fsys, Dirname: dir})
	if err != nil {
		return walDamage{}, false
	}
	for _, ll := range logs {
		r := ll.OpenForRead()
		for {
			rec, off, err := r.NextRecord()
			if err == nil {
				_, err = io.Copy(io.Discard, rec)
			}
			if err == nil {
				continue
			}
			_ = r.Close()
			if errors.Is(err, record.ErrInvalidChunk) || errors.Is(err, record.ErrZeroedChunk) {
				return walDamage{File: off.PhysicalFile, Offset: off.Physical}, true
			}
			break
		}
	}
	return walDamage{}, false
}

// checkSpace refuses to open the dir for writing on a file system with
// less than a quarter of its reserve free: pebble's open writes, and on a
// full disk it would retry without end. Between that and the reserve the
// dir opens, under the NOSPACE alarm, so that a server stopped under the
// alarm starts again as it was.
func (d *DB) checkSpace() error {
	avail, reserve, err := d.space()
	if err != nil || d.opts.MinFreeBytes < 0 || avail >= reserve/4 {
		return nil // a file system that cannot say is not refused
	}
	return fmt.Errorf("storage: %s: %w: %d bytes free on its file system, %d needed to open it; free some space and start again",
		d.dir, ErrNoSpace, avail, reserve/4)
}

// LowSpace reports whether the dir's file system has less free space than
// its reserve, and how much it has. The reserve is Options.MinFreeBytes,
// or an eighth of a file system too small for that. The sequencer checks
// it after commits and while idle: below the reserve it raises the NOSPACE
// alarm, so that a disk filling up is met by refusing puts while pebble
// still has room to flush and compact. wasLow is the last answer: space
// counts as back only an eighth above the reserve, so that a disk hovering
// at the threshold does not flip the alarm at every check.
func (d *DB) LowSpace(wasLow bool) (bool, uint64, error) {
	if d.opts.MinFreeBytes < 0 {
		return false, 0, nil
	}
	avail, reserve, err := d.space()
	if err != nil {
		return false, 0, err
	}
	if wasLow {
		reserve += reserve / 8
	}
	return avail < reserve, avail, nil
}

// space returns the free space of the dir's file system and its reserve.
func (d *DB) space() (avail, reserve uint64, err error) {
	du, err := d.opts.FS.GetDiskUsage(d.dir)
	if err != nil {
		return 0, 0, err
	}
	return du.AvailBytes, min(uint64(d.opts.MinFreeBytes), du.TotalBytes/8), nil
}

// pebbleLogger sends pebble's log lines to the server's log. A fatal line
// is logged, then panics with a pebbleFatal: a write that meets it (pebble
// calls Fatalf when a commit fails) recovers it into an error, through
// recoverFatal; anywhere else it ends the process, as pebble expects.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "from", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "from", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	f := pebbleFatal{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.cause = err
		}
	}
	p.l.Error(f.msg, "from", "pebble", "fatal", true)
	panic(f)
}

// pebbleFatal is a fatal error pebble reported; cause is the error it
// named, kept so that callers can tell a full disk (ENOSPC) from others.
type pebbleFatal struct {
	msg   string
	cause error
}

func (f pebbleFatal) Error() string { return f.msg } // pebble's own, "pebble: ..."
func (f pebbleFatal) Unwrap() error { return f.cause }

// recoverFatal, deferred, turns a pebbleFatal panic of the calling write
// into *err. A commit that fails leaves pebble's commit pipeline unusable:
// the caller must write nothing more (the sequencer stops committing; see
// its fail; DB refuses later writes).
func recoverFatal(err *error) {
	if r := recover(); r != nil {
		*err = fatalError(r)
	}
}

// fatalError returns the pebbleFatal a write recovered, and panics again
// with anything else: pebble panics plainly where its locks are still held,
// and there the process must end.
func fatalError(r any) error {
	f, ok := r.(pebbleFatal)
	if !ok {
		panic(r)
	}
	return f
}

// events logs what pebble reports going wrong. Background errors (a flush
// or compaction that failed, as on a full disk, where pebble retries them)
// and slow disks are logged at most once per logEvery each, with a count of
// the lines left out.
func (d *DB) events() *pebble.EventListener {
	l := d.opts.Logger
	bg, slow := &limited{}, &limited{}
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			if n, ok := bg.take(); ok {
				l.Error("storage: pebble background error (a flush or compaction failed; pebble retries it)", "dir", d.dir, "err", explain(err), "unlogged", n)
			}
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			l.Error("storage: pebble found corrupt data", "dir", d.dir, "path", info.Path, "err", info.Details)
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			if n, ok := slow.take(); ok {
				l.Warn("storage: disk slow", "dir", d.dir, "path", info.Path, "op", info.OpType.String(), "duration", info.Duration, "unlogged", n)
			}
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			l.Warn("storage: pebble stalls writes", "dir", d.dir, "reason", info.Reason)
		},
		WriteStallEnd: func() {
			l.Info("storage: pebble resumes writes", "dir", d.dir)
		},
	}
}

// logEvery spaces repeated log lines of one kind.
const logEvery = 10 * time.Second

// limited lets one line through per logEvery and counts the others.
type limited struct {
	last    atomic.Int64 // unix nanoseconds of the last line let through
	skipped atomic.Int64
}

func (l *limited) take() (skipped int64, ok bool) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(logEvery) || !l.last.CompareAndSwap(last, now) {
		l.skipped.Add(1)
		return 0, false
	}
	return l.skipped.Swap(0), true
}
