package msg

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// Request is one write request: exactly one field is set. A Txn here may
// write; read-only Txns never become messages (they run on the read path).
// Revoke deletes the keys of a lease the lease actor has already taken out
// of its table, and logs the revoke (see lease.go); only the coordinator
// runs it.
type Request struct {
	Put    *pb.PutRequest
	Delete *pb.DeleteRangeRequest
	Txn    *pb.TxnRequest
	Revoke *pb.LeaseRevokeRequest
}

// Message returns the request as its protobuf message, whose encoded size
// is what the queues' byte limits count.
func (r Request) Message() proto.Message {
	switch {
	case r.Put != nil:
		return r.Put
	case r.Delete != nil:
		return r.Delete
	case r.Revoke != nil:
		return r.Revoke
	default:
		return r.Txn
	}
}

// Response answers a Request: the field of the request's kind is set, its
// header holding the revision etcd would report (the rest of the header is
// the rpc layer's).
type Response struct {
	Put    *pb.PutResponse
	Delete *pb.DeleteRangeResponse
	Txn    *pb.TxnResponse
	Revoke *pb.LeaseRevokeResponse
}

// Message returns the response as its protobuf message.
func (r Response) Message() proto.Message {
	switch {
	case r.Put != nil:
		return r.Put
	case r.Delete != nil:
		return r.Delete
	case r.Revoke != nil:
		return r.Revoke
	default:
		return r.Txn
	}
}

// Result is the answer to a write: a response, or an error.
type Result struct {
	Resp Response
	Err  error
}

// Write asks a shard to run a request whose keys it owns alone, or the
// coordinator to run one that spans shards. The answer goes to Reply
// (buffered, capacity 1) once its revision is visible.
type Write struct {
	Req   Request
	Reply chan<- Result
}
