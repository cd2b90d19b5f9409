package test

// Helpers shared by the auth tests (auth_test.go, auth_attack_test.go,
// etcdctl_auth_test.go): raw Auth calls with a token in the request's
// metadata, one call that sets up users, roles and a root and turns auth
// on, the permission fixture most tests share (authPermSetup), raw Watch
// streams with a token, and pictures of the auth and KV state for "nothing
// changed" checks.
//
// The raw calls carry the token themselves, as metadata "token", so that
// nothing re-authenticates behind the test's back: clientv3 fetches a new
// token whenever the server calls the old one invalid or stale, which would
// hide exactly what the attack tests look for.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
)

const (
	// authRootPassword is the root user's password in every auth test.
	authRootPassword = "root-pw"
	// authBcryptCost is bcrypt's lowest cost (bcrypt.MinCost), which
	// both servers accept.
	authBcryptCost = 4
)

// forEachAuthBackend is forEachBackend with bcrypt at its cheapest cost, so
// that adding users and authenticating cost microseconds, not tens of
// milliseconds each.
func forEachAuthBackend(t *testing.T, fn func(t *testing.T, tg *Target), opts ...serverOption) {
	t.Helper()
	forEachBackend(t, fn, append([]serverOption{withBcryptCost(authBcryptCost)}, opts...)...)
}

// tokenCtx is reqCtx carrying token the way clientv3 sends it (metadata
// "token"); an empty token sends none.
func tokenCtx(t testing.TB, token string) context.Context {
	ctx := reqCtx(t)
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "token", token)
}

// authOf is tg's raw Auth service.
func authOf(tg *Target) pb.AuthClient { return pb.NewAuthClient(tg.Conn) }

// authMust fails the test if a step that must succeed did not.
func authMust(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// authToken authenticates user over raw gRPC and returns the token.
func authToken(t testing.TB, tg *Target, user, password string) string {
	t.Helper()
	resp, err := authOf(tg).Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: user, Password: password})
	authMust(t, "authenticate "+user, err)
	if resp.Token == "" {
		t.Fatalf("authenticate %s: empty token", user)
	}
	return resp.Token
}

// authStatus is AuthStatus with token (may be empty: anyone may ask).
func authStatus(t testing.TB, tg *Target, token string) *pb.AuthStatusResponse {
	t.Helper()
	resp, err := authOf(tg).AuthStatus(tokenCtx(t, token), &pb.AuthStatusRequest{})
	authMust(t, "auth status", err)
	return resp
}

// authRev is the store's auth revision.
func authRev(t testing.TB, tg *Target, token string) uint64 {
	t.Helper()
	return authStatus(t, tg, token).AuthRevision
}

// authPerm is a permission of typ on [key, end); end "" is the key alone,
// "\x00" every key from key on.
func authPerm(typ authpb.Permission_Type, key, end string) *authpb.Permission {
	p := &authpb.Permission{PermType: typ, Key: []byte(key)}
	if end != "" {
		p.RangeEnd = []byte(end)
	}
	return p
}

// authRole is a role to create and its permissions.
type authRole struct {
	name  string
	perms []*authpb.Permission
}

// authUser is a user to create, its password and its roles.
type authUser struct {
	name, password string
	roles          []string
}

// authAddRoles creates roles with their permissions through a (while auth
// is off, or with a root token in ctx's place: reqCtx is used).
func authAddRoles(t testing.TB, a pb.AuthClient, roles []authRole) {
	t.Helper()
	for _, r := range roles {
		_, err := a.RoleAdd(reqCtx(t), &pb.AuthRoleAddRequest{Name: r.name})
		authMust(t, "role add "+r.name, err)
		for _, p := range r.perms {
			_, err := a.RoleGrantPermission(reqCtx(t), &pb.AuthRoleGrantPermissionRequest{Name: r.name, Perm: p})
			authMust(t, fmt.Sprintf("grant %v to %s", p, r.name), err)
		}
	}
}

// authSetup creates roles and users as given, the user root (password
// authRootPassword) with the role root, turns auth on and returns a token
// of root. Everything goes through raw gRPC while auth is still off.
func authSetup(t testing.TB, tg *Target, roles []authRole, users []authUser) string {
	t.Helper()
	a := authOf(tg)
	authAddRoles(t, a, roles)
	users = append([]authUser{{name: "root", password: authRootPassword, roles: []string{"root"}}}, users...)
	for _, u := range users {
		_, err := a.UserAdd(reqCtx(t), &pb.AuthUserAddRequest{Name: u.name, Password: u.password})
		authMust(t, "user add "+u.name, err)
		for _, r := range u.roles {
			_, err := a.UserGrantRole(reqCtx(t), &pb.AuthUserGrantRoleRequest{User: u.name, Role: r})
			authMust(t, fmt.Sprintf("grant role %s to %s", r, u.name), err)
		}
	}
	_, err := a.AuthEnable(reqCtx(t), &pb.AuthEnableRequest{})
	authMust(t, "auth enable", err)
	return authToken(t, tg, "root", authRootPassword)
}

// authPut writes k=v with token over raw gRPC; it must succeed.
func authPut(t testing.TB, tg *Target, token, k, v string) *pb.PutResponse {
	t.Helper()
	resp, err := tg.KV.Put(tokenCtx(t, token), &pb.PutRequest{Key: []byte(k), Value: []byte(v)})
	authMust(t, "put "+k, err)
	return resp
}

// authKVState pictures the whole keyspace, as root sees it: the store
// revision and every key with its value and revisions. Equal pictures
// before and after a refused request mean it changed nothing.
func authKVState(t testing.TB, tg *Target, rootToken string) string {
	t.Helper()
	resp, err := tg.KV.Range(tokenCtx(t, rootToken), &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	authMust(t, "read the keyspace as root", err)
	return fmt.Sprintf("rev %d: %s", resp.Header.Revision, kvSummary(resp.Kvs))
}

// authState pictures the auth store as root sees it: enabled, its
// revision, every user with its roles and every role with its permissions.
func authState(t testing.TB, tg *Target, rootToken string) string {
	t.Helper()
	a := authOf(tg)
	st := authStatus(t, tg, rootToken)
	var b strings.Builder
	fmt.Fprintf(&b, "enabled=%v rev=%d\n", st.Enabled, st.AuthRevision)
	users, err := a.UserList(tokenCtx(t, rootToken), &pb.AuthUserListRequest{})
	authMust(t, "user list", err)
	for _, u := range users.Users {
		resp, err := a.UserGet(tokenCtx(t, rootToken), &pb.AuthUserGetRequest{Name: u})
		authMust(t, "user get "+u, err)
		fmt.Fprintf(&b, "user %s: %v\n", u, resp.Roles)
	}
	roles, err := a.RoleList(tokenCtx(t, rootToken), &pb.AuthRoleListRequest{})
	authMust(t, "role list", err)
	for _, r := range roles.Roles {
		resp, err := a.RoleGet(tokenCtx(t, rootToken), &pb.AuthRoleGetRequest{Role: r})
		authMust(t, "role get "+r, err)
		fmt.Fprintf(&b, "role %s: %s\n", r, authPerms(resp.Perm))
	}
	return b.String()
}

// authPerms renders permissions compactly: TYPE[key,end) each.
func authPerms(perms []*authpb.Permission) string {
	var parts []string
	for _, p := range perms {
		parts = append(parts, fmt.Sprintf("%s[%q,%q)", p.PermType, p.Key, p.RangeEnd))
	}
	return strings.Join(parts, " ")
}

// authUserClient is a clientv3 client that logs in as user: it
// authenticates when it connects and again whenever the server calls its
// token invalid or stale, as applications see it. The test's cleanup
// closes it.
func authUserClient(t testing.TB, tg *Target, user, password string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{tg.Endpoint},
		DialTimeout: 5 * time.Second,
		Username:    user,
		Password:    password,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clientv3 as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// authJWTSpec writes a fresh RSA key pair to the test's temp dir and
// returns the --auth-token value that signs JWT tokens with it.
func authJWTSpec(t testing.TB) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privFile, pubFile := filepath.Join(dir, "jwt.key"), filepath.Join(dir, "jwt.pub")
	writePEM(t, privFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	writePEM(t, pubFile, "PUBLIC KEY", pub)
	return "jwt,pub-key=" + pubFile + ",priv-key=" + privFile + ",sign-method=RS256"
}

// authPermTokens are the tokens of the users of authPermSetup.
type authPermTokens struct {
	root, alice, bob string
}

// authPermSetup turns auth on with alice holding five roles, each one
// shape of permission, and bob holding none, and writes (as root) a key in
// and beside each of alice's ranges:
//
//	reader    READ       /perm/r (the key alone)
//	writer    WRITE      [/perm/w/a, /perm/w/m)
//	prefixer  READWRITE  prefix /perm/rw/
//	fromkey   READ       every key from /perm/z on
//	split     READ       [/perm/s/a, /perm/s/m) and [/perm/s/m, /perm/s/z)
func authPermSetup(t *testing.T, tg *Target) authPermTokens {
	t.Helper()
	const r, w, rw = authpb.READ, authpb.WRITE, authpb.READWRITE
	rootTok := authSetup(t, tg, []authRole{
		{name: "reader", perms: []*authpb.Permission{authPerm(r, "/perm/r", "")}},
		{name: "writer", perms: []*authpb.Permission{authPerm(w, "/perm/w/a", "/perm/w/m")}},
		{name: "prefixer", perms: []*authpb.Permission{authPerm(rw, "/perm/rw/", prefixEnd("/perm/rw/"))}},
		{name: "fromkey", perms: []*authpb.Permission{authPerm(r, "/perm/z", "\x00")}},
		{name: "split", perms: []*authpb.Permission{authPerm(r, "/perm/s/a", "/perm/s/m"), authPerm(r, "/perm/s/m", "/perm/s/z")}},
	}, []authUser{
		{name: "alice", password: "alice-pw", roles: []string{"reader", "writer", "prefixer", "fromkey", "split"}},
		{name: "bob", password: "bob-pw"},
	})
	for _, k := range authPermKeys {
		authPut(t, tg, rootTok, k, "v")
	}
	return authPermTokens{root: rootTok, alice: authToken(t, tg, "alice", "alice-pw"), bob: authToken(t, tg, "bob", "bob-pw")}
}

// authPermKeys are the keys authPermSetup writes, in order.
var authPermKeys = []string{"/perm/other", "/perm/r", "/perm/r2", "/perm/rw/x", "/perm/s/b", "/perm/s/n", "/perm/w/b", "/perm/w/c", "/perm/w/d", "/perm/z1"}

// authBy... pick a user's token out of authPermTokens.
var (
	authByRoot  = func(k authPermTokens) string { return k.root }
	authByAlice = func(k authPermTokens) string { return k.alice }
	authByBob   = func(k authPermTokens) string { return k.bob }
	authByNone  = func(authPermTokens) string { return "" }
)

// authWatch opens a raw Watch stream that sends token (none if empty), for
// the life of t.
func authWatch(t *testing.T, tg *Target, token string) *wtStream {
	t.Helper()
	ctx := t.Context()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "token", token)
	}
	return wtOpenCtx(t, tg, ctx)
}

// authWtHeaders is wtHeadersOf for a server with auth on: the ids and
// term of a Range root sends.
func authWtHeaders(t *testing.T, tg *Target, rootToken string) wtHeaders {
	t.Helper()
	resp, err := tg.KV.Range(tokenCtx(t, rootToken), &pb.RangeRequest{Key: []byte("\x00never-written")})
	authMust(t, "range as root", err)
	kv := resp.Header
	return func(rev int64) *pb.ResponseHeader {
		return &pb.ResponseHeader{ClusterId: kv.ClusterId, MemberId: kv.MemberId, RaftTerm: kv.RaftTerm, Revision: rev}
	}
}

// authRangeReq, authPutOp, authRangeOp, authTxnOp and authVersionCmp build
// requests for the permission tables.
func authRangeReq(key, end string) *pb.RangeRequest {
	return &pb.RangeRequest{Key: []byte(key), RangeEnd: []byte(end)}
}

func authPutOp(key string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte("t")}}}
}

func authRangeOp(key, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: authRangeReq(key, end)}}
}

func authTxnOp(txn *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: txn}}
}

func authVersionCmp(key string) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Version{Version: 0}}
}
