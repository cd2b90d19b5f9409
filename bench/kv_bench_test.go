package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors"
)

var value = make([]byte, 256)

// startNode starts a node in memory, or with a data dir in a temp dir.
func startNode(b *testing.B, shards int, durable bool) *actors.Node {
	b.Helper()
	return startNodeWith(b, actors.Config{Shards: shards}, durable)
}

// startNodeWith is startNode with more of the config given.
func startNodeWith(b *testing.B, cfg actors.Config, durable bool) *actors.Node {
	b.Helper()
	cfg.InMemory = !durable
	cfg.OnFatal = func(who string, reason any) {
		panic(fmt.Sprintf("core actor %s failed: %v", who, reason))
	}
	if durable {
		cfg.DataDir = b.TempDir()
	}
	n, err := actors.Start(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.Stop)
	return n
}

// runClients splits b.N operations over clients goroutines, each calling op
// with its client number and a running operation number. Besides time per
// operation it reports the process's CPU time per operation (cpu-µs/op):
// the clients here are goroutines calling the node directly, so nearly all
// of it is the server's.
func runClients(b *testing.B, clients int, op func(client int, i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu := processCPU(b)
	defer func() { b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/op") }()
	b.ResetTimer()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := op(c, i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPut is the single-key path: one shard, one Stamp per batch.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	for _, shards := range []int{1, 4, 16} {
		for _, clients := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("shards=%d/clients=%d", shards, clients), func(b *testing.B) {
				b.ReportAllocs()
				n := startNode(b, shards, false)
				runClients(b, clients, func(c int, i int64) error {
					_, err := n.Put(ctx, &pb.PutRequest{Key: fmt.Appendf(nil, "key/%d", i%10000), Value: value})
					return err
				})
			})
		}
	}
}

// BenchmarkPutDurable is BenchmarkPut with a data dir: every put waits
// for its commit group's sync. Time per operation is the disk's; cpu-µs/op
// is what durability costs in CPU.
func BenchmarkPutDurable(b *testing.B) {
	ctx := context.Background()
	for _, clients := range []int{16, 128} {
		b.Run(fmt.Sprintf("shards=4/clients=%d", clients), func(b *testing.B) {
			b.ReportAllocs()
			n := startNode(b, 4, true)
			runClients(b, clients, func(c int, i int64) error {
				_, err := n.Put(ctx, &pb.PutRequest{Key: fmt.Appendf(nil, "key/%d", i%10000), Value: value})
				return err
			})
		})
	}
}

// BenchmarkPutMailbox is BenchmarkPut at 4 shards and 128 clients on every
// dispatcher and queue of the Mailbox knob.
func BenchmarkPutMailbox(b *testing.B) {
	ctx := context.Background()
	for _, m := range actors.Mailboxes {
		b.Run(fmt.Sprintf("dispatcher=%s/queue=%s", m.Dispatcher, m.Queue), func(b *testing.B) {
			b.ReportAllocs()
			n := startNodeWith(b, actors.Config{Shards: 4, Mailbox: m}, false)
			runClients(b, 128, func(c int, i int64) error {
				_, err := n.Put(ctx, &pb.PutRequest{Key: fmt.Appendf(nil, "key/%d", i%10000), Value: value})
				return err
			})
		})
	}
}

// BenchmarkCrossShardTxn is the coordinator path: a Txn writing four keys
// that hash to different shards, all stamped with one revision.
func BenchmarkCrossShardTxn(b *testing.B) {
	ctx := context.Background()
	for _, shards := range []int{4, 16} {
		for _, clients := range []int{1, 16} {
			b.Run(fmt.Sprintf("shards=%d/clients=%d", shards, clients), func(b *testing.B) {
				b.ReportAllocs()
				n := startNode(b, shards, false)
				runClients(b, clients, func(c int, i int64) error {
					ops := make([]*pb.RequestOp, 4)
					for k := range ops {
						ops[k] = &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{
							Key: fmt.Appendf(nil, "txn/%d/%d", c, k), Value: value,
						}}}
					}
					_, err := n.Txn(ctx, &pb.TxnRequest{Success: ops})
					return err
				})
			})
		}
	}
}

// BenchmarkRange is the lock-free read path: a single-key get and a
// 100-key prefix range merged across shards.
func BenchmarkRange(b *testing.B) {
	ctx := context.Background()
	for _, shards := range []int{1, 4, 16} {
		n := startNode(b, shards, false)
		for i := range 1000 {
			if _, err := n.Put(ctx, &pb.PutRequest{Key: fmt.Appendf(nil, "r/%02d/%d", i%10, i), Value: value}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("shards=%d/get", shards), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := n.Range(&pb.RangeRequest{Key: []byte("r/03/503")}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("shards=%d/prefix100", shards), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := n.Range(&pb.RangeRequest{Key: []byte("r/03/"), RangeEnd: []byte("r/030")})
				if err != nil || len(resp.Kvs) != 100 {
					b.Fatalf("range: %d kvs, %v", len(resp.GetKvs()), err)
				}
			}
		})
	}
}
