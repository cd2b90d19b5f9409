package snapshot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/storage"
)

// authSteps bring an etcd's auth state to one worth comparing: users with
// a password, without one and with none at all, roles with single-key,
// range and prefix permissions of each type, grants and revokes, then
// auth enabled or disabled as asked (0: never enabled, 1: enabled, 2:
// enabled then disabled).
func authSteps(t *testing.T, e *etcd, enabled int) {
	t.Helper()
	ctx := context.Background()
	cli := e.cli
	steps := []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "reader"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "reader", "a", "b", clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.RoleAdd(ctx, "writer"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "writer", "p/", clientv3.GetPrefixRangeEnd("p/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "writer", "x", "", clientv3.PermissionType(clientv3.PermWrite))
			return err
		},
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "writer", "y", "", clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.RoleRevokePermission(ctx, "writer", "y", ""); return err },
		func() error { _, err := cli.RoleAdd(ctx, "gone"); return err },
		func() error { _, err := cli.RoleDelete(ctx, "gone"); return err },
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "reader"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "writer"); return err },
		func() error { _, err := cli.UserRevokeRole(ctx, "alice", "writer"); return err },
		func() error {
			_, err := cli.UserAddWithOptions(ctx, "bob", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := cli.UserGrantRole(ctx, "bob", "writer"); return err },
		func() error { _, err := cli.UserAdd(ctx, "carol", "x"); return err },
		func() error { _, err := cli.UserChangePassword(ctx, "carol", "y"); return err },
	}
	if enabled > 0 {
		steps = append(steps, func() error { _, err := cli.AuthEnable(ctx); return err })
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("auth step %d: %v", i, err)
		}
	}
	if enabled == 0 {
		return
	}
	// Everything from here on needs root's credentials.
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{e.e.Clients[0].Addr().String()}, Username: "root", Password: "rootpw", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Close() })
	e.cli = root
	if enabled == 2 {
		if _, err := root.AuthDisable(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuthMatchesEtcd: an etcd snapshot's auth state restores into a data
// dir whose image holds etcd's auth buckets byte for byte, and with them
// every other bucket etcd's snapshot holds and etcd's Maintenance.Hash.
func TestAuthMatchesEtcd(t *testing.T) {
	for enabled, name := range []string{"never enabled", "enabled", "enabled then disabled"} {
		t.Run(name, func(t *testing.T) {
			e := startEtcd(t)
			authSteps(t, e, enabled)
			file := e.snapshot(t)
			want := buckets(t, file)
			for _, b := range []string{"auth", "authUsers", "authRoles"} {
				if len(want[b]) == 0 {
					t.Fatalf("etcd's snapshot has nothing in bucket %q", b)
				}
			}
			res, v := restore(t, file, RestoreOptions{})
			if res.Users != len(want["authUsers"]) || res.Roles != len(want["authRoles"]) {
				t.Errorf("restored %d users and %d roles, want %d and %d", res.Users, res.Roles, len(want["authUsers"]), len(want["authRoles"]))
			}
			etcdHash, err := pb.NewMaintenanceClient(e.cli.ActiveConnection()).Hash(context.Background(), &pb.HashRequest{})
			if err != nil {
				t.Fatal(err)
			}
			img := build(t, v, infoOf(t, e, want["meta"]))
			matchesEtcd(t, img, want, etcdHash.Hash)
			// And back: the image restores to the same auth state.
			_, again := restore(t, img.path, RestoreOptions{})
			first, err := v.Auth()
			if err != nil {
				t.Fatal(err)
			}
			second, err := again.Auth()
			if err != nil {
				t.Fatal(err)
			}
			if f, s := fmt.Sprint(first), fmt.Sprint(second); f != s {
				t.Errorf("image restores to auth %s, built from %s", s, f)
			}
		})
	}
}

// TestAuthRefusesCorrupt: an auth record that does not decode as what its
// key says fails Build rather than leave it out of the image, and a
// snapshot file with such a user, role or auth revision fails Restore with
// ErrCorrupt.
func TestAuthRefusesCorrupt(t *testing.T) {
	alice, err := proto.Marshal(&authpb.User{Name: []byte("alice")})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		record string // its key in a data dir
		bucket []byte // and in an etcd snapshot
		key    string
		value  []byte
	}{
		{"user under another name", "u/bob", schema.AuthUsers.Name(), "bob", alice},
		{"role that is not one", "r/r", schema.AuthRoles.Name(), "r", []byte{0xff}},
		{"short revision", storage.AuthRevisionKey, schema.Auth.Name(), string(schema.AuthRevisionKeyName), []byte{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := playStore(t, histories[0], true).db
			if err := db.Commit(nil, nil, []storage.AuthRecord{{Key: tc.record, Value: tc.value}}, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := Build(t.Context(), view(t, db), Info{MemberID: 1}, t.TempDir()); err == nil {
				t.Error("Build took the record")
			}
			img := build(t, view(t, playStore(t, histories[0], true).db), Info{MemberID: 1})
			file := withKey(t, img.path, tc.bucket, tc.key, tc.value)
			_, err = Restore(file, filepath.Join(t.TempDir(), "restored"), RestoreOptions{Shards: 1, SkipHashCheck: true})
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Restore: %v, want ErrCorrupt", err)
			}
		})
	}
}

// withKey copies the bbolt file at path, with key set to value in bucket,
// into a new file (without a sha256) and returns its path.
func withKey(t *testing.T, path string, bucket []byte, key string, value []byte) string {
	t.Helper()
	src, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	file := filepath.Join(t.TempDir(), "changed.db")
	dst, err := bolt.Open(file, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = dst.Update(func(tx *bolt.Tx) error {
		err := src.View(func(stx *bolt.Tx) error {
			return stx.ForEach(func(name []byte, sb *bolt.Bucket) error {
				b, err := tx.CreateBucket(name)
				if err != nil {
					return err
				}
				return sb.ForEach(b.Put)
			})
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucket).Put([]byte(key), value)
	})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return file
}
