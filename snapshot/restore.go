package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage"
)

// ErrCorrupt is returned by Restore for a file that is not an intact
// snapshot: its sha256 does not match, it is truncated, or its bbolt file
// or records are damaged.
var ErrCorrupt = errors.New("snapshot: corrupt snapshot file")

// RestoreOptions say how Restore builds the data dir.
type RestoreOptions struct {
	// Shards is the shard count the new dir records (default, as the
	// server's: one per core, at least two).
	Shards int
	// SkipHashCheck accepts a file without the sha256 that
	// Maintenance.Snapshot appends, such as the db file copied out of an
	// etcd data dir (etcdutl's --skip-hash-check). A file with one is
	// still checked.
	SkipHashCheck bool
}

// RestoreResult is what Restore restored.
type RestoreResult struct {
	// Revision and CompactRevision are the new dir's.
	Revision, CompactRevision int64
	// Keys is the number of keys live at Revision, Records the number of
	// records (revisions of keys) restored, Leases the number of leases,
	// Users and Roles those of the auth state.
	Keys, Records, Leases, Users, Roles int
	// ClusterID and MemberID are the new dir's: a restore makes a new
	// cluster, as etcdutl's does.
	ClusterID, MemberID uint64
	// Verified reports that the file's sha256 was checked.
	Verified bool
}

// Restore writes a new MetaStore data dir at dir from the etcd snapshot
// file file: what `etcdctl snapshot save` writes, from etcd or from
// MetaStore, or (with SkipHashCheck) an etcd member's db file. It refuses
// a dir that is not empty, and a file that is corrupt or truncated
// (ErrCorrupt), leaving dir as it was; a restore that fails half way
// leaves dir empty.
//
// It keeps every record of the key bucket as it is (revision, sub
// revision, create revision, version, lease, value), the leases, the auth
// state (users, roles, whether auth is enabled, the auth revision) and the
// compact revision: the scheduled one if etcd had not finished it, which
// the new dir completes when it opens, as etcd would. The new dir's
// revision is the newest record's, or the compact revision if newer, as
// etcd computes its own on startup. Members and alarms are not restored:
// a restore makes a new cluster.
func Restore(file, dir string, opts RestoreOptions) (RestoreResult, error) {
	if opts.Shards == 0 {
		opts.Shards = max(2, runtime.NumCPU())
	}
	// The dir is checked first: it is cheap, and reading the file is not.
	r, err := storage.Restore(dir, storage.Options{Shards: opts.Shards})
	if err != nil {
		return RestoreResult{}, err
	}
	res, err := read(file, r, opts.SkipHashCheck)
	if err != nil {
		r.Abort()
		return RestoreResult{}, err
	}
	meta, err := r.Finish(res.CompactRevision)
	if err != nil {
		return RestoreResult{}, err
	}
	res.Revision, res.ClusterID, res.MemberID = meta.Rev, meta.ClusterID, meta.MemberID
	return res, nil
}

// read checks file and hands what it holds to r.
func read(file string, r *storage.Restorer, skipHashCheck bool) (RestoreResult, error) {
	verified, err := checkFile(file, skipHashCheck)
	if err != nil {
		return RestoreResult{}, err
	}
	db, err := bolt.Open(file, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return RestoreResult{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, file, err)
	}
	defer db.Close()
	res := RestoreResult{Verified: verified}
	err = db.View(func(tx *bolt.Tx) error {
		if err := checkTx(tx, file, verified); err != nil {
			return err
		}
		return readInto(tx, r, &res)
	})
	return res, err
}

// checkFile checks the sha256 that ends a snapshot file, as etcdutl does:
// a file has one when its size is 32 bytes past a multiple of 512 (bbolt
// files are made of whole pages). It reports whether it checked one.
func checkFile(file string, skipMissing bool) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	size := st.Size()
	if size%512 != sha256.Size {
		if skipMissing {
			return false, nil
		}
		return false, fmt.Errorf("%w: %s: no sha256 at its end (its size, %d bytes, is not whole pages and a sha256): it is truncated, or not a snapshot; a db file copied from a data dir needs --skip-hash-check", ErrCorrupt, file, size)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.LimitReader(f, size-sha256.Size)); err != nil {
		return false, fmt.Errorf("snapshot: %s: %w", file, err)
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		return false, fmt.Errorf("snapshot: %s: %w", file, err)
	}
	if got := sum.Sum(nil); !bytes.Equal(got, want) {
		return false, fmt.Errorf("%w: %s: sha256 mismatch (file says %x, content hashes to %x)", ErrCorrupt, file, want, got)
	}
	return true, nil
}

// checkTx checks that the bbolt file is whole: no page lies past its end
// (reading one would crash the process), and, unless its sha256 vouched
// for it, bbolt's consistency check passes.
func checkTx(tx *bolt.Tx, file string, verified bool) error {
	st, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if st.Size() < tx.Size() {
		return fmt.Errorf("%w: %s: truncated: %d bytes, its pages need %d", ErrCorrupt, file, st.Size(), tx.Size())
	}
	if verified {
		return nil
	}
	var errs []error
	for err := range tx.Check() { // read to the end: the check runs on its own goroutine
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, file, errors.Join(errs...))
	}
	return nil
}

// readInto hands the key, lease and auth buckets and the compact revision
// to r, and counts them in res.
func readInto(tx *bolt.Tx, r *storage.Restorer, res *RestoreResult) (err error) {
	// bbolt reports damage it meets while reading as panics.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	keys := tx.Bucket(schema.Key.Name())
	meta := tx.Bucket(schema.Meta.Name())
	if keys == nil || meta == nil {
		return fmt.Errorf("%w: no %q or %q bucket: not an etcd snapshot", ErrCorrupt, schema.Key.Name(), schema.Meta.Name())
	}
	compact, err := compactRevision(meta)
	if err != nil {
		return err
	}
	res.CompactRevision = compact
	live := make(map[string]bool)
	var kv mvccpb.KeyValue
	err = keys.ForEach(func(k, v []byte) error {
		rec, err := decodeRecord(k, v, &kv)
		if err != nil {
			return err
		}
		if len(kv.Key) == 0 {
			// etcdutl's --bump-revision marker: a revision with no key,
			// which --mark-compacted (required with it) compacts.
			if rec.Rev > compact {
				return fmt.Errorf("%w: a record without a key at revision %d, above the compact revision %d", ErrCorrupt, rec.Rev, compact)
			}
			return nil
		}
		live[string(kv.Key)] = !rec.Tombstone()
		res.Records++
		return r.Record(string(kv.Key), rec, kv.Value)
	})
	if err != nil {
		return err
	}
	for _, l := range live {
		if l {
			res.Keys++
		}
	}
	if leases := tx.Bucket(schema.Lease.Name()); leases != nil {
		err = leases.ForEach(func(k, v []byte) error {
			var l leasepb.Lease
			if err := proto.Unmarshal(v, &l); err != nil || len(k) != 8 || int64(binary.BigEndian.Uint64(k)) != l.ID {
				return fmt.Errorf("%w: lease record %x: %v", ErrCorrupt, k, err)
			}
			res.Leases++
			return r.Lease(l.ID, l.TTL)
		})
		if err != nil {
			return err
		}
	}
	return readAuth(tx, r, res)
}

// readAuth hands the auth buckets to r as storage.AuthRecord keys and
// values: users and roles with the bytes etcd stored (checked to decode as
// theirs), the enabled flag as etcd reads it (on only if it is 1), and the
// auth revision. A snapshot without them (auth never touched) gives none.
func readAuth(tx *bolt.Tx, r *storage.Restorer, res *RestoreResult) error {
	if b := tx.Bucket(schema.Auth.Name()); b != nil {
		if v := b.Get(schema.AuthEnabledKeyName); v != nil {
			on := byte(0)
			if bytes.Equal(v, []byte{1}) {
				on = 1
			}
			if err := r.Auth(storage.AuthEnabledKey, []byte{on}); err != nil {
				return err
			}
		}
		if v := b.Get(schema.AuthRevisionKeyName); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("%w: auth revision %x is not 8 bytes", ErrCorrupt, v)
			}
			if err := r.Auth(storage.AuthRevisionKey, v); err != nil {
				return err
			}
		}
	}
	buckets := []struct {
		bucket []byte
		prefix string
		msg    interface {
			proto.Message
			GetName() []byte
		}
		n *int
	}{
		{schema.AuthUsers.Name(), storage.AuthUserPrefix, &authpb.User{}, &res.Users},
		{schema.AuthRoles.Name(), storage.AuthRolePrefix, &authpb.Role{}, &res.Roles},
	}
	for _, a := range buckets {
		b := tx.Bucket(a.bucket)
		if b == nil {
			continue
		}
		err := b.ForEach(func(k, v []byte) error {
			if err := proto.Unmarshal(v, a.msg); err != nil || !bytes.Equal(a.msg.GetName(), k) {
				return fmt.Errorf("%w: %s record %q: %v", ErrCorrupt, a.bucket, k, err)
			}
			*a.n++
			return r.Auth(a.prefix+string(k), v)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// compactRevision reads the compact revision from the meta bucket: the
// scheduled one if newer than the finished one (etcd finishes it when it
// starts).
func compactRevision(meta *bolt.Bucket) (int64, error) {
	var out int64
	for _, name := range [][]byte{schema.FinishedCompactKeyName, schema.ScheduledCompactKeyName} {
		v := meta.Get(name)
		if v == nil {
			continue
		}
		if len(v) != revKeyLen || v[8] != '_' {
			return 0, fmt.Errorf("%w: meta %s is %x, not a revision", ErrCorrupt, name, v)
		}
		out = max(out, mvcc.BytesToRev(v).Main)
	}
	return out, nil
}

// decodeRecord decodes one record of the key bucket into kv and returns it
// as a storage record (its value is kv.Value).
func decodeRecord(k, v []byte, kv *mvccpb.KeyValue) (storage.Record, error) {
	if (len(k) != revKeyLen && len(k) != revKeyLen+1) || k[8] != '_' || (len(k) == revKeyLen+1 && k[revKeyLen] != tombstoneMark) {
		return storage.Record{}, fmt.Errorf("%w: key bucket: %x is not a revision", ErrCorrupt, k)
	}
	rev := mvcc.BytesToRev(k[:revKeyLen])
	if rev.Main < 1 || rev.Sub < 0 {
		return storage.Record{}, fmt.Errorf("%w: key bucket: bad revision %d.%d", ErrCorrupt, rev.Main, rev.Sub)
	}
	kv.Reset()
	if err := proto.Unmarshal(v, kv); err != nil {
		return storage.Record{}, fmt.Errorf("%w: key bucket: revision %d.%d: %v", ErrCorrupt, rev.Main, rev.Sub, err)
	}
	rec := storage.Record{Rev: rev.Main, Sub: rev.Sub}
	if mvcc.IsTombstone(k) || len(kv.Key) == 0 {
		return rec, nil
	}
	if kv.ModRevision != rev.Main || kv.Version < 1 {
		return storage.Record{}, fmt.Errorf("%w: key bucket: revision %d.%d holds key %q at mod revision %d, version %d", ErrCorrupt, rev.Main, rev.Sub, kv.Key, kv.ModRevision, kv.Version)
	}
	rec.Create, rec.Version, rec.Lease = kv.CreateRevision, kv.Version, kv.Lease
	return rec, nil
}
