package shards

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors/msg"
)

// request wraps a Put, DeleteRange or Txn request as a write carries it.
func request(req any) msg.Request {
	switch r := req.(type) {
	case *pb.PutRequest:
		return msg.Request{Put: r}
	case *pb.DeleteRangeRequest:
		return msg.Request{Delete: r}
	case *pb.TxnRequest:
		return msg.Request{Txn: r}
	}
	panic(fmt.Sprintf("not a write request: %T", req))
}

// response returns the one response a write's answer holds.
func response(r msg.Response) proto.Message {
	switch {
	case r.Put != nil:
		return r.Put
	case r.Delete != nil:
		return r.Delete
	default:
		return r.Txn
	}
}
