package rpc

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"

	"github.com/coreos/go-semver/semver"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/snapshot"
)

// clusterVersion is the cluster version a single etcd v3.7 member settles
// on, which Downgrade answers with.
var clusterVersion = semver.Version{Major: 3, Minor: 7}

// snapshotChunkBytes is the size of the chunks Snapshot streams, etcd's
// (several OS pages).
const snapshotChunkBytes = 32 * 1024

var (
	// errDowngrade refuses to start a downgrade: etcd lowers its cluster
	// and storage versions for an older binary to take over its data
	// dir; no etcd binary can take over MetaStore's (a snapshot moves the
	// data instead).
	errDowngrade = status.Error(codes.Unimplemented, "metastore: downgrades are not supported: MetaStore serves etcd API 3.7 only (move the data with a snapshot instead)")
	// errUnknownDowngradeAction is etcd's answer to an action it does not
	// know: its ErrUnknownMethod, unmapped, so with code Unknown.
	errUnknownDowngradeAction = status.Error(codes.Unknown, "etcdserver: unknown method")
	// errUnknownAlarmAction answers an alarm action etcd does not know
	// (etcd itself crashes on one).
	errUnknownAlarmAction = status.Error(codes.InvalidArgument, "metastore: unknown alarm action")
)

// maintenanceServer serves etcd's Maintenance service for one member,
// which is always its own leader.
type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	node  *actors.Node
	hdr   *header
	guard *guard
	self  *member
	// quota is --quota-backend-bytes as etcd reports it: 0 means the
	// default, a negative value no quota.
	quota  int64
	logger *slog.Logger
}

// Status reports the member as a single etcd member does. MetaStore has no
// raft log: its raft index and applied index are the visible revision
// (every revision up to it is durable and applied), which only grows; a
// change that takes no revision (a lease grant, a compaction, an alarm)
// does not move it. The term is the constant one of the headers. In
// memory the sizes are the Go heap's (actors.Node.DBSize): etcdctl divides
// by them.
func (ms *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	if err := ms.guard.someone(ctx); err != nil {
		return nil, err
	}
	alarms, err := ms.node.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_GET})
	if err != nil {
		return nil, toGRPCError(err)
	}
	rev := ms.node.Revision()
	size, inUse := ms.node.DBSize()
	resp := &pb.StatusResponse{
		Header:           &pb.ResponseHeader{Revision: rev},
		Version:          APIVersion,
		DbSize:           size,
		Leader:           ms.hdr.memberID,
		RaftIndex:        uint64(rev),
		RaftTerm:         raftTerm,
		RaftAppliedIndex: uint64(rev),
		DbSizeInUse:      inUse,
		DbSizeQuota:      ms.quota,
		StorageVersion:   snapshot.StorageVersion,
		DowngradeInfo:    &pb.DowngradeInfo{},
	}
	if resp.DbSizeQuota == 0 {
		resp.DbSizeQuota = DefaultQuotaBackendBytes
	}
	for _, a := range alarms {
		// etcd's words: the alarm's protobuf text, "memberID:… alarm:NOSPACE".
		resp.Errors = append(resp.Errors, a.String())
	}
	ms.hdr.fill(resp.Header)
	return resp, nil
}

// Alarm lists, raises or clears alarms as etcd does (actors.Node.Alarm).
func (ms *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	// As etcd: listing is for any user, raising or clearing for root.
	check := ms.guard.root
	if r.Action == pb.AlarmRequest_GET {
		check = ms.guard.someone
	}
	if err := check(ctx); err != nil {
		return nil, err
	}
	if _, ok := pb.AlarmRequest_AlarmAction_name[int32(r.Action)]; !ok {
		return nil, errUnknownAlarmAction
	}
	alarms, err := ms.node.Alarm(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.AlarmResponse{Header: &pb.ResponseHeader{}, Alarms: alarms}
	ms.hdr.fill(resp.Header)
	return resp, nil
}

// Defragment compacts the storage engine; etcd answers an empty response,
// without a header.
func (ms *maintenanceServer) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := ms.guard.root(ctx); err != nil {
		return nil, err
	}
	ms.logger.Info("starting defragment")
	if err := ms.node.Defragment(ctx); err != nil {
		ms.logger.Warn("failed to defragment", "err", err)
		return nil, toGRPCError(err)
	}
	ms.logger.Info("finished defragment")
	return &pb.DefragmentResponse{}, nil
}

// Hash is etcd's hash of its whole backend, taken over the etcd backend a
// snapshot would stream; the header's revision is the one it was taken
// at, the image's.
func (ms *maintenanceServer) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	if err := ms.guard.root(ctx); err != nil {
		return nil, err
	}
	img, err := ms.node.Snapshot(ctx, ms.snapshotInfo())
	if err != nil {
		return nil, toGRPCError(err)
	}
	defer img.Close()
	h, err := img.Hash()
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.HashResponse{Header: &pb.ResponseHeader{Revision: img.Revision()}, Hash: h}
	ms.hdr.fill(resp.Header)
	return resp, nil
}

// HashKV is etcd's hash of the key space at a revision (actors.Node.HashKV).
func (ms *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	if err := ms.guard.root(ctx); err != nil {
		return nil, err
	}
	h, current, err := ms.node.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.HashKVResponse{
		Header:          &pb.ResponseHeader{Revision: current},
		Hash:            h.Hash,
		CompactRevision: h.CompactRevision,
		HashRevision:    h.Revision,
	}
	ms.hdr.fill(resp.Header)
	return resp, nil
}

// Snapshot streams an etcd v3.7 backend of the data, as etcd's does: the
// bbolt file in 32 KiB chunks, RemainingBytes counting down to 0, then its
// sha256 alone, every message carrying the storage version. The sha256
// is the one computed as the image was written, so a copy damaged on its
// way through the temporary file is caught by the client's check.
func (ms *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, srv pb.Maintenance_SnapshotServer) error {
	if err := ms.guard.root(srv.Context()); err != nil {
		return err
	}
	img, err := ms.node.Snapshot(srv.Context(), ms.snapshotInfo())
	if err != nil {
		return toGRPCError(err)
	}
	defer img.Close()
	r, err := img.Reader()
	if err != nil {
		return toGRPCError(err)
	}
	defer r.Close()
	total := img.Size() - sha256.Size
	ms.logger.Info("sending database snapshot to client", "total-bytes", total, "storage-version", snapshot.StorageVersion)
	for sent := int64(0); sent < total; {
		if err := srv.Context().Err(); err != nil {
			return toGRPCError(err)
		}
		// A new buffer each time: Send may still hold the last one.
		buf := make([]byte, min(snapshotChunkBytes, total-sent))
		if _, err := io.ReadFull(r, buf); err != nil {
			return toGRPCError(fmt.Errorf("metastore: read snapshot image: %w", err))
		}
		sent += int64(len(buf))
		if err := srv.Send(&pb.SnapshotResponse{RemainingBytes: uint64(total - sent), Blob: buf, Version: snapshot.StorageVersion}); err != nil {
			return toGRPCError(err)
		}
	}
	sha := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r, sha); err != nil {
		return toGRPCError(fmt.Errorf("metastore: read snapshot image: %w", err))
	}
	if err := srv.Send(&pb.SnapshotResponse{Blob: sha, Version: snapshot.StorageVersion}); err != nil {
		return toGRPCError(err)
	}
	ms.logger.Info("sent database snapshot to client", "total-bytes", total)
	return nil
}

// snapshotInfo names this member in an image; the node fills in the rest
// (actors.Node.Snapshot), the raft index included.
func (ms *maintenanceServer) snapshotInfo() snapshot.Info {
	m := ms.self.pb()
	return snapshot.Info{Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Term: raftTerm}
}

// MoveLeader: this member leads and stays leader; moving leadership to
// itself succeeds at once, as in etcd, and any other target is not a
// member. etcd answers an empty response, without a header.
func (ms *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := ms.guard.root(ctx); err != nil {
		return nil, err
	}
	if r.TargetID != ms.hdr.memberID {
		return nil, rpctypes.ErrGRPCBadLeaderTransferee
	}
	return &pb.MoveLeaderResponse{}, nil
}

// Downgrade answers VALIDATE as a single etcd v3.7 member does (only 3.6
// is a valid target), and CANCEL as it does with no downgrade under way;
// ENABLE checks the target as etcd does, then is refused (errDowngrade).
func (ms *maintenanceServer) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	if err := ms.guard.root(ctx); err != nil {
		return nil, err
	}
	switch r.Action {
	case pb.DowngradeRequest_VALIDATE, pb.DowngradeRequest_ENABLE:
		if err := checkDowngradeTarget(r.Version); err != nil {
			return nil, err
		}
		if r.Action == pb.DowngradeRequest_ENABLE {
			return nil, errDowngrade
		}
	case pb.DowngradeRequest_CANCEL:
		// etcd logs that no downgrade is under way, and answers.
	default:
		return nil, errUnknownDowngradeAction
	}
	resp := &pb.DowngradeResponse{Header: &pb.ResponseHeader{}, Version: fmt.Sprintf("%d.%d", clusterVersion.Major, clusterVersion.Minor)}
	ms.hdr.fill(resp.Header)
	return resp, nil
}

// checkDowngradeTarget is etcd's check of a downgrade target: a semantic
// version, or major.minor, whose major.minor is one minor below the
// cluster version.
func checkDowngradeTarget(v string) error {
	target, err := semver.NewVersion(v)
	if err != nil {
		if target, err = semver.NewVersion(v + ".0"); err != nil {
			return rpctypes.ErrGRPCWrongDowngradeVersionFormat
		}
	}
	if target.Major != clusterVersion.Major || target.Minor != clusterVersion.Minor-1 {
		return rpctypes.ErrGRPCInvalidDowngradeTargetVersion
	}
	return nil
}
