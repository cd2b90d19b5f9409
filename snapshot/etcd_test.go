package snapshot

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// etcd is a single-member etcd v3.7 started in-process: the oracle the
// hashes and images here are held to.
type etcd struct {
	e   *embed.Etcd
	cli *clientv3.Client
}

func startEtcd(t *testing.T) *etcd {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	local, err := url.Parse("http://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenClientUrls = []url.URL{*local}
	cfg.AdvertiseClientUrls = []url.URL{*local}
	cfg.ListenPeerUrls = []url.URL{*local}
	cfg.AdvertisePeerUrls = []url.URL{*local}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	cfg.UnsafeNoFsync = true
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("etcd failed while starting: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready after 30s")
	}
	// etcd sets the cluster version a moment after it is ready; an image
	// taken before has no clusterVersion key, where the image built to be
	// compared with it has one.
	for deadline := time.Now().Add(30 * time.Second); e.Server.ClusterVersion() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("etcd has no cluster version after 30s")
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Clients[0].Addr().String()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return &etcd{e: e, cli: cli}
}

// grant grants a lease with a chosen ID, so that two stores given the same
// history hold the same lease.
func (e *etcd) grant(t *testing.T, id, ttl int64) {
	t.Helper()
	if _, err := pb.NewLeaseClient(e.cli.ActiveConnection()).LeaseGrant(context.Background(), &pb.LeaseGrantRequest{ID: id, TTL: ttl}); err != nil {
		t.Fatal(err)
	}
}

// snapshot saves etcd's Maintenance.Snapshot stream to a file, as
// `etcdctl snapshot save` does, and returns its path.
func (e *etcd) snapshot(t *testing.T) string {
	t.Helper()
	rc, err := e.cli.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	path := filepath.Join(t.TempDir(), "etcd.snapshot")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return path
}

// buckets reads every bucket of a bbolt file (a trailing sha256 is
// ignored, as bbolt ignores it): bucket → key → value.
func buckets(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]map[string]string{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			kvs := map[string]string{}
			out[string(name)] = kvs
			return b.ForEach(func(k, v []byte) error {
				kvs[string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
