package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The write path: shard batches, the coordinator's cross-shard writes, the
// sequencer's commits and how far visibility trails stamping. Each is
// updated once per batch, write or commit, never once per message.
var (
	shardBatch = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "metastore_shard_batch_writes",
		Help:    "Writes a shard planned and stamped as one batch.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 to 512, the default --max-batch
	}, []string{"actor"})
	writeQueue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "metastore_write_queue_writes",
		Help: "Writes waiting in a shard's or the coordinator's own queue (taken from the mailbox, not yet planned), when it last started one.",
	}, []string{"actor"})
	coordinatorWrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "metastore_coordinator_writes_total",
		Help: "Cross-shard writes (range deletes, Txns over several shards, lease revokes) the coordinator started.",
	})
	coordinatorShards = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "metastore_coordinator_write_shards",
		Help:    "Shards frozen for one cross-shard write.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 7), // 1 to 64
	})
	coordinatorQueue = writeQueue.WithLabelValues("coordinator")

	commitWrites = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "metastore_sequencer_commit_writes",
		Help:    "Writes (revisions) made durable by one storage commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 to 8192
	})
	commitBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "metastore_sequencer_commit_bytes",
		Help:    "Bytes of records made durable by one storage commit.",
		Buckets: prometheus.ExponentialBuckets(256, 4, 10), // 256 B to 64 MiB
	})
	commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "metastore_sequencer_commit_duration_seconds",
		Help:    "Time one storage commit took to write and sync its group.",
		Buckets: prometheus.ExponentialBuckets(16e-6, 2, 18), // 16 µs to 2 s
	})
	commitQueue = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "metastore_sequencer_commit_queue_groups",
		Help: "Stamped groups waiting for the committer, when the sequencer last handed one over.",
	})
	revisionLag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "metastore_sequencer_revision_lag",
		Help: "Revisions stamped but not yet visible (installed and durable), when the sequencer last published.",
	})
)

// Shard reports one shard's batches. Its methods are called by the shard
// alone.
type Shard struct {
	batch prometheus.Observer
	queue prometheus.Gauge
}

// ShardNamed returns the reporter of the shard actor named name.
func ShardNamed(name string) *Shard {
	return &Shard{batch: shardBatch.WithLabelValues(name), queue: writeQueue.WithLabelValues(name)}
}

// Batch records a batch of writes planned, with queued writes left
// waiting behind it.
func (s *Shard) Batch(writes, queued int) {
	s.batch.Observe(float64(writes))
	s.queue.Set(float64(queued))
}

// CoordinatorWrite records a cross-shard write started over shards shards,
// with queued writes left waiting behind it.
func CoordinatorWrite(shards, queued int) {
	coordinatorWrites.Inc()
	coordinatorShards.Observe(float64(shards))
	coordinatorQueue.Set(float64(queued))
}

// CommitQueue records the groups waiting for the committer.
func CommitQueue(groups int) { commitQueue.Set(float64(groups)) }

// RevisionLag records how many stamped revisions are not yet visible.
func RevisionLag(revs int64) { revisionLag.Set(float64(revs)) }

// Commit records one storage commit: the writes (revisions) and bytes of
// records it made durable, and how long it took.
func Commit(writes, bytes int, took time.Duration) {
	s := took.Seconds()
	commitWrites.Observe(float64(writes))
	commitBytes.Observe(float64(bytes))
	commitTime.Observe(s)
	walFsync.Observe(s)
	backendCommit.Observe(s)
}
