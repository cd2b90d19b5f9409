package actors

import (
	"context"
	"errors"

	"github.com/metastore/metastore/snapshot"
	"github.com/metastore/metastore/storage"
)

// ErrNoDataDir is returned by what reads the data dir as etcd's backend
// (HashKV, Snapshot) on a node started in memory.
var ErrNoDataDir = errors.New("metastore: this needs a data dir; the server runs --in-memory")

// HashKV returns etcd's HashKV of the key space at revision rev (0: the
// current one), and the current revision: the visible revision when the
// hash was taken. It fails with snapshot.ErrCompacted or
// snapshot.ErrFutureRev for a revision out of bounds, and ErrNoDataDir in
// memory, and with ctx.Err() once ctx ends or the node stops. As etcd's,
// it answers the hash kept from a recent compaction at rev, if there is
// one, before any check (snapshot.Hashes).
func (n *Node) HashKV(ctx context.Context, rev int64) (h snapshot.KVHash, current int64, err error) {
	if n.db == nil {
		return snapshot.KVHash{}, n.Revision(), ErrNoDataDir
	}
	ctx, cancel := n.untilStop(ctx)
	defer cancel()
	if rev > 0 {
		kh, ok, err := n.hashes.Get(ctx, rev)
		if err != nil || ok {
			return kh, n.Revision(), err
		}
	}
	v, current, err := n.view()
	if err != nil {
		return snapshot.KVHash{}, n.Revision(), err
	}
	defer v.Close()
	h, err = snapshot.HashKV(ctx, v, rev, current)
	return h, current, err
}

// Snapshot builds an image of the data dir in etcd v3.7's backend layout
// (snapshot.Build), at the visible revision when it is called; the
// image's Revision says which. info names the member (its name and URLs,
// the raft term); its IDs, revision and index are the node's, the index
// being the imaged revision, as in Status. The image is built under
// os.TempDir() ($TMPDIR) and is as large as the data; the caller closes
// it. It fails with ErrNoDataDir in memory, and with ctx.Err() once ctx
// ends or the node stops.
//
// NB: leases are not revisioned: the image holds the leases of the instant
// it is taken. A lease revoked in that instant, by a revocation whose
// deletes are durable but not yet visible, is missing while its keys are
// there (etcd then restores them attached to a lease it does not have, and
// logs it).
func (n *Node) Snapshot(ctx context.Context, info snapshot.Info) (*snapshot.Image, error) {
	if n.db == nil {
		return nil, ErrNoDataDir
	}
	ctx, cancel := n.untilStop(ctx)
	defer cancel()
	v, current, err := n.view()
	if err != nil {
		return nil, err
	}
	defer v.Close()
	info.ClusterID, info.MemberID, info.Revision, info.Index = n.meta.ClusterID, n.meta.MemberID, current, uint64(current)
	return snapshot.Build(ctx, v, info, "")
}

// untilStop returns a context that ends with ctx or when the node stops:
// a scan of the history holds a view, and the data dir cannot close while
// one is open.
func (n *Node) untilStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.stopping, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// view opens a view of the data dir and returns with it the newest
// revision that it holds entirely and that is visible. Records are durable
// before they are visible, and durable in revision order, so the view
// holds every record up to the visible revision of any instant before it
// was taken; the visible revision read after it is at least that, and
// every revision up to the view's newest record is in it. The compact
// revision is below both: a compaction is recorded only up to the
// visible revision.
func (n *Node) view() (*storage.View, int64, error) {
	v, err := n.db.View()
	if err != nil {
		return nil, 0, err
	}
	return v, min(n.Revision(), v.Rev()), nil
}

// hashCompaction computes, in the background, the hash etcd keeps from a
// compaction at rev, prev being the compact revision before (-1 if none),
// so that HashKV at rev answers it as etcd does. The view is taken now:
// it must hold the records the compaction is about to drop, so it is
// called before the shards are told. The computation stops when the node
// does, and Stop waits for it (n.hashing) before it closes the data dir.
func (n *Node) hashCompaction(prev, rev int64) {
	if n.db == nil {
		return
	}
	n.hashMu.Lock()
	defer n.hashMu.Unlock()
	if n.stopping.Err() != nil {
		return // stopping: no HashKV will ask
	}
	v, err := n.db.View()
	if err != nil {
		return // closing: no HashKV will ask
	}
	n.hashing.Add(1)
	n.hashes.Compute(rev, func() (snapshot.KVHash, error) {
		defer n.hashing.Done()
		defer v.Close()
		return snapshot.CompactionHash(n.stopping, v, max(prev, 0), rev)
	})
}
