package rpc

import (
	"context"
	"slices"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/actors"
)

// errMemberAdd refuses MemberAdd: a member added to a MetaStore would never
// receive the data, since nothing replicates it yet.
var errMemberAdd = status.Error(codes.Unimplemented, "metastore: adding members needs replication, which is not built yet")

// errRemoveLastMember is what etcd answers, with strict reconfiguration
// checks (its default), to removing the one voting member: its
// ErrNotEnoughStartedMembers, which etcd's gRPC layer does not map, so it
// arrives with code Unknown.
var errRemoveLastMember = status.Error(codes.Unknown, "etcdserver: re-configuration failed due to not enough started members")

// member is this member as MemberList reports it. Its peer URLs are the
// one thing a client can change (MemberUpdate); MetaStore has no
// membership actor until replication lands, so they live here, recorded
// in the data dir (actors.Node.SetPeerURLs) before they are shown.
type member struct {
	node       *actors.Node
	clusterID  uint64
	id         uint64
	name       string
	clientURLs []string
	// mu serializes updates (record, then show) and guards peerURLs.
	mu       sync.Mutex
	peerURLs []string
}

// newMember is the member cfg describes, with the peer URLs a MemberUpdate
// recorded in the data dir taking the place of --initial-advertise-peer-urls.
func newMember(cfg Config, node *actors.Node, clientURLs []string) (*member, error) {
	peers, ok, err := node.PeerURLs()
	if err != nil {
		return nil, err
	}
	if !ok {
		peers = cfg.AdvertisePeerURLs
	}
	meta := node.Meta()
	return &member{node: node, clusterID: meta.ClusterID, id: meta.MemberID, name: cfg.Name, clientURLs: clientURLs, peerURLs: peers}, nil
}

// pb returns the member as etcd's protobuf describes it.
func (m *member) pb() *pb.Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &pb.Member{ID: m.id, Name: m.name, PeerURLs: slices.Clone(m.peerURLs), ClientURLs: slices.Clone(m.clientURLs)}
}

// setPeerURLs records urls, then shows them.
func (m *member) setPeerURLs(urls []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.node.SetPeerURLs(urls); err != nil {
		return err
	}
	m.peerURLs = slices.Clone(urls)
	return nil
}

// clusterServer serves etcd's Cluster service for a cluster of one member,
// with etcd's answers and errors.
type clusterServer struct {
	pb.UnimplementedClusterServer
	self  *member
	guard *guard
}

// header is etcd's Cluster header: its identity and raft term, and no
// revision.
func (cs *clusterServer) header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: cs.self.clusterID, MemberId: cs.self.id, RaftTerm: raftTerm}
}

// MemberList lists this member. A linearizable list needs no round: the
// membership never changes behind it.
func (cs *clusterServer) MemberList(ctx context.Context, _ *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if err := cs.guard.someone(ctx); err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Header: cs.header(), Members: []*pb.Member{cs.self.pb()}}, nil
}

// MemberAdd checks the peer URLs as etcd does, then refuses (errMemberAdd).
func (cs *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if _, err := types.NewURLs(r.PeerURLs); err != nil {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	if err := cs.guard.root(ctx); err != nil {
		return nil, err
	}
	return nil, errMemberAdd
}

func (cs *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if err := cs.guard.root(ctx); err != nil {
		return nil, err
	}
	if r.ID != cs.self.id {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	return nil, errRemoveLastMember
}

// MemberUpdate sets this member's peer URLs, unchecked as etcd leaves
// them (an empty list included), durably on a data dir.
func (cs *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	if err := cs.guard.root(ctx); err != nil {
		return nil, err
	}
	if r.ID != cs.self.id {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if err := cs.self.setPeerURLs(r.PeerURLs); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberUpdateResponse{Header: cs.header(), Members: []*pb.Member{cs.self.pb()}}, nil
}

// MemberPromote: the one member is a voting member, never a learner.
func (cs *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if err := cs.guard.root(ctx); err != nil {
		return nil, err
	}
	if r.ID != cs.self.id {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	return nil, rpctypes.ErrGRPCMemberNotLearner
}
