package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// ceilingSubcommand makes the harness binary serve as the ceiling server.
const ceilingSubcommand = "ceiling"

// ceilingKVs is how many KVs a ranged read (one with a range end) returns at
// most: bin/benchmark's txn-mixed reads a prefix with a limit, and the
// ceiling should send a response of the size a real store would.
const ceilingKVs = 1000

// ceiling implements etcd's KV service without storing anything: every
// answer is built from fixed data. It measures what the gRPC layer and
// bin/benchmark cost on this machine, the throughput no KV server speaking
// this protocol here can exceed.
type ceiling struct {
	pb.UnimplementedKVServer
	value []byte
	kvs   []*mvccpb.KeyValue
}

func newCeiling(valSize int) *ceiling {
	c := &ceiling{value: make([]byte, valSize)}
	for i := range c.value {
		c.value[i] = 'v'
	}
	for i := 0; i < ceilingKVs; i++ {
		c.kvs = append(c.kvs, &mvccpb.KeyValue{
			Key: []byte(fmt.Sprintf("key%05d", i)), Value: c.value,
			CreateRevision: 2, ModRevision: 2, Version: 1,
		})
	}
	return c
}

func (c *ceiling) header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: 1, MemberId: 1, Revision: 2, RaftTerm: 1}
}

func (c *ceiling) rangeResp(r *pb.RangeRequest) *pb.RangeResponse {
	if len(r.RangeEnd) == 0 {
		kv := &mvccpb.KeyValue{Key: r.Key, Value: c.value, CreateRevision: 2, ModRevision: 2, Version: 1}
		if r.CountOnly {
			return &pb.RangeResponse{Header: c.header(), Count: 1}
		}
		return &pb.RangeResponse{Header: c.header(), Kvs: []*mvccpb.KeyValue{kv}, Count: 1}
	}
	n := len(c.kvs)
	if r.Limit > 0 && int(r.Limit) < n {
		n = int(r.Limit)
	}
	resp := &pb.RangeResponse{Header: c.header(), Count: int64(len(c.kvs)), More: n < len(c.kvs)}
	if !r.CountOnly {
		resp.Kvs = c.kvs[:n]
	}
	return resp
}

func (c *ceiling) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return c.rangeResp(r), nil
}

func (c *ceiling) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return &pb.PutResponse{Header: c.header()}, nil
}

func (c *ceiling) DeleteRange(context.Context, *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return &pb.DeleteRangeResponse{Header: c.header()}, nil
}

// Txn always takes the success branch: STM commits (compare on the mod
// revision they read) must succeed or bin/benchmark's stm would retry
// forever.
func (c *ceiling) Txn(_ context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	resp := &pb.TxnResponse{Header: c.header(), Succeeded: true}
	for _, op := range r.Success {
		resp.Responses = append(resp.Responses, c.opResp(op))
	}
	return resp, nil
}

func (c *ceiling) opResp(op *pb.RequestOp) *pb.ResponseOp {
	switch o := op.Request.(type) {
	case *pb.RequestOp_RequestRange:
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: c.rangeResp(o.RequestRange)}}
	case *pb.RequestOp_RequestPut:
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: c.header()}}}
	case *pb.RequestOp_RequestDeleteRange:
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{Header: c.header()}}}
	case *pb.RequestOp_RequestTxn:
		resp, _ := c.Txn(context.Background(), o.RequestTxn)
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: resp}}
	}
	return &pb.ResponseOp{}
}

func (c *ceiling) Compact(context.Context, *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return &pb.CompactionResponse{Header: c.header()}, nil
}

// runCeiling is the ceiling process: serve until SIGTERM or SIGINT.
func runCeiling(args []string) error {
	fs := flag.NewFlagSet(ceilingSubcommand, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:2379", "host:port to serve etcd's KV API on (loopback only)")
	valSize := fs.Int("val-size", 256, "bytes of the value returned by reads")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// The same server options as MetaStore's, so the ceiling differs from
	// it only in what the handlers do.
	s := grpc.NewServer(serverOptions(defaultMaxRequestBytes)...)
	pb.RegisterKVServer(s, newCeiling(*valSize))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		s.GracefulStop()
	}()
	fmt.Fprintf(os.Stderr, "ceiling serving http://%s\n", l.Addr())
	return s.Serve(l)
}

// The ceiling serves with MetaStore's gRPC server options, copied here so
// that the harness, a module of its own, imports none of the server's
// packages: it runs the server as a binary, and importing rpc for one
// function would tie the harness's go.mod to the server's (a replace of
// github.com/metastore/metastore => ../.., and pebble and etcd's server
// packages in its build). Copied from rpc/server.go (serverOptions,
// grpcOverheadBytes) and rpc/config.go (DefaultMaxRequestBytes: the harness
// never sets --max-request-bytes); TestServerOptionsMatchServer reads those
// files and fails when the copy drifts.
const (
	defaultMaxRequestBytes = 1536 * 1024
	grpcOverheadBytes      = 512 * 1024
)

func serverOptions(maxRequestBytes int) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRequestBytes + grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.NumStreamWorkers(uint32(runtime.NumCPU())),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
}
