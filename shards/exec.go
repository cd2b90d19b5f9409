package shards

import (
	"bytes"
	"cmp"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/actors/msg"
)

// Env is what evaluating a request needs besides the keys: the store's
// revision bounds as seen when the request was planned, and the leases.
//
// NB: a request is evaluated twice — once unstamped to learn whether it
// writes, once at its revision to build the answer — and both passes must
// decide alike, so Env is sampled once and carried to both.
type Env struct {
	// Visible is the visible revision when the request was planned. A read
	// at a later revision is a future revision: no client can have seen it,
	// and a request that fails reads nothing, so it linearizes there.
	Visible int64
	// Compacted is the compact revision when the request was planned.
	Compacted int64
	// LeaseExists reports whether a lease ID names a live lease.
	LeaseExists func(id int64) bool
}

// checkRev applies etcd's bounds to a read at rev, as etcd checks a range
// inside a Txn: 0 is the current revision; a negative one passes only if it
// is not below the compact revision (-1 until the first compaction), and
// then reads the current revision too.
func (e *Env) checkRev(rev int64) error {
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

func (e *Env) checkLease(id int64) error {
	if id != 0 && (e.LeaseExists == nil || !e.LeaseExists(id)) {
		return msg.ErrLeaseNotFound
	}
	return nil
}

// execRequest evaluates one write request (Put, DeleteRange or Txn) on o,
// which stamps o.rev on what it writes. The returned response carries the
// header revision etcd would give it; the caller fills the rest of the
// header.
func execRequest(o *overlay, env *Env, req any) (any, error) {
	switch r := req.(type) {
	case *pb.PutRequest:
		return execPut(o, env, r)
	case *pb.DeleteRangeRequest:
		resp, err := execDelete(o, r)
		if err != nil {
			return nil, err
		}
		resp.Header = &pb.ResponseHeader{Revision: o.headerRev()}
		return resp, nil
	case *pb.TxnRequest:
		return execTxn(o, env, r)
	}
	panic("shards: execRequest: unexpected request type")
}

// headerRev is the revision a response reports: the request's own if it
// changed anything, else the one before it.
func (o *overlay) headerRev() int64 {
	if o.changed() {
		return o.rev
	}
	return o.rev - 1
}

func execPut(o *overlay, env *Env, r *pb.PutRequest) (*pb.PutResponse, error) {
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
		if _, ok := rd.get(string(r.Key), Latest); !ok {
			return msg.ErrKeyNotFound
		}
	}
	return nil
}

func doPut(o *overlay, r *pb.PutRequest) (*pb.PutResponse, error) {
	resp := &pb.PutResponse{}
	key := string(r.Key)
	value, lease := r.Value, r.Lease
	prev, ok := o.get(key, Latest)
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
	span := SpanOf(r.Key, r.RangeEnd)
	var keys []entry
	if span.Single() {
		if e, ok := o.get(span.Key, Latest); ok {
			keys = []entry{e}
		}
	} else if !span.Empty() {
		start, end := span.bounds()
		keys, _ = o.collect(start, end, Latest, -1)
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

func execTxn(o *overlay, env *Env, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	// etcd decides every branch, nested ones included, against the state
	// before the Txn runs, then checks the chosen operations, then runs them.
	path, err := txnPath(o, r, nil)
	if err != nil {
		return nil, err
	}
	if _, err := checkTxn(o, env, r, path); err != nil {
		return nil, err
	}
	resp, _, err := runTxn(o, r, path)
	if err != nil {
		return nil, err
	}
	resp.Header = &pb.ResponseHeader{Revision: o.headerRev()}
	return resp, nil
}

// txnPath appends the outcome of r's compares and of every nested Txn on the
// taken branch, depth first, as etcd's compareToPath does.
func txnPath(rd reader, r *pb.TxnRequest, path []bool) ([]bool, error) {
	ok, err := compares(rd, r.Compare)
	if err != nil {
		return nil, err
	}
	path = append(path, ok)
	for _, op := range branch(r, ok) {
		if t := op.GetRequestTxn(); t != nil {
			if path, err = txnPath(rd, t, path); err != nil {
				return nil, err
			}
		}
	}
	return path, nil
}

func branch(r *pb.TxnRequest, succeeded bool) []*pb.RequestOp {
	if succeeded {
		return r.Success
	}
	return r.Failure
}

// checkTxn fails the Txn as etcd's checkTxn does, on the taken path only,
// against the state before the Txn. It returns how many path entries the
// nested Txns used.
func checkTxn(rd reader, env *Env, r *pb.TxnRequest, path []bool) (int, error) {
	used := 0
	for _, op := range branch(r, path[0]) {
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if err := env.checkRev(tv.RequestRange.Revision); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestPut:
			if err := env.checkLease(tv.RequestPut.Lease); err != nil {
				return 0, err
			}
			if err := checkPutPrev(rd, tv.RequestPut); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestTxn:
			n, err := checkTxn(rd, env, tv.RequestTxn, path[1+used:])
			if err != nil {
				return 0, err
			}
			used += n + 1
		}
	}
	return used, nil
}

// runTxn runs the taken branch of r in order; every operation sees the
// writes of those before it. Nested responses carry only a revision in their
// header, as etcd's do.
func runTxn(o *overlay, r *pb.TxnRequest, path []bool) (*pb.TxnResponse, int, error) {
	ops := branch(r, path[0])
	resp := &pb.TxnResponse{Succeeded: path[0], Responses: make([]*pb.ResponseOp, len(ops))}
	used := 0
	for i, op := range ops {
		switch tv := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rr := tv.RequestRange
			cur := o.headerRev()
			rev := int64(Latest)
			if rr.Revision > 0 {
				rev = rr.Revision
			}
			rresp, err := evalRange(o, rr, rev)
			if err != nil {
				return nil, 0, err
			}
			rresp.Header = &pb.ResponseHeader{Revision: cur}
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rresp}}
		case *pb.RequestOp_RequestPut:
			presp, err := doPut(o, tv.RequestPut)
			if err != nil {
				return nil, 0, err
			}
			presp.Header = &pb.ResponseHeader{Revision: o.rev}
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: presp}}
		case *pb.RequestOp_RequestDeleteRange:
			dresp, err := execDelete(o, tv.RequestDeleteRange)
			if err != nil {
				return nil, 0, err
			}
			dresp.Header = &pb.ResponseHeader{Revision: o.headerRev()}
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dresp}}
		case *pb.RequestOp_RequestTxn:
			tresp, n, err := runTxn(o, tv.RequestTxn, path[1+used:])
			if err != nil {
				return nil, 0, err
			}
			tresp.Header = &pb.ResponseHeader{}
			used += n + 1
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: tresp}}
		}
	}
	return resp, used, nil
}

// compares reports whether every compare holds. It fails with
// errNeedsRevision when a compare needs a revision not stamped yet.
func compares(rd reader, cs []*pb.Compare) (bool, error) {
	for _, c := range cs {
		ok, err := compare(rd, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// compare evaluates one compare as etcd does: over every key of its range,
// against a zero key-value when there is none, except that a value compare
// on a missing key is false.
func compare(rd reader, c *pb.Compare) (bool, error) {
	span := SpanOf(c.Key, c.RangeEnd)
	var es []entry
	if span.Single() {
		if e, ok := rd.get(span.Key, Latest); ok {
			es = []entry{e}
		}
	} else if !span.Empty() {
		start, end := span.bounds()
		es, _ = rd.collect(start, end, Latest, -1)
	}
	if len(es) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false, nil
		}
		return compareResult(c, compareTarget(c, &record{}, nil)), nil
	}
	for _, e := range es {
		if (c.Target == pb.Compare_MOD && e.rec.rev < 0) ||
			(c.Target == pb.Compare_CREATE && e.rec.create < 0) {
			return false, errNeedsRevision
		}
		var value []byte
		if c.Target == pb.Compare_VALUE {
			var err error
			if value, err = e.value(); err != nil {
				return false, err
			}
		}
		if !compareResult(c, compareTarget(c, e.rec, value)) {
			return false, nil
		}
	}
	return true, nil
}

// compareTarget compares r, whose value is value, with c's target.
func compareTarget(c *pb.Compare, r *record, value []byte) int {
	switch c.Target {
	case pb.Compare_VALUE:
		return bytes.Compare(value, c.GetValue())
	case pb.Compare_CREATE:
		return cmp.Compare(r.create, c.GetCreateRevision())
	case pb.Compare_MOD:
		return cmp.Compare(r.rev, c.GetModRevision())
	case pb.Compare_VERSION:
		return cmp.Compare(r.version, c.GetVersion())
	case pb.Compare_LEASE:
		return cmp.Compare(r.lease, c.GetLease())
	}
	return 0
}

func compareResult(c *pb.Compare, result int) bool {
	switch c.Result {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return true
}

// IsTxnReadOnly reports whether a Txn has only ranges on both branches (a
// nested Txn counts as a write, as in etcd).
func IsTxnReadOnly(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if op.GetRequestRange() == nil {
				return false
			}
		}
	}
	return true
}
