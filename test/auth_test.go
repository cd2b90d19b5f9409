package test

// The Auth service and role-based access control, black-box, against
// MetaStore and a real etcd: every Auth RPC with its errors and its effect
// on the auth revision, turning auth on and off, which user may do what on
// KV, Watch, Lease, the lock and election services, Maintenance and
// Cluster, and that the auth state survives a restart. Raw gRPC calls carry
// their token in the "token" metadata (see auth_helpers_test.go); the
// attacks on all this are in auth_attack_test.go, etcdctl's view in
// etcdctl_auth_test.go.
//
// etcd bumps the auth revision once for every change to users, roles or
// permissions and for turning auth off, never for reads, refusals, a
// duplicate role grant, or turning auth on; a fresh store is at revision 1.
// The tests assert each step's delta, so both backends are held to the same
// sequence.

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// errNoPasswordUser is what etcd answers a password login of a user made
// without one: an error it has no gRPC status for, so its internal text
// goes out with codes.Unknown.
var errNoPasswordUser = status.Error(codes.Unknown, "auth: authentication failed, password was given for no password user")

// authRevTracker checks the auth revision's delta after each step.
type authRevTracker struct {
	t     *testing.T
	tg    *Target
	token string
	last  uint64
}

func newAuthRevTracker(t *testing.T, tg *Target) *authRevTracker {
	t.Helper()
	return &authRevTracker{t: t, tg: tg, last: authRev(t, tg, "")}
}

// step checks that the auth revision moved by delta since the last step.
func (r *authRevTracker) step(what string, delta uint64) {
	r.t.Helper()
	now := authRev(r.t, r.tg, r.token)
	if now != r.last+delta {
		r.t.Errorf("%s: auth revision %d -> %d, want +%d", what, r.last, now, delta)
	}
	r.last = now
}

// TestAuthStatusFresh: a fresh store has auth off at auth revision 1.
func TestAuthStatusFresh(t *testing.T) {
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		st := authStatus(t, tg, "")
		if st.Enabled || st.AuthRevision != 1 {
			t.Fatalf("fresh store: enabled=%v auth revision %d, want off at 1", st.Enabled, st.AuthRevision)
		}
		if st.Header == nil || st.Header.Revision != tg.currentRev(t) {
			t.Fatalf("auth status header %v, want the store revision %d", st.Header, tg.currentRev(t))
		}
	})
}

// TestAuthUserRPCs: UserAdd, UserGet, UserList, UserDelete,
// UserChangePassword, UserGrantRole and UserRevokeRole with auth off (no
// token needed), their errors, and which of them move the auth revision.
func TestAuthUserRPCs(t *testing.T) {
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		a := authOf(tg)
		rev := newAuthRevTracker(t, tg)
		userAdd := func(r *pb.AuthUserAddRequest) error {
			_, err := a.UserAdd(reqCtx(t), r)
			return err
		}
		grant := func(user, role string) error {
			_, err := a.UserGrantRole(reqCtx(t), &pb.AuthUserGrantRoleRequest{User: user, Role: role})
			return err
		}
		revoke := func(user, role string) error {
			_, err := a.UserRevokeRole(reqCtx(t), &pb.AuthUserRevokeRoleRequest{Name: user, Role: role})
			return err
		}
		roles := func(user string) []string {
			t.Helper()
			resp, err := a.UserGet(reqCtx(t), &pb.AuthUserGetRequest{Name: user})
			authMust(t, "user get "+user, err)
			return resp.Roles
		}
		users := func() []string {
			t.Helper()
			resp, err := a.UserList(reqCtx(t), &pb.AuthUserListRequest{})
			authMust(t, "user list", err)
			return resp.Users
		}

		wantRPCErr(t, userAdd(&pb.AuthUserAddRequest{Name: "", Password: "pw"}), rpctypes.ErrGRPCUserEmpty)
		rev.step("user add with no name", 0)
		authMust(t, "user add alice", userAdd(&pb.AuthUserAddRequest{Name: "alice", Password: "pw"}))
		rev.step("user add alice", 1)
		wantRPCErr(t, userAdd(&pb.AuthUserAddRequest{Name: "alice", Password: "other"}), rpctypes.ErrGRPCUserAlreadyExist)
		rev.step("user add alice again", 0)
		authMust(t, "user add nopw", userAdd(&pb.AuthUserAddRequest{Name: "nopw", Options: &authpb.UserAddOptions{NoPassword: true}}))
		rev.step("user add nopw with no_password", 1)
		authMust(t, "user add carol", userAdd(&pb.AuthUserAddRequest{Name: "carol", Password: "pw"}))
		rev.step("user add carol", 1)
		if got := users(); !slices.Equal(got, []string{"alice", "carol", "nopw"}) {
			t.Errorf("user list %q, want alice carol nopw", got)
		}
		if got := roles("alice"); len(got) != 0 {
			t.Errorf("alice's roles %q, want none", got)
		}
		_, err := a.UserGet(reqCtx(t), &pb.AuthUserGetRequest{Name: "nobody"})
		wantRPCErr(t, err, rpctypes.ErrGRPCUserNotFound)

		for _, r := range []string{"r2", "r1"} {
			_, err := a.RoleAdd(reqCtx(t), &pb.AuthRoleAddRequest{Name: r})
			authMust(t, "role add "+r, err)
		}
		rev.step("two role adds", 2)
		authMust(t, "grant r2", grant("alice", "r2"))
		authMust(t, "grant r1", grant("alice", "r1"))
		rev.step("two grants", 2)
		if got := roles("alice"); !slices.Equal(got, []string{"r1", "r2"}) {
			t.Errorf("alice's roles %q, want r1 r2 (sorted)", got)
		}
		authMust(t, "grant r1 again", grant("alice", "r1"))
		rev.step("a duplicate grant", 0)
		wantRPCErr(t, grant("nobody", "r1"), rpctypes.ErrGRPCUserNotFound)
		wantRPCErr(t, grant("nobody", "nosuch"), rpctypes.ErrGRPCUserNotFound)
		wantRPCErr(t, grant("alice", "nosuch"), rpctypes.ErrGRPCRoleNotFound)
		rev.step("refused grants", 0)
		// The root role needs no role of that name: it is built in.
		authMust(t, "grant root", grant("alice", "root"))
		rev.step("grant root", 1)
		if got := roles("alice"); !slices.Equal(got, []string{"r1", "r2", "root"}) {
			t.Errorf("alice's roles %q, want r1 r2 root", got)
		}
		rl, err := a.RoleList(reqCtx(t), &pb.AuthRoleListRequest{})
		authMust(t, "role list", err)
		if !slices.Equal(rl.Roles, []string{"r1", "r2"}) {
			t.Errorf("role list %q, want r1 r2: granting root does not create it", rl.Roles)
		}

		authMust(t, "revoke root", revoke("alice", "root"))
		rev.step("revoke root", 1)
		wantRPCErr(t, revoke("alice", "root"), rpctypes.ErrGRPCRoleNotGranted)
		wantRPCErr(t, revoke("alice", "nosuch"), rpctypes.ErrGRPCRoleNotGranted)
		wantRPCErr(t, revoke("nobody", "r1"), rpctypes.ErrGRPCUserNotFound)
		rev.step("refused revokes", 0)
		if got := roles("alice"); !slices.Equal(got, []string{"r1", "r2"}) {
			t.Errorf("alice's roles %q, want r1 r2", got)
		}

		_, err = a.UserChangePassword(reqCtx(t), &pb.AuthUserChangePasswordRequest{Name: "nobody", Password: "x"})
		wantRPCErr(t, err, rpctypes.ErrGRPCUserNotFound)
		_, err = a.UserChangePassword(reqCtx(t), &pb.AuthUserChangePasswordRequest{Name: "alice", Password: "new"})
		authMust(t, "change alice's password", err)
		rev.step("change a password", 1)
		if got := roles("alice"); !slices.Equal(got, []string{"r1", "r2"}) {
			t.Errorf("alice's roles after a password change %q, want r1 r2", got)
		}

		_, err = a.UserDelete(reqCtx(t), &pb.AuthUserDeleteRequest{Name: "nobody"})
		wantRPCErr(t, err, rpctypes.ErrGRPCUserNotFound)
		_, err = a.UserDelete(reqCtx(t), &pb.AuthUserDeleteRequest{Name: "carol"})
		authMust(t, "delete carol", err)
		rev.step("delete a user", 1)
		if got := users(); !slices.Equal(got, []string{"alice", "nopw"}) {
			t.Errorf("user list %q, want alice nopw", got)
		}
		_, err = a.UserGet(reqCtx(t), &pb.AuthUserGetRequest{Name: "carol"})
		wantRPCErr(t, err, rpctypes.ErrGRPCUserNotFound)

		// Logging in needs auth on, whoever asks.
		_, err = a.Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: "alice", Password: "new"})
		wantRPCErr(t, err, rpctypes.ErrGRPCAuthNotEnabled)
		_, err = a.Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: "nobody", Password: "x"})
		wantRPCErr(t, err, rpctypes.ErrGRPCAuthNotEnabled)
		rev.step("reads and refusals", 0)
	})
}

// TestAuthRoleRPCs: RoleAdd, RoleGet, RoleList, RoleDelete,
// RoleGrantPermission and RoleRevokePermission with auth off, their errors,
// the order permissions are kept in, and the auth revision.
func TestAuthRoleRPCs(t *testing.T) {
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		a := authOf(tg)
		rev := newAuthRevTracker(t, tg)
		roleAdd := func(name string) error {
			_, err := a.RoleAdd(reqCtx(t), &pb.AuthRoleAddRequest{Name: name})
			return err
		}
		grant := func(role string, p *authpb.Permission) error {
			_, err := a.RoleGrantPermission(reqCtx(t), &pb.AuthRoleGrantPermissionRequest{Name: role, Perm: p})
			return err
		}
		revoke := func(role, key, end string) error {
			_, err := a.RoleRevokePermission(reqCtx(t), &pb.AuthRoleRevokePermissionRequest{Role: role, Key: []byte(key), RangeEnd: []byte(end)})
			return err
		}
		perms := func(role string) string {
			t.Helper()
			resp, err := a.RoleGet(reqCtx(t), &pb.AuthRoleGetRequest{Role: role})
			authMust(t, "role get "+role, err)
			return authPerms(resp.Perm)
		}
		const (
			r  = authpb.READ
			w  = authpb.WRITE
			rw = authpb.READWRITE
		)

		wantRPCErr(t, roleAdd(""), rpctypes.ErrGRPCRoleEmpty)
		authMust(t, "role add r", roleAdd("r"))
		rev.step("role add", 1)
		wantRPCErr(t, roleAdd("r"), rpctypes.ErrGRPCRoleAlreadyExist)
		rev.step("role add again", 0)
		if got := perms("r"); got != "" {
			t.Errorf("a new role's permissions: %s, want none", got)
		}
		_, err := a.RoleGet(reqCtx(t), &pb.AuthRoleGetRequest{Role: "nosuch"})
		wantRPCErr(t, err, rpctypes.ErrGRPCRoleNotFound)

		// The request is checked before the role is looked up.
		for _, c := range []struct {
			name string
			role string
			perm *authpb.Permission
			err  error
		}{
			{"no permission", "r", nil, rpctypes.ErrGRPCPermissionNotGiven},
			{"no permission, unknown role", "nosuch", nil, rpctypes.ErrGRPCPermissionNotGiven},
			{"empty key", "r", authPerm(r, "", ""), rpctypes.ErrGRPCInvalidAuthMgmt},
			{"empty key to the end", "r", authPerm(r, "", "\x00"), rpctypes.ErrGRPCInvalidAuthMgmt},
			{"end before key", "r", authPerm(r, "b", "a"), rpctypes.ErrGRPCInvalidAuthMgmt},
			{"end equal to key", "r", authPerm(r, "b", "b"), rpctypes.ErrGRPCInvalidAuthMgmt},
			{"invalid range, unknown role", "nosuch", authPerm(r, "b", "a"), rpctypes.ErrGRPCInvalidAuthMgmt},
			{"unknown role", "nosuch", authPerm(r, "k", ""), rpctypes.ErrGRPCRoleNotFound},
		} {
			wantRPCErr(t, grant(c.role, c.perm), c.err)
		}
		rev.step("refused grants", 0)

		// A key, a range, a prefix and every key from one on, granted out
		// of order: a role keeps them sorted by key.
		authMust(t, "grant key", grant("r", authPerm(r, "k", "")))
		authMust(t, "grant range", grant("r", authPerm(w, "a", "c")))
		authMust(t, "grant prefix", grant("r", authPerm(rw, "/p/", prefixEnd("/p/"))))
		authMust(t, "grant from key", grant("r", authPerm(r, "z", "\x00")))
		rev.step("four grants", 4)
		want := `READWRITE["/p/","/p0") WRITE["a","c") READ["k","") READ["z","\x00")`
		if got := perms("r"); got != want {
			t.Errorf("permissions %s, want %s", got, want)
		}
		// Granting the same key and end again changes the type in place.
		authMust(t, "regrant key", grant("r", authPerm(w, "k", "")))
		rev.step("regrant with another type", 1)
		want = `READWRITE["/p/","/p0") WRITE["a","c") WRITE["k","") READ["z","\x00")`
		if got := perms("r"); got != want {
			t.Errorf("permissions after a regrant %s, want %s", got, want)
		}

		wantRPCErr(t, revoke("nosuch", "k", ""), rpctypes.ErrGRPCRoleNotFound)
		wantRPCErr(t, revoke("r", "nokey", ""), rpctypes.ErrGRPCPermissionNotGranted)
		wantRPCErr(t, revoke("r", "a", "b"), rpctypes.ErrGRPCPermissionNotGranted)
		wantRPCErr(t, revoke("r", "a", ""), rpctypes.ErrGRPCPermissionNotGranted)
		rev.step("refused revokes", 0)
		authMust(t, "revoke range", revoke("r", "a", "c"))
		authMust(t, "revoke from key", revoke("r", "z", "\x00"))
		rev.step("two revokes", 2)
		want = `READWRITE["/p/","/p0") WRITE["k","")`
		if got := perms("r"); got != want {
			t.Errorf("permissions after revokes %s, want %s", got, want)
		}

		// The root role always shows the whole keyspace, whatever it was
		// granted.
		authMust(t, "role add root", roleAdd("root"))
		authMust(t, "grant to root", grant("root", authPerm(r, "k", "")))
		rev.step("root role add and grant", 2)
		if got, want := perms("root"), `READWRITE["","\x00")`; got != want {
			t.Errorf("root role's permissions %s, want %s", got, want)
		}

		// Deleting a role takes it from every user that had it, in one
		// revision.
		authMust(t, "role add r2", roleAdd("r2"))
		for _, u := range []string{"u1", "u2"} {
			_, err := a.UserAdd(reqCtx(t), &pb.AuthUserAddRequest{Name: u, Password: "pw"})
			authMust(t, "user add "+u, err)
			for _, role := range []string{"r", "r2"} {
				_, err := a.UserGrantRole(reqCtx(t), &pb.AuthUserGrantRoleRequest{User: u, Role: role})
				authMust(t, "grant "+role, err)
			}
		}
		rev.step("a role, two users with two roles each", 7)
		rl, err := a.RoleList(reqCtx(t), &pb.AuthRoleListRequest{})
		authMust(t, "role list", err)
		if !slices.Equal(rl.Roles, []string{"r", "r2", "root"}) {
			t.Errorf("role list %q, want r r2 root", rl.Roles)
		}
		_, err = a.RoleDelete(reqCtx(t), &pb.AuthRoleDeleteRequest{Role: "nosuch"})
		wantRPCErr(t, err, rpctypes.ErrGRPCRoleNotFound)
		_, err = a.RoleDelete(reqCtx(t), &pb.AuthRoleDeleteRequest{Role: "r"})
		authMust(t, "role delete r", err)
		rev.step("role delete", 1)
		for _, u := range []string{"u1", "u2"} {
			resp, err := a.UserGet(reqCtx(t), &pb.AuthUserGetRequest{Name: u})
			authMust(t, "user get "+u, err)
			if !slices.Equal(resp.Roles, []string{"r2"}) {
				t.Errorf("%s's roles after deleting r: %q, want r2", u, resp.Roles)
			}
		}
		rl, err = a.RoleList(reqCtx(t), &pb.AuthRoleListRequest{})
		authMust(t, "role list", err)
		if !slices.Equal(rl.Roles, []string{"r2", "root"}) {
			t.Errorf("role list %q, want r2 root", rl.Roles)
		}
		// With auth off, even root's role and user may go.
		_, err = a.RoleDelete(reqCtx(t), &pb.AuthRoleDeleteRequest{Role: "root"})
		authMust(t, "role delete root with auth off", err)
		rev.step("role delete root", 1)
	})
}

// TestAuthEnableDisable: AuthEnable needs a user root holding the role
// root (the role itself need not exist), turning auth on neither moves the
// auth revision nor fails when it is on already; Authenticate then checks
// passwords; AuthDisable moves the revision, ends every token, and makes
// logging in fail again.
func TestAuthEnableDisable(t *testing.T) {
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		a := authOf(tg)
		rev := newAuthRevTracker(t, tg)
		enable := func(token string) error {
			_, err := a.AuthEnable(tokenCtx(t, token), &pb.AuthEnableRequest{})
			return err
		}
		login := func(user, password string) error {
			_, err := a.Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: user, Password: password})
			return err
		}

		wantRPCErr(t, enable(""), rpctypes.ErrGRPCRootUserNotExist)
		_, err := a.UserAdd(reqCtx(t), &pb.AuthUserAddRequest{Name: "root", Password: authRootPassword})
		authMust(t, "user add root", err)
		wantRPCErr(t, enable(""), rpctypes.ErrGRPCRootRoleNotExist)
		_, err = a.UserGrantRole(reqCtx(t), &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"})
		authMust(t, "grant root to root", err)
		rev.step("root user with the root role", 2)
		if st := authStatus(t, tg, ""); st.Enabled {
			t.Fatal("auth on after refused enables")
		}
		authMust(t, "auth enable", enable(""))
		rev.step("auth enable", 0)
		if st := authStatus(t, tg, ""); !st.Enabled {
			t.Fatal("auth off after enable")
		}
		rootTok := authToken(t, tg, "root", authRootPassword)
		rev.token = rootTok
		authMust(t, "auth enable when on", enable(rootTok))
		rev.step("auth enable when on", 0)

		// A wrong password and an unknown user get the same answer.
		wantRPCErr(t, login("root", "wrong"), rpctypes.ErrGRPCAuthFailed)
		wantRPCErr(t, login("root", ""), rpctypes.ErrGRPCAuthFailed)
		wantRPCErr(t, login("nobody", authRootPassword), rpctypes.ErrGRPCAuthFailed)
		wantRPCErr(t, login("", ""), rpctypes.ErrGRPCAuthFailed)
		_, err = a.UserAdd(tokenCtx(t, rootTok), &pb.AuthUserAddRequest{Name: "nopw", Options: &authpb.UserAddOptions{NoPassword: true}})
		authMust(t, "user add nopw", err)
		rev.step("user add nopw", 1)
		wantRPCErr(t, login("nopw", ""), errNoPasswordUser)
		wantRPCErr(t, login("nopw", "anything"), errNoPasswordUser)
		// A new password replaces the old one at once; a user without
		// one stays without.
		_, err = a.UserAdd(tokenCtx(t, rootTok), &pb.AuthUserAddRequest{Name: "alice", Password: "old"})
		authMust(t, "user add alice", err)
		authToken(t, tg, "alice", "old")
		_, err = a.UserChangePassword(tokenCtx(t, rootTok), &pb.AuthUserChangePasswordRequest{Name: "alice", Password: "new"})
		authMust(t, "change alice's password", err)
		_, err = a.UserChangePassword(tokenCtx(t, rootTok), &pb.AuthUserChangePasswordRequest{Name: "nopw", Password: "new"})
		authMust(t, "change nopw's password", err)
		rev.step("user add and two password changes", 3)
		wantRPCErr(t, login("alice", "old"), rpctypes.ErrGRPCAuthFailed)
		authToken(t, tg, "alice", "new")
		wantRPCErr(t, login("nopw", "new"), errNoPasswordUser)
		rev.step("logins", 0)

		// With auth on, root and its role stay.
		_, err = a.UserDelete(tokenCtx(t, rootTok), &pb.AuthUserDeleteRequest{Name: "root"})
		wantRPCErr(t, err, rpctypes.ErrGRPCInvalidAuthMgmt)
		_, err = a.UserRevokeRole(tokenCtx(t, rootTok), &pb.AuthUserRevokeRoleRequest{Name: "root", Role: "root"})
		wantRPCErr(t, err, rpctypes.ErrGRPCInvalidAuthMgmt)
		_, err = a.RoleDelete(tokenCtx(t, rootTok), &pb.AuthRoleDeleteRequest{Role: "root"})
		wantRPCErr(t, err, rpctypes.ErrGRPCInvalidAuthMgmt)
		rev.step("refused root removals", 0)

		// Turning auth off moves the revision, ends every token (a token
		// of the last time is no good once auth is back on) and lets
		// everyone in without one.
		_, err = a.AuthDisable(tokenCtx(t, rootTok), &pb.AuthDisableRequest{})
		authMust(t, "auth disable", err)
		rev.token = ""
		rev.step("auth disable", 1)
		if st := authStatus(t, tg, ""); st.Enabled {
			t.Fatal("auth on after disable")
		}
		_, err = a.AuthDisable(reqCtx(t), &pb.AuthDisableRequest{})
		authMust(t, "auth disable when off", err)
		rev.step("auth disable when off", 0)
		wantRPCErr(t, login("root", authRootPassword), rpctypes.ErrGRPCAuthNotEnabled)
		tg.put(t, keyPrefix(t)+"k", "v")
		// With auth off a token is not even looked at.
		authPut(t, tg, rootTok, keyPrefix(t)+"k", "v2")
		authMust(t, "auth enable again", enable(""))
		rev.step("auth enable again", 0)
		_, err = tg.KV.Range(tokenCtx(t, rootTok), &pb.RangeRequest{Key: []byte(keyPrefix(t) + "k")})
		wantRPCErr(t, err, rpctypes.ErrGRPCInvalidAuthToken)
		_, err = a.AuthStatus(tokenCtx(t, rootTok), &pb.AuthStatusRequest{})
		wantRPCErr(t, err, rpctypes.ErrGRPCInvalidAuthToken)
		rootTok = authToken(t, tg, "root", authRootPassword)
		resp, err := tg.KV.Range(tokenCtx(t, rootTok), &pb.RangeRequest{Key: []byte(keyPrefix(t) + "k")})
		authMust(t, "range as root", err)
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v2" {
			t.Fatalf("range as root: %s, want v2", kvSummary(resp.Kvs))
		}
	})
}

// TestAuthAdminRPCs: with auth on, changing users, roles or auth itself,
// and listing users or roles, is root's alone; a user may read itself and
// the roles it holds; asking without a token is asking as nobody.
func TestAuthAdminRPCs(t *testing.T) {
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		rootTok := authSetup(t, tg,
			[]authRole{{name: "r", perms: []*authpb.Permission{authPerm(authpb.READ, "k", "")}}, {name: "other"}},
			[]authUser{{name: "alice", password: "pw", roles: []string{"r"}}, {name: "bob", password: "pw"}})
		aliceTok := authToken(t, tg, "alice", "pw")
		a := authOf(tg)
		before := authState(t, tg, rootTok)

		admin := []struct {
			name string
			call func(token string) error
		}{
			{"AuthEnable", func(tok string) error {
				_, err := a.AuthEnable(tokenCtx(t, tok), &pb.AuthEnableRequest{})
				return err
			}},
			{"UserAdd", func(tok string) error {
				_, err := a.UserAdd(tokenCtx(t, tok), &pb.AuthUserAddRequest{Name: "mallory", Password: "pw"})
				return err
			}},
			{"UserDelete", func(tok string) error {
				_, err := a.UserDelete(tokenCtx(t, tok), &pb.AuthUserDeleteRequest{Name: "bob"})
				return err
			}},
			{"UserChangePassword of another", func(tok string) error {
				_, err := a.UserChangePassword(tokenCtx(t, tok), &pb.AuthUserChangePasswordRequest{Name: "bob", Password: "x"})
				return err
			}},
			{"UserChangePassword of oneself", func(tok string) error {
				_, err := a.UserChangePassword(tokenCtx(t, tok), &pb.AuthUserChangePasswordRequest{Name: "alice", Password: "x"})
				return err
			}},
			{"UserGrantRole", func(tok string) error {
				_, err := a.UserGrantRole(tokenCtx(t, tok), &pb.AuthUserGrantRoleRequest{User: "alice", Role: "root"})
				return err
			}},
			{"UserRevokeRole", func(tok string) error {
				_, err := a.UserRevokeRole(tokenCtx(t, tok), &pb.AuthUserRevokeRoleRequest{Name: "alice", Role: "r"})
				return err
			}},
			{"UserList", func(tok string) error {
				_, err := a.UserList(tokenCtx(t, tok), &pb.AuthUserListRequest{})
				return err
			}},
			{"RoleAdd", func(tok string) error {
				_, err := a.RoleAdd(tokenCtx(t, tok), &pb.AuthRoleAddRequest{Name: "evil"})
				return err
			}},
			{"RoleDelete", func(tok string) error {
				_, err := a.RoleDelete(tokenCtx(t, tok), &pb.AuthRoleDeleteRequest{Role: "other"})
				return err
			}},
			{"RoleGrantPermission", func(tok string) error {
				_, err := a.RoleGrantPermission(tokenCtx(t, tok), &pb.AuthRoleGrantPermissionRequest{Name: "r", Perm: authPerm(authpb.READWRITE, "\x00", "\x00")})
				return err
			}},
			{"RoleRevokePermission", func(tok string) error {
				_, err := a.RoleRevokePermission(tokenCtx(t, tok), &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("k")})
				return err
			}},
			{"RoleList", func(tok string) error {
				_, err := a.RoleList(tokenCtx(t, tok), &pb.AuthRoleListRequest{})
				return err
			}},
			{"UserGet of another", func(tok string) error {
				_, err := a.UserGet(tokenCtx(t, tok), &pb.AuthUserGetRequest{Name: "bob"})
				return err
			}},
			{"RoleGet of a role not held", func(tok string) error {
				_, err := a.RoleGet(tokenCtx(t, tok), &pb.AuthRoleGetRequest{Role: "other"})
				return err
			}},
			{"AuthDisable", func(tok string) error {
				_, err := a.AuthDisable(tokenCtx(t, tok), &pb.AuthDisableRequest{})
				return err
			}},
		}
		for _, c := range admin {
			t.Run(c.name, func(t *testing.T) {
				wantRPCErr(t, c.call(aliceTok), rpctypes.ErrGRPCPermissionDenied)
				wantRPCErr(t, c.call(""), rpctypes.ErrGRPCUserEmpty)
			})
		}
		if after := authState(t, tg, rootTok); after != before {
			t.Fatalf("refused admin calls changed the auth state:\n%s\nwant\n%s", after, before)
		}

		// Reading oneself, one's roles and the auth status needs no root.
		u, err := a.UserGet(tokenCtx(t, aliceTok), &pb.AuthUserGetRequest{Name: "alice"})
		authMust(t, "alice reads herself", err)
		if !slices.Equal(u.Roles, []string{"r"}) {
			t.Errorf("alice's roles %q, want r", u.Roles)
		}
		r, err := a.RoleGet(tokenCtx(t, aliceTok), &pb.AuthRoleGetRequest{Role: "r"})
		authMust(t, "alice reads her role", err)
		if got, want := authPerms(r.Perm), `READ["k","")`; got != want {
			t.Errorf("role r: %s, want %s", got, want)
		}
		if st := authStatus(t, tg, aliceTok); !st.Enabled {
			t.Error("alice sees auth off")
		}
		// Without a token one is the user with no name, so etcd lets one
		// look that user up, finding nobody.
		_, err = a.UserGet(reqCtx(t), &pb.AuthUserGetRequest{Name: ""})
		wantRPCErr(t, err, rpctypes.ErrGRPCUserNotFound)
	})
}

// authKVCase is one KV request by one user and etcd's answer: an error, or
// (for a Range) the keys it returns.
type authKVCase struct {
	name  string
	token func(authPermTokens) string
	req   proto.Message
	err   error
	keys  []string
}

// authDo sends a KV request of any kind with token and returns the keys a
// Range answered.
func authDo(t *testing.T, tg *Target, token string, req proto.Message) ([]string, error) {
	ctx := tokenCtx(t, token)
	switch r := req.(type) {
	case *pb.RangeRequest:
		resp, err := tg.KV.Range(ctx, r)
		if err != nil {
			return nil, err
		}
		if r.CountOnly {
			return []string{"count=" + strconv.FormatInt(resp.Count, 10)}, nil
		}
		return keysOf(resp.Kvs), nil
	case *pb.PutRequest:
		_, err := tg.KV.Put(ctx, r)
		return nil, err
	case *pb.DeleteRangeRequest:
		_, err := tg.KV.DeleteRange(ctx, r)
		return nil, err
	case *pb.TxnRequest:
		_, err := tg.KV.Txn(ctx, r)
		return nil, err
	}
	t.Fatalf("no KV request: %T", req)
	return nil, nil
}

// authRunKV runs the cases in order; a refused one must leave the keyspace
// as it was.
func authRunKV(t *testing.T, tg *Target, tok authPermTokens, cases []authKVCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := authKVState(t, tg, tok.root)
			keys, err := authDo(t, tg, c.token(tok), c.req)
			if c.err != nil {
				wantRPCErr(t, err, c.err)
				if after := authKVState(t, tg, tok.root); after != before {
					t.Fatalf("a refused request changed the keyspace:\n%s\nwas\n%s", after, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if c.keys != nil && !slices.Equal(keys, c.keys) {
				t.Fatalf("got keys %q, want %q", keys, c.keys)
			}
		})
	}
}

// TestAuthPermissionsRange: a Range needs read permission on its whole
// range, which may be pieced together from several permissions; a key
// alone is the range [key, key\x00).
func TestAuthPermissionsRange(t *testing.T) {
	denied, empty := rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCUserEmpty
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		serializable := authRangeReq("/perm/other", "")
		serializable.Serializable = true
		countOnly := func(r *pb.RangeRequest) *pb.RangeRequest { r.CountOnly = true; return r }
		authRunKV(t, tg, tok, []authKVCase{
			{"key", authByAlice, authRangeReq("/perm/r", ""), nil, []string{"/perm/r"}},
			{"other key", authByAlice, authRangeReq("/perm/r2", ""), denied, nil},
			{"range from the key", authByAlice, authRangeReq("/perm/r", "/perm/r2"), denied, nil},
			{"key as a range", authByAlice, authRangeReq("/perm/r", "/perm/r\x00"), nil, []string{"/perm/r"}},
			{"prefix", authByAlice, authRangeReq("/perm/rw/", prefixEnd("/perm/rw/")), nil, []string{"/perm/rw/x"}},
			{"wider prefix", authByAlice, authRangeReq("/perm/", prefixEnd("/perm/")), denied, nil},
			{"from key", authByAlice, authRangeReq("/perm/z", "\x00"), nil, []string{"/perm/z1"}},
			{"from an earlier key", authByAlice, authRangeReq("/perm/y", "\x00"), denied, nil},
			{"range inside from key", authByAlice, authRangeReq("/perm/z1", "/perm/zz"), nil, []string{"/perm/z1"}},
			{"two adjoining ranges", authByAlice, authRangeReq("/perm/s/a", "/perm/s/z"), nil, []string{"/perm/s/b", "/perm/s/n"}},
			{"beyond two adjoining ranges", authByAlice, authRangeReq("/perm/s/a", "/perm/s/zz"), denied, nil},
			{"write-only range", authByAlice, authRangeReq("/perm/w/a", "/perm/w/m"), denied, nil},
			{"count only", authByAlice, countOnly(authRangeReq("/perm/r", "")), nil, []string{"count=1"}},
			{"count only, other key", authByAlice, countOnly(authRangeReq("/perm/other", "")), denied, nil},
			{"serializable", authByAlice, serializable, denied, nil},
			{"user without roles", authByBob, authRangeReq("/perm/r", ""), denied, nil},
			{"no token", authByNone, authRangeReq("/perm/r", ""), empty, nil},
			{"root", authByRoot, authRangeReq("/perm/", prefixEnd("/perm/")), nil, authPermKeys},
		})
	})
}

// TestAuthPermissionsPut: a Put needs write permission on its key, read
// permission too if it asks for the previous pair.
func TestAuthPermissionsPut(t *testing.T) {
	denied, empty := rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCUserEmpty
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		put := func(key string) *pb.PutRequest { return &pb.PutRequest{Key: []byte(key), Value: []byte("new")} }
		prev := func(r *pb.PutRequest) *pb.PutRequest { r.PrevKv = true; return r }
		ignore := func(r *pb.PutRequest) *pb.PutRequest { r.IgnoreValue, r.Value = true, nil; return r }
		authRunKV(t, tg, tok, []authKVCase{
			{"range start", authByAlice, put("/perm/w/a"), nil, nil},
			{"inside range", authByAlice, put("/perm/w/b"), nil, nil},
			{"range end", authByAlice, put("/perm/w/m"), denied, nil},
			{"read-only key", authByAlice, put("/perm/r"), denied, nil},
			{"read-only from key", authByAlice, put("/perm/z2"), denied, nil},
			{"prefix", authByAlice, put("/perm/rw/y"), nil, nil},
			{"prev_kv without read", authByAlice, prev(put("/perm/w/b")), denied, nil},
			{"prev_kv with read", authByAlice, prev(put("/perm/rw/y")), nil, nil},
			{"ignore_value without read", authByAlice, ignore(put("/perm/w/b")), nil, nil},
			{"user without roles", authByBob, put("/perm/rw/y"), denied, nil},
			{"no token", authByNone, put("/perm/rw/y"), empty, nil},
			{"root", authByRoot, put("/perm/other"), nil, nil},
		})
	})
}

// TestAuthPermissionsDeleteRange: a DeleteRange needs write permission on
// its whole range, read permission too if it asks for the previous pairs.
func TestAuthPermissionsDeleteRange(t *testing.T) {
	denied, empty := rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCUserEmpty
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		del := func(key, end string) *pb.DeleteRangeRequest {
			return &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end)}
		}
		prev := func(r *pb.DeleteRangeRequest) *pb.DeleteRangeRequest { r.PrevKv = true; return r }
		authRunKV(t, tg, tok, []authKVCase{
			{"key", authByAlice, del("/perm/w/c", ""), nil, nil},
			{"read-only key", authByAlice, del("/perm/r", ""), denied, nil},
			{"beyond the range", authByAlice, del("/perm/w/a", "/perm/w/n"), denied, nil},
			{"prev_kv without read", authByAlice, prev(del("/perm/w/d", "")), denied, nil},
			{"prefix with prev_kv", authByAlice, prev(del("/perm/rw/", prefixEnd("/perm/rw/"))), nil, nil},
			{"user without roles", authByBob, del("/perm/w/d", ""), denied, nil},
			{"no token", authByNone, del("/perm/w/d", ""), empty, nil},
			{"the range", authByAlice, del("/perm/w/a", "/perm/w/m"), nil, nil},
			{"root", authByRoot, del("/perm/other", ""), nil, nil},
		})
		if got := authKVState(t, tg, tok.root); !strings.Contains(got, "/perm/r=") || strings.Contains(got, "/perm/w/") || strings.Contains(got, "/perm/rw/") {
			t.Fatalf("keyspace after the deletes: %s", got)
		}
	})
}

// TestAuthPermissionsTxn: a Txn needs read permission on every compare and
// every permission each of its operations would need, in both branches and
// in nested transactions, whichever branch runs; a transaction with
// neither needs none.
func TestAuthPermissionsTxn(t *testing.T) {
	denied, empty := rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCUserEmpty
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		prevPut := authPutOp("/perm/w/b")
		prevPut.GetRequestPut().PrevKv = true
		del := &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("/perm/w/b")}}}
		prevDel := proto.Clone(del).(*pb.RequestOp)
		prevDel.GetRequestDeleteRange().PrevKv = true
		rangeCmp := authVersionCmp("/perm/rw/")
		rangeCmp.RangeEnd = []byte(prefixEnd("/perm/rw/"))
		authRunKV(t, tg, tok, []authKVCase{
			{"compare read, put written", authByAlice, &pb.TxnRequest{Compare: []*pb.Compare{authVersionCmp("/perm/r")}, Success: []*pb.RequestOp{authPutOp("/perm/w/b")}}, nil, nil},
			{"compare on a write-only key", authByAlice, &pb.TxnRequest{Compare: []*pb.Compare{authVersionCmp("/perm/w/b")}}, denied, nil},
			{"compare on a range", authByAlice, &pb.TxnRequest{Compare: []*pb.Compare{rangeCmp}, Success: []*pb.RequestOp{authRangeOp("/perm/rw/", prefixEnd("/perm/rw/"))}}, nil, nil},
			{"compare beyond a range", authByAlice, &pb.TxnRequest{Compare: []*pb.Compare{authVersionCmp("/perm/other")}, Success: []*pb.RequestOp{authPutOp("/perm/w/b")}}, denied, nil},
			{"forbidden range", authByAlice, &pb.TxnRequest{Success: []*pb.RequestOp{authRangeOp("/perm/other", "")}}, denied, nil},
			{"forbidden range after a put", authByAlice, &pb.TxnRequest{Success: []*pb.RequestOp{authPutOp("/perm/w/b"), authRangeOp("/perm/other", "")}}, denied, nil},
			{"forbidden put in the branch not taken", authByAlice, &pb.TxnRequest{Compare: []*pb.Compare{authVersionCmp("/perm/r")}, Success: []*pb.RequestOp{authPutOp("/perm/w/b")}, Failure: []*pb.RequestOp{authPutOp("/perm/other")}}, denied, nil},
			{"nested forbidden range", authByAlice, &pb.TxnRequest{Success: []*pb.RequestOp{authPutOp("/perm/w/b"), authTxnOp(&pb.TxnRequest{Failure: []*pb.RequestOp{authRangeOp("/perm/other", "")}})}}, denied, nil},
			{"nested put", authByAlice, &pb.TxnRequest{Success: []*pb.RequestOp{authTxnOp(&pb.TxnRequest{Success: []*pb.RequestOp{authPutOp("/perm/rw/n")}})}}, nil, nil},
			{"put with prev_kv without read", authByAlice, &pb.TxnRequest{Success: []*pb.RequestOp{prevPut}}, denied, nil},
			{"delete with prev_kv without read", authByAlice, &pb.TxnRequest{Success: []*pb.RequestOp{prevDel}}, denied, nil},
			{"delete", authByAlice, &pb.TxnRequest{Success: []*pb.RequestOp{del}}, nil, nil},
			{"empty", authByAlice, &pb.TxnRequest{}, nil, nil},
			{"empty, no token", authByNone, &pb.TxnRequest{}, nil, nil},
			{"read, no token", authByNone, &pb.TxnRequest{Success: []*pb.RequestOp{authRangeOp("/perm/r", "")}}, empty, nil},
			{"write, no token", authByNone, &pb.TxnRequest{Success: []*pb.RequestOp{authPutOp("/perm/rw/n")}}, empty, nil},
			{"user without roles", authByBob, &pb.TxnRequest{Compare: []*pb.Compare{authVersionCmp("/perm/r")}}, denied, nil},
			{"root", authByRoot, &pb.TxnRequest{Compare: []*pb.Compare{authVersionCmp("/perm/other")}, Success: []*pb.RequestOp{authPutOp("/perm/other")}}, nil, nil},
		})
	})
}

// TestAuthPermissionsCompact: compacting is root's alone, and a refused
// compaction compacts nothing.
func TestAuthPermissionsCompact(t *testing.T) {
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		old := authPut(t, tg, tok.root, "/perm/other", "old").Header.Revision
		rev := authPut(t, tg, tok.root, "/perm/other", "new").Header.Revision
		for _, c := range []struct {
			name  string
			token string
			err   error
		}{
			{"alice", tok.alice, rpctypes.ErrGRPCPermissionDenied},
			{"bob", tok.bob, rpctypes.ErrGRPCPermissionDenied},
			{"no token", "", rpctypes.ErrGRPCUserEmpty},
		} {
			_, err := tg.KV.Compact(tokenCtx(t, c.token), &pb.CompactionRequest{Revision: rev})
			wantRPCErr(t, err, c.err)
		}
		resp, err := tg.KV.Range(tokenCtx(t, tok.root), &pb.RangeRequest{Key: []byte("/perm/other"), Revision: old})
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "old" {
			t.Fatalf("read at %d after refused compactions: %v, %v; want the old value", old, resp, err)
		}
		_, err = tg.KV.Compact(tokenCtx(t, tok.root), &pb.CompactionRequest{Revision: rev})
		authMust(t, "compact as root", err)
		_, err = tg.KV.Range(tokenCtx(t, tok.root), &pb.RangeRequest{Key: []byte("/perm/other"), Revision: old})
		wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
	})
}

// TestAuthPermissionsWatch: creating a watcher needs read permission on
// its range; a refused create is answered on the stream (watch id -1,
// created and canceled, the whole text of the error's gRPC status as the
// reason), takes no watch id, and its range's events never arrive.
func TestAuthPermissionsWatch(t *testing.T) {
	var (
		reasonDenied  = rpctypes.ErrGRPCPermissionDenied.Error()
		reasonEmpty   = rpctypes.ErrGRPCUserEmpty.Error()
		reasonInvalid = rpctypes.ErrGRPCInvalidAuthToken.Error()
	)
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		h := authWtHeaders(t, tg, tok.root)
		created := map[string]int64{}
		resp, err := tg.KV.Range(tokenCtx(t, tok.root), &pb.RangeRequest{Key: []byte("/perm/"), RangeEnd: []byte(prefixEnd("/perm/"))})
		authMust(t, "range as root", err)
		for _, kv := range resp.Kvs {
			created[string(kv.Key)] = kv.CreateRevision
		}
		r0 := resp.Header.Revision
		create := func(key, end string, startRev int64) *pb.WatchCreateRequest {
			return &pb.WatchCreateRequest{Key: []byte(key), RangeEnd: []byte(end), StartRevision: startRev}
		}

		alice := authWatch(t, tg, tok.alice)
		alice.create(create("/perm/r", "", 0))
		alice.want(h.created(r0, 0))
		alice.create(create("/perm/other", "", 0))
		alice.want(h.failed(r0, reasonDenied))
		alice.create(create("/perm/", prefixEnd("/perm/"), 0))
		alice.want(h.failed(r0, reasonDenied))
		// History is no way around it.
		alice.create(create("/perm/other", "", 1))
		alice.want(h.failed(r0, reasonDenied))
		alice.create(create("/perm/rw/", prefixEnd("/perm/rw/"), 0))
		alice.want(h.created(r0, 1))

		for _, c := range []struct {
			name, token, reason string
		}{{"bob", tok.bob, reasonDenied}, {"no token", "", reasonEmpty}, {"garbage token", "garbage", reasonInvalid}} {
			ws := authWatch(t, tg, c.token)
			ws.create(create("/perm/r", "", 0))
			ws.want(h.failed(r0, c.reason))
		}

		authPut(t, tg, tok.root, "/perm/other", "secret")
		authPut(t, tg, tok.root, "/perm/r", "r")
		authPut(t, tg, tok.root, "/perm/rw/x", "x")
		alice.want(
			h.events(r0+2, 0, wtPut("/perm/r", "r", created["/perm/r"], r0+2, 2)),
			h.events(r0+3, 1, wtPut("/perm/rw/x", "x", created["/perm/rw/x"], r0+3, 2)),
		)
		alice.quiet()
	})
}

// TestAuthPermissionsLease: granting a lease and asking its TTL needs a
// user; revoking it, keeping it alive or attaching a key to it needs write
// permission on every key it has, listing its keys read permission, and
// listing the leases read permission on every leased key; root needs none.
func TestAuthPermissionsLease(t *testing.T) {
	denied, empty := rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCUserEmpty
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		l := pb.NewLeaseClient(tg.Conn)
		grant := func(token string) (int64, error) {
			resp, err := l.LeaseGrant(tokenCtx(t, token), &pb.LeaseGrantRequest{TTL: 60})
			if err != nil {
				return 0, err
			}
			return resp.ID, nil
		}
		ttl := func(token string, id int64, keys bool) (*pb.LeaseTimeToLiveResponse, error) {
			return l.LeaseTimeToLive(tokenCtx(t, token), &pb.LeaseTimeToLiveRequest{ID: id, Keys: keys})
		}
		revoke := func(token string, id int64) error {
			_, err := l.LeaseRevoke(tokenCtx(t, token), &pb.LeaseRevokeRequest{ID: id})
			return err
		}
		keepAlive := func(token string, id int64) (*pb.LeaseKeepAliveResponse, error) {
			s, err := l.LeaseKeepAlive(tokenCtx(t, token))
			if err != nil {
				return nil, err
			}
			if err := s.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
				return nil, err
			}
			return s.Recv()
		}
		leases := func(token string) error {
			_, err := l.LeaseLeases(tokenCtx(t, token), &pb.LeaseLeasesRequest{})
			return err
		}
		putLease := func(token, key string, id int64) error {
			_, err := tg.KV.Put(tokenCtx(t, token), &pb.PutRequest{Key: []byte(key), Value: []byte("l"), Lease: id})
			return err
		}

		// Root's lease holds a key alice may not write (nor read).
		rootLease, err := grant(tok.root)
		authMust(t, "grant as root", err)
		authMust(t, "put on root's lease", putLease(tok.root, "/perm/other", rootLease))
		before := authKVState(t, tg, tok.root)
		wantRPCErr(t, revoke(tok.alice, rootLease), denied)
		_, err = ttl(tok.alice, rootLease, true)
		wantRPCErr(t, err, denied)
		if resp, err := ttl(tok.alice, rootLease, false); err != nil || resp.TTL <= 0 || resp.GrantedTTL != 60 || len(resp.Keys) != 0 {
			t.Fatalf("alice asks the TTL of root's lease without keys: %v, %v", resp, err)
		}
		wantRPCErr(t, putLease(tok.alice, "/perm/rw/l", rootLease), denied)
		_, err = keepAlive(tok.alice, rootLease)
		wantRPCErr(t, err, denied)
		wantRPCErr(t, leases(tok.alice), denied)
		wantRPCErr(t, leases(tok.bob), denied)
		if after := authKVState(t, tg, tok.root); after != before {
			t.Fatalf("refused lease calls changed the keyspace:\n%s\nwas\n%s", after, before)
		}
		if resp, err := ttl(tok.root, rootLease, true); err != nil || len(resp.Keys) != 1 {
			t.Fatalf("root's lease after refused calls: %v, %v; want it alive with its key", resp, err)
		}

		// Without a token nothing goes.
		_, err = grant("")
		wantRPCErr(t, err, empty)
		_, err = ttl("", rootLease, false)
		wantRPCErr(t, err, empty)
		wantRPCErr(t, revoke("", rootLease), empty)
		_, err = keepAlive("", rootLease)
		wantRPCErr(t, err, empty)
		wantRPCErr(t, leases(""), empty)

		// Her own lease on her own key is alice's to use.
		mine, err := grant(tok.alice)
		authMust(t, "grant as alice", err)
		authMust(t, "put on alice's lease", putLease(tok.alice, "/perm/rw/l", mine))
		if resp, err := ttl(tok.alice, mine, true); err != nil || len(resp.Keys) != 1 || string(resp.Keys[0]) != "/perm/rw/l" {
			t.Fatalf("alice's lease: %v, %v; want key /perm/rw/l", resp, err)
		}
		if resp, err := keepAlive(tok.alice, mine); err != nil || resp.TTL != 60 {
			t.Fatalf("alice keeps her lease alive: %v, %v", resp, err)
		}
		authMust(t, "alice revokes her lease", revoke(tok.alice, mine))
		bobs, err := grant(tok.bob)
		authMust(t, "grant as bob", err)
		authMust(t, "root revokes its lease", revoke(tok.root, rootLease))
		// Leases without keys may be listed by any user.
		authMust(t, "bob lists the leases", leases(tok.bob))
		authMust(t, "bob revokes his lease", revoke(tok.bob, bobs))
		if got := authKVState(t, tg, tok.root); strings.Contains(got, "/perm/other") || strings.Contains(got, "/perm/rw/l") {
			t.Fatalf("keys of revoked leases remain: %s", got)
		}
	})
}

// TestAuthPermissionsLockElection: the lock and election services act as
// the caller, so locking, unlocking, campaigning and asking the leader need
// the permissions the keys under the name need. Their refusals carry the
// error's text with codes.Unknown, as etcd's services pass on what its
// internal client got.
func TestAuthPermissionsLockElection(t *testing.T) {
	denied := status.Error(codes.Unknown, rpctypes.ErrorDesc(rpctypes.ErrGRPCPermissionDenied))
	empty := status.Error(codes.Unknown, rpctypes.ErrorDesc(rpctypes.ErrGRPCUserEmpty))
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		lease := func(token string) int64 {
			resp, err := pb.NewLeaseClient(tg.Conn).LeaseGrant(tokenCtx(t, token), &pb.LeaseGrantRequest{TTL: 60})
			authMust(t, "lease grant", err)
			return resp.ID
		}
		lk := v3lockpb.NewLockClient(tg.Conn)
		el := v3electionpb.NewElectionClient(tg.Conn)
		aliceLease, rootLease := lease(tok.alice), lease(tok.root)

		// On her own prefix alice locks, unlocks, campaigns and reads the
		// leader.
		l, err := lk.Lock(tokenCtx(t, tok.alice), &v3lockpb.LockRequest{Name: []byte("/perm/rw/lock"), Lease: aliceLease})
		authMust(t, "alice locks", err)
		_, err = lk.Unlock(tokenCtx(t, tok.alice), &v3lockpb.UnlockRequest{Key: l.Key})
		authMust(t, "alice unlocks", err)
		_, err = el.Campaign(tokenCtx(t, tok.alice), &v3electionpb.CampaignRequest{Name: []byte("/perm/rw/el"), Lease: aliceLease, Value: []byte("alice")})
		authMust(t, "alice campaigns", err)
		ld, err := el.Leader(tokenCtx(t, tok.alice), &v3electionpb.LeaderRequest{Name: []byte("/perm/rw/el")})
		authMust(t, "alice asks the leader", err)
		if string(ld.Kv.Value) != "alice" {
			t.Fatalf("leader %s, want alice", kvSummary([]*mvccpb.KeyValue{ld.Kv}))
		}

		// Root holds a lock and leads an election where alice may not go.
		rl, err := lk.Lock(tokenCtx(t, tok.root), &v3lockpb.LockRequest{Name: []byte("/perm/other/lock"), Lease: rootLease})
		authMust(t, "root locks", err)
		_, err = el.Campaign(tokenCtx(t, tok.root), &v3electionpb.CampaignRequest{Name: []byte("/perm/other/el"), Lease: rootLease, Value: []byte("root")})
		authMust(t, "root campaigns", err)
		before := authKVState(t, tg, tok.root)
		for _, c := range []struct {
			name, token string
			err         error
		}{{"alice", tok.alice, denied}, {"bob", tok.bob, denied}, {"no token", "", empty}} {
			t.Run(c.name, func(t *testing.T) {
				_, err := lk.Lock(tokenCtx(t, c.token), &v3lockpb.LockRequest{Name: []byte("/perm/other/lock"), Lease: aliceLease})
				wantRPCErr(t, err, c.err)
				_, err = lk.Unlock(tokenCtx(t, c.token), &v3lockpb.UnlockRequest{Key: rl.Key})
				wantRPCErr(t, err, c.err)
				_, err = el.Campaign(tokenCtx(t, c.token), &v3electionpb.CampaignRequest{Name: []byte("/perm/other/el"), Lease: aliceLease, Value: []byte("x")})
				wantRPCErr(t, err, c.err)
				_, err = el.Leader(tokenCtx(t, c.token), &v3electionpb.LeaderRequest{Name: []byte("/perm/other/el")})
				wantRPCErr(t, err, c.err)
			})
		}
		if after := authKVState(t, tg, tok.root); after != before {
			t.Fatalf("refused lock and election calls changed the keyspace:\n%s\nwas\n%s", after, before)
		}
	})
}

// TestAuthPermissionsMaintenanceCluster: with auth on, Status, listing
// alarms and listing members need a user; every other Maintenance and
// Cluster call needs root. Refused calls act on nothing: the member list
// and the keyspace stay as they were.
func TestAuthPermissionsMaintenanceCluster(t *testing.T) {
	denied, empty := rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCUserEmpty
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		m, c := pb.NewMaintenanceClient(tg.Conn), pb.NewClusterClient(tg.Conn)
		st, err := m.Status(tokenCtx(t, tok.root), &pb.StatusRequest{})
		authMust(t, "status as root", err)
		self := st.Header.MemberId
		ml, err := c.MemberList(tokenCtx(t, tok.root), &pb.MemberListRequest{})
		authMust(t, "member list as root", err)
		peerURLs := ml.Members[0].PeerURLs
		beforeKV, beforeMembers := authKVState(t, tg, tok.root), ml.String()

		calls := []struct {
			name string
			// userOK: any user may; else root only. rootToo: root's call
			// is made as well (those that would break the member are not).
			userOK, rootToo bool
			call            func(token string) error
		}{
			{"Status", true, true, func(tok string) error {
				_, err := m.Status(tokenCtx(t, tok), &pb.StatusRequest{})
				return err
			}},
			{"Alarm GET", true, true, func(tok string) error {
				_, err := m.Alarm(tokenCtx(t, tok), &pb.AlarmRequest{Action: pb.AlarmRequest_GET})
				return err
			}},
			{"Alarm DEACTIVATE", false, true, func(tok string) error {
				_, err := m.Alarm(tokenCtx(t, tok), &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: self, Alarm: pb.AlarmType_NOSPACE})
				return err
			}},
			{"Alarm ACTIVATE", false, false, func(tok string) error {
				_, err := m.Alarm(tokenCtx(t, tok), &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: self, Alarm: pb.AlarmType_NOSPACE})
				return err
			}},
			{"Defragment", false, true, func(tok string) error {
				_, err := m.Defragment(tokenCtx(t, tok), &pb.DefragmentRequest{})
				return err
			}},
			{"Hash", false, true, func(tok string) error {
				_, err := m.Hash(tokenCtx(t, tok), &pb.HashRequest{})
				return err
			}},
			{"HashKV", false, true, func(tok string) error {
				_, err := m.HashKV(tokenCtx(t, tok), &pb.HashKVRequest{})
				return err
			}},
			{"Snapshot", false, true, func(tok string) error {
				s, err := m.Snapshot(tokenCtx(t, tok), &pb.SnapshotRequest{})
				if err != nil {
					return err
				}
				for {
					if _, err := s.Recv(); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
				}
			}},
			{"MoveLeader", false, true, func(tok string) error {
				_, err := m.MoveLeader(tokenCtx(t, tok), &pb.MoveLeaderRequest{TargetID: self})
				return err
			}},
			{"Downgrade CANCEL", false, true, func(tok string) error {
				_, err := m.Downgrade(tokenCtx(t, tok), &pb.DowngradeRequest{Action: pb.DowngradeRequest_CANCEL})
				return err
			}},
			{"MemberList", true, true, func(tok string) error {
				_, err := c.MemberList(tokenCtx(t, tok), &pb.MemberListRequest{})
				return err
			}},
			{"MemberList linearizable", true, true, func(tok string) error {
				_, err := c.MemberList(tokenCtx(t, tok), &pb.MemberListRequest{Linearizable: true})
				return err
			}},
			{"MemberUpdate", false, true, func(tok string) error {
				_, err := c.MemberUpdate(tokenCtx(t, tok), &pb.MemberUpdateRequest{ID: self, PeerURLs: peerURLs})
				return err
			}},
			{"MemberAdd", false, false, func(tok string) error {
				_, err := c.MemberAdd(tokenCtx(t, tok), &pb.MemberAddRequest{PeerURLs: []string{"http://10.0.0.9:2380"}})
				return err
			}},
			{"MemberRemove", false, false, func(tok string) error {
				_, err := c.MemberRemove(tokenCtx(t, tok), &pb.MemberRemoveRequest{ID: self})
				return err
			}},
			{"MemberPromote", false, false, func(tok string) error {
				_, err := c.MemberPromote(tokenCtx(t, tok), &pb.MemberPromoteRequest{ID: self})
				return err
			}},
		}
		for _, call := range calls {
			t.Run(call.name, func(t *testing.T) {
				wantRPCErr(t, call.call(""), empty)
				if call.userOK {
					authMust(t, "as alice", call.call(tok.alice))
					authMust(t, "as bob", call.call(tok.bob))
				} else {
					wantRPCErr(t, call.call(tok.alice), denied)
					wantRPCErr(t, call.call(tok.bob), denied)
				}
				if call.rootToo {
					authMust(t, "as root", call.call(tok.root))
				}
			})
		}
		if after := authKVState(t, tg, tok.root); after != beforeKV {
			t.Fatalf("maintenance calls changed the keyspace:\n%s\nwas\n%s", after, beforeKV)
		}
		ml, err = c.MemberList(tokenCtx(t, tok.root), &pb.MemberListRequest{})
		authMust(t, "member list as root", err)
		if ml.String() != beforeMembers {
			t.Fatalf("members after refused calls: %v, was %s", ml, beforeMembers)
		}
		if st, err := m.Status(tokenCtx(t, tok.root), &pb.StatusRequest{}); err != nil || len(st.Errors) != 0 {
			t.Fatalf("status after refused alarms: %v, %v; want no alarm", st, err)
		}
	}, withDataDir())
}

// TestAuthDurable: users, passwords, roles, permissions, auth on or off
// and the auth revision survive a restart of MetaStore on its data dir;
// tokens do not (etcd keeps simple tokens in memory only). etcd's own
// restart is not under test here.
func TestAuthDurable(t *testing.T) {
	if !slices.Contains(selectedBackends(t), "metastore") {
		t.Skipf("%s does not select metastore", backendsEnv)
	}
	cfg := durConfig(t.TempDir(), 4)
	newServerOptions([]serverOption{withBcryptCost(authBcryptCost)}).metaStoreAuth(&cfg)
	ds := durStart(t, cfg)
	tok := authPermSetup(t, ds.Target)
	a := authOf(ds.Target)
	_, err := a.UserAdd(tokenCtx(t, tok.root), &pb.AuthUserAddRequest{Name: "nopw", Options: &authpb.UserAddOptions{NoPassword: true}})
	authMust(t, "user add nopw", err)
	_, err = a.UserChangePassword(tokenCtx(t, tok.root), &pb.AuthUserChangePasswordRequest{Name: "bob", Password: "bob-new"})
	authMust(t, "change bob's password", err)
	_, err = a.RoleRevokePermission(tokenCtx(t, tok.root), &pb.AuthRoleRevokePermissionRequest{Role: "split", Key: []byte("/perm/s/m"), RangeEnd: []byte("/perm/s/z")})
	authMust(t, "revoke from split", err)
	_, err = a.RoleDelete(tokenCtx(t, tok.root), &pb.AuthRoleDeleteRequest{Role: "fromkey"})
	authMust(t, "delete fromkey", err)
	wantState, wantKV := authState(t, ds.Target, tok.root), authKVState(t, ds.Target, tok.root)

	restart := func() *durServer {
		t.Helper()
		ds.close(t)
		ds = durStart(t, cfg)
		return ds
	}
	ds = restart()
	tg := ds.Target
	_, err = tg.KV.Range(tokenCtx(t, tok.root), &pb.RangeRequest{Key: []byte("/perm/r")})
	wantRPCErr(t, err, rpctypes.ErrGRPCInvalidAuthToken)
	root := authToken(t, tg, "root", authRootPassword)
	if got := authState(t, tg, root); got != wantState {
		t.Fatalf("auth state after a restart:\n%s\nwant\n%s", got, wantState)
	}
	if got := authKVState(t, tg, root); got != wantKV {
		t.Fatalf("keyspace after a restart:\n%s\nwant\n%s", got, wantKV)
	}
	alice := authToken(t, tg, "alice", "alice-pw")
	if _, err := tg.KV.Range(tokenCtx(t, alice), &pb.RangeRequest{Key: []byte("/perm/r")}); err != nil {
		t.Fatalf("alice reads her key after a restart: %v", err)
	}
	for _, key := range []string{"/perm/other", "/perm/z1"} {
		_, err = tg.KV.Range(tokenCtx(t, alice), &pb.RangeRequest{Key: []byte(key)})
		wantRPCErr(t, err, rpctypes.ErrGRPCPermissionDenied)
	}
	_, err = tg.KV.Range(tokenCtx(t, alice), &pb.RangeRequest{Key: []byte("/perm/s/a"), RangeEnd: []byte("/perm/s/z")})
	wantRPCErr(t, err, rpctypes.ErrGRPCPermissionDenied)
	_, err = authOf(tg).Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: "bob", Password: "bob-pw"})
	wantRPCErr(t, err, rpctypes.ErrGRPCAuthFailed)
	authToken(t, tg, "bob", "bob-new")
	_, err = authOf(tg).Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: "nopw", Password: "x"})
	wantRPCErr(t, err, errNoPasswordUser)

	// Auth off, and the revision that turning it off took, survive too.
	_, err = authOf(tg).AuthDisable(tokenCtx(t, root), &pb.AuthDisableRequest{})
	authMust(t, "auth disable", err)
	st := authStatus(t, tg, "")
	tg = restart().Target
	if got := authStatus(t, tg, ""); got.Enabled || got.AuthRevision != st.AuthRevision {
		t.Fatalf("after a restart with auth off: enabled=%v auth revision %d, want off at %d", got.Enabled, got.AuthRevision, st.AuthRevision)
	}
	tg.put(t, "/perm/other", "anyone")
	_, err = authOf(tg).AuthEnable(reqCtx(t), &pb.AuthEnableRequest{})
	authMust(t, "auth enable", err)
	root = authToken(t, tg, "root", authRootPassword)
	if got, want := authState(t, tg, root), strings.Replace(wantState, "rev="+strconv.FormatUint(st.AuthRevision-1, 10), "rev="+strconv.FormatUint(st.AuthRevision, 10), 1); got != want {
		t.Fatalf("auth state on again after a restart:\n%s\nwant\n%s", got, want)
	}
}

// TestAuthClientv3: auth the way applications use it, through clientv3's
// Auth API and clients that log in with a user name and password: set up
// as root, then work as alice with KV, Watch and the concurrency package.
func TestAuthClientv3(t *testing.T) {
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		ctx := reqCtx(t)
		cli := tg.Client
		for _, step := range []func() error{
			func() error { _, err := cli.UserAdd(ctx, "root", authRootPassword); return err },
			func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
			func() error { _, err := cli.RoleAdd(ctx, "app"); return err },
			func() error {
				_, err := cli.RoleGrantPermission(ctx, "app", p+"app/", clientv3.GetPrefixRangeEnd(p+"app/"), clientv3.PermissionType(clientv3.PermReadWrite))
				return err
			},
			func() error { _, err := cli.UserAdd(ctx, "alice", "alice-pw"); return err },
			func() error { _, err := cli.UserGrantRole(ctx, "alice", "app"); return err },
			func() error { _, err := cli.AuthEnable(ctx); return err },
		} {
			authMust(t, "set up auth with clientv3", step())
		}
		// The client without credentials is now nobody.
		_, err := cli.Get(ctx, p+"app/k")
		wantRPCErr(t, err, rpctypes.ErrGRPCUserEmpty)

		_, err = clientv3.New(clientv3.Config{Endpoints: []string{tg.Endpoint}, DialTimeout: 5 * time.Second, Username: "alice", Password: "wrong", Logger: zap.NewNop()})
		wantRPCErr(t, err, rpctypes.ErrGRPCAuthFailed)

		alice := authUserClient(t, tg, "alice", "alice-pw")
		root := authUserClient(t, tg, "root", authRootPassword)
		wch := alice.Watch(ctx, p+"app/", clientv3.WithPrefix())
		if _, err := alice.Put(ctx, p+"app/k", "v"); err != nil {
			t.Fatalf("alice puts: %v", err)
		}
		if resp, err := alice.Get(ctx, p+"app/", clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("alice gets: %v, %v", resp, err)
		}
		if evs := wtNextEvents(t, wch, 1); string(evs[0].Kv.Key) != p+"app/k" {
			t.Fatalf("alice's watch: %v", evs)
		}
		_, err = alice.Put(ctx, p+"other", "v")
		wantRPCErr(t, err, rpctypes.ErrGRPCPermissionDenied)
		_, err = alice.Get(ctx, p, clientv3.WithPrefix())
		wantRPCErr(t, err, rpctypes.ErrGRPCPermissionDenied)
		_, err = alice.UserList(ctx)
		wantRPCErr(t, err, rpctypes.ErrGRPCPermissionDenied)
		if _, err := root.Put(ctx, p+"other", "root"); err != nil {
			t.Fatalf("root puts: %v", err)
		}

		// A watch on a forbidden range ends at once, with the reason as
		// the server sent it.
		denied := wtNext(t, alice.Watch(ctx, p+"other"))
		if !denied.Canceled || denied.Err() == nil || denied.Err().Error() != rpctypes.ErrGRPCPermissionDenied.Error() {
			t.Fatalf("alice watches a forbidden key: canceled=%v err=%v", denied.Canceled, denied.Err())
		}

		// Sessions, mutexes and elections work on her own prefix.
		s, err := concurrency.NewSession(alice, concurrency.WithTTL(10))
		authMust(t, "alice's session", err)
		defer s.Close()
		m := concurrency.NewMutex(s, p+"app/lock")
		authMust(t, "alice locks", m.Lock(ctx))
		authMust(t, "alice unlocks", m.Unlock(ctx))
		e := concurrency.NewElection(s, p+"app/election")
		authMust(t, "alice campaigns", e.Campaign(ctx, "alice"))
		if err := concurrency.NewMutex(s, p+"lock").Lock(ctx); err == nil {
			t.Fatal("alice locked outside her prefix")
		}
	})
}
