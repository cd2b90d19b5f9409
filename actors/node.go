package actors

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/cockroachdb/pebble/v2/vfs"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/auth"
	"github.com/metastore/metastore/actors/lease"
	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/actors/sequencer"
	"github.com/metastore/metastore/actors/watch"
	"github.com/metastore/metastore/shards"
	"github.com/metastore/metastore/snapshot"
	"github.com/metastore/metastore/storage"
)

// Config is what a Node is built from.
type Config struct {
	// Shards is the number of shard actors; 0 keeps the count recorded in
	// the data dir, or takes DefaultShards for a new one or in memory.
	Shards        int
	DefaultShards int
	// DataDir is where the node keeps its data, unless InMemory.
	DataDir string
	// InMemory keeps everything in memory: nothing survives a restart.
	InMemory bool
	// QuotaBytes is the data size that raises the NOSPACE alarm (0: none).
	QuotaBytes int64
	// MaxBatch caps the writes a shard stamps together (0: the default;
	// 1: no batching) — a knob for studying what batching buys.
	MaxBatch int
	// ValueCacheBytes bounds the cache of values read from the data dir
	// (0: none).
	ValueCacheBytes int64
	// Mailbox is how the core actors receive messages (zero: pinned
	// goroutines, ring queues) — a knob for studying the design.
	Mailbox Mailbox
	// FS is the file system the data dir lives on; nil means the operating
	// system's. Tests inject faults through pebble's errorfs.
	FS vfs.FS
	// MinFreeBytes is the free space the data dir's file system must keep:
	// below it the NOSPACE alarm is raised until space returns (0: the
	// default, storage.DefaultMinFreeBytes; negative: no check).
	MinFreeBytes int64
	// Logger receives the node's own lines and the actor system's warnings.
	Logger *slog.Logger
	// Limits bound the node's queues, batches and commit groups; a zero
	// field takes its default.
	Limits Limits
	// Watch configures the watch actors.
	Watch WatchConfig
	// Lease configures the lease actor.
	Lease LeaseConfig
	// Auth configures auth's tokens and password hashing.
	Auth AuthConfig
	// OnFatal is called when a core actor fails. The default logs and
	// exits the process: a shard restarted empty would serve wrong answers.
	OnFatal func(who string, reason any)
}

// Limits are the bounds of a node's queues, in writes and in bytes. A zero
// field takes the default named in its comment. They are fields rather than
// constants so that tests reach them with a handful of writes.
type Limits struct {
	// ShardQueue and ShardQueueBytes cap the writes waiting for one shard
	// (shards.DefaultMaxQueued, shards.DefaultMaxQueuedBytes); past them a
	// write is refused with "too many requests".
	ShardQueue, ShardQueueBytes int
	// BatchBytes caps the bytes of one shard batch
	// (shards.DefaultMaxBatchBytes).
	BatchBytes int
	// UnsettledBytes caps what a shard or the coordinator has written but
	// not yet seen durable before it stops planning
	// (shards.DefaultMaxUnsettledBytes).
	UnsettledBytes int
	// CoordinatorQueue and CoordinatorQueueBytes cap the cross-shard writes
	// waiting for the coordinator (shards.DefaultMaxCoordinated,
	// shards.DefaultMaxCoordinatedBytes).
	CoordinatorQueue, CoordinatorQueueBytes int
	// CommitQueue and GroupBytes cap the groups waiting for the committer
	// and the bytes one commit merges (sequencer.DefaultCommitQueue,
	// sequencer.DefaultMaxGroupBytes).
	CommitQueue, GroupBytes int
}

// WatchConfig says how many watch actors share the watch streams and how
// they buffer; a zero field takes its default.
type WatchConfig struct {
	// Actors is the number of watch actors (default: one per core). Each
	// stream's watchers live on one of them, streams spread round-robin.
	Actors int
	// RingBytes bounds the newest changes each keeps for catching watchers
	// up without a disk read (watch.DefaultRingBytes).
	RingBytes int
	// OutboxBytes bounds the event bytes queued for one stream before its
	// watchers are set aside (watch.DefaultOutboxBytes).
	OutboxBytes int
	// ProgressInterval is etcd's --watch-progress-notify-interval
	// (watch.DefaultProgressInterval).
	ProgressInterval time.Duration
}

// LeaseConfig tunes the lease actor; a zero field takes its default.
type LeaseConfig struct {
	// MinTTL is the shortest TTL granted, in seconds
	// (lease.DefaultMinTTL: etcd's with its default election timeout).
	MinTTL int64
	// RevokeRate bounds the expired leases revoked per second
	// (lease.DefaultRevokeRate, etcd's).
	RevokeRate int
}

// AuthConfig configures auth; a zero field takes its default.
type AuthConfig struct {
	// Token is etcd's --auth-token: "simple" (the default) or
	// "jwt,sign-method=…,pub-key=…,priv-key=…,ttl=…".
	Token string
	// TokenTTL is how long a simple token lives unused (etcd's
	// --auth-token-ttl; auth.DefaultTokenTTL).
	TokenTTL time.Duration
	// BcryptCost is the cost passwords are hashed at (etcd's
	// --bcrypt-cost); the rpc layer hashes them.
	BcryptCost int
}

// Node is one running MetaStore member: the shard actors, the coordinator
// and the sequencer, and the lock-free read path over what they publish.
type Node struct {
	system      *actor.ActorSystem
	router      shards.Router
	shardPIDs   []*actor.PID
	coordinator *actor.PID
	sequencer   *actor.PID
	revs        *sequencer.Revisions
	published   []atomic.Pointer[shards.View]
	read        *shards.ReadPath
	db          *storage.DB // nil in memory
	// dbClosed says db is closed; dbMu guards it, so that Stats, which
	// may run on any goroutine, never measures a closed data dir.
	dbMu        sync.RWMutex
	dbClosed    bool
	meta        storage.Meta
	dispatchers []*pinnedDispatcher
	watchers    []*actor.PID
	nextWatcher atomic.Uint64
	outboxBytes int
	leases      *actor.PID
	leaseTable  *lease.Table
	auth        *actor.PID
	authState   *auth.Published
	// hashes are the hashes of recent compactions (actors/snapshot.go).
	hashes snapshot.Hashes
	// stopping ends when Stop begins: it stops the scans of the history
	// (HashKV, Snapshot, compaction hashes), whose views would keep the
	// data dir from closing. hashing counts the compaction hashes running;
	// hashMu orders their start against stop, so that none starts once
	// Stop waits for them.
	stopping context.Context
	stop     context.CancelFunc
	hashMu   sync.Mutex
	hashing  sync.WaitGroup
	logger   *slog.Logger
}

// Start opens the data dir (unless in memory), rebuilds every shard's
// index from it, and spawns the actors.
func Start(cfg Config) (*Node, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	onFatal := cfg.OnFatal
	if onFatal == nil {
		onFatal = exitOnFatal(logger)
	}
	n := &Node{revs: &sequencer.Revisions{}, logger: logger}
	n.stopping, n.stop = context.WithCancel(context.Background())
	mailbox, err := cfg.Mailbox.props(&n.dispatchers)
	if err != nil {
		return nil, err
	}
	if cfg.Shards < 0 || (cfg.Shards == 0 && cfg.DefaultShards < 1) {
		return nil, fmt.Errorf("actors: shard count must be at least 1, got %d", cfg.Shards)
	}
	if cfg.InMemory {
		shardCount := cfg.Shards
		if shardCount == 0 {
			shardCount = cfg.DefaultShards
		}
		n.meta = storage.Meta{ClusterID: storage.NewID(), MemberID: storage.NewID(), Shards: shardCount, Rev: 1}
	} else {
		db, meta, err := storage.Open(cfg.DataDir, storage.Options{
			Shards: cfg.Shards, DefaultShards: cfg.DefaultShards, FS: cfg.FS, Logger: logger, MinFreeBytes: cfg.MinFreeBytes,
		})
		if err != nil {
			return nil, err
		}
		n.db, n.meta = db, meta
	}
	n.router = shards.NewRouter(n.meta.Shards)
	n.published = make([]atomic.Pointer[shards.View], n.meta.Shards)
	stores, err := n.load(cfg.ValueCacheBytes)
	if err != nil {
		n.closeDB()
		return nil, err
	}

	quiet := logger.WithGroup("actor")
	n.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(levelAtLeast{quiet.Handler(), slog.LevelWarn})
	}))
	guard := actor.WithGuardian(&fatalStrategy{onFatal: onFatal})
	root := n.system.Root
	if err := n.spawnWatchers(cfg, logger, guard); err != nil {
		return nil, n.abort(err)
	}
	seqCfg := sequencer.Config{Revisions: n.revs, Current: n.meta.Rev, Compacted: n.meta.Compact, NoSpace: n.meta.NoSpace, MemberID: n.meta.MemberID, Logger: logger,
		CommitQueue: cfg.Limits.CommitQueue, MaxGroupBytes: cfg.Limits.GroupBytes, Feed: n.watchers}
	var dropped func([]storage.KeyRev)
	if n.db != nil {
		seqCfg.Log, seqCfg.Quota = n.db, cfg.QuotaBytes
		dropped = func(recs []storage.KeyRev) {
			if err := n.db.Drop(recs); err != nil {
				// Not fatal: startup compacts leftovers again.
				logger.Warn("could not delete compacted records", "err", err)
			}
		}
	}
	if n.sequencer, err = root.SpawnNamed(sequencer.Props(seqCfg).Configure(append(mailbox("sequencer"), guard)...), "sequencer"); err != nil {
		return nil, n.abort(err)
	}
	stored := map[int64]int64{}
	if n.db != nil {
		if stored, err = n.db.Leases(); err != nil {
			return nil, n.abort(err)
		}
	}
	// The table holds every stored lease before a shard can plan a write.
	n.leaseTable = lease.NewTable(stored)
	leases := n.leaseTable.Exists
	// Every shard's first view is published before any actor starts, so
	// that the read path never meets a missing one.
	for i, store := range stores {
		n.published[i].Store(store.Snapshot())
	}
	for i, store := range stores {
		name := shards.ShardName(i)
		props := shards.NewShardProps(shards.ShardConfig{
			ID:                i,
			Store:             store,
			Published:         &n.published[i],
			Sequencer:         n.sequencer,
			Revisions:         n.revs,
			Leases:            leases,
			Dropped:           dropped,
			MaxBatch:          cfg.MaxBatch,
			MaxQueued:         cfg.Limits.ShardQueue,
			MaxQueuedBytes:    cfg.Limits.ShardQueueBytes,
			MaxBatchBytes:     cfg.Limits.BatchBytes,
			MaxUnsettledBytes: cfg.Limits.UnsettledBytes,
		}).Configure(append(mailbox(name), guard)...)
		pid, err := root.SpawnNamed(props, name)
		if err != nil {
			return nil, n.abort(err)
		}
		n.shardPIDs = append(n.shardPIDs, pid)
	}
	n.coordinator, err = root.SpawnNamed(shards.NewCoordinatorProps(shards.CoordinatorConfig{
		Router:            n.router,
		Shards:            n.shardPIDs,
		Sequencer:         n.sequencer,
		Revisions:         n.revs,
		Leases:            leases,
		MaxQueued:         cfg.Limits.CoordinatorQueue,
		MaxQueuedBytes:    cfg.Limits.CoordinatorQueueBytes,
		MaxUnsettledBytes: cfg.Limits.UnsettledBytes,
	}).Configure(append(mailbox("coordinator"), guard)...), "coordinator")
	if err != nil {
		return nil, n.abort(err)
	}
	n.leases, err = root.SpawnNamed(lease.Props(lease.Config{
		Table: n.leaseTable, Leases: stored, Sequencer: n.sequencer, Coordinator: n.coordinator,
		MemberID: n.meta.MemberID, MinTTL: cfg.Lease.MinTTL, RevokeRate: cfg.Lease.RevokeRate, Log: n.revs, Logger: logger,
	}).Configure(append(mailbox("lease"), guard)...), "lease")
	if err != nil {
		return nil, n.abort(err)
	}
	// The auth actor is off the request path (requests read what it
	// publishes): protoactor-go's default mailbox and dispatcher, as the
	// watch actors.
	if err := n.spawnAuth(cfg.Auth, append(instrumented("auth", actor.Unbounded, watchDispatcher), guard)); err != nil {
		return nil, n.abort(err)
	}
	n.read = shards.NewReadPath(n.router, n.published, n.revs)
	return n, nil
}

// spawnAuth rebuilds the auth state from the data dir and spawns the auth
// actor, which logs its changes through the sequencer.
func (n *Node) spawnAuth(cfg AuthConfig, opts []actor.PropsOption) error {
	var stored map[string][]byte
	if n.db != nil {
		var err error
		if stored, err = n.db.Auth(); err != nil {
			return err
		}
	}
	p, err := auth.NewPublished(stored, cfg.Token, cfg.TokenTTL)
	if err != nil {
		return err
	}
	n.authState = p
	n.auth, err = n.system.Root.SpawnNamed(auth.Props(auth.Config{Published: p, Sequencer: n.sequencer}).Configure(opts...), "auth")
	return err
}

// watchDispatcher is protoactor-go's default dispatcher, which the watch
// actors share.
var watchDispatcher = actor.NewDefaultDispatcher(dispatchThroughput)

// spawnWatchers spawns the watch actors, which the sequencer feeds. They
// use protoactor-go's default mailbox and dispatcher (with metrics): they
// are not on the write path, and a stream's requests reach them from its
// gRPC goroutine.
func (n *Node) spawnWatchers(cfg Config, logger *slog.Logger, guard actor.PropsOption) error {
	count := cfg.Watch.Actors
	if count <= 0 {
		count = runtime.GOMAXPROCS(0)
	}
	n.outboxBytes = cfg.Watch.OutboxBytes
	wcfg := watch.Config{
		Revisions:        n.revs,
		Current:          n.meta.Rev,
		RingBytes:        cfg.Watch.RingBytes,
		ProgressInterval: cfg.Watch.ProgressInterval,
		Logger:           logger,
	}
	if n.db != nil {
		wcfg.History = n.db
	}
	for i := range count {
		wcfg.Name = fmt.Sprintf("watch-%d", i)
		props := watch.Props(wcfg).Configure(append(instrumented(wcfg.Name, actor.Unbounded, watchDispatcher), guard)...)
		pid, err := n.system.Root.SpawnNamed(props, wcfg.Name)
		if err != nil {
			return err
		}
		n.watchers = append(n.watchers, pid)
	}
	return nil
}

// Watch opens a watch stream on one of the watch actors, taken in turn.
func (n *Node) Watch() *watch.Stream {
	i := n.nextWatcher.Add(1) % uint64(len(n.watchers))
	return watch.Open(n.system.Root, n.watchers[i], n.outboxBytes)
}

// load rebuilds each shard's store from the data dir, then applies the
// recorded compaction to it (records a crash left behind after a
// compaction are dropped again).
func (n *Node) load(valueCacheBytes int64) ([]*shards.Store, error) {
	stores := make([]*shards.Store, n.meta.Shards)
	var vals *shards.Values
	if n.db != nil {
		vals = shards.NewValues(n.db, valueCacheBytes)
	}
	for i := range stores {
		stores[i] = shards.NewStore(vals)
	}
	if n.db == nil {
		return stores, nil
	}
	err := n.db.Load(func(key string, rec storage.Record) error {
		stores[n.router.Shard(key)].Restore(key, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Checked through: only now may anything in the dir change.
	if err := n.db.Writable(); err != nil {
		return nil, err
	}
	if n.meta.Compact > 0 {
		for _, s := range stores {
			if err := n.db.Drop(s.Compact(n.meta.Compact)); err != nil {
				return nil, err
			}
		}
	}
	return stores, nil
}

func (n *Node) abort(err error) error {
	n.stopActors()
	n.closeDB()
	return err
}

func (n *Node) closeDispatchers() {
	for _, d := range n.dispatchers {
		d.close()
	}
}

// closeDB closes the data dir. A failure to close is logged: the node
// is going away either way, but its data dir may stay locked.
func (n *Node) closeDB() {
	if n.db != nil {
		n.dbMu.Lock()
		defer n.dbMu.Unlock()
		if err := n.db.Close(); err != nil {
			n.logger.Error("failed to close the data dir", "err", err)
		}
		n.dbClosed = true
	}
}

// Meta returns what the node was started with: its IDs and shard count.
func (n *Node) Meta() storage.Meta { return n.meta }

// NoSpace reports whether the NOSPACE alarm is raised.
func (n *Node) NoSpace() bool { return n.revs.NoSpace() }

// Failure is the error the data dir's log failed with, nil while it works:
// once it failed, writes are refused until a restart (reads still work).
func (n *Node) Failure() error { return n.revs.Failure() }

// Revision returns the visible revision.
func (n *Node) Revision() int64 { return n.revs.Visible() }

// Range answers r at the visible revision (or r.Revision) from the shards'
// published views, on the caller's goroutine and without a message: it
// sees every write acknowledged before it began. It fails with
// msg.ErrCompacted or msg.ErrFutureRev for a revision out of bounds.
func (n *Node) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return n.read.Range(r)
}

// Put runs r through the shard that owns its key and returns once its
// revision is visible, hence durable. It fails with one of msg's errors
// (too many requests, lease not found, key not found for ignore_value or
// ignore_lease, the log failed). If ctx ends first it returns ctx.Err(),
// and the put may still be applied, as with etcd's timeouts.
func (n *Node) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	resp, err := n.write(ctx, msg.Request{Put: r})
	return resp.Put, err
}

// DeleteRange runs r: through the shard that owns its key, or, for a range,
// through the coordinator, atomically across shards. Answers and ctx as
// for Put; a delete that deletes nothing takes no revision.
func (n *Node) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp, err := n.write(ctx, msg.Request{Delete: r})
	return resp.Delete, err
}

// Txn runs r: a read-only one on the read path, as Range; any other
// through the shard that owns all its keys, or the coordinator, with every
// branch decided on one state and all its writes at one revision. Answers
// and ctx as for Put; a Txn whose branch writes nothing takes no revision.
func (n *Node) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if shards.IsTxnReadOnly(r) {
		return n.read.Txn(r)
	}
	resp, err := n.write(ctx, msg.Request{Txn: r})
	return resp.Txn, err
}

// write sends req to the actor that runs it and waits for the answer. If
// ctx ends first the write may still apply: ctx.Err() says only that its
// outcome is unknown, as etcd's timeouts do. After the log failed every
// write is refused, and one in flight is answered with the failure (it
// may have reached the disk, or not; it was never acknowledged).
func (n *Node) write(ctx context.Context, req msg.Request) (msg.Response, error) {
	if err := n.revs.Failure(); err != nil {
		return msg.Response{}, err
	}
	reply := make(chan msg.Result, 1)
	to := n.coordinator
	if owner := n.router.Owner(req); owner >= 0 {
		to = n.shardPIDs[owner]
	}
	n.system.Root.Send(to, &msg.Write{Req: req, Reply: reply})
	select {
	case r := <-reply:
		return r.Resp, r.Err
	case <-ctx.Done():
		return msg.Response{}, ctx.Err()
	case <-n.revs.Failed():
		select {
		case r := <-reply: // answered as the log failed
			return r.Resp, r.Err
		default:
			return msg.Response{}, n.revs.Failure()
		}
	}
}

// LeaseGrant grants a lease of ttl seconds (at least the minimum TTL) with
// ID id, or one the node picks if id is 0, once it is durable. It fails
// with msg.ErrLeaseExists or msg.ErrLeaseTTLTooLarge.
func (n *Node) LeaseGrant(ctx context.Context, id, ttl int64) (lease.Granted, error) {
	reply := make(chan lease.Granted, 1)
	n.system.Root.Send(n.leases, &lease.Grant{ID: id, TTL: ttl, Reply: reply})
	select {
	case g := <-reply:
		return g, g.Err
	case <-ctx.Done():
		return lease.Granted{}, ctx.Err()
	}
}

// LeaseRevoke revokes lease id: its keys are deleted at one revision (none
// if it has none) and it is gone once this returns. It fails with
// msg.ErrLeaseNotFound.
func (n *Node) LeaseRevoke(ctx context.Context, id int64) (*pb.LeaseRevokeResponse, error) {
	if err := n.revs.Failure(); err != nil {
		return nil, err
	}
	reply := make(chan msg.Result, 1)
	n.system.Root.Send(n.leases, &lease.Revoke{ID: id, Reply: reply})
	select {
	case r := <-reply:
		return r.Resp.Revoke, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// LeaseKeepAlive renews lease id and returns its TTL, 0 if it does not
// exist (or expired, or is being revoked). It touches no disk.
func (n *Node) LeaseKeepAlive(ctx context.Context, id int64) (int64, error) {
	reply := make(chan int64, 1)
	n.system.Root.Send(n.leases, &lease.KeepAlive{ID: id, Reply: reply})
	select {
	case ttl := <-reply:
		return ttl, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// LeaseTimeToLive returns lease id's remaining and granted TTL and, with
// keys, the keys attached to it (from every shard, in key order).
func (n *Node) LeaseTimeToLive(ctx context.Context, id int64, keys bool) (lease.Remaining, []string, error) {
	reply := make(chan lease.Remaining, 1)
	n.system.Root.Send(n.leases, &lease.TimeToLive{ID: id, Reply: reply})
	var r lease.Remaining
	select {
	case r = <-reply:
	case <-ctx.Done():
		return r, nil, ctx.Err()
	}
	if !r.Found || !keys {
		return r, nil, nil
	}
	replies := make(chan []string, len(n.shardPIDs))
	for _, pid := range n.shardPIDs {
		n.system.Root.Send(pid, &msg.LeaseKeys{ID: id, Reply: replies})
	}
	var all []string
	for range n.shardPIDs {
		select {
		case ks := <-replies:
			all = append(all, ks...)
		case <-ctx.Done():
			return r, nil, ctx.Err()
		}
	}
	slices.Sort(all)
	return r, all, nil
}

// LeaseLeases returns the IDs of every lease.
func (n *Node) LeaseLeases(ctx context.Context) ([]int64, error) {
	reply := make(chan []int64, 1)
	n.system.Root.Send(n.leases, &lease.List{Reply: reply})
	select {
	case ids := <-reply:
		return ids, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Compact moves the compact revision to rev and has every shard drop its
// history below it; with physical it returns only once they all have. It
// returns the current revision.
func (n *Node) Compact(ctx context.Context, rev int64, physical bool) (int64, error) {
	reply := make(chan msg.CompactResult, 1)
	n.system.Root.Send(n.sequencer, &msg.Compact{Rev: rev, Reply: reply})
	// NB: no giving up here even if ctx ends: once the sequencer has
	// recorded the compaction, the shards must be told, or their history
	// would outlive it until the next restart. The answer takes one sync.
	// The sequencer answers every compaction, one caught by a failed
	// commit too (with the failure).
	res := <-reply
	if res.Err != nil {
		return res.Current, res.Err
	}
	n.hashCompaction(res.Prev, rev)
	dones := make([]chan struct{}, len(n.shardPIDs))
	for i, pid := range n.shardPIDs {
		dones[i] = make(chan struct{})
		n.system.Root.Send(pid, &msg.CompactShard{Rev: rev, Done: dones[i]})
	}
	if physical {
		for _, d := range dones {
			select {
			case <-d:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	return res.Current, nil
}

// Stop drains and stops the actors: the coordinator and the shards first
// (their queued writes still reach the sequencer), the sequencer last. It
// first ends the scans of the history in flight, and closes the data dir
// once the compaction hashes are done.
func (n *Node) Stop() {
	n.hashMu.Lock()
	n.stop()
	n.hashMu.Unlock()
	n.stopActors()
	n.hashing.Wait()
	n.closeDB()
}

// stopActors stops whichever core actors were spawned, in dependency order,
// then the actor system and the pinned goroutines.
func (n *Node) stopActors() {
	if n.auth != nil {
		_ = n.system.Root.PoisonFuture(n.auth).Wait()
	}
	if n.leases != nil {
		_ = n.system.Root.PoisonFuture(n.leases).Wait()
	}
	var futures []*actor.Future
	if n.coordinator != nil {
		futures = append(futures, n.system.Root.PoisonFuture(n.coordinator))
	}
	for _, pid := range n.shardPIDs {
		futures = append(futures, n.system.Root.PoisonFuture(pid))
	}
	for _, f := range futures {
		_ = f.Wait()
	}
	if n.sequencer != nil {
		_ = n.system.Root.PoisonFuture(n.sequencer).Wait()
	}
	for _, pid := range n.watchers {
		_ = n.system.Root.PoisonFuture(pid).Wait()
	}
	n.system.Shutdown()
	n.closeDispatchers()
}
