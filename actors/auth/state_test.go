package auth

import (
	"errors"
	"slices"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// stateWith returns the state of auth enabled, with root, and user "u"
// holding one role per entry of perms with those permissions.
func stateWith(t *testing.T, perms ...[]*pb.AuthRoleGrantPermissionRequest) *State {
	t.Helper()
	c := freshCore(t)
	mustApply(t, c, map[string][]byte{}, addRoot, grantRoot, addUser("u"))
	for i, ps := range perms {
		role := string(rune('a' + i))
		mustApply(t, c, map[string][]byte{}, addRole(role), grantRole("u", role))
		for _, p := range ps {
			p.Name = role
			mustApply(t, c, map[string][]byte{}, p)
		}
	}
	mustApply(t, c, map[string][]byte{}, enable)
	return c.state()
}

func perm(typ authpb.Permission_Type, key, end string) *pb.AuthRoleGrantPermissionRequest {
	return grantPerm("", typ, key, end)
}

// TestPermitted checks reads and writes of user "u" against the union of
// its roles' permissions, as etcd's range permission cache does.
func TestPermitted(t *testing.T) {
	const (
		R  = authpb.Permission_READ
		W  = authpb.Permission_WRITE
		RW = authpb.Permission_READWRITE
	)
	type req struct {
		key, end string
		write    bool
		ok       bool
	}
	read := func(key, end string, ok bool) req { return req{key, end, false, ok} }
	write := func(key, end string, ok bool) req { return req{key, end, true, ok} }
	tests := []struct {
		name  string
		roles [][]*pb.AuthRoleGrantPermissionRequest
		reqs  []req
	}{
		{"point", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "k", "")}}, []req{
			read("k", "", true), read("k\x00", "", false), read("j", "", false), read("kk", "", false),
			read("k", "k\x00", true), read("k", "kk", false), read("k", "\x00", false), write("k", "", false),
		}},
		{"range", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "b", "d")}}, []req{
			read("b", "", true), read("c", "", true), read("czzz", "", true), read("d", "", false), read("a", "", false),
			read("b", "d", true), read("b", "c", true), read("bb", "cc", true),
			read("a", "c", false), read("c", "e", false), read("b", "\x00", false), read("a", "z", false),
		}},
		{"prefix", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "foo/", "foo0")}}, []req{
			read("foo/bar", "", true), read("foo/", "foo0", true), read("foo/a/", "foo/a0", true),
			read("foo", "", false), read("foo0", "", false), read("foo/", "foo1", false), read("fo", "foo0", false),
		}},
		{"from key", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "m", "\x00")}}, []req{
			read("m", "", true), read("zzz", "", true), read("\xff\xff", "", true), read("l", "", false),
			read("m", "\x00", true), read("n", "\x00", true), read("n", "z", true), read("l", "\x00", false), read("l", "n", false),
		}},
		{"every key", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "\x00", "\x00")}}, []req{
			read("\x00", "\x00", true), read("a", "", true), read("\x00", "", true), read("a", "b", true),
		}},
		{"adjacent ranges of two roles", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "a", "b")}, {perm(R, "b", "c")}}, []req{
			read("a", "c", true), read("aa", "bb", true), read("b", "", true), read("a", "\x00", false), read("a", "d", false),
		}},
		{"overlapping ranges", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "a", "c"), perm(R, "b", "e")}}, []req{
			read("a", "e", true), read("a", "f", false),
		}},
		{"ranges with a gap", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "a", "b")}, {perm(R, "bb", "c")}}, []req{
			read("a", "c", false), read("b", "", false), read("ba", "", false), read("a", "b", true), read("bb", "c", true),
		}},
		{"range then from key", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "a", "m")}, {perm(R, "m", "\x00")}}, []req{
			read("a", "\x00", true), read("b", "z", true),
		}},
		{"read only", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "a", "c")}}, []req{
			read("a", "c", true), write("a", "", false), write("a", "c", false),
		}},
		{"write only", [][]*pb.AuthRoleGrantPermissionRequest{{perm(W, "a", "c")}}, []req{
			write("a", "", true), write("a", "c", true), read("a", "", false), read("a", "c", false),
		}},
		{"read and write", [][]*pb.AuthRoleGrantPermissionRequest{{perm(RW, "a", "c")}}, []req{
			write("b", "", true), read("b", "", true), write("a", "c", true), read("a", "c", true), write("c", "", false),
		}},
		{"read of one role, write of another", [][]*pb.AuthRoleGrantPermissionRequest{{perm(R, "a", "c")}, {perm(W, "b", "d")}}, []req{
			read("a", "c", true), write("b", "d", true), read("a", "d", false), write("a", "d", false), write("a", "", false), read("c", "", false),
		}},
		{"no roles", nil, []req{read("a", "", false), read("\x00", "\x00", false), write("a", "", false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stateWith(t, tt.roles...)
			who := Info{User: "u", Revision: s.Revision()}
			for _, r := range tt.reqs {
				err := s.Permitted(who, []byte(r.key), []byte(r.end), r.write)
				var want error
				if !r.ok {
					want = ErrPermissionDenied
				}
				if err != want {
					t.Errorf("write %v [%q, %q): %v, want %v", r.write, r.key, r.end, err, want)
				}
			}
		})
	}
}

// TestPermittedWho covers who asks: root may do anything, nobody and an
// old revision are refused before any permission is looked at, and with
// auth off everyone may do anything.
func TestPermittedWho(t *testing.T) {
	on := stateWith(t, []*pb.AuthRoleGrantPermissionRequest{perm(authpb.Permission_READWRITE, "\x00", "\x00")})
	c := freshCore(t)
	mustApply(t, c, map[string][]byte{}, addUser("u"))
	off := c.state()
	rev := on.Revision()
	tests := []struct {
		name string
		s    *State
		who  Info
		want error
	}{
		{"root", on, Info{User: RootUser, Revision: rev}, nil},
		{"user", on, Info{User: "u", Revision: rev}, nil},
		{"newer revision", on, Info{User: "u", Revision: rev + 1}, nil},
		{"nobody", on, Info{}, ErrUserEmpty},
		{"revision 0", on, Info{User: RootUser}, ErrUserEmpty},
		{"old revision", on, Info{User: "u", Revision: rev - 1}, ErrAuthOldRevision},
		{"root at an old revision", on, Info{User: RootUser, Revision: rev - 1}, ErrAuthOldRevision},
		{"unknown user", on, Info{User: "who", Revision: rev}, ErrPermissionDenied},
		{"auth off, nobody", off, Info{}, nil},
		{"auth off, unknown user at revision 0", off, Info{User: "who", Revision: 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, write := range []bool{false, true} {
				if err := tt.s.Permitted(tt.who, []byte("k"), nil, write); err != tt.want {
					t.Errorf("write %v: %v, want %v", write, err, tt.want)
				}
			}
		})
	}
}

func TestAdmin(t *testing.T) {
	on := stateWith(t, []*pb.AuthRoleGrantPermissionRequest{perm(authpb.Permission_READWRITE, "\x00", "\x00")})
	off := freshCore(t).state()
	rev := on.Revision()
	tests := []struct {
		name string
		s    *State
		who  Info
		want error
	}{
		{"root", on, Info{User: RootUser, Revision: rev}, nil},
		{"root at an old revision", on, Info{User: RootUser, Revision: rev - 1}, nil},
		{"root at revision 0", on, Info{User: RootUser}, nil},
		{"nobody", on, Info{}, ErrUserEmpty},
		{"unknown user", on, Info{User: "who", Revision: rev}, ErrUserNotFound},
		{"not root", on, Info{User: "u", Revision: rev}, ErrPermissionDenied},
		{"auth off", off, Info{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Admin(tt.who); err != tt.want {
				t.Errorf("%v, want %v", err, tt.want)
			}
		})
	}
}

// TestStateAccessors: users and roles come out sorted, roles of a user
// sorted, and the root role need not exist for root.
func TestStateAccessors(t *testing.T) {
	c := freshCore(t)
	mustApply(t, c, map[string][]byte{}, addUser("bob"), addUser("alice"), addRoot, grantRoot,
		addRole("z"), addRole("m"), grantRole("alice", "z"), grantRole("alice", "m"), grantPerm("m", authpb.Permission_READ, "k", ""))
	s := c.state()
	if got := s.Users(); !slices.Equal(got, []string{"alice", "bob", "root"}) {
		t.Errorf("Users %q", got)
	}
	if got := s.Roles(); !slices.Equal(got, []string{"m", "z"}) {
		t.Errorf("Roles %q", got)
	}
	if u, ok := s.User("alice"); !ok || !slices.Equal(u.Roles, []string{"m", "z"}) {
		t.Errorf("User(alice) %v, %v", u, ok)
	}
	if _, ok := s.User("carol"); ok {
		t.Error("User(carol) found")
	}
	if r, ok := s.Role("m"); !ok || len(r.KeyPermission) != 1 {
		t.Errorf("Role(m) %v, %v", r, ok)
	}
	if _, ok := s.Role(RootRole); ok {
		t.Error("Role(root) found, never added")
	}
	for _, h := range []struct {
		user, role string
		want       bool
	}{{"alice", "m", true}, {"alice", "root", false}, {"root", "root", true}, {"carol", "m", false}, {"bob", "z", false}} {
		if got := s.HasRole(h.user, h.role); got != h.want {
			t.Errorf("HasRole(%s, %s) %v, want %v", h.user, h.role, got, h.want)
		}
	}
	if s.Enabled() || s.Revision() != c.revision {
		t.Errorf("Enabled %v, Revision %d; want false, %d", s.Enabled(), s.Revision(), c.revision)
	}
}

// TestPublishedStateIsImmutable takes a state, then changes the core in
// every way that touches what the state holds: the old state answers as
// before.
func TestPublishedStateIsImmutable(t *testing.T) {
	c := freshCore(t)
	mustApply(t, c, map[string][]byte{}, addRoot, grantRoot, addUser("alice"), addUser("bob"), addRole("ro"), addRole("rw"),
		grantPerm("ro", authpb.Permission_READ, "a", "c"), grantPerm("rw", authpb.Permission_READWRITE, "x", ""),
		grantRole("alice", "ro"), grantRole("bob", "rw"), enable)
	old := c.state()
	rev := old.Revision()
	alice, bob := Info{User: "alice", Revision: rev}, Info{User: "bob", Revision: rev}
	type check struct {
		who   Info
		key   string
		write bool
		want  error
	}
	checks := []check{
		{alice, "b", false, nil}, {alice, "b", true, ErrPermissionDenied}, {alice, "d", false, ErrPermissionDenied},
		{bob, "x", true, nil}, {bob, "y", true, ErrPermissionDenied},
	}
	aliceBefore, _ := old.User("alice")
	aliceBefore = proto.Clone(aliceBefore).(*authpb.User)
	roBefore, _ := old.Role("ro")
	roBefore = proto.Clone(roBefore).(*authpb.Role)

	mustApply(t, c, map[string][]byte{}, grantPerm("ro", authpb.Permission_READWRITE, "a", "c"), grantPerm("ro", authpb.Permission_READ, "d", ""),
		&pb.AuthRoleRevokePermissionRequest{Role: "rw", Key: []byte("x")}, addRole("more"), grantRole("alice", "more"),
		&pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hashOf("new")}, &pb.AuthUserRevokeRoleRequest{Name: "alice", Role: "ro"},
		&pb.AuthUserDeleteRequest{Name: "bob"}, &pb.AuthRoleDeleteRequest{Role: "more"}, addUser("carol"), disable)

	if !old.Enabled() || old.Revision() != rev {
		t.Errorf("old state: enabled %v, revision %d; want true, %d", old.Enabled(), old.Revision(), rev)
	}
	for _, ch := range checks {
		if err := old.Permitted(ch.who, []byte(ch.key), nil, ch.write); err != ch.want {
			t.Errorf("old state: %s write %v %q: %v, want %v", ch.who.User, ch.write, ch.key, err, ch.want)
		}
	}
	if got := old.Users(); !slices.Equal(got, []string{"alice", "bob", "root"}) {
		t.Errorf("old state users %q", got)
	}
	if got := old.Roles(); !slices.Equal(got, []string{"ro", "rw"}) {
		t.Errorf("old state roles %q", got)
	}
	if u, _ := old.User("alice"); !proto.Equal(u, aliceBefore) {
		t.Errorf("old state alice %v, want %v", u, aliceBefore)
	}
	if r, _ := old.Role("ro"); !proto.Equal(r, roBefore) {
		t.Errorf("old state role ro %v, want %v", r, roBefore)
	}
	// And the new one sees the changes.
	now := c.state()
	if now.Enabled() || now.Revision() == rev {
		t.Errorf("new state: enabled %v, revision %d", now.Enabled(), now.Revision())
	}
}

// TestStateSkipsRolesThatAreGone: a role a user names but the core does
// not hold (it cannot happen through changes, only in stored records)
// grants nothing.
func TestStateSkipsRolesThatAreGone(t *testing.T) {
	stored := map[string][]byte{
		"u/u":     mustMarshal(&authpb.User{Name: []byte("u"), Roles: []string{"gone"}}),
		"u/root":  mustMarshal(&authpb.User{Name: []byte("root"), Roles: []string{"root"}}),
		"enabled": {1},
	}
	c, err := newCore(stored)
	if err != nil {
		t.Fatal(err)
	}
	s := c.state()
	if err := s.Permitted(Info{User: "u", Revision: s.Revision()}, []byte("k"), nil, false); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("%v, want %v", err, ErrPermissionDenied)
	}
}
