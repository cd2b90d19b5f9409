package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// etcd's series that MetaStore updates as it works. Names, types, help and
// buckets are etcd v3.7's (server/storage/mvcc/metrics.go, lease/metrics.go,
// storage/wal/metrics.go, storage/backend/metrics.go), so that etcd's
// dashboards read them unchanged.
var (
	rangeTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd", Subsystem: "mvcc", Name: "range_total",
		Help: "Total number of ranges seen by this member.",
	})
	putTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd", Subsystem: "mvcc", Name: "put_total",
		Help: "Total number of puts seen by this member.",
	})
	deleteTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd", Subsystem: "mvcc", Name: "delete_total",
		Help: "Total number of deletes seen by this member.",
	})
	txnTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd", Subsystem: "mvcc", Name: "txn_total",
		Help: "Total number of txns seen by this member.",
	})
	// putSize is a gauge in etcd, though it only grows. Every request
	// goroutine adds to it, so the bytes are kept in an integer
	// (putBytes) that an atomic add updates, rather than in a gauge's
	// float, whose add is a compare-and-swap loop that contends; a
	// scrape reads them.
	putSize = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "total_put_size_in_bytes",
		Help: "The total size of put kv pairs seen by this member.",
	}, func() float64 { return float64(putBytes.Load()) })

	etcdWatchStreams = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "watch_stream_total",
		Help: "Total number of watch streams.",
	})
	etcdWatchers = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "watcher_total",
		Help: "Total number of watchers.",
	})
	etcdSlowWatchers = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "slow_watcher_total",
		Help: "Total number of unsynced slow watchers.",
	})
	etcdEvents = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "events_total",
		Help: "Total number of events sent by this member.",
	})

	leaseGranted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd_debugging", Subsystem: "lease", Name: "granted_total",
		Help: "The total number of granted leases.",
	})
	leaseRevoked = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd_debugging", Subsystem: "lease", Name: "revoked_total",
		Help: "The total number of revoked leases.",
	})
	leaseRenewed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd_debugging", Subsystem: "lease", Name: "renewed_total",
		Help: "The number of renewed leases seen by the leader.",
	})
	leaseTTLs = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "etcd_debugging", Subsystem: "lease", Name: "ttl_total",
		Help: "Bucketed histogram of lease TTLs.",
		// 1 second -> 3 months
		Buckets: prometheus.ExponentialBuckets(1, 2, 24),
	})
	leaseExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "etcd_debugging", Subsystem: "server", Name: "lease_expired_total",
		Help: "The total number of expired leases.",
	})

	// MetaStore makes a commit group durable with one pebble write and
	// sync: what etcd spends in its WAL's fsync and in its backend's
	// commit, both. Its duration is reported as each.
	walFsync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
		Help:    "The latency distributions of fsync called by WAL.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	backendCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
		Help:    "The latency distributions of commit called by backend.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
)

// putBytes is the total size of the puts seen, which putSize reports.
var putBytes atomic.Int64

// MVCCRequest counts one request's operations as etcd's mvcc counts those
// of one transaction: its ranges, puts (with the bytes of their keys and
// values) and deletes, and a txn when it did more than one of them.
func MVCCRequest(ranges, puts, deletes, bytes int) {
	if ranges > 0 {
		rangeTotal.Add(float64(ranges))
	}
	if puts > 0 {
		putTotal.Add(float64(puts))
		putBytes.Add(int64(bytes))
	}
	if deletes > 0 {
		deleteTotal.Add(float64(deletes))
	}
	if ranges+puts+deletes > 1 {
		txnTotal.Inc()
	}
}

// LeaseGranted counts a grant of ttl seconds.
func LeaseGranted(ttl int64) {
	leaseGranted.Inc()
	leaseTTLs.Observe(float64(ttl))
}

// LeaseRevoked counts a revoke done, and an expired lease if it was the
// revoke of an expiry.
func LeaseRevoked(expired bool) {
	leaseRevoked.Inc()
	if expired {
		leaseExpired.Inc()
	}
}

// LeaseRenewed counts a keep-alive of a lease that exists.
func LeaseRenewed() { leaseRenewed.Inc() }
