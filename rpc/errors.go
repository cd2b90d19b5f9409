package rpc

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/metastore/metastore/shards"
)

// grpcErrors maps the core's errors to etcd's, whose text clients match.
// It is the only place a domain error becomes a gRPC status.
var grpcErrors = []struct {
	err  error
	grpc error
}{
	{shards.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{shards.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{shards.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{shards.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{shards.ErrTooManyRequests, rpctypes.ErrGRPCRequestTooManyRequests},
	{context.Canceled, rpctypes.ErrGRPCCanceled},
	{context.DeadlineExceeded, rpctypes.ErrGRPCDeadlineExceeded},
}

// toGRPCError returns etcd's error for err; errors already in gRPC form
// pass through.
func toGRPCError(err error) error {
	for _, e := range grpcErrors {
		if errors.Is(err, e.err) {
			return e.grpc
		}
	}
	return err
}
