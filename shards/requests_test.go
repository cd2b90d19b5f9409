package shards

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

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
