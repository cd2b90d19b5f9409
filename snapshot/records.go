package snapshot

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage"
)

// revision is a record's place in etcd's order: main, then sub revision.
type revision struct{ main, sub int64 }

func revOf(r storage.Record) revision { return revision{r.Rev, r.Sub} }

// errDone stops a walk over a view's records once it is past the revisions
// it wants.
var errDone = errors.New("snapshot: done")

// ctxCheckEvery is how many records a walk reads between checks of its
// context: often enough to stop soon, rarely enough to cost nothing.
const ctxCheckEvery = 1024

// records calls fn with the view's records up to revision upTo, in etcd's
// order. It stops with ctx.Err() once ctx ends: a walk may read the whole
// history, and the view it holds keeps the data dir from closing.
func records(ctx context.Context, v *storage.View, upTo int64, fn func(key string, rec storage.Record, value []byte) error) error {
	n := 0
	err := v.Records(func(key string, rec storage.Record, value []byte) error {
		if n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		n++
		if rec.Rev > upTo {
			return errDone
		}
		return fn(key, rec, value)
	})
	if errors.Is(err, errDone) {
		return nil
	}
	return err
}

// survivors returns, for each key with records at or below compact, the
// revision of its newest such record if that record survives compaction
// at compact: a put, or a tombstone made at compact itself. A record at or
// below compact survives exactly if it is its key's entry here; every
// record above compact survives. Nothing is read for compact <= 0. It
// stops with ctx.Err() once ctx ends.
func survivors(ctx context.Context, v *storage.View, compact int64) (map[string]revision, error) {
	out := make(map[string]revision)
	if compact <= 0 {
		return out, nil
	}
	err := records(ctx, v, compact, func(key string, rec storage.Record, _ []byte) error {
		if rec.Tombstone() && rec.Rev < compact {
			delete(out, key)
			return nil
		}
		out[key] = revOf(rec)
		return nil
	})
	return out, err
}

// encoder writes records as etcd's key bucket holds them, reusing its
// buffers from one record to the next.
type encoder struct {
	kv       mvccpb.KeyValue
	key, val []byte
}

// encode returns the record's bucket key and value, valid until the next
// call: the revision key (tombstone mark included) and the mvccpb.KeyValue
// etcd's put writes, or for a tombstone the one its delete writes, which
// holds only the key (mvcc's storeTxnWrite.delete).
func (e *encoder) encode(key string, rec storage.Record, value []byte) ([]byte, []byte, error) {
	if e.key == nil {
		e.key = mvcc.NewRevBytes()
	}
	// RevToBytes writes into the 17 bytes of a revision key, in place.
	e.key = mvcc.RevToBytes(mvcc.Revision{Main: rec.Rev, Sub: rec.Sub}, e.key[:revKeyLen])
	e.kv.Reset()
	e.kv.Key = []byte(key)
	if rec.Tombstone() {
		e.key = append(e.key, tombstoneMark)
	} else {
		e.kv.CreateRevision = rec.Create
		e.kv.ModRevision = rec.Rev
		e.kv.Version = rec.Version
		e.kv.Value = value
		e.kv.Lease = rec.Lease
	}
	var err error
	e.val, err = proto.MarshalOptions{}.MarshalAppend(e.val[:0], &e.kv)
	return e.key, e.val, err
}

// revKeyLen is the length of a revision key without the tombstone mark:
// 8 bytes of main revision, '_', 8 bytes of sub revision.
const revKeyLen = 8 + 1 + 8

// tombstoneMark ends the bucket key of a tombstone (mvcc.IsTombstone). mvcc
// exports no way to write one.
const tombstoneMark = 't'
