package shards

import (
	"errors"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/storage"
)

// ReadPath answers reads on the caller's goroutine, without a message: it
// takes the visible revision, loads the shards' published views and reads
// them at that revision. Shards only ever publish newer views, and a view
// holds every revision up to the visible one once it is published, so the
// answer is linearizable.
type ReadPath struct {
	router    Router
	published []atomic.Pointer[View]
	revs      RevisionSource
}

// NewReadPath reads from published (one per shard, written by each shard
// actor) with revision bounds from revs.
func NewReadPath(r Router, published []atomic.Pointer[View], revs RevisionSource) *ReadPath {
	return &ReadPath{router: r, published: published, revs: revs}
}

// snapshot takes the revision and views to read. NB: the order matters:
// the visible revision first (every view loaded after holds it), the
// compact revision last (a view loaded before a compaction still holds the
// history that a compact revision loaded after it would forbid).
func (p *ReadPath) snapshot(single string) (rev int64, views *viewSet, compacted int64) {
	rev = p.revs.Visible()
	if FaultStaleReads && rev > 0 {
		rev--
	}
	vs := make([]*View, len(p.published))
	if single != "" {
		i := p.router.Shard(single)
		vs[i] = p.published[i].Load()
	} else {
		for i := range p.published {
			vs[i] = p.published[i].Load()
		}
	}
	return rev, &viewSet{router: p.router, views: vs}, p.revs.Compacted()
}

// readAttempts bounds how often a read starts over because a value it was
// about to read was removed by a compaction that overtook it. The next
// attempt sees the new compact revision: a read of the current revision
// then finds the values kept, and a read of an older one is refused as
// compacted, as etcd refuses it.
const readAttempts = 3

func again[T any](read func() (T, error)) (T, error) {
	for i := 1; ; i++ {
		resp, err := read()
		if !errors.Is(err, storage.ErrNoRecord) || i == readAttempts {
			return resp, err
		}
	}
}

// Range answers a range; the header carries only the revision.
func (p *ReadPath) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return again(func() (*pb.RangeResponse, error) { return p.rangeOnce(r) })
}

func (p *ReadPath) rangeOnce(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	single := ""
	if len(r.RangeEnd) == 0 {
		single = string(r.Key)
	}
	cur, views, compacted := p.snapshot(single)
	rev := cur
	// A plain Range reads the current revision for any revision <= 0,
	// without the compact check a range inside a Txn gets.
	if r.Revision > 0 {
		env := evalEnv{Visible: cur, Compacted: compacted}
		if err := env.checkRev(r.Revision); err != nil {
			return nil, err
		}
		rev = r.Revision
	}
	resp, err := evalRange(views, r, rev)
	if err != nil {
		return nil, err
	}
	resp.Header = &pb.ResponseHeader{Revision: cur}
	return resp, nil
}

// Txn answers a Txn that only reads (see IsTxnReadOnly).
func (p *ReadPath) Txn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	return again(func() (*pb.TxnResponse, error) { return p.txnOnce(r) })
}

func (p *ReadPath) txnOnce(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	cur, views, compacted := p.snapshot("")
	env := &evalEnv{Visible: cur, Compacted: compacted}
	return execTxn(newOverlay(asOf{views, cur}, cur+1), env, r)
}

// asOf reads r with "latest" meaning revision rev.
type asOf struct {
	r   reader
	rev int64
}

func (a asOf) get(key string, rev int64) (entry, bool) {
	return a.r.get(key, min(rev, a.rev))
}

func (a asOf) collect(start, end string, rev int64, max int) ([]entry, int) {
	return a.r.collect(start, end, min(rev, a.rev), max)
}
