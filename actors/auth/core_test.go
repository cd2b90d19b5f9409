package auth

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage"
)

// hashOf stands for the base64 bcrypt hash the rpc layer sends: the core
// only decodes it.
func hashOf(pw string) string { return base64.StdEncoding.EncodeToString([]byte("$2a$04$" + pw)) }

// The requests the tests below build their states from.
var (
	addRoot   = &pb.AuthUserAddRequest{Name: RootUser, HashedPassword: hashOf("root")}
	grantRoot = &pb.AuthUserGrantRoleRequest{User: RootUser, Role: RootRole}
	enable    = &pb.AuthEnableRequest{}
	disable   = &pb.AuthDisableRequest{}
)

func addUser(name string) *pb.AuthUserAddRequest {
	return &pb.AuthUserAddRequest{Name: name, HashedPassword: hashOf(name)}
}

func addRole(name string) *pb.AuthRoleAddRequest { return &pb.AuthRoleAddRequest{Name: name} }

func grantRole(user, role string) *pb.AuthUserGrantRoleRequest {
	return &pb.AuthUserGrantRoleRequest{User: user, Role: role}
}

func grantPerm(role string, typ authpb.Permission_Type, key, end string) *pb.AuthRoleGrantPermissionRequest {
	p := &authpb.Permission{PermType: typ, Key: []byte(key)}
	if end != "" {
		p.RangeEnd = []byte(end)
	}
	return &pb.AuthRoleGrantPermissionRequest{Name: role, Perm: p}
}

// errAny stands for an error a test does not name.
var errAny = errors.New("any error")

// rootOn is the smallest state auth can be enabled in.
var rootOn = []proto.Message{addRoot, grantRoot, enable}

func revBytes(rev uint64) []byte { return binary.BigEndian.AppendUint64(nil, rev) }

// store applies records as storage does (a nil value deletes).
func store(into map[string][]byte, recs []storage.AuthRecord) {
	for _, r := range recs {
		if r.Value == nil {
			delete(into, r.Key)
			continue
		}
		into[r.Key] = r.Value
	}
}

// mustApply applies changes that must succeed, storing their records.
func mustApply(t *testing.T, c *core, stored map[string][]byte, reqs ...proto.Message) {
	t.Helper()
	for _, req := range reqs {
		recs, _, err := c.apply(req)
		if err != nil {
			t.Fatalf("%T %v: %v", req, req, err)
		}
		store(stored, recs)
	}
}

func freshCore(t *testing.T) *core {
	t.Helper()
	c, err := newCore(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clone copies a core deeply, to tell whether a change modified it.
func clone(c *core) *core {
	d := &core{users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}, enabled: c.enabled, revision: c.revision}
	for k, u := range c.users {
		d.users[k] = proto.Clone(u).(*authpb.User)
	}
	for k, r := range c.roles {
		d.roles[k] = proto.Clone(r).(*authpb.Role)
	}
	return d
}

// diff describes how two cores differ ("" if they do not).
func diff(got, want *core) string {
	var out []string
	if got.enabled != want.enabled {
		out = append(out, fmt.Sprintf("enabled %v, want %v", got.enabled, want.enabled))
	}
	if got.revision != want.revision {
		out = append(out, fmt.Sprintf("revision %d, want %d", got.revision, want.revision))
	}
	if !maps.EqualFunc(got.users, want.users, func(a, b *authpb.User) bool { return proto.Equal(a, b) }) {
		out = append(out, fmt.Sprintf("users %v, want %v", got.users, want.users))
	}
	if !maps.EqualFunc(got.roles, want.roles, func(a, b *authpb.Role) bool { return proto.Equal(a, b) }) {
		out = append(out, fmt.Sprintf("roles %v, want %v", got.roles, want.roles))
	}
	return strings.Join(out, "; ")
}

func permsOf(c *core, role string) string {
	var out []string
	for _, p := range c.roles[role].KeyPermission {
		out = append(out, fmt.Sprintf("%s[%q,%q)", p.PermType, p.Key, p.RangeEnd))
	}
	return strings.Join(out, " ")
}

func TestFreshCoreIsAtRevisionOne(t *testing.T) {
	for _, stored := range []map[string][]byte{nil, {}} {
		c, err := newCore(stored)
		if err != nil {
			t.Fatal(err)
		}
		if c.revision != 1 || c.enabled || len(c.users) != 0 || len(c.roles) != 0 {
			t.Fatalf("fresh core: revision %d, enabled %v, %d users, %d roles; want 1, false, none", c.revision, c.enabled, len(c.users), len(c.roles))
		}
	}
}

// TestCoreChanges applies each change to a state set up for it and checks
// its error, the records it returns (and so whether the auth revision
// moved by one or stayed), the tokens it ends, and what it changed. A
// change that fails changes nothing.
func TestCoreChanges(t *testing.T) {
	aliceRO := []proto.Message{addUser("alice"), addRole("ro"), grantRole("alice", "ro")}
	tests := []struct {
		name       string
		setup      []proto.Message
		req        proto.Message
		err        error
		keys       []string // of the records, in order; "revision" iff the auth revision moves
		invalidate string
		check      func(t *testing.T, c *core)
	}{
		// UserAdd
		{name: "user add", req: addUser("alice"), keys: []string{"u/alice", "revision"}, check: func(t *testing.T, c *core) {
			u := c.users["alice"]
			if string(u.Name) != "alice" || string(u.Password) != "$2a$04$alice" || len(u.Roles) != 0 || u.Options == nil || u.Options.NoPassword {
				t.Errorf("stored %v, want alice with her decoded hash, no roles, non-nil options", u)
			}
		}},
		{name: "user add empty name", req: addUser(""), err: ErrUserEmpty},
		{name: "user add duplicate", setup: []proto.Message{addUser("alice")}, req: addUser("alice"), err: ErrUserAlreadyExist},
		{name: "user add no password", req: &pb.AuthUserAddRequest{Name: "bot", HashedPassword: "%%%", Options: &authpb.UserAddOptions{NoPassword: true}},
			keys: []string{"u/bot", "revision"}, check: func(t *testing.T, c *core) {
				if u := c.users["bot"]; u.Password != nil || !u.Options.NoPassword {
					t.Errorf("stored %v, want no password", u)
				}
			}},
		{name: "user add bad base64 hash", req: &pb.AuthUserAddRequest{Name: "alice", HashedPassword: "not base64!"}, err: ErrNoPasswordUser},
		// UserDelete
		{name: "user delete", setup: aliceRO, req: &pb.AuthUserDeleteRequest{Name: "alice"}, keys: []string{"u/alice", "revision"}, invalidate: "alice",
			check: func(t *testing.T, c *core) {
				if c.users["alice"] != nil || c.roles["ro"] == nil {
					t.Errorf("alice %v, role ro %v: want the user gone and her role kept", c.users["alice"], c.roles["ro"])
				}
			}},
		{name: "user delete unknown", req: &pb.AuthUserDeleteRequest{Name: "alice"}, err: ErrUserNotFound},
		{name: "user delete root while enabled", setup: rootOn, req: &pb.AuthUserDeleteRequest{Name: RootUser}, err: ErrInvalidAuthMgmt},
		{name: "user delete root while disabled", setup: []proto.Message{addRoot, grantRoot}, req: &pb.AuthUserDeleteRequest{Name: RootUser},
			keys: []string{"u/root", "revision"}, invalidate: RootUser},
		// UserChangePassword
		{name: "change password", setup: aliceRO, req: &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hashOf("new")},
			keys: []string{"u/alice", "revision"}, invalidate: "alice", check: func(t *testing.T, c *core) {
				if u := c.users["alice"]; string(u.Password) != "$2a$04$new" || !slices.Equal(u.Roles, []string{"ro"}) {
					t.Errorf("stored %v, want the new hash and her roles kept", u)
				}
			}},
		{name: "change password unknown", req: &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hashOf("new")}, err: ErrUserNotFound},
		{name: "change password bad base64", setup: aliceRO, req: &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: "!"}, err: ErrNoPasswordUser},
		{name: "change password of no-password user", setup: []proto.Message{&pb.AuthUserAddRequest{Name: "bot", Options: &authpb.UserAddOptions{NoPassword: true}}},
			req: &pb.AuthUserChangePasswordRequest{Name: "bot", HashedPassword: hashOf("new")}, keys: []string{"u/bot", "revision"}, invalidate: "bot",
			check: func(t *testing.T, c *core) {
				if u := c.users["bot"]; u.Password != nil {
					t.Errorf("stored %v, want still no password", u)
				}
			}},
		// UserGrantRole
		{name: "grant role keeps roles sorted", setup: []proto.Message{addUser("alice"), addRole("a"), addRole("b"), grantRole("alice", "b")},
			req: grantRole("alice", "a"), keys: []string{"u/alice", "revision"}, check: func(t *testing.T, c *core) {
				if got := c.users["alice"].Roles; !slices.Equal(got, []string{"a", "b"}) {
					t.Errorf("roles %q, want [a b]", got)
				}
			}},
		{name: "grant unknown role", setup: []proto.Message{addUser("alice")}, req: grantRole("alice", "nope"), err: ErrRoleNotFound},
		{name: "grant role to unknown user", setup: []proto.Message{addRole("ro")}, req: grantRole("alice", "ro"), err: ErrUserNotFound},
		{name: "grant root without the root role", setup: []proto.Message{addRoot}, req: grantRoot, keys: []string{"u/root", "revision"}},
		{name: "grant role already granted", setup: aliceRO, req: grantRole("alice", "ro")},
		// UserRevokeRole
		{name: "revoke role", setup: aliceRO, req: &pb.AuthUserRevokeRoleRequest{Name: "alice", Role: "ro"}, keys: []string{"u/alice", "revision"},
			check: func(t *testing.T, c *core) {
				if got := c.users["alice"].Roles; len(got) != 0 {
					t.Errorf("roles %q, want none", got)
				}
			}},
		{name: "revoke role not granted", setup: []proto.Message{addUser("alice"), addRole("ro")}, req: &pb.AuthUserRevokeRoleRequest{Name: "alice", Role: "ro"}, err: ErrRoleNotGranted},
		{name: "revoke role of unknown user", req: &pb.AuthUserRevokeRoleRequest{Name: "alice", Role: "ro"}, err: ErrUserNotFound},
		{name: "revoke root from root while enabled", setup: rootOn, req: &pb.AuthUserRevokeRoleRequest{Name: RootUser, Role: RootRole}, err: ErrInvalidAuthMgmt},
		{name: "revoke root from root while disabled", setup: []proto.Message{addRoot, grantRoot}, req: &pb.AuthUserRevokeRoleRequest{Name: RootUser, Role: RootRole},
			keys: []string{"u/root", "revision"}},
		// RoleAdd
		{name: "role add", req: addRole("ro"), keys: []string{"r/ro", "revision"}},
		{name: "role add empty name", req: addRole(""), err: ErrRoleEmpty},
		{name: "role add duplicate", setup: []proto.Message{addRole("ro")}, req: addRole("ro"), err: ErrRoleAlreadyExist},
		// RoleDelete
		{name: "role delete takes it from its users in one change",
			setup: []proto.Message{addUser("alice"), addUser("bob"), addUser("carol"), addRole("a"), addRole("ro"),
				grantRole("alice", "ro"), grantRole("alice", "a"), grantRole("bob", "ro"), grantRole("carol", "a")},
			req: &pb.AuthRoleDeleteRequest{Role: "ro"}, keys: []string{"r/ro", "u/alice", "u/bob", "revision"}, check: func(t *testing.T, c *core) {
				for name, want := range map[string][]string{"alice": {"a"}, "bob": nil, "carol": {"a"}} {
					if got := c.users[name].Roles; !slices.Equal(got, want) {
						t.Errorf("%s has roles %q, want %q", name, got, want)
					}
				}
			}},
		{name: "role delete unknown", req: &pb.AuthRoleDeleteRequest{Role: "ro"}, err: ErrRoleNotFound},
		{name: "role delete root while enabled", setup: append([]proto.Message{addRole(RootRole)}, rootOn...), req: &pb.AuthRoleDeleteRequest{Role: RootRole}, err: ErrInvalidAuthMgmt},
		// RoleGrantPermission
		{name: "grant permission nil", setup: []proto.Message{addRole("ro")}, req: &pb.AuthRoleGrantPermissionRequest{Name: "ro"}, err: ErrPermissionNotGiven},
		{name: "grant permission empty key", setup: []proto.Message{addRole("ro")}, req: grantPerm("ro", authpb.Permission_READ, "", "b"), err: ErrInvalidAuthMgmt},
		{name: "grant permission end equal to key", setup: []proto.Message{addRole("ro")}, req: grantPerm("ro", authpb.Permission_READ, "b", "b"), err: ErrInvalidAuthMgmt},
		{name: "grant permission end before key", setup: []proto.Message{addRole("ro")}, req: grantPerm("ro", authpb.Permission_READ, "b", "a"), err: ErrInvalidAuthMgmt},
		{name: "grant permission unknown role", req: grantPerm("ro", authpb.Permission_READ, "a", "b"), err: ErrRoleNotFound},
		{name: "grant permission nil before unknown role", req: &pb.AuthRoleGrantPermissionRequest{Name: "ro"}, err: ErrPermissionNotGiven},
		{name: "grant permission from key", setup: []proto.Message{addRole("ro")}, req: grantPerm("ro", authpb.Permission_READ, "b", "\x00"), keys: []string{"r/ro", "revision"}},
		{name: "grant permission on every key", setup: []proto.Message{addRole("ro")}, req: grantPerm("ro", authpb.Permission_READ, "\x00", "\x00"), keys: []string{"r/ro", "revision"}},
		{name: "grant permission updates the type in place",
			setup: []proto.Message{addRole("ro"), grantPerm("ro", authpb.Permission_READ, "a", ""), grantPerm("ro", authpb.Permission_READ, "b", "c")},
			req:   grantPerm("ro", authpb.Permission_READWRITE, "b", "c"), keys: []string{"r/ro", "revision"}, check: func(t *testing.T, c *core) {
				if got, want := permsOf(c, "ro"), `READ["a","") READWRITE["b","c")`; got != want {
					t.Errorf("perms %s, want %s", got, want)
				}
			}},
		{name: "grant permission keeps them sorted by key",
			setup: []proto.Message{addRole("ro"), grantPerm("ro", authpb.Permission_READ, "c", ""), grantPerm("ro", authpb.Permission_WRITE, "a", "")},
			req:   grantPerm("ro", authpb.Permission_READ, "b", "bb"), keys: []string{"r/ro", "revision"}, check: func(t *testing.T, c *core) {
				if got, want := permsOf(c, "ro"), `WRITE["a","") READ["b","bb") READ["c","")`; got != want {
					t.Errorf("perms %s, want %s", got, want)
				}
			}},
		{name: "grant permission same key other end is another permission",
			setup: []proto.Message{addRole("ro"), grantPerm("ro", authpb.Permission_READ, "a", "")},
			req:   grantPerm("ro", authpb.Permission_WRITE, "a", "b"), keys: []string{"r/ro", "revision"}, check: func(t *testing.T, c *core) {
				if n := len(c.roles["ro"].KeyPermission); n != 2 {
					t.Errorf("perms %s, want two", permsOf(c, "ro"))
				}
			}},
		// RoleRevokePermission
		{name: "revoke permission",
			setup: []proto.Message{addRole("ro"), grantPerm("ro", authpb.Permission_READ, "a", "c"), grantPerm("ro", authpb.Permission_READ, "b", "")},
			req:   &pb.AuthRoleRevokePermissionRequest{Role: "ro", Key: []byte("a"), RangeEnd: []byte("c")}, keys: []string{"r/ro", "revision"},
			check: func(t *testing.T, c *core) {
				if got, want := permsOf(c, "ro"), `READ["b","")`; got != want {
					t.Errorf("perms %s, want %s", got, want)
				}
			}},
		{name: "revoke point permission with empty end",
			setup: []proto.Message{addRole("ro"), grantPerm("ro", authpb.Permission_READ, "a", "")},
			req:   &pb.AuthRoleRevokePermissionRequest{Role: "ro", Key: []byte("a"), RangeEnd: []byte{}}, keys: []string{"r/ro", "revision"}},
		{name: "revoke permission covered but not equal",
			setup: []proto.Message{addRole("ro"), grantPerm("ro", authpb.Permission_READ, "a", "c")},
			req:   &pb.AuthRoleRevokePermissionRequest{Role: "ro", Key: []byte("a"), RangeEnd: []byte("b")}, err: ErrPermissionNotGranted},
		{name: "revoke point of a range permission",
			setup: []proto.Message{addRole("ro"), grantPerm("ro", authpb.Permission_READ, "a", "c")},
			req:   &pb.AuthRoleRevokePermissionRequest{Role: "ro", Key: []byte("a")}, err: ErrPermissionNotGranted},
		{name: "revoke permission unknown role", req: &pb.AuthRoleRevokePermissionRequest{Role: "ro", Key: []byte("a")}, err: ErrRoleNotFound},
		// AuthEnable and AuthDisable
		{name: "enable without root", req: enable, err: ErrRootUserNotExist},
		{name: "enable without the root role", setup: []proto.Message{addRoot}, req: enable, err: ErrRootRoleNotExist},
		{name: "enable", setup: []proto.Message{addRoot, grantRoot}, req: enable, keys: []string{"enabled"}, check: func(t *testing.T, c *core) {
			if !c.enabled {
				t.Error("not enabled")
			}
		}},
		{name: "enable when on", setup: rootOn, req: enable},
		{name: "disable", setup: rootOn, req: disable, keys: []string{"enabled", "revision"}, check: func(t *testing.T, c *core) {
			if c.enabled {
				t.Error("still enabled")
			}
		}},
		{name: "disable when off", req: disable},
		{name: "not a change", req: &pb.AuthStatusRequest{}, err: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := freshCore(t)
			stored := map[string][]byte{}
			mustApply(t, c, stored, tt.setup...)
			before := clone(c)
			recs, invalidate, err := c.apply(tt.req)
			if tt.err != nil {
				if err == nil || (tt.err != errAny && !errors.Is(err, tt.err)) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				if recs != nil || invalidate != "" {
					t.Errorf("failed change returned records %v, invalidate %q", recs, invalidate)
				}
				if d := diff(c, before); d != "" {
					t.Errorf("failed change changed the core: %s", d)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			var keys []string
			for _, r := range recs {
				keys = append(keys, r.Key)
			}
			if !slices.Equal(keys, tt.keys) {
				t.Errorf("record keys %q, want %q", keys, tt.keys)
			}
			if invalidate != tt.invalidate {
				t.Errorf("invalidate %q, want %q", invalidate, tt.invalidate)
			}
			wantRev := before.revision
			if slices.Contains(tt.keys, keyRevision) {
				wantRev++
			}
			if c.revision != wantRev {
				t.Errorf("auth revision %d, want %d", c.revision, wantRev)
			}
			for _, r := range recs {
				switch r.Key {
				case keyRevision:
					if string(r.Value) != string(revBytes(wantRev)) {
						t.Errorf("revision record %x, want %x", r.Value, revBytes(wantRev))
					}
				case keyEnabled:
					if want := map[bool]byte{false: 0, true: 1}[c.enabled]; len(r.Value) != 1 || r.Value[0] != want {
						t.Errorf("enabled record %x, want %x", r.Value, want)
					}
				}
			}
			if len(tt.keys) == 0 {
				if d := diff(c, before); d != "" {
					t.Errorf("a change with no records changed the core: %s", d)
				}
			}
			// The records hold the whole state: rebuilt from them, the core
			// is the same.
			store(stored, recs)
			rebuilt, err := newCore(stored)
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(rebuilt, c); d != "" {
				t.Errorf("rebuilt from its records: %s", d)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// TestCoreRoundTrip makes many changes and rebuilds the core from every
// record they returned: users, roles, the enabled flag and the auth
// revision come back as they were.
func TestCoreRoundTrip(t *testing.T) {
	c := freshCore(t)
	stored := map[string][]byte{}
	mustApply(t, c, stored,
		addRoot, grantRoot, addRole(RootRole), addRole("ro"), addRole("rw"), addRole("gone"),
		addUser("alice"), addUser("bob"), &pb.AuthUserAddRequest{Name: "bot", Options: &authpb.UserAddOptions{NoPassword: true}},
		grantPerm("ro", authpb.Permission_READ, "a", "c"), grantPerm("ro", authpb.Permission_READ, "x", ""),
		grantPerm("rw", authpb.Permission_READWRITE, "\x00", "\x00"), grantPerm("gone", authpb.Permission_WRITE, "g", ""),
		grantRole("alice", "ro"), grantRole("alice", "gone"), grantRole("bob", "rw"), grantRole("bot", "gone"),
		enable, &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hashOf("new")},
		&pb.AuthRoleDeleteRequest{Role: "gone"}, &pb.AuthRoleRevokePermissionRequest{Role: "ro", Key: []byte("x")},
		addUser("carol"), &pb.AuthUserDeleteRequest{Name: "carol"}, &pb.AuthUserRevokeRoleRequest{Name: "bob", Role: "rw"},
		disable, enable,
	)
	if c.revision != 25 {
		t.Errorf("auth revision %d after 24 changes that move it, want 25", c.revision)
	}
	rebuilt, err := newCore(stored)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(rebuilt, c); d != "" {
		t.Fatal(d)
	}
	if !rebuilt.enabled {
		t.Fatal("rebuilt disabled")
	}
}

func TestNewCoreRejectsCorruptRecords(t *testing.T) {
	good := mustMarshal(&authpb.User{Name: []byte("alice")})
	tests := []struct {
		name   string
		stored map[string][]byte
	}{
		{"bad user", map[string][]byte{"u/alice": {0xff, 0xff}}},
		{"bad role", map[string][]byte{"u/alice": good, "r/ro": {0x0a, 0x05, 'a'}}},
		{"short revision", map[string][]byte{"revision": {0, 1}}},
		{"long revision", map[string][]byte{"revision": make([]byte, 9)}},
		{"unknown record", map[string][]byte{"x/what": {1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := newCore(tt.stored); err == nil {
				t.Fatalf("newCore of %q: no error, %+v", tt.stored, c)
			}
		})
	}
}
