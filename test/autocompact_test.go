package test

// Tests of auto-compaction (--auto-compaction-mode and
// --auto-compaction-retention), run by etcd's own compactor in both
// servers: the flags as etcd takes or refuses them, and periodic
// compaction against the clock. Revision mode checks every five minutes,
// too long for this suite; rpc/compactor_test.go runs both modes on a fake
// clock.

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/metastore/metastore/rpc"
)

// acCompactedBelow reports whether reads at revision rev fail as
// compacted, that is whether the compact revision is above it.
func acCompactedBelow(t testing.TB, tg *Target, rev int64) bool {
	t.Helper()
	_, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte("a"), Revision: rev})
	if err == nil {
		return false
	}
	wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
	return true
}

// TestAutoCompactionPeriodic: with a periodic retention of a second, the
// compactor compacts at the revision of a retention ago, every retention;
// once writes stop, that is the current revision, and again after more
// writes.
func TestAutoCompactionPeriodic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		for round := range 2 {
			var rev int64
			for i := range 5 {
				rev = tg.put(t, fmt.Sprintf("%sk%d", p, i), fmt.Sprint(round))
			}
			// The compact revision never passes the current one, so it
			// is rev once reads below rev fail.
			mtWaitFor(t, fmt.Sprintf("compaction at revision %d", rev), func() bool { return acCompactedBelow(t, tg, rev-1) })
			if resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(p + "\xff"), Revision: rev}); resp.Count != 5 {
				t.Fatalf("round %d: %d keys at the compact revision %d, want 5", round, resp.Count, rev)
			}
		}
	}, withAutoCompaction("periodic", "1s"), withDataDir())
}

// TestAutoCompactionFlags: a bad mode or retention is refused at start with
// etcd's own message; good ones start.
func TestAutoCompactionFlags(t *testing.T) {
	bad := []struct{ mode, retention string }{
		{"", "1"},
		{"daily", "1"},
		{"periodic", "1x"},
		{"revision", "ten"},
		{"periodic", "-1"},
	}
	for _, c := range bad {
		t.Run(fmt.Sprintf("%s=%s", c.mode, c.retention), func(t *testing.T) {
			want := acEtcdStartError(t, c.mode, c.retention)
			if want == nil {
				t.Fatalf("etcd started with mode %q and retention %q", c.mode, c.retention)
			}
			_, err := acStart(t, c.mode, c.retention)
			if err == nil || err.Error() != want.Error() {
				t.Fatalf("metastore: %v; want etcd's %q", err, want)
			}
		})
	}
	// etcd takes a negative duration, then compacts without pause.
	if _, err := acStart(t, "periodic", "-1h"); err == nil || err.Error() != `error parsing CompactionRetention: negative retention "-1h"` {
		t.Fatalf("negative retention: %v", err)
	}
	for _, c := range []struct{ mode, retention string }{{"periodic", "0"}, {"periodic", ""}, {"periodic", "30m"}, {"periodic", "2"}, {"revision", "1000"}} {
		srv, err := acStart(t, c.mode, c.retention)
		if err != nil {
			t.Fatalf("mode %q retention %q: %v", c.mode, c.retention, err)
		}
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// acStart starts an in-memory MetaStore with the auto-compaction flags.
func acStart(t testing.TB, mode, retention string) (*rpc.Server, error) {
	cfg := rpc.DefaultConfig()
	cfg.ListenClientURLs = []string{"http://127.0.0.1:0"}
	cfg.InMemory = true
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = mode, retention
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return rpc.Start(cfg)
}

// acEtcdStartError starts an etcd with the auto-compaction flags and
// returns its error (closing it if it starts).
func acEtcdStartError(t testing.TB, mode, retention string) error {
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	local, err := url.Parse("http://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*local}, []url.URL{*local}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*local}, []url.URL{*local}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = mode, retention
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	e.Close()
	return nil
}
