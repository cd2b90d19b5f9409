package shards

import (
	"bytes"
	"cmp"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

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
	span := spanOf(c.Key, c.RangeEnd)
	var es []entry
	if span.single() {
		if e, ok := rd.get(span.Key, latest); ok {
			es = []entry{e}
		}
	} else if !span.empty() {
		start, end := span.bounds()
		es, _ = rd.collect(start, end, latest, -1)
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
