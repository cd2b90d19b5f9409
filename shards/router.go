package shards

import (
	"github.com/cespare/xxhash/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/msg"
)

// Router maps keys to shards by hash. A key's shard depends on the count of
// this run only: records are not stored by shard, so the count may change
// from one start to the next.
type Router struct {
	n int
}

// NewRouter returns a router over n shards.
func NewRouter(n int) Router {
	if n < 1 {
		panic("shards: a router needs at least one shard")
	}
	return Router{n: n}
}

// count returns the shard count.
func (r Router) count() int { return r.n }

// Shard returns the shard that owns key.
func (r Router) Shard(key string) int {
	return int(xxhash.Sum64String(key) % uint64(r.n))
}

// Owner returns the one shard that owns every key a write request names, or
// -1 when the request needs several shards (a range, or keys that hash
// apart) and so goes through the coordinator.
func (r Router) Owner(req msg.Request) int {
	owner := -2 // no key seen yet
	visit := func(key, end []byte) bool {
		if len(end) != 0 {
			owner = -1
			return false
		}
		s := r.Shard(string(key))
		if owner == -2 {
			owner = s
		} else if owner != s {
			owner = -1
		}
		return owner >= 0
	}
	visitRequest(req, visit)
	if owner == -2 {
		// A Txn that names no key at all touches no shard; any one will do.
		return 0
	}
	return owner
}

// visitRequest calls visit for every key span a write request names, until
// visit returns false.
func visitRequest(req msg.Request, visit func(key, end []byte) bool) {
	switch {
	case req.Put != nil:
		visit(req.Put.Key, nil)
	case req.Delete != nil:
		visit(req.Delete.Key, req.Delete.RangeEnd)
	case req.Txn != nil:
		visitTxn(req.Txn, visit)
	case req.Revoke != nil:
		// Any shard may hold a key of the lease: a range over every key.
		visit([]byte{0}, []byte{0})
	}
}

// visitTxn calls visit for every key span a Txn names, nested ones included,
// until visit returns false.
func visitTxn(t *pb.TxnRequest, visit func(key, end []byte) bool) bool {
	for _, c := range t.Compare {
		if !visit(c.Key, c.RangeEnd) {
			return false
		}
	}
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			ok := true
			switch v := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				ok = visit(v.RequestRange.Key, v.RequestRange.RangeEnd)
			case *pb.RequestOp_RequestPut:
				ok = visit(v.RequestPut.Key, nil)
			case *pb.RequestOp_RequestDeleteRange:
				ok = visit(v.RequestDeleteRange.Key, v.RequestDeleteRange.RangeEnd)
			case *pb.RequestOp_RequestTxn:
				ok = visitTxn(v.RequestTxn, visit)
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

// involved returns the shards a cross-shard request touches, ascending: all
// of them as soon as it names a range.
func (r Router) involved(req msg.Request) []int {
	seen := make([]bool, r.n)
	all := false
	visit := func(key, end []byte) bool {
		if len(end) != 0 {
			all = true
			return false
		}
		seen[r.Shard(string(key))] = true
		return true
	}
	visitRequest(req, visit)
	var out []int
	for i, s := range seen {
		if s || all {
			out = append(out, i)
		}
	}
	return out
}
