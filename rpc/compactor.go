package rpc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3compactor"
	"go.etcd.io/etcd/server/v3/storage/mvcc"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/actors/msg"
)

// autoCompactionRetention checks --auto-compaction-mode and parses
// --auto-compaction-retention as etcd does (its embed config), with its
// messages: a bare number is hours for periodic and a revision count for
// revision; otherwise a duration such as "30m" (for revision too, where
// etcd then counts its nanoseconds as revisions). 0 (or "") turns
// auto-compaction off; a negative duration, which etcd takes and then
// compacts without pause, is refused. Unlike etcd, which refuses an empty
// mode whatever the retention, an empty mode with auto-compaction off is
// taken, so that a zero Config starts; with a retention it is refused as
// etcd refuses it.
func autoCompactionRetention(mode, retention string) (time.Duration, error) {
	switch mode {
	case v3compactor.ModePeriodic, v3compactor.ModeRevision:
	case "":
		if retention == "" || retention == "0" {
			return 0, nil
		}
		return 0, errors.New("undefined auto-compaction-mode")
	default:
		return 0, fmt.Errorf("unknown auto-compaction-mode %q", mode)
	}
	if retention == "" {
		retention = "0"
	}
	if n, err := strconv.Atoi(retention); err == nil && n >= 0 {
		if mode == v3compactor.ModeRevision {
			return time.Duration(n), nil
		}
		return time.Duration(n) * time.Hour, nil
	}
	d, err := time.ParseDuration(retention)
	if err != nil {
		return 0, fmt.Errorf("error parsing CompactionRetention: %w", err)
	}
	if d < 0 {
		return 0, fmt.Errorf("error parsing CompactionRetention: negative retention %q", retention)
	}
	return d, nil
}

// compactor is etcd's auto-compactor (v3compactor, run as etcd runs it)
// over a node: the node's visible revision is its revision, and its
// compactions are the node's.
type compactor struct {
	run  v3compactor.Compactor
	node *actors.Node
	// mu guards stopped; running counts the compactions under way, which
	// stop waits for (the compactor's Stop does not), so that none
	// reaches a node that has stopped.
	mu      sync.Mutex
	stopped bool
	running sync.WaitGroup
}

// startCompactor starts the auto-compactor cfg asks for, or returns nil if
// its retention is 0.
func startCompactor(cfg Config, node *actors.Node) (*compactor, error) {
	retention, err := autoCompactionRetention(cfg.AutoCompactionMode, cfg.AutoCompactionRetention)
	if err != nil || retention == 0 {
		return nil, err
	}
	c := &compactor{node: node}
	if c.run, err = v3compactor.New(zapToSlog(cfg.Logger), cfg.AutoCompactionMode, retention, c, c); err != nil {
		return nil, err
	}
	c.run.Run()
	cfg.Logger.Info("auto-compaction on", "mode", cfg.AutoCompactionMode, "retention", cfg.AutoCompactionRetention)
	return c, nil
}

// Rev is the revision the compactor keeps its retention behind.
func (c *compactor) Rev() int64 { return c.node.Revision() }

// Compact compacts the node at r.Revision. A revision compacted already is
// mvcc.ErrCompacted, which the compactor takes as done, as from etcd.
func (c *compactor) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil, context.Canceled
	}
	c.running.Add(1)
	c.mu.Unlock()
	defer c.running.Done()
	current, err := c.node.Compact(ctx, r.Revision, r.Physical)
	if errors.Is(err, msg.ErrCompacted) {
		return nil, mvcc.ErrCompacted
	}
	if err != nil {
		return nil, err
	}
	return &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: current}}, nil
}

// stop stops the compactor and waits for a compaction under way.
func (c *compactor) stop() {
	if c == nil {
		return
	}
	c.run.Stop()
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.running.Wait()
}
