package rpc

import (
	"context"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/actors/auth"
)

// guard decides who makes a request and whether they may, against the
// node's published auth state: it reads that state and never waits for an
// actor. With auth off every check passes after one atomic load.
type guard struct {
	node *actors.Node
	// clientCertAuth takes the user from a verified client certificate's
	// common name when a request carries no token (etcd's
	// --client-cert-auth).
	clientCertAuth bool
}

// caller is who makes a request and the auth state it is checked against.
type caller struct {
	st  *auth.State
	who auth.Info
}

// on reports whether auth is on for this request.
func (c caller) on() bool { return c.st.Enabled() }

// caller returns who makes the request in ctx: the user its token names
// (metadata "token", else "authorization", "Bearer " stripped, as etcd),
// else with --client-cert-auth the common name of its verified client
// certificate (not for requests through the JSON gateway, which presents
// the server's own certificate: see gatewayMark), else nobody. A token that names no one is
// etcd's "invalid auth token". With auth off tokens are not looked at.
func (g *guard) caller(ctx context.Context) (caller, error) {
	return g.callerAt(ctx, g.node.AuthState())
}

// writer is caller for a write: done must be called once the write is
// answered, and until then the auth change that follows waits (see
// auth.Published.Enter), so that no write allowed before a change lands
// after the change is answered.
func (g *guard) writer(ctx context.Context) (caller, func(), error) {
	st, done := g.node.AuthWrite()
	c, err := g.callerAt(ctx, st)
	if err != nil {
		done()
		return c, nil, err
	}
	return c, done, nil
}

// callerAt is caller against auth state st.
func (g *guard) callerAt(ctx context.Context, st *auth.State) (caller, error) {
	c := caller{st: st}
	if !c.st.Enabled() {
		return c, nil
	}
	// ValueFromIncomingContext, not FromIncomingContext: that copies the
	// whole metadata, 60% of the guard's cost on a read.
	tokens := metadata.ValueFromIncomingContext(ctx, rpctypes.TokenFieldNameGRPC)
	if len(tokens) == 0 {
		tokens = metadata.ValueFromIncomingContext(ctx, rpctypes.TokenFieldNameSwagger)
	}
	if len(tokens) > 0 {
		who, ok := g.node.AuthToken(strings.TrimPrefix(tokens[0], "Bearer "), c.st)
		if !ok {
			return c, rpctypes.ErrGRPCInvalidAuthToken
		}
		c.who = who
		return c, nil
	}
	if g.clientCertAuth && len(metadata.ValueFromIncomingContext(ctx, "grpcgateway-accept")) == 0 && len(metadata.ValueFromIncomingContext(ctx, gatewayMark)) == 0 {
		if cn := commonName(ctx); cn != "" {
			c.who = auth.Info{User: cn, Revision: c.st.Revision()}
		}
	}
	return c, nil
}

// root checks that the caller of ctx is root (with auth on): the
// Maintenance and Cluster calls etcd reserves for root, and Compact.
func (g *guard) root(ctx context.Context) error {
	c, err := g.caller(ctx)
	if err != nil {
		return err
	}
	return c.admin()
}

// someone checks that the caller of ctx is a user (with auth on): what
// etcd lets any user do, such as Status and MemberList.
func (g *guard) someone(ctx context.Context) error {
	c, err := g.caller(ctx)
	if err != nil {
		return err
	}
	return c.known()
}

// commonName is the common name of the verified client certificate of
// ctx's connection, "" if it has none.
func commonName(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ""
	}
	for _, chain := range info.State.VerifiedChains {
		if len(chain) > 0 {
			return chain[0].Subject.CommonName
		}
	}
	return ""
}

// read and write check a key range ([key, end); end empty: key alone;
// "\x00": every key from key).
func (c caller) read(key, end []byte) error {
	return toGRPCError(c.st.Permitted(c.who, key, end, false))
}

func (c caller) write(key, end []byte) error {
	return toGRPCError(c.st.Permitted(c.who, key, end, true))
}

// admin checks that the caller is root.
func (c caller) admin() error { return toGRPCError(c.st.Admin(c.who)) }

// known checks that the caller is someone, for what any user may do
// (etcd's requireAuthInfo).
func (c caller) known() error {
	if c.on() && c.who.User == "" {
		return rpctypes.ErrGRPCUserEmpty
	}
	return nil
}

// admitted reports whether a check of lease keys is needed: not with auth
// off, not for root.
func (c caller) admitted() bool { return !c.on() || c.st.Admin(c.who) == nil }

// still checks, after a read, that the auth state did not change while it
// ran, as etcd's serialized reads do: an answer read under permissions
// revoked meanwhile is not given.
func (c caller) still(g *guard) error {
	if c.on() && c.who.Revision != 0 && g.node.AuthState().Revision() != c.who.Revision {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	return nil
}

// put checks a Put as etcd's apply does: write on its key, write on every
// key already attached to its lease (a user who could not revoke the lease
// may not attach to it), and read for prev_kv.
func (g *guard) put(ctx context.Context, c caller, r *pb.PutRequest) error {
	if err := c.write(r.Key, nil); err != nil {
		return err
	}
	if r.Lease != 0 {
		if err := g.leaseKeys(ctx, c, r.Lease, true); err != nil {
			return err
		}
	}
	if r.PrevKv {
		return c.read(r.Key, nil)
	}
	return nil
}

// deleteRange checks write on the range, and read for prev_kv.
func (c caller) deleteRange(r *pb.DeleteRangeRequest) error {
	if err := c.write(r.Key, r.RangeEnd); err != nil {
		return err
	}
	if r.PrevKv {
		return c.read(r.Key, r.RangeEnd)
	}
	return nil
}

// txn checks every compare as a read, then every op of both branches
// (whichever runs), nested Txns too, as etcd's checkTxnPermission.
func (g *guard) txn(ctx context.Context, c caller, r *pb.TxnRequest) error {
	for _, cmp := range r.Compare {
		if err := c.read(cmp.Key, cmp.RangeEnd); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			var err error
			switch {
			case op.GetRequestRange() != nil:
				rr := op.GetRequestRange()
				err = c.read(rr.Key, rr.RangeEnd)
			case op.GetRequestPut() != nil:
				err = g.put(ctx, c, op.GetRequestPut())
			case op.GetRequestDeleteRange() != nil:
				dr := op.GetRequestDeleteRange()
				if dr.PrevKv {
					if err = c.read(dr.Key, dr.RangeEnd); err != nil {
						return err
					}
				}
				err = c.write(dr.Key, dr.RangeEnd)
			case op.GetRequestTxn() != nil:
				err = g.txn(ctx, c, op.GetRequestTxn())
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// leaseKeys checks the caller's permission on every key attached to lease
// id (write, or read), unless it is root or auth is off. A lease that does
// not exist has no keys.
func (g *guard) leaseKeys(ctx context.Context, c caller, id int64, write bool) error {
	if c.admitted() {
		return nil
	}
	rem, keys, err := g.node.LeaseTimeToLive(ctx, id, true)
	if err != nil {
		return toGRPCError(err)
	}
	if !rem.Found {
		return nil
	}
	check := c.read
	if write {
		check = c.write
	}
	for _, k := range keys {
		if err := check([]byte(k), nil); err != nil {
			return err
		}
	}
	return nil
}
