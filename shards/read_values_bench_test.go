package shards

import (
	"fmt"
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/storage"
)

// BenchmarkRangeDurable answers large ranges from a durable store whose
// values are all in the data dir, as after a restart: every key, and the
// last ten keys (which reads ten values). Keys are written in random order,
// 100 a revision, so that key order is not the data dir's order.
func BenchmarkRangeDurable(b *testing.B) {
	const keys, perRev = 100000, 100
	db, _, err := storage.Open(b.TempDir(), storage.Options{DefaultShards: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	value := make([]byte, 256)
	vals := NewValues(db, 0)
	s := NewStore(vals)
	rev := int64(1)
	order := rand.New(rand.NewPCG(1, 1)).Perm(keys)
	for len(order) > 0 {
		rev++
		var muts []storage.Mutation
		for _, i := range order[:perRev] {
			key := fmt.Sprintf("key/%08d", i)
			s.put(key, value, 0, rev)
			muts = append(muts, storage.Mutation{Key: key, Value: value, Create: rev, Version: 1})
		}
		order = order[perRev:]
		if err := db.Commit([]storage.Entry{{Rev: rev, Base: rev, Muts: muts}}, nil, nil, 0); err != nil {
			b.Fatal(err)
		}
	}
	s.settle(rev)
	v := s.Snapshot()
	for _, q := range []struct {
		name string
		req  *pb.RangeRequest
	}{
		{"all", &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}},
		{"descend-limit-10", &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, SortOrder: pb.RangeRequest_DESCEND, Limit: 10}},
	} {
		b.Run(fmt.Sprintf("keys=%d/%s", keys, q.name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := evalRange(v, q.req, latest)
				if err != nil || resp.Count != keys {
					b.Fatalf("%v, %v", resp.Count, err)
				}
			}
		})
	}
}
