package rpc

import (
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/metrics"
)

// The rpc layer's part of /metrics (the metrics package has the rest):
// gRPC's server series (grpcmetrics.go); etcd's mvcc operation counters,
// counted per request (countMVCC); and etcd's series that read the
// member's state when scraped.
//
// The Prometheus registry is one per process while a process may run
// several servers (tests do): counters add up over them, as etcd's do, and
// the series read from a member follow the one started last (scraped).
var (
	// scraped is the node the state series read: the last one started.
	scraped atomic.Pointer[actors.Node]

	hasLeader = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "has_leader",
		Help: "Whether or not a leader exists. 1 is existence, 0 is not.",
	}, serving)
	// A single member leads itself.
	isLeader = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "is_leader",
		Help: "Whether or not this member is a leader. 1 if is, 0 otherwise.",
	}, serving)
	quotaBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "quota_backend_bytes",
		Help: "Current backend storage quota size in bytes.",
	})
	serverVersion = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "version",
		Help: "Which version is running. 1 for 'server_version' label with current version.",
	}, []string{"server_version"})
	goVersion = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "go_version",
		Help: "Which Go version server is running with. 1 for 'server_go_version' label with current version.",
	}, []string{"server_go_version"})
	serverID = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "server", Name: "id",
		Help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
	}, []string{"server_id"})

	// etcd reports its bbolt file's size, and that less its free pages
	// as in use; MetaStore the data dir's disk space, and the part of it
	// that holds live data, as Status does.
	dbSize = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_bytes",
		Help: "Total size of the underlying database physically allocated in bytes.",
	}, stat(func(n *actors.Node) int64 { size, _ := n.DBSize(); return size }))
	dbInUse = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_use_in_bytes",
		Help: "Total size of the underlying database logically in use in bytes.",
	}, stat(func(n *actors.Node) int64 { _, inUse := n.DBSize(); return inUse }))
	keys = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "keys_total",
		Help: "Total number of keys.",
	}, stat(func(n *actors.Node) int64 { return int64(n.Keys()) }))
	currentRev = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "current_revision",
		Help: "The current revision of store.",
	}, stat((*actors.Node).Revision))
	compactRev = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "compact_revision",
		Help: "The revision of the last compaction in store.",
	}, stat((*actors.Node).Compacted))
	// authRev replaces etcd's auth package's series, which that package
	// registers (at 0) as soon as it is linked in.
	authRev = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "etcd_debugging", Subsystem: "auth", Name: "revision",
		Help: "The current revision of auth store.",
	}, stat(func(n *actors.Node) int64 { return int64(n.AuthState().Revision()) }))
)

func serving() float64 {
	if scraped.Load() == nil {
		return 0
	}
	return 1
}

// stat makes the function of a GaugeFunc that reports what read says of
// the scraped node (0 before any node started). Each series reads only
// its own number: a scrape measures the data dir for the two size series
// alone.
func stat(read func(*actors.Node) int64) func() float64 {
	return func() float64 {
		n := scraped.Load()
		if n == nil {
			return 0
		}
		return float64(read(n))
	}
}

var registerOnce sync.Once

// startMetrics readies the metrics for a server about to serve: it
// registers the collectors (once per process; one that cannot be
// registered is logged and left out, as etcd does with its gRPC metrics),
// points the state series at node, records the quota as etcd reports
// --quota-backend-bytes (0 is the default; a negative one, no quota, as it
// is) and the member ID, and looks up the series of every method of gs,
// which gives them their zero values, as etcd's have. Every service is
// registered on gs by then.
func startMetrics(gs *grpc.Server, node *actors.Node, quota int64, logger *slog.Logger) {
	registerOnce.Do(func() {
		serverVersion.WithLabelValues(APIVersion).Set(1)
		goVersion.WithLabelValues(runtime.Version()).Set(1)
		cs := append(metrics.Collectors(), grpcCounters, grpcHandling, hasLeader, isLeader, quotaBytes, serverVersion, goVersion, serverID,
			dbSize, dbInUse, keys, currentRev, compactRev, authRev)
		if err := metrics.Register(prometheus.DefaultRegisterer, cs...); err != nil {
			logger.Warn("some metrics could not be registered; /metrics serves the others", "err", err)
		}
	})
	scraped.Store(node)
	if quota == 0 {
		quota = DefaultQuotaBackendBytes
	}
	quotaBytes.Set(float64(quota))
	serverID.WithLabelValues(strconv.FormatUint(node.Meta().MemberID, 16)).Set(1)
	addGRPCMethods(gs)
}

// metricsOptions are the server options that measure every call: gRPC's
// server series, and etcd's mvcc counters (grpcmetrics.go).
func metricsOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.UnaryInterceptor(measure), grpc.StreamInterceptor(countGRPCStream)}
}

// countMVCC counts a KV request's operations once it succeeded, as etcd's
// mvcc counts those of the transaction that ran it (etcd_mvcc_range_total,
// put_total, delete_total, txn_total, and the put bytes): each range, put
// and delete-range, those of a Txn's branches taken (nested ones included),
// and a txn for a request of more than one. Like etcd, it counts as a range
// the read of a key's previous value (prev_kv, ignore_value, ignore_lease)
// and a compaction's read of the current revision. etcd also reads, in a
// transaction of their own, a Txn's compares and its puts' previous values
// before it runs them (the first failing compare ends the reads, which
// the answer does not tell): those are not counted.
func countMVCC(req, resp any) {
	var ops mvccOps
	switch r := req.(type) {
	case *pb.RangeRequest:
		ops.ranges = 1
	case *pb.PutRequest:
		ops.put(r)
	case *pb.DeleteRangeRequest:
		ops.del(r)
	case *pb.CompactionRequest:
		ops.ranges = 1
	case *pb.TxnRequest:
		if t, ok := resp.(*pb.TxnResponse); ok {
			ops.txn(r, t)
		}
	default:
		return
	}
	metrics.MVCCRequest(ops.ranges, ops.puts, ops.deletes, ops.putBytes)
}

// mvccOps counts the operations of one request.
type mvccOps struct{ ranges, puts, deletes, putBytes int }

func (o *mvccOps) put(r *pb.PutRequest) {
	o.puts++
	o.putBytes += len(r.Key) + len(r.Value)
	if r.PrevKv || r.IgnoreValue || r.IgnoreLease {
		o.ranges++
	}
}

func (o *mvccOps) del(r *pb.DeleteRangeRequest) {
	o.deletes++
	if r.PrevKv {
		o.ranges++
	}
}

// txn counts the branch r took, which resp tells (Succeeded, and the
// responses of nested Txns).
func (o *mvccOps) txn(r *pb.TxnRequest, resp *pb.TxnResponse) {
	ops := r.Failure
	if resp.Succeeded {
		ops = r.Success
	}
	for i, op := range ops {
		switch op := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			o.ranges++
		case *pb.RequestOp_RequestPut:
			o.put(op.RequestPut)
		case *pb.RequestOp_RequestDeleteRange:
			o.del(op.RequestDeleteRange)
		case *pb.RequestOp_RequestTxn:
			if i < len(resp.Responses) {
				if nested := resp.Responses[i].GetResponseTxn(); nested != nil {
					o.txn(op.RequestTxn, nested)
				}
			}
		}
	}
}
