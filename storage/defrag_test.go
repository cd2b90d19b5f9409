package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// defragFill commits n records of size random bytes each (so that pebble
// cannot compress them away), one revision apiece
// from revision first and a hundred to a commit, and returns their names.
func defragFill(t *testing.T, db *DB, first int64, n, size int) []KeyRev {
	t.Helper()
	var recs []KeyRev
	var entries []Entry
	for i := range n {
		rev := first + int64(i)
		key := fmt.Sprintf("k%05d", i)
		entries = append(entries, Entry{Rev: rev, Base: rev, Muts: []Mutation{{Key: key, Value: value(size), Create: -1, Version: 1}}})
		recs = append(recs, KeyRev{Key: key, Rev: rev})
		if len(entries) == 100 || i == n-1 {
			if err := db.Commit(entries, nil, nil, 0); err != nil {
				t.Fatal(err)
			}
			entries = entries[:0]
		}
	}
	return recs
}

func value(size int) []byte {
	v := make([]byte, size)
	_, _ = rand.Read(v)
	return v
}

// TestDefragmentGivesSpaceBack drops most of the records, as compaction
// does, and defragments: the space they took is given back, the size in use
// never exceeds the size, and the records kept still load.
func TestDefragmentGivesSpaceBack(t *testing.T) {
	dir := t.TempDir()
	db, _, err := Open(dir, Options{DefaultShards: 1, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// More than a memtable holds, so that most of it is in tables: pebble
	// keeps the write-ahead logs of flushed memtables for reuse, and they
	// count in Size (up to a memtable's worth).
	const n, size, kept = 6000, 2048, 10
	recs := defragFill(t, db, 2, n, size)
	if err := db.Drop(recs[:n-kept]); err != nil {
		t.Fatal(err)
	}
	before, inUse := db.Size(), db.SizeInUse()
	if inUse > before {
		t.Errorf("before defragmenting: %d bytes in use of %d", inUse, before)
	}
	if before < n*size {
		t.Fatalf("%d records of %d bytes take only %d bytes", n, size, before)
	}
	if err := db.Defragment(t.Context()); err != nil {
		t.Fatal(err)
	}
	// pebble deletes the files the compaction made obsolete right after it,
	// on a goroutine of its own.
	for db.db.Metrics().Table.Local.ObsoleteSize > 0 {
		time.Sleep(time.Millisecond)
	}
	after, inUse := db.Size(), db.SizeInUse()
	t.Logf("size %d before defragmenting, %d after (%d in use)", before, after, inUse)
	if after >= before {
		t.Errorf("size %d after defragmenting, %d before: nothing given back", after, before)
	}
	// What stays besides the tables are the write-ahead logs pebble keeps
	// for reuse, up to a few memtables' worth.
	if tables := db.db.Metrics().Table.Local.LiveSize; tables > 2*kept*size {
		t.Errorf("tables hold %d bytes after defragmenting, with %d records of %d bytes left", tables, kept, size)
	}
	if inUse > after {
		t.Errorf("after defragmenting: %d bytes in use of %d", inUse, after)
	}
	var loaded []KeyRev
	if err := db.Load(func(k string, r Record) error { loaded = append(loaded, KeyRev{Key: k, Rev: r.Rev}); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(loaded, recs[n-kept:]) {
		t.Errorf("after defragmenting, loaded %v; want %v", loaded, recs[n-kept:])
	}
}

// TestDefragmentBesideCommits defragments while commits go on: neither
// waits for the other to finish, and every record committed is there.
func TestDefragmentBesideCommits(t *testing.T) {
	db, _, err := Open(t.TempDir(), Options{DefaultShards: 1, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := defragFill(t, db, 2, 1000, 1024)
	if err := db.Drop(recs[:900]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- db.Defragment(context.Background()) }()
	const commits = 50
	for i := range commits {
		rev := int64(1002 + i)
		err := db.Commit([]Entry{{Rev: rev, Base: rev, Muts: []Mutation{{Key: fmt.Sprintf("w%03d", i), Value: []byte("x"), Create: -1, Version: 1}}}}, nil, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	count := 0
	if err := db.Load(func(string, Record) error { count++; return nil }); err != nil {
		t.Fatal(err)
	}
	if count != 100+commits {
		t.Errorf("%d records after defragmenting beside commits, want %d", count, 100+commits)
	}
}

func TestDefragmentClosed(t *testing.T) {
	db, _, err := Open(t.TempDir(), Options{DefaultShards: 1, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Defragment(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Defragment after Close: %v, want ErrClosed", err)
	}
}

// TestPeerURLs: none is recorded in a new dir; one set survives a reopen,
// an empty list included.
func TestPeerURLs(t *testing.T) {
	dir := t.TempDir()
	for i, set := range [][]string{{"http://10.0.0.1:2380", "http://10.0.0.2:2380"}, {}} {
		db, _, err := Open(dir, Options{DefaultShards: 1, MinFreeBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if urls, ok, err := db.PeerURLs(); ok || err != nil {
				t.Fatalf("new dir: peer URLs %q, %v, %v; want none", urls, ok, err)
			}
		}
		if err := db.Writable(); err != nil {
			t.Fatal(err)
		}
		if err := db.SetPeerURLs(set); err != nil {
			t.Fatal(err)
		}
		db.Close()
		db, _, err = Open(dir, Options{DefaultShards: 1, MinFreeBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		urls, ok, err := db.PeerURLs()
		db.Close()
		if !ok || err != nil || !slices.Equal(urls, set) {
			t.Fatalf("after reopen: peer URLs %q, %v, %v; want %q", urls, ok, err, set)
		}
	}
}
