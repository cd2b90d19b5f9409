package shards

import (
	"bytes"
	"cmp"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// filterEntries keeps the entries that pass r's revision filters.
func filterEntries(es []entry, r *pb.RangeRequest) []entry {
	if !HasRevisionFilters(r) {
		return es
	}
	return slices.DeleteFunc(es, func(e entry) bool {
		return (r.MaxModRevision != 0 && e.rec.rev > r.MaxModRevision) ||
			(r.MinModRevision != 0 && e.rec.rev < r.MinModRevision) ||
			(r.MaxCreateRevision != 0 && e.rec.create > r.MaxCreateRevision) ||
			(r.MinCreateRevision != 0 && e.rec.create < r.MinCreateRevision)
	})
}

// sortOrder is the order r's key-values are sorted in; NONE leaves them in
// key order. A non-key target with order NONE sorts ascending, as etcd
// does, and key order ascending is the order they come in.
func sortOrder(r *pb.RangeRequest) pb.RangeRequest_SortOrder {
	switch {
	case r.SortTarget != pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_NONE:
		return pb.RangeRequest_ASCEND
	case r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND:
		return pb.RangeRequest_NONE
	}
	return r.SortOrder
}

// sortEntries sorts es, which are in key order, by a target other than the
// value. The sort is stable so that ties keep key order; keys are
// distinct, so descending by key is key order reversed.
func sortEntries(es []entry, target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) {
	if order == pb.RangeRequest_NONE {
		return
	}
	var c func(a, b entry) int
	switch target {
	case pb.RangeRequest_KEY:
		slices.Reverse(es) // order is DESCEND
		return
	case pb.RangeRequest_VERSION:
		c = func(a, b entry) int { return cmp.Compare(a.rec.version, b.rec.version) }
	case pb.RangeRequest_CREATE:
		c = func(a, b entry) int { return cmp.Compare(a.rec.create, b.rec.create) }
	case pb.RangeRequest_MOD:
		c = func(a, b entry) int { return cmp.Compare(a.rec.rev, b.rec.rev) }
	}
	if order == pb.RangeRequest_DESCEND {
		asc := c
		c = func(a, b entry) int { return asc(b, a) }
	}
	slices.SortStableFunc(es, c)
}

// sortByValue sorts kvs, which are in key order, by value; stable, as
// sortEntries.
func sortByValue(kvs []*mvccpb.KeyValue, order pb.RangeRequest_SortOrder) {
	c := func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	if order == pb.RangeRequest_DESCEND {
		c = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(b.Value, a.Value) }
	}
	slices.SortStableFunc(kvs, c)
}
