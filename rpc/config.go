package rpc

import (
	"log/slog"
	"runtime"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/metastore/metastore/actors"
)

// Config is everything a MetaStore server needs to start. Field names follow
// etcd's flags where they mean the same thing.
type Config struct {
	// Name is the human-readable member name (etcd's --name).
	Name string
	// DataDir is where the store keeps its files (etcd's --data-dir).
	DataDir string
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
	// Shards is the number of shard actors; 0 picks one from the core count.
	Shards int
	// InMemory keeps all state in memory only.
	InMemory bool
	// MaxBatch caps the writes a shard stamps together (0: the default;
	// 1: no batching).
	MaxBatch int
	// ValueCacheBytes bounds the cache of values read from the data dir;
	// 0 means none.
	ValueCacheBytes int64
	// Mailbox is how the core actors receive messages (zero: the default).
	Mailbox actors.Mailbox
	// MinFreeBytes is the free space the data dir's file system must keep:
	// below it the NOSPACE alarm is raised until space is freed (0: the
	// default, 64 MiB; negative: no check).
	MinFreeBytes int64
	// FS is the file system the data dir lives on; nil means the operating
	// system's. Tests inject storage faults through pebble's errorfs.
	FS vfs.FS
	// PprofAddr, if set, serves net/http/pprof there (e.g. 127.0.0.1:6060).
	PprofAddr string
	// Logger receives the server's log lines; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of the etcd flags that MetaStore shares.
const (
	DefaultName              = "default"
	DefaultDataDir           = "default.metastore"
	DefaultListenClientURL   = "http://127.0.0.1:2379"
	DefaultMaxTxnOps         = 128
	DefaultMaxRequestBytes   = 1536 * 1024
	DefaultQuotaBackendBytes = 2 * 1024 * 1024 * 1024
)

// DefaultValueCacheBytes is the size of the cache of values read from the
// data dir unless configured: enough for a working set of a few hundred
// thousand small values, small beside the index of a large store.
const DefaultValueCacheBytes = 64 * 1024 * 1024

// DefaultConfig returns the configuration `metastore` runs with when given no flags.
func DefaultConfig() Config {
	return Config{
		Name:              DefaultName,
		DataDir:           DefaultDataDir,
		ListenClientURLs:  []string{DefaultListenClientURL},
		MaxTxnOps:         DefaultMaxTxnOps,
		MaxRequestBytes:   DefaultMaxRequestBytes,
		QuotaBackendBytes: DefaultQuotaBackendBytes,
		ValueCacheBytes:   DefaultValueCacheBytes,
	}
}

// DefaultShards is the shard count chosen when none is given: one shard
// actor per core, and at least two so the cross-shard path is always live.
func DefaultShards() int {
	return max(2, runtime.NumCPU())
}
