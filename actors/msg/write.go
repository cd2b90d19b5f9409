package msg

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// Request is one write request: exactly one field is set. A Txn here may
// write; read-only Txns never become messages (they run on the read path).
type Request struct {
	Put    *pb.PutRequest
	Delete *pb.DeleteRangeRequest
	Txn    *pb.TxnRequest
}

// Message returns the request as its protobuf message, whose encoded size
// is what the queues' byte limits count.
func (r Request) Message() proto.Message {
	switch {
	case r.Put != nil:
		return r.Put
	case r.Delete != nil:
		return r.Delete
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
}

// Message returns the response as its protobuf message.
func (r Response) Message() proto.Message {
	switch {
	case r.Put != nil:
		return r.Put
	case r.Delete != nil:
		return r.Delete
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
