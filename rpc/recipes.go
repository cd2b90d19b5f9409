package rpc

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.etcd.io/etcd/server/v3/proxy/grpcproxy/adapter"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// registerRecipes serves etcd's v3lock (Lock, Unlock) and v3election
// (Campaign, Proclaim, Leader, Observe, Resign) services with etcd's own
// implementations, which run clientv3's concurrency recipes (sessions on
// leases, keys ordered by create revision, watches on the predecessor)
// against the server. As etcd's v3client does, the client they use calls
// this server's KV, Lease and Watch services in-process, through
// grpcproxy's adapters, without a socket. It is closed by the returned
// function.
func registerRecipes(s *grpc.Server, kv pb.KVServer, lease pb.LeaseServer, watch pb.WatchServer) func() {
	c := clientv3.NewCtxClient(context.Background(), clientv3.WithZapLogger(zap.NewNop()))
	c.KV = clientv3.NewKVFromKVClient(adapter.KvServerToKvClient(kv), c)
	c.Lease = clientv3.NewLeaseFromLeaseClient(adapter.LeaseServerToLeaseClient(lease), c, time.Second)
	c.Watcher = clientv3.NewWatchFromWatchClient(adapter.WatchServerToWatchClient(watch), c)
	v3lockpb.RegisterLockServer(s, v3lock.NewLockServer(c))
	v3electionpb.RegisterElectionServer(s, v3election.NewElectionServer(c))
	return func() { _ = c.Close() }
}
