package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors"
)

var value = make([]byte, 256)

func startNode(b *testing.B, shards int) *actors.Node {
	b.Helper()
	n, err := actors.Start(actors.Config{Shards: shards, InMemory: true, OnFatal: func(who string, reason any) {
		panic(fmt.Sprintf("core actor %s failed: %v", who, reason))
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.Stop)
	return n
}

// runClients splits b.N operations over clients goroutines, each calling op
// with its client number and a running operation number.
func runClients(b *testing.B, clients int, op func(client int, i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
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

// BenchmarkPut is the single-key path: one shard, one Stamp per batch.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	for _, shards := range []int{1, 4, 16} {
		for _, clients := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("shards=%d/clients=%d", shards, clients), func(b *testing.B) {
				b.ReportAllocs()
				n := startNode(b, shards)
				runClients(b, clients, func(c int, i int64) error {
					_, err := n.Put(ctx, &pb.PutRequest{Key: fmt.Appendf(nil, "key/%d", i%10000), Value: value})
					return err
				})
			})
		}
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
				n := startNode(b, shards)
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
		n := startNode(b, shards)
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
