package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.uber.org/zap"

	"github.com/metastore/metastore/storage"
)

// infoOf is what an image of etcd e says about its member.
func infoOf(t *testing.T, e *etcd, meta map[string]string) Info {
	t.Helper()
	cfg := e.e.Config()
	info := Info{
		MemberID: uint64(e.e.Server.MemberID()),
		Name:     cfg.Name,
		Index:    binary.BigEndian.Uint64([]byte(meta[string(schema.MetaConsistentIndexKeyName)])),
		Term:     binary.BigEndian.Uint64([]byte(meta[string(schema.MetaTermKeyName)])),
	}
	for _, u := range cfg.AdvertisePeerUrls {
		info.PeerURLs = append(info.PeerURLs, u.String())
	}
	for _, u := range cfg.AdvertiseClientUrls {
		info.ClientURLs = append(info.ClientURLs, u.String())
	}
	return info
}

// TestBuildMatchesEtcd: for the same history, an image holds exactly the
// buckets, keys and values etcd's own snapshot holds, given etcd's member
// and raft position, and so hashes as etcd's Maintenance.Hash does. etcd writes its storage version only a few seconds
// after it starts; if it has not yet, that one key is not compared.
func TestBuildMatchesEtcd(t *testing.T) {
	for _, h := range histories {
		t.Run(h.name, func(t *testing.T) {
			e := startEtcd(t)
			playEtcd(t, e, h)
			want := buckets(t, e.snapshot(t))
			info := infoOf(t, e, want["meta"])
			etcdHash, err := pb.NewMaintenanceClient(e.cli.ActiveConnection()).Hash(context.Background(), &pb.HashRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, drop := range []bool{false, true} {
				t.Run(fmt.Sprintf("dropped=%v", drop), func(t *testing.T) {
					img := build(t, view(t, playStore(t, h, drop).db), info)
					matchesEtcd(t, img, want, etcdHash.Hash)
				})
			}
		})
	}
}

func build(t *testing.T, v *storage.View, info Info) *Image {
	t.Helper()
	img, err := Build(t.Context(), v, info, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// matchesEtcd checks an image against etcd's snapshot: every bucket of
// want (the storage version only if etcd's snapshot has one yet) and the
// hash etcd's Maintenance.Hash answered.
func matchesEtcd(t *testing.T, img *Image, want map[string]map[string]string, etcdHash uint32) {
	t.Helper()
	got := buckets(t, img.path)
	if _, ok := want["meta"][string(schema.MetaStorageVersionName)]; !ok {
		delete(got["meta"], string(schema.MetaStorageVersionName))
	}
	compareBuckets(t, got, want)
	if h, err := img.Hash(); err != nil || h != etcdHash {
		t.Errorf("image Hash %d, %v; etcd's Maintenance.Hash %d", h, err, etcdHash)
	}
}

func compareBuckets(t *testing.T, got, want map[string]map[string]string) {
	t.Helper()
	for name, kvs := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("no bucket %q", name)
			continue
		}
		for k, v := range kvs {
			if gv, ok := g[k]; !ok || gv != v {
				t.Errorf("bucket %q key %q: %q (present: %v), want %q", name, k, gv, ok, v)
			}
		}
		for k, v := range g {
			if _, ok := kvs[k]; !ok {
				t.Errorf("bucket %q: key %q = %q, which etcd does not have", name, k, v)
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("bucket %q, which etcd does not have", name)
		}
	}
}

// TestImageStream: an image's bytes are a bbolt file and its sha256, as
// many as Size says, which etcdutl's snapshot status reads: the newest
// revision, the live keys and the storage version.
func TestImageStream(t *testing.T) {
	v := view(t, playStore(t, histories[1], true).db) // c, d, m live at 9
	img := build(t, v, Info{MemberID: 1})
	r, err := img.Reader()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if want := sha256.Sum256(body); int64(len(b)) != img.Size() || !bytes.Equal(sum, want[:]) || len(b)%512 != sha256.Size {
		t.Fatalf("image of %d bytes (Size says %d) ends with %x, want the sha256 %x of the rest", len(b), img.Size(), sum, want)
	}
	st, err := snapshot.NewV3(zap.NewNop()).Status(img.path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != 9 || st.TotalKey != 3 || st.Version != StorageVersion {
		t.Errorf("etcdutl status: revision %d, %d keys, version %q; want 9, 3, %q", st.Revision, st.TotalKey, st.Version, StorageVersion)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := img.Reader(); err == nil {
		t.Error("a closed image can still be read")
	}
}
