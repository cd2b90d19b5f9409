package auth

import (
	"time"

	"github.com/puzpuzpuz/xsync/v3"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/pkg/v3/adt"
)

// Info says who makes a request: a user, and the auth revision the
// request is checked at (0: nobody, as etcd's empty AuthInfo). A simple
// token or a client certificate carries the current revision; a JWT the
// one it was issued at, so that any auth change since ends it.
type Info struct {
	User     string
	Revision uint64
}

// State is the auth state as of one durable change: what every request is
// checked against. It is immutable once published (but for the count of
// writes checked against it), so any goroutine may read it without a
// lock.
type State struct {
	enabled  bool
	revision uint64
	users    map[string]*user
	roles    map[string]*authpb.Role
	// writing counts the writes checked against this state and not yet
	// answered (Published.Enter): the change that replaces the state is
	// answered only once they are done. It is the one field that changes.
	writing *xsync.Counter
}

// user is a user with its roles' permissions merged, as etcd's range
// permission cache holds them: a request on a range is allowed when the
// union of the user's ranges of that kind covers it.
type user struct {
	u           *authpb.User
	root        bool
	read, write adt.IntervalTree
}

// state builds the State the core holds now. Users and roles are shared
// with the core, which replaces them rather than changing them.
func (c *core) state() *State {
	s := &State{
		enabled:  c.enabled,
		revision: c.revision,
		users:    make(map[string]*user, len(c.users)),
		roles:    make(map[string]*authpb.Role, len(c.roles)),
		writing:  xsync.NewCounter(),
	}
	for name, r := range c.roles {
		s.roles[name] = r
	}
	for name, u := range c.users {
		m := &user{u: u, root: hasRole(u, RootRole), read: adt.NewIntervalTree(), write: adt.NewIntervalTree()}
		for _, roleName := range u.Roles {
			role := c.roles[roleName]
			if role == nil {
				continue
			}
			for _, p := range role.KeyPermission {
				ivl := permInterval(p)
				if p.PermType == authpb.Permission_READ || p.PermType == authpb.Permission_READWRITE {
					m.read.Insert(ivl, struct{}{})
				}
				if p.PermType == authpb.Permission_WRITE || p.PermType == authpb.Permission_READWRITE {
					m.write.Insert(ivl, struct{}{})
				}
			}
		}
		s.users[name] = m
	}
	return s
}

// permInterval is the key interval a permission covers: one key, a range,
// or every key from its key ("\x00" end).
func permInterval(p *authpb.Permission) adt.Interval {
	if len(p.RangeEnd) == 0 {
		return adt.NewBytesAffinePoint(p.Key)
	}
	end := p.RangeEnd
	if isFromKey(end) {
		end = nil // the largest end there is
	}
	return adt.NewBytesAffineInterval(p.Key, end)
}

// Enabled reports whether auth is on.
func (s *State) Enabled() bool { return s.enabled }

// Revision is the auth revision: it moves on with every change.
func (s *State) Revision() uint64 { return s.revision }

// Permitted checks that who may read (or write) the key range [key, end)
// (end empty: key alone; "\x00": every key from key), as etcd's
// isOpPermitted does: nobody is refused with ErrUserEmpty, a request
// checked at an older auth revision with ErrAuthOldRevision, anything not
// covered with ErrPermissionDenied. Root may do anything; with auth off,
// everyone may.
func (s *State) Permitted(who Info, key, end []byte, write bool) error {
	if !s.enabled {
		return nil
	}
	if who.Revision == 0 {
		return ErrUserEmpty
	}
	if who.Revision < s.revision {
		return ErrAuthOldRevision
	}
	u := s.users[who.User]
	if u == nil {
		return ErrPermissionDenied
	}
	if u.root {
		return nil
	}
	perms := u.read
	if write {
		perms = u.write
	}
	if len(end) == 0 {
		if perms.Intersects(adt.NewBytesAffinePoint(key)) {
			return nil
		}
		return ErrPermissionDenied
	}
	if isFromKey(end) {
		end = nil
	}
	if perms.Contains(adt.NewBytesAffineInterval(key, end)) {
		return nil
	}
	return ErrPermissionDenied
}

// Admin checks that who is root, as etcd's IsAdminPermitted: it does not
// look at the auth revision.
func (s *State) Admin(who Info) error {
	return adminCheck(s.enabled, who, func(name string) *authpb.User {
		if u := s.users[name]; u != nil {
			return u.u
		}
		return nil
	})
}

// User returns a user: its name, bcrypt hash, sorted roles and options.
// The caller must not modify it.
func (s *State) User(name string) (*authpb.User, bool) {
	u, ok := s.users[name]
	if !ok {
		return nil, false
	}
	return u.u, true
}

// HasRole reports whether a user has a role.
func (s *State) HasRole(userName, role string) bool {
	u, ok := s.users[userName]
	return ok && hasRole(u.u, role)
}

// Role returns a role and its permissions, sorted by key. The caller must
// not modify it.
func (s *State) Role(name string) (*authpb.Role, bool) {
	r, ok := s.roles[name]
	return r, ok
}

// Users returns every user name, sorted.
func (s *State) Users() []string { return sortedKeys(s.users) }

// Roles returns every role name, sorted.
func (s *State) Roles() []string { return sortedKeys(s.roles) }

// drainEvery is how often a replaced state is looked at until the writes
// checked against it are done.
const drainEvery = 200 * time.Microsecond

// drain returns once no write checked against s is still under way. Only
// a state no longer published is drained: no new write enters it then
// (Published.Enter leaves a state it finds replaced).
func (s *State) drain() {
	for s.writing.Value() > 0 {
		time.Sleep(drainEvery)
	}
}
