// Command metastore runs a MetaStore server: an etcd v3 compatible
// key-value store built from actors. Flags are named like etcd's where they
// mean the same thing.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/actors/auth"
	"github.com/metastore/metastore/rpc"
)

func main() {
	cfg := rpc.DefaultConfig()
	fs := flag.NewFlagSet("metastore", flag.ExitOnError)
	fs.StringVar(&cfg.Name, "name", cfg.Name, "human-readable name for this member")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "path to the data directory")
	listen := fs.String("listen-client-urls", strings.Join(cfg.ListenClientURLs, ","), "comma-separated URLs to serve clients on")
	advertise := fs.String("advertise-client-urls", "", "comma-separated client URLs to advertise (default: the listen URLs)")
	peers := fs.String("initial-advertise-peer-urls", strings.Join(cfg.AdvertisePeerURLs, ","), "comma-separated peer URLs member list reports (MetaStore has no peers yet and does not listen on them)")
	metricsURLs := fs.String("listen-metrics-urls", "", "comma-separated URLs to serve /metrics and the health endpoints on, besides the client URLs")
	// etcd's metrics level (basic or extensive; etcd takes any other word
	// as basic): accepted so that etcd's command lines start MetaStore,
	// which always serves what extensive adds.
	_ = fs.String("metrics", "basic", "etcd's metrics level, basic or extensive: accepted and ignored; MetaStore always serves what extensive adds")
	fs.StringVar(&cfg.CertFile, "cert-file", "", "path to the client server TLS cert file")
	fs.StringVar(&cfg.KeyFile, "key-file", "", "path to the client server TLS key file")
	fs.StringVar(&cfg.TrustedCAFile, "trusted-ca-file", "", "path to the client server TLS trusted CA cert file")
	fs.BoolVar(&cfg.ClientCertAuth, "client-cert-auth", false, "enable client cert authentication")
	fs.StringVar(&cfg.Auth.Token, "auth-token", "simple", "the auth token kind: simple, or jwt with options (jwt,pub-key=FILE,priv-key=FILE,sign-method=RS256,ttl=5m)")
	tokenTTL := fs.Uint("auth-token-ttl", uint(auth.DefaultTokenTTL/time.Second), "seconds a simple token lives unused")
	fs.IntVar(&cfg.Auth.BcryptCost, "bcrypt-cost", bcrypt.DefaultCost, fmt.Sprintf("the cost passwords are hashed at (%d to %d)", bcrypt.MinCost, bcrypt.MaxCost))
	fs.StringVar(&cfg.AutoCompactionMode, "auto-compaction-mode", cfg.AutoCompactionMode, "interpret auto-compaction-retention as a duration (periodic) or a revision count (revision)")
	fs.StringVar(&cfg.AutoCompactionRetention, "auto-compaction-retention", cfg.AutoCompactionRetention, "auto compaction retention: for periodic, a duration such as 30m or a number of hours; for revision, a count of revisions to keep; 0 turns it off")
	fs.IntVar(&cfg.MaxTxnOps, "max-txn-ops", cfg.MaxTxnOps, "maximum operations in one transaction")
	fs.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", cfg.MaxRequestBytes, "maximum bytes of one client request")
	fs.Int64Var(&cfg.QuotaBackendBytes, "quota-backend-bytes", cfg.QuotaBackendBytes, "backend size that raises the NOSPACE alarm")
	fs.DurationVar(&cfg.WatchProgressNotifyInterval, "watch-progress-notify-interval", cfg.WatchProgressNotifyInterval, "how often a watcher that asked for progress notifications and got no event is told the current revision")
	fs.IntVar(&cfg.Shards, "shards", 0, fmt.Sprintf("number of shard actors (default: the count recorded in the data dir; for a new one, one per core, at least 2: %d here)", rpc.DefaultShards()))
	fs.BoolVar(&cfg.InMemory, "in-memory", false, "keep everything in memory only")
	fs.IntVar(&cfg.MaxBatch, "max-batch", 0, "writes a shard stamps together (default 512; 1 turns batching off)")
	fs.Int64Var(&cfg.ValueCacheBytes, "value-cache-bytes", cfg.ValueCacheBytes, "bytes of values read from the data dir to keep cached (0: none)")
	fs.StringVar(&cfg.Mailbox.Dispatcher, "mailbox-dispatcher", actors.DispatcherPinned, "how core actors run: pinned (one goroutine each) or goroutine (protoactor's default, one per wake-up)")
	fs.StringVar(&cfg.Mailbox.Queue, "mailbox-queue", actors.QueueRing, "the core actors' message queue: ring (protoactor's default) or mpsc (lock-free)")
	fs.IntVar(&cfg.Watch.Actors, "watch-actors", 0, fmt.Sprintf("number of watch actors sharing the watch streams (default: one per core, %d here)", runtime.GOMAXPROCS(0)))
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	version := fs.Bool("version", false, "print the version and exit")
	if len(os.Args) > 1 && os.Args[1] == "snapshot" {
		os.Exit(snapshotMain(os.Args[2:]))
	}
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		// A stray word (a typo) must not start a server.
		fmt.Fprintf(os.Stderr, "metastore: unexpected argument %q: metastore takes flags, or the snapshot subcommand\n", fs.Arg(0))
		fs.Usage()
		os.Exit(2)
	}
	if *version {
		fmt.Printf("metastore %s (etcd API %s)\n", rpc.Version, rpc.APIVersion)
		return
	}
	cfg.ListenClientURLs = splitList(*listen)
	cfg.AdvertiseClientURLs = splitList(*advertise)
	cfg.AdvertisePeerURLs = splitList(*peers)
	cfg.ListenMetricsURLs = splitList(*metricsURLs)
	cfg.Auth.TokenTTL = time.Duration(*tokenTTL) * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))

	srv, err := rpc.Start(cfg)
	if err != nil {
		cfg.Logger.Error("metastore failed to start", "err", err)
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	sig := <-stop
	cfg.Logger.Info("metastore stopping", "signal", sig.String())
	go func() {
		// Stopping is bounded (a few seconds at most, even with a stalled
		// disk); a second signal ends the process at once.
		sig := <-stop
		cfg.Logger.Warn("metastore stopped at once, without finishing", "signal", sig.String())
		os.Exit(1)
	}()
	if err := srv.Close(); err != nil {
		cfg.Logger.Error("metastore stopped with an error", "err", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
