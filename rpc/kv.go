package rpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/shards"
)

// kvServer is etcd's KV service: it validates, hands the request to the
// node, and maps the answer. It never touches state itself.
type kvServer struct {
	pb.UnimplementedKVServer
	node            *actors.Node
	hdr             *header
	guard           *guard
	maxTxnOps       int
	maxRequestBytes int
}

func (s *kvServer) tooLarge(m proto.Message) error {
	if proto.Size(m) > s.maxRequestBytes {
		return rpctypes.ErrGRPCRequestTooLarge
	}
	return nil
}

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	c, err := s.readable(ctx, r.Key, r.RangeEnd)
	if err != nil {
		return nil, err
	}
	resp, err := s.node.Range(r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if err := c.still(s.guard); err != nil {
		return nil, err
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

// readable checks that the caller may read a range, and returns it for
// the check after the read.
func (s *kvServer) readable(ctx context.Context, key, end []byte) (caller, error) {
	c, err := s.guard.caller(ctx)
	if err != nil {
		return c, err
	}
	return c, c.read(key, end)
}

// streamChunkKVs is the size of the first chunk of a RangeStream; later
// chunks double until they near the request size limit.
const streamChunkKVs = 10

// RangeStream answers a range as a stream of chunks that, merged, equal the
// Range answer exactly: the range is read once at one revision, then cut.
// The last chunk carries the header, count and more.
func (s *kvServer) RangeStream(r *pb.RangeRequest, stream grpc.ServerStreamingServer[pb.RangeStreamResponse]) error {
	if err := checkRange(r); err != nil {
		return err
	}
	if !shards.IsDefaultOrdering(r) {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support custom sort orders")
	}
	if shards.HasRevisionFilters(r) {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support revision filters")
	}
	c, err := s.readable(stream.Context(), r.Key, r.RangeEnd)
	if err != nil {
		return err
	}
	resp, err := s.node.Range(r)
	if err != nil {
		return toGRPCError(err)
	}
	if err := c.still(s.guard); err != nil {
		return err
	}
	s.hdr.fill(resp.Header)
	kvs := resp.Kvs
	chunk := streamChunkKVs
	for {
		out := &pb.RangeResponse{}
		n := min(chunk, len(kvs))
		size := 0
		for i, kv := range kvs[:n] {
			if size += proto.Size(kv); size > s.maxRequestBytes && i > 0 {
				n = i
				break
			}
		}
		out.Kvs, kvs = kvs[:n], kvs[n:]
		if len(kvs) == 0 {
			out.Header, out.Count, out.More = resp.Header, resp.Count, resp.More
		}
		if err := stream.Send(&pb.RangeStreamResponse{RangeResponse: out}); err != nil {
			return err
		}
		if len(kvs) == 0 {
			return nil
		}
		if size < s.maxRequestBytes/2 {
			chunk *= 2
		}
	}
}

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	// etcd checks the quota before anything else about a request.
	if s.node.NoSpace() {
		return nil, rpctypes.ErrGRPCNoSpace
	}
	if err := checkPut(r); err != nil {
		return nil, err
	}
	// As in etcd: a bad token is refused before the size is looked at,
	// the permissions after.
	c, done, err := s.guard.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := s.tooLarge(r); err != nil {
		return nil, err
	}
	if err := s.guard.put(ctx, c, r); err != nil {
		return nil, err
	}
	resp, err := s.node.Put(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDelete(r); err != nil {
		return nil, err
	}
	// As in etcd: a bad token is refused before the size is looked at,
	// the permissions after.
	c, done, err := s.guard.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := s.tooLarge(r); err != nil {
		return nil, err
	}
	if err := c.deleteRange(r); err != nil {
		return nil, err
	}
	resp, err := s.node.DeleteRange(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if s.node.NoSpace() && hasPut(r) {
		return nil, rpctypes.ErrGRPCNoSpace
	}
	if err := checkTxn(r, s.maxTxnOps); err != nil {
		return nil, err
	}
	if err := checkDuplicates(r.Success); err != nil {
		return nil, err
	}
	if err := checkDuplicates(r.Failure); err != nil {
		return nil, err
	}
	readOnly := shards.IsTxnReadOnly(r)
	c, done, err := s.txnCaller(ctx, readOnly)
	if err != nil {
		return nil, err
	}
	defer done()
	if !readOnly {
		if err := s.tooLarge(r); err != nil {
			return nil, err
		}
	}
	if err := s.guard.txn(ctx, c, r); err != nil {
		return nil, err
	}
	resp, err := s.node.Txn(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if readOnly {
		if err := c.still(s.guard); err != nil {
			return nil, err
		}
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

// txnCaller is the caller of a Txn: a writing one is counted as a write
// (guard.writer), a read-only one is checked again after it ran.
func (s *kvServer) txnCaller(ctx context.Context, readOnly bool) (caller, func(), error) {
	if !readOnly {
		return s.guard.writer(ctx)
	}
	c, err := s.guard.caller(ctx)
	return c, func() {}, err
}

// Compact is for root alone, as in etcd.
func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	c, err := s.guard.caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.admin(); err != nil {
		return nil, err
	}
	rev, err := s.node.Compact(ctx, r.Revision, r.Physical)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: rev}}
	s.hdr.fill(resp.Header)
	return resp, nil
}

// hasPut reports whether a Txn could add data: a put in any branch, at any
// depth. Under the NOSPACE alarm etcd refuses those and still runs the rest.
func hasPut(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if op.GetRequestPut() != nil {
				return true
			}
			if t := op.GetRequestTxn(); t != nil && hasPut(t) {
				return true
			}
		}
	}
	return false
}
