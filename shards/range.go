package shards

import (
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// IsDefaultOrdering reports whether a range is answered in key order, the
// order keys are stored in, so that a limit can stop the scan early.
func IsDefaultOrdering(r *pb.RangeRequest) bool {
	return r.SortOrder == pb.RangeRequest_NONE ||
		(r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND)
}

// HasRevisionFilters reports whether a range filters on create or mod revision.
func HasRevisionFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// evalRange answers r from rd at revision rev, the way etcd does: count is
// every key in the range at rev; filters, then sorting, then the limit apply
// to the key-values; more says the limit cut something off. The header is
// left for the caller.
//
// NB: all of that is done on the index's records, and only the values
// that are returned are read, all at once (fetchValues): a range sorted
// descending with a limit of 10 over 1,000,000 keys reads 10 values, not
// 1,000,000. Only a sort by value needs every value first.
func evalRange(rd reader, r *pb.RangeRequest, rev int64) (*pb.RangeResponse, error) {
	resp := &pb.RangeResponse{}
	span := spanOf(r.Key, r.RangeEnd)
	var es []entry
	switch {
	case span.single():
		e, ok := rd.get(span.Key, rev)
		if !ok {
			return resp, nil
		}
		es, resp.Count = []entry{e}, 1
	case span.empty():
		return resp, nil
	default:
		max := -1
		switch {
		case r.CountOnly:
			max = 0
		case r.Limit > 0 && IsDefaultOrdering(r) && !HasRevisionFilters(r):
			max = int(min(r.Limit, math.MaxInt32)) + 1
		}
		start, end := span.bounds()
		var total int
		es, total = rd.collect(start, end, rev, max)
		resp.Count = int64(total)
	}
	if r.CountOnly {
		return resp, nil
	}
	var err error
	resp.Kvs, resp.More, err = rangeKVs(es, r)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// rangeKVs filters, sorts and limits es, in etcd's order, and returns the
// key-values kept, with whether the limit cut any off. NB: etcd answers
// keys_only from its index alone unless it must sort by value, so those
// key-values carry no lease; MetaStore matches that. A value needed only
// to sort by is dropped after sorting.
func rangeKVs(es []entry, r *pb.RangeRequest) ([]*mvccpb.KeyValue, bool, error) {
	es = filterEntries(es, r)
	order := sortOrder(r)
	if r.SortTarget == pb.RangeRequest_VALUE {
		values, err := fetchValues(es)
		if err != nil {
			return nil, false, err
		}
		kvs := newKVs(es, values, true)
		sortByValue(kvs, order)
		kvs, more := limited(kvs, r.Limit)
		if r.KeysOnly {
			for _, kv := range kvs {
				kv.Value = nil
			}
		}
		return kvs, more, nil
	}
	sortEntries(es, r.SortTarget, order)
	es, more := limited(es, r.Limit)
	if r.KeysOnly {
		return newKVs(es, nil, false), more, nil
	}
	values, err := fetchValues(es)
	if err != nil {
		return nil, false, err
	}
	return newKVs(es, values, true), more, nil
}

// newKVs builds the key-values of es with values (nil: none) and, if
// withLease, their leases. NB: they are allocated together, and their keys
// too, rather than two objects each: for 1,000,000 key-values that is
// 2,000,000 allocations fewer for the collector to make and scan. An
// answer is dropped whole once sent, so nothing is kept alive for long by
// one key-value it holds.
func newKVs(es []entry, values [][]byte, withLease bool) []*mvccpb.KeyValue {
	kvs := make([]*mvccpb.KeyValue, len(es))
	backing := make([]mvccpb.KeyValue, len(es))
	n := 0
	for _, e := range es {
		n += len(e.key)
	}
	keys := make([]byte, 0, n)
	for i, e := range es {
		kv := &backing[i]
		n := len(keys)
		keys = append(keys, e.key...)
		kv.Key = keys[n:len(keys):len(keys)]
		kv.CreateRevision, kv.ModRevision, kv.Version = e.rec.create, e.rec.rev, e.rec.version
		if withLease {
			kv.Lease = e.rec.lease
		}
		if values != nil {
			kv.Value = values[i]
		}
		kvs[i] = kv
	}
	return kvs
}

// limited cuts s to limit (0: no limit) and reports whether it cut.
func limited[T any](s []T, limit int64) ([]T, bool) {
	if limit > 0 && int64(len(s)) > limit {
		return s[:limit], true
	}
	return s, false
}
