package rpc

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// raftTerm is the term a single etcd member reports once it has elected
// itself; MetaStore has no elections, so it is constant.
const raftTerm = 2

// header fills response headers the way a single etcd member does.
type header struct {
	clusterID uint64
	memberID  uint64
	revision  func() int64
}

// fill sets the member's identity and, where the core left it unset, the
// current revision.
func (h *header) fill(rh *pb.ResponseHeader) {
	if rh == nil {
		return
	}
	rh.ClusterId = h.clusterID
	rh.MemberId = h.memberID
	rh.RaftTerm = raftTerm
	if rh.Revision == 0 {
		rh.Revision = h.revision()
	}
}
