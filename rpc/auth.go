package rpc

import (
	"context"
	"encoding/base64"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/actors/auth"
)

// authServer is etcd's Auth service. Changes go to the node's auth actor
// once the caller is checked; reads (AuthStatus, UserGet, …) answer from
// the published state. Passwords are hashed and checked here, on the
// caller's goroutine: bcrypt is slow on purpose, and the actor must not
// wait for it.
type authServer struct {
	pb.UnsafeAuthServer
	node       *actors.Node
	hdr        *header
	guard      *guard
	bcryptCost int
}

// newAuthServer checks the bcrypt cost as etcd does: one out of bcrypt's
// range takes the default.
func newAuthServer(node *actors.Node, hdr *header, g *guard, cost int) *authServer {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		cost = bcrypt.DefaultCost
	}
	return &authServer{node: node, hdr: hdr, guard: g, bcryptCost: cost}
}

// header returns a filled response header (the KV revision, as etcd's).
func (s *authServer) header() *pb.ResponseHeader {
	h := &pb.ResponseHeader{}
	s.hdr.fill(h)
	return h
}

// change makes one change as root (or anyone, with auth off) and answers
// with the response answer builds around the header.
func change[T any](ctx context.Context, s *authServer, req proto.Message, answer func(*pb.ResponseHeader) T) (T, error) {
	who, err := s.admit(ctx)
	if err != nil {
		var none T
		return none, err
	}
	return commit(ctx, s, who, req, answer)
}

// admit returns the caller of a change if it may make one: root, or
// anyone with auth off.
func (s *authServer) admit(ctx context.Context) (auth.Info, error) {
	c, err := s.guard.caller(ctx)
	if err != nil {
		return auth.Info{}, err
	}
	return c.who, c.admin()
}

// commit has the auth actor make a change for who, admitted already.
func commit[T any](ctx context.Context, s *authServer, who auth.Info, req proto.Message, answer func(*pb.ResponseHeader) T) (T, error) {
	if err := s.node.AuthChange(ctx, who, req); err != nil {
		var none T
		return none, toGRPCError(err)
	}
	return answer(s.header()), nil
}

// hash is the base64 bcrypt hash etcd sends through its log in place of a
// password.
func (s *authServer) hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.bcryptCost)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

func (s *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return change(ctx, s, r, func(h *pb.ResponseHeader) *pb.AuthEnableResponse { return &pb.AuthEnableResponse{Header: h} })
}

func (s *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return change(ctx, s, r, func(h *pb.ResponseHeader) *pb.AuthDisableResponse { return &pb.AuthDisableResponse{Header: h} })
}

// AuthStatus needs no user, as etcd's.
func (s *authServer) AuthStatus(ctx context.Context, _ *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	if _, err := s.guard.caller(ctx); err != nil {
		return nil, err
	}
	st := s.node.AuthState()
	return &pb.AuthStatusResponse{Header: s.header(), Enabled: st.Enabled(), AuthRevision: st.Revision()}, nil
}

// Authenticate checks the password against the published state, then asks
// the actor for a token; if the state changed meanwhile it checks again,
// as etcd's does. The password goes nowhere else.
func (s *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	for {
		st := s.node.AuthState()
		if !st.Enabled() {
			return nil, rpctypes.ErrGRPCAuthNotEnabled
		}
		u, ok := st.User(r.Name)
		if !ok {
			return nil, rpctypes.ErrGRPCAuthFailed
		}
		if u.Options != nil && u.Options.NoPassword {
			return nil, auth.ErrNoPasswordUser
		}
		if bcrypt.CompareHashAndPassword(u.Password, []byte(r.Password)) != nil {
			return nil, rpctypes.ErrGRPCAuthFailed
		}
		token, err := s.node.AuthAssign(ctx, r.Name, st.Revision())
		if auth.IsStale(err) {
			continue
		}
		if err != nil {
			return nil, toGRPCError(err)
		}
		return &pb.AuthenticateResponse{Header: s.header(), Token: token}, nil
	}
}

// UserAdd hashes the password (unless the user has none), after the
// caller is checked: an unknown caller cannot make the server spend bcrypt
// time. A hashed_password the client sent is replaced, as etcd does.
func (s *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	who, err := s.admit(ctx)
	if err != nil {
		return nil, err
	}
	req := &pb.AuthUserAddRequest{Name: r.Name, Options: r.Options}
	if r.Options == nil || !r.Options.NoPassword {
		if req.HashedPassword, err = s.hash(r.Password); err != nil {
			return nil, err
		}
	}
	return commit(ctx, s, who, req, func(h *pb.ResponseHeader) *pb.AuthUserAddResponse { return &pb.AuthUserAddResponse{Header: h} })
}

func (s *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return change(ctx, s, r, func(h *pb.ResponseHeader) *pb.AuthUserDeleteResponse { return &pb.AuthUserDeleteResponse{Header: h} })
}

// UserChangePassword hashes a password given; with none, a hashed_password
// the client sent stands, as in etcd.
func (s *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	who, err := s.admit(ctx)
	if err != nil {
		return nil, err
	}
	req := &pb.AuthUserChangePasswordRequest{Name: r.Name, HashedPassword: r.HashedPassword}
	if r.Password != "" {
		if req.HashedPassword, err = s.hash(r.Password); err != nil {
			return nil, err
		}
	}
	return commit(ctx, s, who, req, func(h *pb.ResponseHeader) *pb.AuthUserChangePasswordResponse {
		return &pb.AuthUserChangePasswordResponse{Header: h}
	})
}

func (s *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return change(ctx, s, r, func(h *pb.ResponseHeader) *pb.AuthUserGrantRoleResponse {
		return &pb.AuthUserGrantRoleResponse{Header: h}
	})
}

func (s *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return change(ctx, s, r, func(h *pb.ResponseHeader) *pb.AuthUserRevokeRoleResponse {
		return &pb.AuthUserRevokeRoleResponse{Header: h}
	})
}

func (s *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return change(ctx, s, r, func(h *pb.ResponseHeader) *pb.AuthRoleAddResponse { return &pb.AuthRoleAddResponse{Header: h} })
}

func (s *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return change(ctx, s, r, func(h *pb.ResponseHeader) *pb.AuthRoleDeleteResponse { return &pb.AuthRoleDeleteResponse{Header: h} })
}

func (s *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return change(ctx, s, r, func(h *pb.ResponseHeader) *pb.AuthRoleGrantPermissionResponse {
		return &pb.AuthRoleGrantPermissionResponse{Header: h}
	})
}

func (s *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return change(ctx, s, r, func(h *pb.ResponseHeader) *pb.AuthRoleRevokePermissionResponse {
		return &pb.AuthRoleRevokePermissionResponse{Header: h}
	})
}

// UserGet answers root, or a user asking about itself.
func (s *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	c, err := s.guard.caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.admin(); err != nil && r.Name != c.who.User {
		return nil, err
	}
	u, ok := c.st.User(r.Name)
	if !ok {
		return nil, rpctypes.ErrGRPCUserNotFound
	}
	return &pb.AuthUserGetResponse{Header: s.header(), Roles: append([]string(nil), u.Roles...)}, nil
}

// rootPerm is what RoleGet shows for the root role, whatever it stores:
// read and write on every key.
func rootPerm() *authpb.Permission {
	return &authpb.Permission{PermType: authpb.Permission_READWRITE, Key: []byte{}, RangeEnd: []byte{0}}
}

// RoleGet answers root, or a user that has the role.
func (s *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	c, err := s.guard.caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.admin(); err != nil && !c.st.HasRole(c.who.User, r.Role) {
		return nil, err
	}
	role, ok := c.st.Role(r.Role)
	if !ok {
		return nil, rpctypes.ErrGRPCRoleNotFound
	}
	resp := &pb.AuthRoleGetResponse{Header: s.header()}
	if r.Role == auth.RootRole {
		resp.Perm = []*authpb.Permission{rootPerm()}
	} else {
		for _, p := range role.KeyPermission {
			resp.Perm = append(resp.Perm, proto.Clone(p).(*authpb.Permission))
		}
	}
	return resp, nil
}

func (s *authServer) UserList(ctx context.Context, _ *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	c, err := s.guard.caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.admin(); err != nil {
		return nil, err
	}
	return &pb.AuthUserListResponse{Header: s.header(), Users: c.st.Users()}, nil
}

func (s *authServer) RoleList(ctx context.Context, _ *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	c, err := s.guard.caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.admin(); err != nil {
		return nil, err
	}
	return &pb.AuthRoleListResponse{Header: s.header(), Roles: c.st.Roles()}, nil
}
