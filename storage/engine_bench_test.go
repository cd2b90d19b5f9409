package storage

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// BenchmarkCommitGroup measures what the sequencer pays per commit group:
// n records of 256 bytes written with one sync. It compares pebble (the
// engine MetaStore uses) with bbolt (the engine etcd uses) doing the same
// work, to back the choice in docs/design.md with a number from this disk.
func BenchmarkCommitGroup(b *testing.B) {
	value := make([]byte, 256)
	for _, n := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("engine=pebble/records=%d", n), func(b *testing.B) {
			db, _, err := Open(filepath.Join(b.TempDir(), "db"), Options{Shards: 1, DefaultShards: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			rev := int64(1)
			b.ReportAllocs()
			for b.Loop() {
				entries := make([]Entry, n)
				for i := range entries {
					rev++
					entries[i] = Entry{Rev: rev, Base: rev, Muts: []Mutation{{Key: fmt.Sprintf("key/%d", rev%100000), Value: value, Create: rev, Version: 1}}}
				}
				if err := db.Commit(entries, nil, nil, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
		b.Run(fmt.Sprintf("engine=bbolt/records=%d", n), func(b *testing.B) {
			db, err := bbolt.Open(filepath.Join(b.TempDir(), "db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			bucket := []byte("key")
			if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
				b.Fatal(err)
			}
			rev := uint64(1)
			b.ReportAllocs()
			for b.Loop() {
				err := db.Update(func(tx *bbolt.Tx) error {
					bk := tx.Bucket(bucket)
					for range n {
						rev++
						if err := bk.Put(binary.BigEndian.AppendUint64(nil, rev), value); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}
