package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage"
)

// RootUser and RootRole are etcd's: AuthEnable needs the user, and the role
// may do everything.
const (
	RootUser = "root"
	RootRole = "root"
)

// The keys of the auth records (storage.AuthRecord), etcd's buckets in one
// key space.
const (
	keyUserPrefix = "u/"
	keyRolePrefix = "r/"
	keyEnabled    = "enabled"
	keyRevision   = "revision"
)

// core is the auth state machine, free of actors: the users and roles,
// whether auth is on, and the auth revision. Each change checks its request
// as etcd's auth store does and returns the records that make it durable.
// It never modifies a user or role in place (it replaces them), so that a
// published State may share them.
type core struct {
	users    map[string]*authpb.User
	roles    map[string]*authpb.Role
	enabled  bool
	revision uint64
}

// newCore rebuilds the state from its stored records (storage.DB.Auth). A
// store that never held auth starts at auth revision 1, as etcd's does.
func newCore(stored map[string][]byte) (*core, error) {
	c := &core{users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}, revision: 1}
	for k, v := range stored {
		switch {
		case strings.HasPrefix(k, keyUserPrefix):
			u := &authpb.User{}
			if err := proto.Unmarshal(v, u); err != nil {
				return nil, fmt.Errorf("auth: stored user %q: %w", k[len(keyUserPrefix):], err)
			}
			c.users[string(u.Name)] = u
		case strings.HasPrefix(k, keyRolePrefix):
			r := &authpb.Role{}
			if err := proto.Unmarshal(v, r); err != nil {
				return nil, fmt.Errorf("auth: stored role %q: %w", k[len(keyRolePrefix):], err)
			}
			c.roles[string(r.Name)] = r
		case k == keyEnabled:
			c.enabled = len(v) == 1 && v[0] == 1
		case k == keyRevision:
			if len(v) != 8 {
				return nil, fmt.Errorf("auth: stored revision has %d bytes", len(v))
			}
			c.revision = binary.BigEndian.Uint64(v)
		default:
			return nil, fmt.Errorf("auth: unknown stored record %q", k)
		}
	}
	return c, nil
}

// apply checks and applies one change. It returns the records to make
// durable (none if the change changes nothing, as a grant of a role
// already held) and whether tokens of a user, named by invalidate, must
// stop working.
func (c *core) apply(req proto.Message) (recs []storage.AuthRecord, invalidate string, err error) {
	switch r := req.(type) {
	case *pb.AuthEnableRequest:
		recs, err = c.authEnable()
	case *pb.AuthDisableRequest:
		recs = c.authDisable()
	case *pb.AuthUserAddRequest:
		recs, err = c.userAdd(r)
	case *pb.AuthUserDeleteRequest:
		recs, err = c.userDelete(r)
		invalidate = r.Name
	case *pb.AuthUserChangePasswordRequest:
		recs, err = c.userChangePassword(r)
		invalidate = r.Name
	case *pb.AuthUserGrantRoleRequest:
		recs, err = c.userGrantRole(r)
	case *pb.AuthUserRevokeRoleRequest:
		recs, err = c.userRevokeRole(r)
	case *pb.AuthRoleAddRequest:
		recs, err = c.roleAdd(r)
	case *pb.AuthRoleDeleteRequest:
		recs, err = c.roleDelete(r)
	case *pb.AuthRoleGrantPermissionRequest:
		recs, err = c.roleGrantPermission(r)
	case *pb.AuthRoleRevokePermissionRequest:
		recs, err = c.roleRevokePermission(r)
	default:
		return nil, "", fmt.Errorf("auth: %T is not a change", req)
	}
	if err != nil {
		return nil, "", err
	}
	return recs, invalidate, nil
}

// admin checks, against the newest state (durable or not), that who may
// make a change: root, or anyone while auth is off. The rpc layer checked
// the caller against the published state already; this second check, in
// the order changes are made, is etcd's check at apply: a root demoted by
// a change still being made durable cannot make one more.
func (c *core) admin(who Info) error {
	return adminCheck(c.enabled, who, func(name string) *authpb.User { return c.users[name] })
}

// adminCheck is etcd's IsAdminPermitted: with auth on, who must be a user
// (ErrUserEmpty) that exists (ErrUserNotFound) and has the root role
// (ErrPermissionDenied). It does not look at the auth revision.
func adminCheck(enabled bool, who Info, user func(string) *authpb.User) error {
	if !enabled {
		return nil
	}
	if who.User == "" {
		return ErrUserEmpty
	}
	u := user(who.User)
	if u == nil {
		return ErrUserNotFound
	}
	if !hasRole(u, RootRole) {
		return ErrPermissionDenied
	}
	return nil
}

// bump moves the auth revision on and returns its record with recs.
func (c *core) bump(recs ...storage.AuthRecord) []storage.AuthRecord {
	c.revision++
	return append(recs, storage.AuthRecord{Key: keyRevision, Value: binary.BigEndian.AppendUint64(nil, c.revision)})
}

// AuthEnable needs the root user with the root role. Like etcd's, it does
// not move the auth revision: nothing a token was checked against changed.
func (c *core) authEnable() ([]storage.AuthRecord, error) {
	if c.enabled {
		return nil, nil
	}
	u := c.users[RootUser]
	if u == nil {
		return nil, ErrRootUserNotExist
	}
	if !hasRole(u, RootRole) {
		return nil, ErrRootRoleNotExist
	}
	c.enabled = true
	return []storage.AuthRecord{{Key: keyEnabled, Value: []byte{1}}}, nil
}

func (c *core) authDisable() []storage.AuthRecord {
	if !c.enabled {
		return nil
	}
	c.enabled = false
	return c.bump(storage.AuthRecord{Key: keyEnabled, Value: []byte{0}})
}

// password decodes the bcrypt hash the rpc layer made (etcd's
// hashed_password, base64), unless the user has none.
func password(opts *authpb.UserAddOptions, hashed string) ([]byte, error) {
	if opts != nil && opts.NoPassword {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(hashed)
	if err != nil {
		return nil, ErrNoPasswordUser
	}
	return b, nil
}

func (c *core) userAdd(r *pb.AuthUserAddRequest) ([]storage.AuthRecord, error) {
	if r.Name == "" {
		return nil, ErrUserEmpty
	}
	if c.users[r.Name] != nil {
		return nil, ErrUserAlreadyExist
	}
	opts := r.Options
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	}
	pw, err := password(opts, r.HashedPassword)
	if err != nil {
		return nil, err
	}
	return c.putUser(&authpb.User{Name: []byte(r.Name), Password: pw, Options: opts}), nil
}

func (c *core) userDelete(r *pb.AuthUserDeleteRequest) ([]storage.AuthRecord, error) {
	if c.enabled && r.Name == RootUser {
		return nil, ErrInvalidAuthMgmt
	}
	if c.users[r.Name] == nil {
		return nil, ErrUserNotFound
	}
	delete(c.users, r.Name)
	return c.bump(storage.AuthRecord{Key: keyUserPrefix + r.Name}), nil
}

func (c *core) userChangePassword(r *pb.AuthUserChangePasswordRequest) ([]storage.AuthRecord, error) {
	u := c.users[r.Name]
	if u == nil {
		return nil, ErrUserNotFound
	}
	pw, err := password(u.Options, r.HashedPassword)
	if err != nil {
		return nil, err
	}
	return c.putUser(&authpb.User{Name: u.Name, Password: pw, Roles: u.Roles, Options: u.Options}), nil
}

func (c *core) userGrantRole(r *pb.AuthUserGrantRoleRequest) ([]storage.AuthRecord, error) {
	u := c.users[r.User]
	if u == nil {
		return nil, ErrUserNotFound
	}
	if r.Role != RootRole && c.roles[r.Role] == nil {
		return nil, ErrRoleNotFound
	}
	i, found := slices.BinarySearch(u.Roles, r.Role)
	if found {
		return nil, nil
	}
	return c.putUser(&authpb.User{Name: u.Name, Password: u.Password, Roles: slices.Insert(slices.Clone(u.Roles), i, r.Role), Options: u.Options}), nil
}

func (c *core) userRevokeRole(r *pb.AuthUserRevokeRoleRequest) ([]storage.AuthRecord, error) {
	if c.enabled && r.Name == RootUser && r.Role == RootRole {
		return nil, ErrInvalidAuthMgmt
	}
	u := c.users[r.Name]
	if u == nil {
		return nil, ErrUserNotFound
	}
	roles := withoutRole(u.Roles, r.Role)
	if len(roles) == len(u.Roles) {
		return nil, ErrRoleNotGranted
	}
	return c.putUser(&authpb.User{Name: u.Name, Password: u.Password, Roles: roles, Options: u.Options}), nil
}

func (c *core) roleAdd(r *pb.AuthRoleAddRequest) ([]storage.AuthRecord, error) {
	if r.Name == "" {
		return nil, ErrRoleEmpty
	}
	if c.roles[r.Name] != nil {
		return nil, ErrRoleAlreadyExist
	}
	return c.putRole(&authpb.Role{Name: []byte(r.Name)}), nil
}

// roleDelete deletes a role and takes it from every user that has it, in
// one change.
func (c *core) roleDelete(r *pb.AuthRoleDeleteRequest) ([]storage.AuthRecord, error) {
	if c.enabled && r.Role == RootRole {
		return nil, ErrInvalidAuthMgmt
	}
	if c.roles[r.Role] == nil {
		return nil, ErrRoleNotFound
	}
	delete(c.roles, r.Role)
	recs := []storage.AuthRecord{{Key: keyRolePrefix + r.Role}}
	for _, name := range sortedKeys(c.users) {
		u := c.users[name]
		roles := withoutRole(u.Roles, r.Role)
		if len(roles) == len(u.Roles) {
			continue
		}
		u = &authpb.User{Name: u.Name, Password: u.Password, Roles: roles, Options: u.Options}
		c.users[name] = u
		recs = append(recs, userRecord(u))
	}
	return c.bump(recs...), nil
}

// roleGrantPermission adds a permission, or changes the type of the one
// on the same range; a role's permissions stay sorted by key, as etcd's.
func (c *core) roleGrantPermission(r *pb.AuthRoleGrantPermissionRequest) ([]storage.AuthRecord, error) {
	if r.Perm == nil {
		return nil, ErrPermissionNotGiven
	}
	if !validPermissionRange(r.Perm.Key, r.Perm.RangeEnd) {
		return nil, ErrInvalidAuthMgmt
	}
	role := c.roles[r.Name]
	if role == nil {
		return nil, ErrRoleNotFound
	}
	perms := make([]*authpb.Permission, 0, len(role.KeyPermission)+1)
	replaced := false
	for _, p := range role.KeyPermission {
		if !replaced && bytes.Equal(p.Key, r.Perm.Key) && bytes.Equal(p.RangeEnd, r.Perm.RangeEnd) {
			p = &authpb.Permission{Key: p.Key, RangeEnd: p.RangeEnd, PermType: r.Perm.PermType}
			replaced = true
		}
		perms = append(perms, p)
	}
	if !replaced {
		perms = append(perms, &authpb.Permission{Key: r.Perm.Key, RangeEnd: r.Perm.RangeEnd, PermType: r.Perm.PermType})
		slices.SortStableFunc(perms, func(a, b *authpb.Permission) int { return bytes.Compare(a.Key, b.Key) })
	}
	return c.putRole(&authpb.Role{Name: role.Name, KeyPermission: perms}), nil
}

// roleRevokePermission removes the permissions on exactly the range named.
func (c *core) roleRevokePermission(r *pb.AuthRoleRevokePermissionRequest) ([]storage.AuthRecord, error) {
	role := c.roles[r.Role]
	if role == nil {
		return nil, ErrRoleNotFound
	}
	perms := slices.DeleteFunc(slices.Clone(role.KeyPermission), func(p *authpb.Permission) bool {
		return bytes.Equal(p.Key, r.Key) && bytes.Equal(p.RangeEnd, r.RangeEnd)
	})
	if len(perms) == len(role.KeyPermission) {
		return nil, ErrPermissionNotGranted
	}
	return c.putRole(&authpb.Role{Name: role.Name, KeyPermission: perms}), nil
}

func (c *core) putUser(u *authpb.User) []storage.AuthRecord {
	c.users[string(u.Name)] = u
	return c.bump(userRecord(u))
}

func (c *core) putRole(r *authpb.Role) []storage.AuthRecord {
	c.roles[string(r.Name)] = r
	return c.bump(roleRecord(r))
}

func userRecord(u *authpb.User) storage.AuthRecord {
	return storage.AuthRecord{Key: keyUserPrefix + string(u.Name), Value: mustMarshal(u)}
}

func roleRecord(r *authpb.Role) storage.AuthRecord {
	return storage.AuthRecord{Key: keyRolePrefix + string(r.Name), Value: mustMarshal(r)}
}

// mustMarshal encodes a user or role. It cannot fail for these messages
// (no required fields, valid UTF-8 is not demanded of bytes fields).
func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("auth: encoding %T: %v", m, err))
	}
	return b
}

func hasRole(u *authpb.User, role string) bool {
	_, found := slices.BinarySearch(u.Roles, role)
	return found
}

func withoutRole(roles []string, role string) []string {
	return slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return r == role })
}

// validPermissionRange is etcd's rule for a permission's range: a key, and
// either no end (that key), an end after it, or "\x00" (every key from it).
func validPermissionRange(key, end []byte) bool {
	switch {
	case len(key) == 0:
		return false
	case len(end) == 0, isFromKey(end):
		return true
	default:
		return bytes.Compare(key, end) < 0
	}
}

// isFromKey reports whether a range end means "every key from the start".
func isFromKey(end []byte) bool { return len(end) == 1 && end[0] == 0 }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
