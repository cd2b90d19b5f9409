package shards

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/actors/msg"
)

// evalEnv is what evaluating a request needs besides the keys: the store's
// revision bounds as seen when the request was planned, and the leases.
//
// NB: a request is evaluated twice — once unstamped to learn whether it
// writes, once at its revision to build the answer — and both passes must
// decide alike, so evalEnv is sampled once and carried to both.
type evalEnv struct {
	// Visible is the visible revision when the request was planned. A read
	// at a later revision is a future revision: no client can have seen it,
	// and a request that fails reads nothing, so it linearizes there.
	Visible int64
	// Compacted is the compact revision when the request was planned.
	Compacted int64
	// LeaseExists reports whether a lease ID names a live lease. Leases
	// come and go while a batch is in flight, so each answer is kept in
	// leases for the second pass.
	LeaseExists func(id int64) bool
	leases      map[int64]bool
}

// checkRev applies etcd's bounds to a read at rev, as etcd checks a range
// inside a Txn: 0 is the current revision; a negative one passes only if it
// is not below the compact revision (-1 until the first compaction), and
// then reads the current revision too.
func (e *evalEnv) checkRev(rev int64) error {
	switch {
	case rev == 0:
		return nil
	case rev > e.Visible:
		return msg.ErrFutureRev
	case rev < e.Compacted:
		return msg.ErrCompacted
	}
	return nil
}

// checkLease fails a write that names a lease that does not exist. It asks
// LeaseExists once per lease and evaluation: both passes of a request see
// the same answer even if the lease was revoked in between (its revoke is
// ordered after this write then, and deletes the key it attached).
func (e *evalEnv) checkLease(id int64) error {
	if id == 0 {
		return nil
	}
	ok, seen := e.leases[id]
	if !seen {
		ok = e.LeaseExists != nil && e.LeaseExists(id)
		if e.leases == nil {
			e.leases = make(map[int64]bool)
		}
		e.leases[id] = ok
	}
	if !ok {
		return msg.ErrLeaseNotFound
	}
	return nil
}

// execRequest evaluates one write request (Put, DeleteRange or Txn) on o,
// which stamps o.rev on what it writes. The returned response carries the
// header revision etcd would give it; the caller fills the rest of the
// header.
func execRequest(o *overlay, env *evalEnv, req msg.Request) (msg.Response, error) {
	switch {
	case req.Put != nil:
		resp, err := execPut(o, env, req.Put)
		return msg.Response{Put: resp}, err
	case req.Delete != nil:
		resp, err := execDelete(o, req.Delete)
		if err != nil {
			return msg.Response{}, err
		}
		resp.Header = &pb.ResponseHeader{Revision: o.headerRev()}
		return msg.Response{Delete: resp}, nil
	case req.Txn != nil:
		resp, err := execTxn(o, env, req.Txn)
		return msg.Response{Txn: resp}, err
	}
	panic("shards: execRequest: empty request")
}

// headerRev is the revision a response reports: the request's own if it
// changed anything, else the one before it.
func (o *overlay) headerRev() int64 {
	if o.changed() {
		return o.rev
	}
	return o.rev - 1
}

func execPut(o *overlay, env *evalEnv, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := env.checkLease(r.Lease); err != nil {
		return nil, err
	}
	if err := checkPutPrev(o, r); err != nil {
		return nil, err
	}
	resp, err := doPut(o, r)
	if err != nil {
		return nil, err
	}
	resp.Header = &pb.ResponseHeader{Revision: o.rev}
	return resp, nil
}

// checkPutPrev fails ignore_value and ignore_lease on a key that is absent.
func checkPutPrev(rd reader, r *pb.PutRequest) error {
	if r.IgnoreValue || r.IgnoreLease {
		if _, ok := rd.get(string(r.Key), latest); !ok {
			return msg.ErrKeyNotFound
		}
	}
	return nil
}

func doPut(o *overlay, r *pb.PutRequest) (*pb.PutResponse, error) {
	resp := &pb.PutResponse{}
	key := string(r.Key)
	value, lease := r.Value, r.Lease
	prev, ok := o.get(key, latest)
	if ok {
		var err error
		if r.IgnoreValue {
			if value, err = prev.value(); err != nil {
				return nil, err
			}
		}
		if r.IgnoreLease {
			lease = prev.rec.lease
		}
		if r.PrevKv {
			if resp.PrevKv, err = prev.keyValue(); err != nil {
				return nil, err
			}
		}
	}
	o.put(key, value, lease)
	return resp, nil
}

func execDelete(o *overlay, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp := &pb.DeleteRangeResponse{}
	span := spanOf(r.Key, r.RangeEnd)
	var keys []entry
	if span.single() {
		if e, ok := o.get(span.Key, latest); ok {
			keys = []entry{e}
		}
	} else if !span.empty() {
		start, end := span.bounds()
		keys, _ = o.collect(start, end, latest, -1)
	}
	if r.PrevKv && len(keys) > 0 {
		values, err := fetchValues(keys)
		if err != nil {
			return nil, err
		}
		resp.PrevKvs = make([]*mvccpb.KeyValue, len(keys))
		for i, e := range keys {
			resp.PrevKvs[i] = e.kv(values[i], e.rec.lease)
		}
	}
	for _, e := range keys {
		o.del(e.key)
	}
	resp.Deleted = int64(len(keys))
	return resp, nil
}
