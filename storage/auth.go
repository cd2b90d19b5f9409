package storage

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// prefixAuth holds the auth state, one record per user, per role and for
// the enabled flag and the auth revision: a/<AuthRecord.Key> → its value.
// Each change is written in the commit group of the auth request that made
// it, so a restart finds the state as of the last acknowledged request.
var prefixAuth = []byte("a/")

// AuthRecord is one change of the auth state, in etcd's own encoding so that
// snapshots carry it unchanged: Key "u/<user>" → a marshaled authpb.User,
// "r/<role>" → a marshaled authpb.Role, "enabled" → one byte (1 on, 0 off),
// "revision" → the auth revision, 8 bytes big-endian. A nil Value deletes Key.
type AuthRecord struct {
	Key   string
	Value []byte
}

// The keys of AuthRecord.
const (
	AuthUserPrefix  = "u/"       // + user name → marshaled authpb.User
	AuthRolePrefix  = "r/"       // + role name → marshaled authpb.Role
	AuthEnabledKey  = "enabled"  // → 1 byte: 1 on, 0 off
	AuthRevisionKey = "revision" // → the auth revision, 8 bytes big-endian
)

func authKey(key string) []byte {
	return append(append(make([]byte, 0, len(prefixAuth)+len(key)), prefixAuth...), key...)
}

// putAuth adds auth records to a batch.
func putAuth(b *pebble.Batch, recs []AuthRecord) {
	for _, r := range recs {
		if r.Value == nil {
			_ = b.Delete(authKey(r.Key), nil)
			continue
		}
		_ = b.Set(authKey(r.Key), r.Value, nil)
	}
}

// authBounds bounds an iterator to the auth records.
func authBounds() *pebble.IterOptions {
	return &pebble.IterOptions{LowerBound: prefixAuth, UpperBound: []byte("a0")}
}

// Auth returns every auth record the dir holds, as stored: AuthRecord.Key
// → value. The auth actor reads it at startup.
func (d *DB) Auth() (map[string][]byte, error) { return readAuth(d.db) }

// Auth returns every auth record as of the view, as DB.Auth does.
func (v *View) Auth() (map[string][]byte, error) { return readAuth(v.snap) }

// readAuth copies out the auth records r holds (the open dir, or a view's
// snapshot of it).
func readAuth(r pebble.Reader) (map[string][]byte, error) {
	it, err := r.NewIter(authBounds())
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := make(map[string][]byte)
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		out[string(it.Key()[len(prefixAuth):])] = append([]byte{}, v...)
	}
	return out, it.Error()
}

// Auth adds one auth record (AuthRecord's Key and Value).
func (r *Restorer) Auth(key string, value []byte) error {
	if key == "" {
		return errors.New("storage: restore: an auth record has no key")
	}
	// The batch copies what it is given.
	_ = r.batch.Set(authKey(key), value, nil)
	return r.flushIfFull()
}
