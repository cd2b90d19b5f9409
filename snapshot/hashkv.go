package snapshot

import (
	"context"
	"errors"
	"hash/crc32"

	"go.etcd.io/etcd/server/v3/storage/schema"

	"github.com/metastore/metastore/storage"
)

var (
	// ErrCompacted is returned by HashKV for a revision below the compact
	// revision.
	ErrCompacted = errors.New("snapshot: required revision has been compacted")
	// ErrFutureRev is returned by HashKV for a revision above the current
	// one.
	ErrFutureRev = errors.New("snapshot: required revision is a future revision")
)

// KVHash is etcd's HashKV answer: the hash of the key space up to
// Revision, given compaction at CompactRevision (-1 if never compacted,
// as etcd says).
type KVHash struct {
	Hash                      uint32
	CompactRevision, Revision int64
}

// HashKV hashes the view's key space at revision rev exactly as etcd's
// HashKV does (mvcc's hashByRev and kvHasher, etcd v3.7), so that equal
// histories give equal hashes. current is the revision a rev of 0 stands
// for, the newest the caller may see: the view must hold every record up
// to it. It fails with ErrCompacted for a rev below the compact revision
// and ErrFutureRev for one above current, and with ctx.Err() once ctx
// ends; a negative rev, which etcd takes, hashes no record.
//
// etcd hashes its "key" bucket in revision order: the bucket name, then
// each record's revision key and mvccpb.KeyValue bytes, skipping
//   - records above rev;
//   - records at or below the compact revision C unless they are in
//     keep(rev), the put each key live at rev is visible through (mvcc's
//     keyIndex.keep) — but only when some key is live at rev: with none,
//     every record left by compaction at C counts;
//   - a tombstone made at C (kept by compaction since 3.5.16, skipped so
//     that older and newer etcds agree).
//
// Since etcd hashes what its bucket holds, and its compaction left there,
// for each key, the newest record at or below C if a put (or a tombstone
// at C), the rule on records at or below C comes down to: a put that is
// its key's newest at or below C, and, when some key is live at rev, also
// its key's newest at or below rev. That is what is computed here, from
// the history alone (the view may still hold records compaction removed).
// It takes two passes: the first finds each key's newest records, the
// second hashes.
func HashKV(ctx context.Context, v *storage.View, rev, current int64) (KVHash, error) {
	compact := v.Compact()
	switch {
	case rev > 0 && rev < compact:
		return KVHash{}, ErrCompacted
	case rev > current:
		return KVHash{}, ErrFutureRev
	case rev == 0:
		rev = current
	}
	// A negative rev is etcd's too: it hashes no record.
	if rev >= 0 && rev < compact {
		return KVHash{}, ErrCompacted
	}
	out := KVHash{CompactRevision: compact, Revision: rev}
	if compact == 0 {
		out.CompactRevision = -1 // etcd's compact revision before the first compaction
	}
	keys, anyLive, err := newest(ctx, v, compact, rev)
	if err != nil {
		return KVHash{}, err
	}
	out.Hash, err = hashBucket(ctx, v, rev, func(key string, rec storage.Record) bool {
		if rec.Rev > compact {
			return true
		}
		n := keys[key]
		return !rec.Tombstone() && revOf(rec) == n.atCompact && (!anyLive || revOf(rec) == n.atRev)
	})
	if err != nil {
		return KVHash{}, err
	}
	return out, nil
}

// hashBucket is etcd's kvHasher over the key bucket as it holds the
// records up to rev that counts says count: CRC-32C of the bucket's name,
// then of each counted record's revision key and mvccpb.KeyValue, in
// revision order.
func hashBucket(ctx context.Context, v *storage.View, rev int64, counts func(key string, rec storage.Record) bool) (uint32, error) {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	h.Write(schema.Key.Name())
	var enc encoder
	err := records(ctx, v, rev, func(key string, rec storage.Record, value []byte) error {
		if !counts(key, rec) {
			return nil
		}
		k, val, err := enc.encode(key, rec, value)
		h.Write(k)
		h.Write(val)
		return err
	})
	return h.Sum32(), err
}

// keyState is what the first pass learns of a key: its newest records at
// or below the compact revision and at or below the hashed one, and
// whether the latter is a put.
type keyState struct {
	atCompact, atRev revision
	live             bool
}

// newest returns the keyState of every key with records at or below rev,
// and whether any of them is live at rev.
func newest(ctx context.Context, v *storage.View, compact, rev int64) (map[string]keyState, bool, error) {
	keys := make(map[string]keyState)
	if compact <= 0 {
		// Nothing is at or below the compact revision: no filter to apply.
		return keys, false, nil
	}
	err := records(ctx, v, rev, func(key string, rec storage.Record, _ []byte) error {
		s := keys[key]
		if rec.Rev <= compact {
			s.atCompact = revOf(rec)
		}
		s.atRev, s.live = revOf(rec), !rec.Tombstone()
		keys[key] = s
		return nil
	})
	for _, s := range keys {
		if s.live {
			return keys, true, err
		}
	}
	return keys, false, err
}

// CompactionHash is the hash etcd computes while it compacts at compact,
// and keeps to answer HashKV at that revision (mvcc's scheduleCompaction):
// over the records at or below compact that its bucket held before the
// compaction, given compaction at prev, the compact revision before (0:
// none; -1 in the answer, as etcd says). Records at or below prev count
// only if they are in keep, what compaction at compact leaves at or below
// it (for each key its newest put, or a tombstone made at compact); with
// nothing in keep, every record prev left counts but a tombstone made at
// prev. The view must hold every record above prev up to compact: take it
// before the compaction's records are dropped. It stops with ctx.Err()
// once ctx ends.
//
// NB: keep is empty only if revision compact has no record (compaction at
// revision 1), but the rule is etcd's, and cheap to follow.
func CompactionHash(ctx context.Context, v *storage.View, prev, compact int64) (KVHash, error) {
	out := KVHash{CompactRevision: prev, Revision: compact}
	if prev == 0 {
		out.CompactRevision = -1
	}
	keep, err := survivors(ctx, v, compact)
	if err != nil {
		return KVHash{}, err
	}
	var left map[string]revision
	if len(keep) == 0 {
		if left, err = survivors(ctx, v, prev); err != nil {
			return KVHash{}, err
		}
	}
	out.Hash, err = hashBucket(ctx, v, compact, func(key string, rec storage.Record) bool {
		switch {
		case rec.Rev > prev:
			return true
		case len(keep) > 0:
			// A tombstone made at prev is never in keep: compact > prev.
			return keep[key] == revOf(rec)
		default:
			return left[key] == revOf(rec) && !(rec.Rev == prev && rec.Tombstone())
		}
	})
	if err != nil {
		return KVHash{}, err
	}
	return out, nil
}
