package test

// Auth state in snapshots, both ways: users (with their bcrypt hashes, one
// without a password), roles with every shape of permission, grants and
// revokes, a changed password, a deleted user and role, whether auth is on
// and the auth revision travel in a snapshot that `etcdctl snapshot save`
// takes of one server (root's user and password when auth is on) into a
// server of the other kind restored from it (etcdutl restore and etcd, or
// `metastore snapshot restore` and MetaStore). The restored server must
// then answer a transcript of Auth and KV requests by root, a user and
// nobody exactly as the source does; the etcd-to-etcd trip is the oracle.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The passwords of the snapshot auth fixture (snapAuthSetup). Alice's is
// changed before the snapshot, so only the new one must work after it.
const (
	snapAliceOldPW = "alice-pw"
	snapAliceNewPW = "alice-new"
	snapBobPW      = "bob-pw"
	snapDavePW     = "dave-pw"
)

// TestSnapshotAuth snapshots a server holding users, roles and keys, with
// auth on and with auth left off, restores the snapshot into another
// backend and compares what the two answer.
func TestSnapshotAuth(t *testing.T) {
	for _, tc := range snapTrips {
		for _, enabled := range []bool{true, false} {
			name := tc.from + " to " + tc.to + "/auth off"
			if enabled {
				name = tc.from + " to " + tc.to + "/auth on"
			}
			t.Run(name, func(t *testing.T) {
				snapNeed(t, tc.from, tc.to)
				t.Parallel()
				src := connect(t, tc.from, startBackend(t, tc.from, withDataDir(), withErrorLog(), withBcryptCost(authBcryptCost)))
				root := snapAuthSetup(t, src, enabled)
				wantState, wantKV := authState(t, src, root), authKVState(t, src, root)
				if st := authStatus(t, src, ""); st.Enabled != enabled {
					t.Fatalf("source: auth enabled %v, want %v", st.Enabled, enabled)
				}

				user := ""
				if enabled {
					user = "root:" + authRootPassword
				}
				file := snapAuthSave(t, src.Endpoint, user)
				head, err := src.KV.Range(tokenCtx(t, root), authRangeReq("/sa/r", ""))
				authMust(t, "read the source's revision as root", err)
				if st := snapStatus(t, file); st.Revision != head.Header.Revision {
					t.Errorf("etcdutl snapshot status: revision %d; the source is at %d", st.Revision, head.Header.Revision)
				}
				dst := snapRestorers[tc.to](t, file)

				// Before anything else: the restored state as root sees it
				// (with a token root gets on the restored server itself).
				dstRoot := ""
				if enabled {
					dstRoot = authToken(t, dst, "root", authRootPassword)
				}
				if got := authState(t, dst, dstRoot); got != wantState {
					t.Errorf("restored auth state:\n%s\nwant (the source's)\n%s", got, wantState)
				}
				if got := authKVState(t, dst, dstRoot); got != wantKV {
					t.Errorf("restored keys:\n%s\nwant (the source's)\n%s", got, wantKV)
				}
				if t.Failed() {
					t.FailNow()
				}

				want := snapAuthTranscript(t, src, enabled)
				got := snapAuthTranscript(t, dst, enabled)
				snapAuthCompare(t, want, got)
			})
		}
	}
}

// snapAuthSetup gives tg users, roles and keys, turning auth on halfway if
// enable, and returns root's token (none if auth stays off):
//
//	root      (none stored; RoleGet shows every key read-write)
//	reader    READ       /sa/r (the key alone); READ /sa/r2 granted and revoked
//	writer    WRITE      [/sa/w/a, /sa/w/m)
//	prefixer  READWRITE  prefix /sa/rw/
//	fromkey   READ       every key from /sa/z on
//	doomed    READWRITE  /sa/other, deleted (and so taken from alice)
//
// alice has all five roles and her password changed; bob had prefixer,
// revoked; carol has no password and the role reader; dave had writer and
// is deleted. The changes after the first grants are made with root's
// token, so with auth on they go through the permission checks too.
func snapAuthSetup(t *testing.T, tg *Target, enable bool) string {
	t.Helper()
	const r, w, rw = authpb.READ, authpb.WRITE, authpb.READWRITE
	a := authOf(tg)
	roles := []authRole{
		// A stored root role, as `etcdctl auth enable` adds: RoleGet
		// shows every key read-write whatever it holds.
		{name: "root"},
		{name: "reader", perms: []*authpb.Permission{authPerm(r, "/sa/r", ""), authPerm(r, "/sa/r2", "")}},
		{name: "writer", perms: []*authpb.Permission{authPerm(w, "/sa/w/a", "/sa/w/m")}},
		{name: "prefixer", perms: []*authpb.Permission{authPerm(rw, "/sa/rw/", prefixEnd("/sa/rw/"))}},
		{name: "fromkey", perms: []*authpb.Permission{authPerm(r, "/sa/z", "\x00")}},
		{name: "doomed", perms: []*authpb.Permission{authPerm(rw, "/sa/other", "")}},
	}
	authAddRoles(t, a, roles)
	users := []struct {
		add   *pb.AuthUserAddRequest
		roles []string
	}{
		{&pb.AuthUserAddRequest{Name: "root", Password: authRootPassword}, []string{"root"}},
		{&pb.AuthUserAddRequest{Name: "alice", Password: snapAliceOldPW}, []string{"reader", "writer", "prefixer", "fromkey", "doomed"}},
		{&pb.AuthUserAddRequest{Name: "bob", Password: snapBobPW}, []string{"prefixer"}},
		{&pb.AuthUserAddRequest{Name: "carol", Options: &authpb.UserAddOptions{NoPassword: true}}, []string{"reader"}},
		{&pb.AuthUserAddRequest{Name: "dave", Password: snapDavePW}, []string{"writer"}},
	}
	for _, u := range users {
		_, err := a.UserAdd(reqCtx(t), u.add)
		authMust(t, "user add "+u.add.Name, err)
		for _, role := range u.roles {
			_, err := a.UserGrantRole(reqCtx(t), &pb.AuthUserGrantRoleRequest{User: u.add.Name, Role: role})
			authMust(t, fmt.Sprintf("grant role %s to %s", role, u.add.Name), err)
		}
	}
	root := ""
	if enable {
		_, err := a.AuthEnable(reqCtx(t), &pb.AuthEnableRequest{})
		authMust(t, "auth enable", err)
		root = authToken(t, tg, "root", authRootPassword)
	}
	ctx := func() context.Context { return tokenCtx(t, root) }
	_, err := a.UserChangePassword(ctx(), &pb.AuthUserChangePasswordRequest{Name: "alice", Password: snapAliceNewPW})
	authMust(t, "change alice's password", err)
	_, err = a.UserDelete(ctx(), &pb.AuthUserDeleteRequest{Name: "dave"})
	authMust(t, "delete dave", err)
	_, err = a.RoleDelete(ctx(), &pb.AuthRoleDeleteRequest{Role: "doomed"})
	authMust(t, "delete role doomed", err)
	_, err = a.UserRevokeRole(ctx(), &pb.AuthUserRevokeRoleRequest{Name: "bob", Role: "prefixer"})
	authMust(t, "revoke prefixer from bob", err)
	_, err = a.RoleRevokePermission(ctx(), &pb.AuthRoleRevokePermissionRequest{Role: "reader", Key: []byte("/sa/r2")})
	authMust(t, "revoke /sa/r2 from reader", err)
	for _, k := range []string{"/sa/other", "/sa/r", "/sa/r2", "/sa/rw/x", "/sa/w/b", "/sa/y", "/sa/z1"} {
		authPut(t, tg, root, k, "v")
	}
	return root
}

// snapAuthSave saves a snapshot of the server at endpoint with etcdctl as
// user ("name:password"; "" for none) and returns the file.
func snapAuthSave(t *testing.T, endpoint, user string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "snapshot.db")
	out := snapAuthSaveAs(t, endpoint, user, file)
	if out.code != 0 || !strings.HasPrefix(out.stdout, "Snapshot saved at "+file+"\n") {
		t.Fatalf("etcdctl snapshot save as %q: exit %d, stdout %q, stderr:\n%s", user, out.code, out.stdout, out.stderr)
	}
	return file
}

// snapAuthSaveAs runs `etcdctl [--user user] snapshot save file`.
func snapAuthSaveAs(t *testing.T, endpoint, user, file string) ctlOut {
	t.Helper()
	c := &ctl{t: t, bin: buildBinary(t, etcdctlCmd), endpoint: endpoint}
	args := []string{"snapshot", "save", file}
	if user != "" {
		args = append([]string{"--user=" + user}, args...)
	}
	return c.exec("", args...)
}

// snapAuthResult renders an answer for the transcript: "ok" and what came
// back, or the error's gRPC code and message.
func snapAuthResult(detail string, err error) string {
	if err != nil {
		s := status.Convert(err)
		return fmt.Sprintf("%v: %s", s.Code(), s.Message())
	}
	return "ok " + detail
}

// snapAuthCheck reports an answer that is not want (nil: success), with
// the error's code and message.
func snapAuthCheck(t *testing.T, tg *Target, what string, err, want error) {
	t.Helper()
	if got, w := snapAuthResult("", err), snapAuthResult("", want); got != w {
		t.Errorf("%s: %s: got %s, want %s", tg.Name, what, got, w)
	}
}

// snapAuthKV is one KV request of the transcript, by user (its token; ""
// sends none), and etcd's answer: nil for success.
type snapAuthKV struct {
	name, user string
	req        proto.Message
	want       error
}

// snapAuthTranscript runs the same requests against tg, a server holding
// snapAuthSetup's state (the source after its snapshot, or a server
// restored from it), checks etcd's answers and returns every answer as a
// line. With auth off (enabled false), it first sees logins refused, then
// turns auth on as anyone may.
func snapAuthTranscript(t *testing.T, tg *Target, enabled bool) []string {
	t.Helper()
	a := authOf(tg)
	var lines []string
	record := func(label, got string) { lines = append(lines, label+" => "+got) }

	st := authStatus(t, tg, "")
	record("auth status", fmt.Sprintf("enabled=%v rev=%d", st.Enabled, st.AuthRevision))
	if !enabled {
		_, err := a.Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: "alice", Password: snapAliceNewPW})
		snapAuthCheck(t, tg, "alice logs in with auth off", err, rpctypes.ErrGRPCAuthNotEnabled)
		record("login alice with auth off", snapAuthResult("", err))
		_, err = a.AuthEnable(reqCtx(t), &pb.AuthEnableRequest{})
		snapAuthCheck(t, tg, "anyone turns auth on", err, nil)
		record("auth enable", snapAuthResult("", err))
	}

	tokens := map[string]string{}
	logins := []struct {
		user, password string
		want           error
	}{
		{"root", authRootPassword, nil},
		{"alice", snapAliceNewPW, nil},
		{"alice", snapAliceOldPW, rpctypes.ErrGRPCAuthFailed},
		{"bob", snapBobPW, nil},
		{"carol", "carol-pw", errNoPasswordUser},
		{"dave", snapDavePW, rpctypes.ErrGRPCAuthFailed},
		{"nobody", "x", rpctypes.ErrGRPCAuthFailed},
	}
	for _, l := range logins {
		resp, err := a.Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: l.user, Password: l.password})
		label := fmt.Sprintf("login %s with %q", l.user, l.password)
		snapAuthCheck(t, tg, label, err, l.want)
		record(label, snapAuthResult("", err))
		if err == nil {
			tokens[l.user] = resp.Token
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	root := tokens["root"]
	st = authStatus(t, tg, root)
	record("auth status as root", fmt.Sprintf("enabled=%v rev=%d", st.Enabled, st.AuthRevision))
	record("auth state", authState(t, tg, root))

	denied := rpctypes.ErrGRPCPermissionDenied
	kv := []snapAuthKV{
		{"read the key alone", "alice", authRangeReq("/sa/r", ""), nil},
		{"read a revoked key", "alice", authRangeReq("/sa/r2", ""), denied},
		{"read the prefix", "alice", authRangeReq("/sa/rw/", prefixEnd("/sa/rw/")), nil},
		{"write in the prefix", "alice", &pb.PutRequest{Key: []byte("/sa/rw/new"), Value: []byte("alice")}, nil},
		{"write in the range", "alice", &pb.PutRequest{Key: []byte("/sa/w/b"), Value: []byte("alice")}, nil},
		{"write at the range's end", "alice", &pb.PutRequest{Key: []byte("/sa/w/m"), Value: []byte("alice")}, denied},
		{"read in a write-only range", "alice", authRangeReq("/sa/w/b", ""), denied},
		{"write a read-only key", "alice", &pb.PutRequest{Key: []byte("/sa/r"), Value: []byte("alice")}, denied},
		{"read a deleted role's key", "alice", authRangeReq("/sa/other", ""), denied},
		{"read from the from-key", "alice", authRangeReq("/sa/z", "\x00"), nil},
		{"read from before the from-key", "alice", authRangeReq("/sa/y", "\x00"), denied},
		{"read a revoked role's prefix", "bob", authRangeReq("/sa/rw/", prefixEnd("/sa/rw/")), denied},
		{"read without a token", "", authRangeReq("/sa/r", ""), rpctypes.ErrGRPCUserEmpty},
		{"write anywhere", "root", &pb.PutRequest{Key: []byte("/sa/other"), Value: []byte("root")}, nil},
	}
	for _, c := range kv {
		keys, err := authDo(t, tg, tokens[c.user], c.req)
		label := c.user + ": " + c.name
		snapAuthCheck(t, tg, label, err, c.want)
		record(label, snapAuthResult(fmt.Sprint(keys), err))
	}

	// The restored state goes on: a changed password and a new
	// permission each move the auth revision and take effect at once.
	_, err := a.UserChangePassword(tokenCtx(t, root), &pb.AuthUserChangePasswordRequest{Name: "bob", Password: "bob-new"})
	snapAuthCheck(t, tg, "root changes bob's password", err, nil)
	record("root: change bob's password", snapAuthResult("", err))
	_, err = a.RoleGrantPermission(tokenCtx(t, root), &pb.AuthRoleGrantPermissionRequest{Name: "reader", Perm: authPerm(authpb.READ, "/sa/y", "")})
	snapAuthCheck(t, tg, "root grants reader /sa/y", err, nil)
	record("root: grant reader /sa/y", snapAuthResult("", err))
	if now := authRev(t, tg, root); now != st.AuthRevision+2 {
		t.Errorf("%s: auth revision %d after two changes from %d, want %d", tg.Name, now, st.AuthRevision, st.AuthRevision+2)
	}
	for _, pw := range []string{snapBobPW, "bob-new"} {
		_, err = a.Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: "bob", Password: pw})
		record(fmt.Sprintf("login bob with %q", pw), snapAuthResult("", err))
		if pw == snapBobPW {
			snapAuthCheck(t, tg, "bob logs in with his old password", err, rpctypes.ErrGRPCAuthFailed)
		} else {
			snapAuthCheck(t, tg, "bob logs in with his new password", err, nil)
		}
	}
	keys, err := authDo(t, tg, tokens["alice"], authRangeReq("/sa/y", ""))
	snapAuthCheck(t, tg, "alice reads the key just granted", err, nil)
	record("alice: read the key just granted", snapAuthResult(fmt.Sprint(keys), err))

	alice := tokens["alice"]
	user, err := a.UserGet(tokenCtx(t, alice), &pb.AuthUserGetRequest{Name: "alice"})
	snapAuthCheck(t, tg, "alice gets alice", err, nil)
	record("alice: user get alice", snapAuthResult(fmt.Sprint(user.GetRoles()), err))
	_, err = a.UserGet(tokenCtx(t, alice), &pb.AuthUserGetRequest{Name: "bob"})
	snapAuthCheck(t, tg, "alice gets bob", err, denied)
	record("alice: user get bob", snapAuthResult("", err))
	role, err := a.RoleGet(tokenCtx(t, alice), &pb.AuthRoleGetRequest{Role: "reader"})
	snapAuthCheck(t, tg, "alice gets her role reader", err, nil)
	record("alice: role get reader", snapAuthResult(authPerms(role.GetPerm()), err))
	_, err = a.UserList(tokenCtx(t, alice), &pb.AuthUserListRequest{})
	snapAuthCheck(t, tg, "alice lists users", err, denied)
	record("alice: user list", snapAuthResult("", err))

	out := snapAuthSaveAs(t, tg.Endpoint, "alice:"+snapAliceNewPW, filepath.Join(t.TempDir(), "alice.db"))
	if line := ctlErrorLine(out.stderr); out.code == 0 || !strings.Contains(line, "permission denied") {
		t.Errorf("%s: etcdctl snapshot save as alice: exit %d, error line %q; want permission denied", tg.Name, out.code, line)
	}
	record("alice: etcdctl snapshot save", fmt.Sprintf("exit %d %s", out.code, ctlErrorLine(out.stderr)))

	record("keys", authKVState(t, tg, root))
	return lines
}

// snapAuthCompare reports the lines where the restored server's
// transcript differs from the source's.
func snapAuthCompare(t *testing.T, want, got []string) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("restored server's transcript has %d lines, the source's %d", len(got), len(want))
	}
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			t.Errorf("transcript line %d differs:\n  source:   %s\n  restored: %s", i, want[i], got[i])
		}
	}
}
