package rpc

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/actors/auth"
	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/snapshot"
	"github.com/metastore/metastore/storage"
)

// grpcErrors maps the core's errors to etcd's, whose text clients match.
// It is the only place a domain error becomes a gRPC status. An auth error
// etcd has no gRPC error for (a password given for a user without one, a
// JWT signer that only verifies) is not here: it reaches the client as
// UNKNOWN with the auth package's own text, as etcd's does.
var grpcErrors = []struct {
	err  error
	grpc error
}{
	{msg.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{msg.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{msg.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{msg.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{msg.ErrLeaseExists, rpctypes.ErrGRPCLeaseExist},
	{msg.ErrLeaseTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{msg.ErrTooManyRequests, rpctypes.ErrGRPCRequestTooManyRequests},
	{storage.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{msg.ErrLogFailed, errLogFailed},
	{snapshot.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{snapshot.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{actors.ErrNoDataDir, errNoDataDir},
	{msg.ErrAlarmUnsupported, errAlarmUnsupported},
	{auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{auth.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
	{auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
	{context.Canceled, rpctypes.ErrGRPCCanceled},
	{context.DeadlineExceeded, rpctypes.ErrGRPCDeadlineExceeded},
}

// errLogFailed answers every write once the data dir's log has failed (a
// failed write or sync). etcd has no answer for it, since it exits; the
// code is UNAVAILABLE, as when a member is down, with a text that says what
// happened and what to do.
var errLogFailed = status.Error(codes.Unavailable, "etcdserver: storage failed; writes are refused until the server restarts (see its log)")

// errNoDataDir answers what reads the data dir as etcd's backend (Hash,
// HashKV, Snapshot) on a server run --in-memory: the request is fine, the
// server is not in a state to answer it.
var errNoDataDir = status.Error(codes.FailedPrecondition, actors.ErrNoDataDir.Error())

// errAlarmUnsupported answers raising an alarm other than NOSPACE, such as
// CORRUPT: MetaStore has no corruption check to act on it and clear it.
var errAlarmUnsupported = status.Error(codes.Unimplemented, "metastore: only the NOSPACE alarm can be raised (MetaStore has no corruption check)")

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
