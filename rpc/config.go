package rpc

import (
	"runtime"
	"time"

	"github.com/metastore/metastore/actors"
)

// Config is everything a MetaStore server needs to start. Field names follow
// etcd's flags where they mean the same thing.
type Config struct {
	// Config is the node's own: shards, data dir, in-memory mode, batching,
	// the value cache, mailboxes, the file system and its free-space
	// reserve, the limits of its queues, and the logger (nil:
	// slog.Default()). Start sets its QuotaBytes from QuotaBackendBytes and
	// its DefaultShards from DefaultShards().
	actors.Config
	// Name is the human-readable member name (etcd's --name).
	Name string
	// ListenClientURLs are the URLs to serve the client API on. A port of 0
	// picks a free port; Server.ClientURLs reports the bound addresses.
	ListenClientURLs []string
	// AdvertiseClientURLs are reported to clients; empty means the bound URLs.
	AdvertiseClientURLs []string
	// MaxTxnOps caps the operations in one Txn (etcd's --max-txn-ops).
	MaxTxnOps int
	// MaxRequestBytes caps the size of one request (etcd's --max-request-bytes).
	MaxRequestBytes int
	// QuotaBackendBytes is the data size that raises the NOSPACE alarm; as
	// in etcd, 0 means the default (2 GiB) and a negative value no quota.
	QuotaBackendBytes int64
	// WatchProgressNotifyInterval is how often a watcher that asked for
	// progress_notify and got no event meanwhile is told the current
	// revision (etcd's --watch-progress-notify-interval); 0 means the
	// default.
	WatchProgressNotifyInterval time.Duration
	// ListenMetricsURLs are extra URLs that serve /metrics and the health
	// endpoints alone (etcd's --listen-metrics-urls); the client URLs serve
	// them too.
	ListenMetricsURLs []string
	// AdvertisePeerURLs are the member's peer URLs as MemberList reports
	// them (etcd's --initial-advertise-peer-urls). MetaStore has no peers
	// yet and listens on none of them.
	AdvertisePeerURLs []string
	// AutoCompactionMode is "periodic" or "revision" (etcd's
	// --auto-compaction-mode); AutoCompactionRetention is its retention
	// (etcd's --auto-compaction-retention: a duration, or hours, for
	// periodic; a revision count for revision). "0" or "" turns it off.
	AutoCompactionMode      string
	AutoCompactionRetention string
	// CertFile and KeyFile are the certificate and key the https:// client
	// and metrics URLs serve (etcd's --cert-file, --key-file), read again
	// whenever the files change. TrustedCAFile verifies client
	// certificates (etcd's --trusted-ca-file); with it, or with
	// ClientCertAuth (etcd's --client-cert-auth), a client must present a
	// valid certificate, as in etcd. http:// URLs ignore them.
	CertFile       string
	KeyFile        string
	TrustedCAFile  string
	ClientCertAuth bool
	// PprofAddr, if set, serves net/http/pprof there (e.g. 127.0.0.1:6060).
	PprofAddr string
}

// Defaults of the etcd flags that MetaStore shares.
const (
	DefaultName               = "default"
	DefaultDataDir            = "default.metastore"
	DefaultListenClientURL    = "http://127.0.0.1:2379"
	DefaultAdvertisePeerURL   = "http://localhost:2380"
	DefaultAutoCompactionMode = "periodic"
	DefaultMaxTxnOps          = 128
	DefaultMaxRequestBytes    = 1536 * 1024
	DefaultQuotaBackendBytes  = 2 * 1024 * 1024 * 1024
	// DefaultWatchProgressNotifyInterval is etcd's default.
	DefaultWatchProgressNotifyInterval = 10 * time.Minute
)

// DefaultValueCacheBytes is the size of the cache of values read from the
// data dir unless configured: enough for a working set of a few hundred
// thousand small values, small beside the index of a large store.
const DefaultValueCacheBytes = 64 * 1024 * 1024

// DefaultConfig returns the configuration `metastore` runs with when given no flags.
func DefaultConfig() Config {
	return Config{
		Config:                  actors.Config{DataDir: DefaultDataDir, ValueCacheBytes: DefaultValueCacheBytes},
		Name:                    DefaultName,
		ListenClientURLs:        []string{DefaultListenClientURL},
		AdvertisePeerURLs:       []string{DefaultAdvertisePeerURL},
		AutoCompactionMode:      DefaultAutoCompactionMode,
		AutoCompactionRetention: "0",
		MaxTxnOps:               DefaultMaxTxnOps,
		MaxRequestBytes:         DefaultMaxRequestBytes,
		QuotaBackendBytes:       DefaultQuotaBackendBytes,

		WatchProgressNotifyInterval: DefaultWatchProgressNotifyInterval,
	}
}

// DefaultShards is the shard count chosen when none is given: one shard
// actor per core, and at least two so the cross-shard path is always live.
func DefaultShards() int {
	return max(2, runtime.NumCPU())
}
