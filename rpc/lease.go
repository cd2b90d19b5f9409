package rpc

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/metastore/metastore/actors"
)

// leaseServer serves etcd's Lease service from the node's lease actor.
type leaseServer struct {
	pb.UnimplementedLeaseServer
	node  *actors.Node
	hdr   *header
	guard *guard
	// stopping ends the keep-alive streams when the server stops.
	stopping <-chan struct{}
}

func (ls *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if ls.node.NoSpace() {
		return nil, rpctypes.ErrGRPCNoSpace
	}
	if _, err := ls.known(ctx); err != nil {
		return nil, err
	}
	g, err := ls.node.LeaseGrant(ctx, r.ID, r.TTL)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{}, ID: g.ID, TTL: g.TTL}
	ls.hdr.fill(resp.Header)
	return resp, nil
}

// known returns the caller if it is someone (with auth on, any user may
// grant a lease, or ask about one, as in etcd).
func (ls *leaseServer) known(ctx context.Context) (caller, error) {
	c, err := ls.guard.caller(ctx)
	if err != nil {
		return c, err
	}
	return c, c.known()
}

// LeaseRevoke needs write permission on every key attached to the lease:
// revoking deletes them.
func (ls *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	c, done, err := ls.guard.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := c.known(); err != nil {
		return nil, err
	}
	if err := ls.guard.leaseKeys(ctx, c, r.ID, true); err != nil {
		return nil, err
	}
	resp, err := ls.node.LeaseRevoke(ctx, r.ID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	ls.hdr.fill(resp.Header)
	return resp, nil
}

// LeaseTimeToLive answers TTL -1 for a lease that does not exist, as etcd.
// Asked for its keys, it needs read permission on each.
func (ls *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	c, err := ls.known(ctx)
	if err != nil {
		return nil, err
	}
	if r.Keys {
		if err := ls.keys(ctx, c, false, r.ID); err != nil {
			return nil, err
		}
	}
	rem, keys, err := ls.node.LeaseTimeToLive(ctx, r.ID, r.Keys)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: &pb.ResponseHeader{}, ID: r.ID, TTL: -1}
	if rem.Found {
		resp.TTL, resp.GrantedTTL = rem.TTL, rem.Granted
		if r.Keys {
			resp.Keys = make([][]byte, len(keys))
			for i, k := range keys {
				resp.Keys[i] = []byte(k)
			}
		}
	}
	ls.hdr.fill(resp.Header)
	return resp, nil
}

// LeaseLeases needs read permission on every key of every lease, as in
// etcd: the list would otherwise tell of leases holding keys the caller
// may not see.
func (ls *leaseServer) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	c, err := ls.known(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := ls.node.LeaseLeases(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if err := ls.keys(ctx, c, false, ids...); err != nil {
		return nil, err
	}
	resp := &pb.LeaseLeasesResponse{Header: &pb.ResponseHeader{}, Leases: make([]*pb.LeaseStatus, len(ids))}
	for i, id := range ids {
		resp.Leases[i] = &pb.LeaseStatus{ID: id}
	}
	ls.hdr.fill(resp.Header)
	return resp, nil
}

// LeaseKeepAlive renews each lease the client names and answers with its
// TTL (0 for one that does not exist), one answer per request in order, as
// etcd's loop does. The header is filled before the renewal, as etcd's is,
// so that it never shows a revision after a revoke the renewal missed.
func (ls *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	errc := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				errc <- nil
				return
			}
			if err != nil {
				errc <- err
				return
			}
			if err := ls.renewable(ctx, req.ID); err != nil {
				errc <- err
				return
			}
			resp := &pb.LeaseKeepAliveResponse{ID: req.ID, Header: &pb.ResponseHeader{}}
			ls.hdr.fill(resp.Header)
			if resp.TTL, err = ls.node.LeaseKeepAlive(ctx, req.ID); err != nil {
				errc <- toGRPCError(err)
				return
			}
			if err := stream.Send(resp); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-ls.stopping:
		return rpctypes.ErrGRPCStopped
	}
}

// renewable checks a keep-alive as etcd does, with the token the stream
// was opened with: someone, with write permission on every key attached
// to the lease. A refusal ends the stream.
func (ls *leaseServer) renewable(ctx context.Context, id int64) error {
	c, err := ls.known(ctx)
	if err != nil {
		return err
	}
	return ls.keys(ctx, c, true, id)
}

// keys checks the caller's permission (write, or read) on every key of
// leases ids, then, as etcd's lease checks do, that the auth state did not
// change while they were looked up (a change meanwhile answers "revision
// of auth store is old"); root passes at once.
func (ls *leaseServer) keys(ctx context.Context, c caller, write bool, ids ...int64) error {
	if c.admitted() {
		return nil
	}
	for _, id := range ids {
		if err := ls.guard.leaseKeys(ctx, c, id, write); err != nil {
			return err
		}
	}
	return c.still(ls.guard)
}
