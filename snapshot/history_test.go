package snapshot

import (
	"context"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/storage"
)

// change is one key written by a request.
type change struct {
	key, value string
	del        bool
	lease      int64
}

// step is one request: a put or a delete, a Txn making several changes (in
// that order), a delete of every key under a prefix, or a compaction.
type step struct {
	changes   []change
	delPrefix string
	compact   int64
}

func put(key, value string) step { return step{changes: []change{{key: key, value: value}}} }
func del(key string) step        { return step{changes: []change{{key: key, del: true}}} }
func txn(cs ...change) step      { return step{changes: cs} }
func compact(rev int64) step     { return step{compact: rev} }

// history is a sequence of requests, played both against etcd and, as the
// records MetaStore's shards would write, into a data dir.
type history struct {
	name   string
	leases map[int64]int64 // granted first
	steps  []step
}

// histories cover what HashKV and the images must get right: overwrites,
// Txns whose changes are not in key order (sub revisions), range deletes,
// leases, and compaction at a put, at a tombstone, twice, with keys live
// at the hashed revision or none.
var histories = []history{
	{
		name:   "never compacted",
		leases: map[int64]int64{100: 600},
		steps: []step{
			put("a", "1"), put("b", "2"), put("a", "3"),
			txn(change{key: "z", value: "4"}, change{key: "c", value: "5", lease: 100}, change{key: "b", del: true}),
			del("a"), put("a", "6"),
		},
	},
	{
		name:   "compacted with keys live",
		leases: map[int64]int64{7: 300},
		steps: []step{
			put("a", "1"), put("b", "2"), put("a", "3"), txn(change{key: "m", value: "4", lease: 7}, change{key: "c", value: "5"}),
			del("b"), compact(5), put("c", "6"), put("d", "7"), del("a"),
		},
	},
	{
		name: "compacted at a tombstone",
		steps: []step{
			put("a", "1"), put("b", "2"), del("a"), compact(4), put("b", "3"), put("a", "4"),
		},
	},
	{
		name: "nothing live after compaction",
		steps: []step{
			put("a", "1"), put("b", "2"), put("a", "3"), compact(4), del("a"), del("b"),
		},
	},
	{
		name: "overwritten before two compactions",
		steps: []step{
			put("a", "1"), put("a", "2"), put("b", "3"), del("b"), compact(5), put("c", "4"), put("a", "5"), compact(7), put("b", "6"),
		},
	},
	{
		name: "compacted twice, range deletes",
		steps: []step{
			put("k/b", "1"), put("k/a", "2"), put("x", "3"), compact(3), put("k/c", "4"),
			{delPrefix: "k/"}, put("k/a", "5"), compact(6), txn(change{key: "x", del: true}, change{key: "k/b", value: "6"}),
			{delPrefix: "k/"},
		},
	},
}

// playEtcd plays h against etcd.
func playEtcd(t *testing.T, e *etcd, h history) {
	t.Helper()
	ctx := context.Background()
	for id, ttl := range h.leases {
		e.grant(t, id, ttl)
	}
	for _, s := range h.steps {
		var err error
		switch {
		case s.compact > 0:
			_, err = e.cli.Compact(ctx, s.compact, clientv3.WithCompactPhysical())
		case s.delPrefix != "":
			_, err = e.cli.Delete(ctx, s.delPrefix, clientv3.WithPrefix())
		default:
			var ops []clientv3.Op
			for _, c := range s.changes {
				if c.del {
					ops = append(ops, clientv3.OpDelete(c.key))
				} else {
					ops = append(ops, clientv3.OpPut(c.key, c.value, clientv3.WithLease(clientv3.LeaseID(c.lease))))
				}
			}
			_, err = e.cli.Txn(ctx).Then(ops...).Commit()
		}
		if err != nil {
			t.Fatalf("etcd: %+v: %v", s, err)
		}
	}
}

// written is one record the model wrote.
type written struct {
	rev  int64
	tomb bool
}

// played is a history played into a data dir.
type played struct {
	db *storage.DB
	// hashes are the hashes etcd keeps from its compactions
	// (CompactionHash), by revision.
	hashes map[int64]KVHash
}

// playStore plays h into a new data dir as MetaStore writes it. With drop,
// the records each compaction removes are deleted, as the shards do;
// without, they stay, as they may for a while (deleting them is not
// synced).
func playStore(t *testing.T, h history, drop bool) played {
	t.Helper()
	db, _, err := storage.Open(t.TempDir(), storage.Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var grants []storage.LeaseRecord
	for id, ttl := range h.leases {
		grants = append(grants, storage.LeaseRecord{ID: id, TTL: ttl})
	}
	if err := db.Commit(nil, grants, nil, 0); err != nil {
		t.Fatal(err)
	}
	type live struct{ create, version int64 }
	keys := map[string]live{}
	recs := map[string][]written{}
	rev, prev := int64(1), int64(0)
	out := played{db: db, hashes: map[int64]KVHash{}}
	for _, s := range h.steps {
		if s.compact > 0 {
			if err := db.Commit(nil, nil, nil, s.compact); err != nil {
				t.Fatal(err)
			}
			v := view(t, db)
			kh, err := CompactionHash(t.Context(), v, prev, s.compact)
			if err != nil {
				t.Fatal(err)
			}
			v.Close()
			out.hashes[s.compact], prev = kh, s.compact
			if drop {
				if err := db.Drop(compacted(recs, s.compact)); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		changes := s.changes
		if s.delPrefix != "" {
			changes = nil
			for k := range keys {
				if strings.HasPrefix(k, s.delPrefix) {
					changes = append(changes, change{key: k, del: true})
				}
			}
			slices.SortFunc(changes, func(a, b change) int { return strings.Compare(a.key, b.key) })
		}
		rev++
		e := storage.Entry{Rev: rev, Base: rev}
		for _, c := range changes {
			recs[c.key] = append(recs[c.key], written{rev, c.del})
			if c.del {
				delete(keys, c.key)
				e.Muts = append(e.Muts, storage.Mutation{Key: c.key, Delete: true})
				continue
			}
			k, ok := keys[c.key]
			if !ok {
				k.create = rev
			}
			k.version++
			keys[c.key] = k
			e.Muts = append(e.Muts, storage.Mutation{Key: c.key, Value: []byte(c.value), Lease: c.lease, Create: k.create, Version: k.version})
		}
		if err := db.Commit([]storage.Entry{e}, nil, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// compacted returns the records compaction at rev removes: for each key,
// those at or below rev but the newest, and that one too if it is a
// tombstone made before rev.
func compacted(recs map[string][]written, rev int64) []storage.KeyRev {
	var out []storage.KeyRev
	for k, rs := range recs {
		i := 0
		for i < len(rs) && rs[i].rev <= rev {
			i++
		}
		if i > 0 && (!rs[i-1].tomb || rs[i-1].rev == rev) {
			i--
		}
		for _, r := range rs[:i] {
			out = append(out, storage.KeyRev{Key: k, Rev: r.rev})
		}
		recs[k] = rs[i:]
	}
	return out
}

// view opens a view of db, closed when the test ends.
func view(t *testing.T, db *storage.DB) *storage.View {
	t.Helper()
	v, err := db.View()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}
