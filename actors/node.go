package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/sequencer"
	"github.com/metastore/metastore/shards"
)

// Config is what a Node is built from.
type Config struct {
	// Shards is the number of shard actors (at least 1).
	Shards int
	// Logger receives the actor system's own lines (warnings and worse).
	Logger *slog.Logger
	// OnFatal is called when a core actor fails. The default logs and
	// exits the process: a shard restarted empty would serve wrong answers.
	OnFatal func(who string, reason any)
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
}

// Start spawns the actors of a new, empty node.
func Start(cfg Config) (*Node, error) {
	if cfg.Shards < 1 {
		return nil, fmt.Errorf("actors: shard count must be at least 1, got %d", cfg.Shards)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	onFatal := cfg.OnFatal
	if onFatal == nil {
		onFatal = exitOnFatal(logger)
	}
	quiet := logger.WithGroup("actor")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(levelAtLeast{quiet.Handler(), slog.LevelWarn})
	}))
	guard := actor.WithGuardian(&fatalStrategy{onFatal: onFatal})

	n := &Node{
		system:    system,
		router:    shards.NewRouter(cfg.Shards),
		revs:      &sequencer.Revisions{},
		published: make([]atomic.Pointer[shards.View], cfg.Shards),
	}
	root := system.Root
	var err error
	// An empty etcd store is at revision 1; its first write gets 2.
	if n.sequencer, err = root.SpawnNamed(sequencer.Props(n.revs, 1, 0).Configure(guard), "sequencer"); err != nil {
		return nil, err
	}
	leases := func(int64) bool { return false }
	for i := range cfg.Shards {
		props := shards.NewShardProps(shards.ShardConfig{
			ID:        i,
			Store:     shards.NewStore(),
			Published: &n.published[i],
			Sequencer: n.sequencer,
			Revisions: n.revs,
			Leases:    leases,
		}).Configure(guard)
		pid, err := root.SpawnNamed(props, fmt.Sprintf("shard-%d", i))
		if err != nil {
			return nil, err
		}
		n.shardPIDs = append(n.shardPIDs, pid)
	}
	n.coordinator, err = root.SpawnNamed(shards.NewCoordinatorProps(shards.CoordinatorConfig{
		Router:    n.router,
		Shards:    n.shardPIDs,
		Sequencer: n.sequencer,
		Revisions: n.revs,
		Leases:    leases,
	}).Configure(guard), "coordinator")
	if err != nil {
		return nil, err
	}
	// A shard publishes its first view when it starts; wait for all of them
	// so that the read path never sees a nil view.
	for i := range n.published {
		for n.published[i].Load() == nil {
			time.Sleep(time.Millisecond)
		}
	}
	n.read = shards.NewReadPath(n.router, n.published, n.revs)
	return n, nil
}

// Shards returns the shard count.
func (n *Node) Shards() int { return n.router.Shards() }

// Revision returns the visible revision.
func (n *Node) Revision() int64 { return n.revs.Visible() }

// Range answers a range from the published views.
func (n *Node) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return n.read.Range(r)
}

// Put runs a put.
func (n *Node) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	resp, err := n.write(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*pb.PutResponse), nil
}

// DeleteRange runs a delete.
func (n *Node) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp, err := n.write(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*pb.DeleteRangeResponse), nil
}

// Txn runs a Txn: a read-only one on the read path, any other through the
// shard that owns all its keys, or the coordinator.
func (n *Node) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if shards.IsTxnReadOnly(r) {
		return n.read.Txn(r)
	}
	resp, err := n.write(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.(*pb.TxnResponse), nil
}

func (n *Node) write(ctx context.Context, req any) (any, error) {
	reply := make(chan shards.Result, 1)
	to := n.coordinator
	if owner := n.router.Owner(req); owner >= 0 {
		to = n.shardPIDs[owner]
	}
	n.system.Root.Send(to, &shards.Write{Req: req, Reply: reply})
	select {
	case r := <-reply:
		return r.Resp, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Compact moves the compact revision to rev and has every shard drop its
// history below it; with physical it returns only once they all have. It
// returns the current revision.
func (n *Node) Compact(ctx context.Context, rev int64, physical bool) (int64, error) {
	reply := make(chan sequencer.CompactResult, 1)
	n.system.Root.Send(n.sequencer, &sequencer.Compact{Rev: rev, Reply: reply})
	var res sequencer.CompactResult
	select {
	case res = <-reply:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if res.Err != nil {
		return res.Current, res.Err
	}
	dones := make([]chan struct{}, len(n.shardPIDs))
	for i, pid := range n.shardPIDs {
		dones[i] = make(chan struct{})
		n.system.Root.Send(pid, &shards.CompactShard{Rev: rev, Done: dones[i]})
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
// (their queued writes still reach the sequencer), the sequencer last.
func (n *Node) Stop() {
	var futures []*actor.Future
	futures = append(futures, n.system.Root.PoisonFuture(n.coordinator))
	for _, pid := range n.shardPIDs {
		futures = append(futures, n.system.Root.PoisonFuture(pid))
	}
	for _, f := range futures {
		_ = f.Wait()
	}
	_ = n.system.Root.PoisonFuture(n.sequencer).Wait()
	n.system.Shutdown()
}
