package snapshot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/coreos/go-semver/semver"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/auth"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage"
)

// StorageVersion is the storage version an image records in its meta
// bucket, as an etcd v3.7 member does once its cluster version is set;
// Maintenance.Snapshot sends it with every chunk, and `etcdutl snapshot
// status` prints it.
const StorageVersion = "3.7.0"

// clusterVersion is the cluster version an image records: the one a
// single etcd v3.7 member settles on.
var clusterVersion = semver.Version{Major: 3, Minor: 7}

// authRevision is the auth revision of an etcd that never changed its
// auth settings: an image of a data dir without auth records says so.
const authRevision = 1

// keysPerCommit bounds the records Build writes in one bbolt transaction,
// and so its memory, whatever the size of the data.
const keysPerCommit = 10000

// Info is what an image says about the member it comes from, besides the
// data: its etcd identity and raft position.
type Info struct {
	// ClusterID and MemberID identify the member. The member ID keys the
	// members bucket; etcd's backend holds no cluster ID (its write-ahead
	// log does), so ClusterID is not written, and `etcdutl snapshot
	// restore` makes a new cluster anyway.
	ClusterID, MemberID uint64
	// Name, PeerURLs and ClientURLs are the member's, as member list
	// reports them.
	Name                 string
	PeerURLs, ClientURLs []string
	// Term and Index are the raft term and the consistent index the meta
	// bucket records.
	Term, Index uint64
	// Revision is the newest revision the image holds: records above it
	// are left out. 0 means every record of the view.
	Revision int64
}

// Image is a built snapshot image: a bbolt file laid out as etcd v3.7's
// backend, followed by its sha256, exactly the bytes Maintenance.Snapshot
// streams. It lives in a temporary dir that Close removes.
type Image struct {
	dir, path string
	size      int64
	rev       int64
}

// Build writes the view out as an etcd v3.7 backend, in a new temporary dir
// under tmpDir (os.TempDir() if empty), and returns the image. The image
// is as large as the data; it stands alone once built, so the view may be
// closed at once. It stops with ctx.Err() once ctx ends: it reads the whole
// history, and the view keeps the data dir from closing.
//
// The buckets are those of a running etcd member, written with etcd's own
// schema and backend packages: key (the records that survive compaction,
// up to info.Revision), lease (each lease's ID and TTL), meta (consistent
// index and term, conf state, storage version, scheduled and finished
// compact revision), members (this one member, as etcd's membership writes
// it), cluster (the cluster version), auth, authUsers and authRoles (the
// view's auth state; with none, auth disabled at revision 1 and no user
// or role, as etcd's own before any auth request), and the empty alarm and
// members_removed.
func Build(ctx context.Context, v *storage.View, info Info, tmpDir string) (_ *Image, err error) {
	rev := info.Revision
	if rev == 0 {
		rev = v.Rev()
	}
	if rev < v.Compact() {
		return nil, fmt.Errorf("snapshot: image at revision %d is below the compact revision %d", rev, v.Compact())
	}
	dir, err := os.MkdirTemp(tmpDir, "metastore-snapshot-")
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	backendPath := filepath.Join(dir, "backend.db")
	if err := writeBackend(ctx, v, info, rev, backendPath); err != nil {
		return nil, fmt.Errorf("snapshot: build: %w", err)
	}
	img := &Image{dir: dir, path: filepath.Join(dir, "snapshot.db"), rev: rev}
	if img.size, err = writeImage(backendPath, img.path); err != nil {
		return nil, fmt.Errorf("snapshot: build: %w", err)
	}
	if err := os.Remove(backendPath); err != nil {
		return nil, fmt.Errorf("snapshot: build: %w", err)
	}
	return img, nil
}

// writeBackend writes the view at revision rev into a new etcd backend at
// path.
func writeBackend(ctx context.Context, v *storage.View, info Info, rev int64, path string) (err error) {
	lg := zap.NewNop()
	be := backend.NewDefaultBackend(lg, path)
	defer func() {
		if cerr := be.Close(); err == nil {
			err = cerr
		}
	}()
	leases, err := v.Leases()
	if err != nil {
		return err
	}
	authRecs, err := v.Auth()
	if err != nil {
		return err
	}
	keep, err := survivors(ctx, v, v.Compact())
	if err != nil {
		return err
	}
	tx := be.BatchTx()
	tx.LockOutsideApply()
	for _, b := range schema.AllBuckets {
		tx.UnsafeCreateBucket(b)
	}
	schema.UnsafeUpdateConsistentIndex(tx, info.Index, info.Term)
	// The conf state of a lone voter, as raft leaves it (auto_leave set).
	schema.MustUnsafeSaveConfStateToBackend(lg, tx, &raftpb.ConfState{Voters: []uint64{info.MemberID}, AutoLeave: new(false)})
	schema.UnsafeSetStorageVersion(tx, &clusterVersion)
	if c := v.Compact(); c > 0 {
		mvcc.UnsafeSetScheduledCompact(tx, c)
		mvcc.UnsafeSetFinishedCompact(tx, c)
	}
	for id, ttl := range leases {
		schema.MustUnsafePutLease(tx, &leasepb.Lease{ID: id, TTL: ttl})
	}
	tx.Unlock()

	atx := schema.NewAuthBackend(lg, be).BatchTx()
	atx.Lock()
	err = writeAuth(atx, authRecs)
	atx.Unlock()
	if err != nil {
		return err
	}
	mbe := schema.NewMembershipBackend(lg, be)
	mbe.MustSaveMemberToBackend(&membership.Member{
		ID:             types.ID(info.MemberID),
		RaftAttributes: membership.RaftAttributes{PeerURLs: info.PeerURLs},
		Attributes:     membership.Attributes{Name: info.Name, ClientURLs: info.ClientURLs},
	})
	mbe.MustSaveClusterVersionToBackend(&clusterVersion)

	if err := writeKeys(ctx, be, v, rev, keep); err != nil {
		return err
	}
	be.ForceCommit()
	return nil
}

// writeAuth writes the auth state of a data dir (storage.AuthRecord's
// keys and values) with etcd's schema, which encodes it as etcd's auth
// store does: the records hold etcd's encoding already, so the buckets get
// the same bytes. A record that does not decode fails the image rather
// than leave a user or role out of it.
func writeAuth(atx auth.AuthBatchTx, recs map[string][]byte) error {
	rev := uint64(authRevision)
	for _, key := range slices.Sorted(maps.Keys(recs)) {
		v := recs[key]
		switch {
		case key == storage.AuthEnabledKey && len(v) == 1:
			atx.UnsafeSaveAuthEnabled(v[0] == 1)
		case key == storage.AuthRevisionKey && len(v) == 8:
			rev = binary.BigEndian.Uint64(v)
		case strings.HasPrefix(key, storage.AuthUserPrefix):
			var u authpb.User
			if err := proto.Unmarshal(v, &u); err != nil || string(u.Name) != key[len(storage.AuthUserPrefix):] {
				return fmt.Errorf("corrupt auth record %q (%v)", key, err)
			}
			atx.UnsafePutUser(&u)
		case strings.HasPrefix(key, storage.AuthRolePrefix):
			var r authpb.Role
			if err := proto.Unmarshal(v, &r); err != nil || string(r.Name) != key[len(storage.AuthRolePrefix):] {
				return fmt.Errorf("corrupt auth record %q (%v)", key, err)
			}
			atx.UnsafePutRole(&r)
		default:
			return fmt.Errorf("corrupt auth record %q = %x", key, v)
		}
	}
	atx.UnsafeSaveAuthRevision(rev)
	return nil
}

// writeKeys fills the key bucket with the records up to rev that survive
// compaction, keysPerCommit at a time: the backend commits a transaction
// once it holds that many changes, when it is unlocked.
func writeKeys(ctx context.Context, be backend.Backend, v *storage.View, rev int64, keep map[string]revision) error {
	compact := v.Compact()
	tx := be.BatchTx()
	var enc encoder
	n := 0
	tx.LockOutsideApply()
	err := records(ctx, v, rev, func(key string, rec storage.Record, value []byte) error {
		if rec.Rev <= compact && keep[key] != revOf(rec) {
			return nil
		}
		k, val, err := enc.encode(key, rec, value)
		if err != nil {
			return err
		}
		// The backend keeps the slices until it commits: hand it copies.
		tx.UnsafeSeqPut(schema.Key, append([]byte(nil), k...), append([]byte(nil), val...))
		if n++; n%keysPerCommit == 0 {
			tx.Unlock()
			tx.LockOutsideApply()
		}
		return nil
	})
	tx.Unlock()
	return err
}

// writeImage writes the backend at backendPath to path as
// Maintenance.Snapshot streams it: the file as one bbolt read transaction
// sees it (bbolt's Tx.WriteTo, which etcd's backend snapshot uses), then
// its sha256. It returns the image's size.
func writeImage(backendPath, path string) (size int64, err error) {
	db, err := bolt.Open(backendPath, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	sum := sha256.New()
	err = db.View(func(tx *bolt.Tx) error {
		n, err := tx.WriteTo(io.MultiWriter(w, sum))
		size = n
		return err
	})
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(sum.Sum(nil)); err != nil {
		return 0, err
	}
	return size + sha256.Size, w.Flush()
}

// Size is the image's size in bytes, its sha256 included: what
// Maintenance.Snapshot streams.
func (i *Image) Size() int64 { return i.size }

// Revision is the newest revision the image holds (Info.Revision, or the
// view's newest if that was 0).
func (i *Image) Revision() int64 { return i.rev }

// Reader returns the image's bytes: the bbolt file, then its sha256. The
// caller closes it.
func (i *Image) Reader() (io.ReadCloser, error) {
	f, err := os.Open(i.path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return f, nil
}

// Hash computes etcd's Maintenance.Hash over the image: a crc32
// (Castagnoli) of every bucket's name and every key and value in it, in
// bbolt's order, but for the meta bucket's term, consistent index and
// storage version (schema.DefaultIgnores), as etcd's backend.Hash.
func (i *Image) Hash() (uint32, error) {
	db, err := bolt.Open(i.path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	defer db.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.Write(name)
			return b.ForEach(func(k, v []byte) error {
				if !schema.DefaultIgnores(name, k) {
					h.Write(k)
					h.Write(v)
				}
				return nil
			})
		})
	})
	if err != nil {
		return 0, fmt.Errorf("snapshot: hash: %w", err)
	}
	return h.Sum32(), nil
}

// Close removes the image. A Reader already open keeps its bytes until
// it is closed.
func (i *Image) Close() error {
	if err := os.RemoveAll(i.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}
