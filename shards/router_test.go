package shards

import (
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// keysOnShards finds n keys that hash to n different shards of r.
func keysOnShards(r Router, n int) []string {
	var keys []string
	seen := map[int]bool{}
	for i := 0; len(keys) < n; i++ {
		k := string(rune('a'+i%26)) + string(rune('a'+i/26))
		if s := r.Shard(k); !seen[s] {
			seen[s] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func TestRouterOwnerAndInvolved(t *testing.T) {
	r := NewRouter(4)
	k := keysOnShards(r, 2)
	a, b := k[0], k[1]
	put := func(key string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key)}}}
	}
	tests := []struct {
		name         string
		req          any
		wantOwner    int
		wantInvolved []int
	}{
		{"put", &pb.PutRequest{Key: []byte(a)}, r.Shard(a), []int{r.Shard(a)}},
		{"single-key delete", &pb.DeleteRangeRequest{Key: []byte(a)}, r.Shard(a), []int{r.Shard(a)}},
		{"range delete", &pb.DeleteRangeRequest{Key: []byte(a), RangeEnd: []byte("z")}, -1, []int{0, 1, 2, 3}},
		{"txn on one shard", &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte(a)}}, Success: []*pb.RequestOp{put(a)}}, r.Shard(a), []int{r.Shard(a)}},
		{"txn on two shards", &pb.TxnRequest{Success: []*pb.RequestOp{put(a)}, Failure: []*pb.RequestOp{put(b)}}, -1, sorted(r.Shard(a), r.Shard(b))},
		{"nested txn reaching another shard", &pb.TxnRequest{Success: []*pb.RequestOp{put(a), {Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: []*pb.RequestOp{put(b)}}}}}}, -1, sorted(r.Shard(a), r.Shard(b))},
		{"compare over a range", &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte(a), RangeEnd: []byte("\x00")}}, Success: []*pb.RequestOp{put(a)}}, -1, []int{0, 1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Owner(request(tt.req)); got != tt.wantOwner {
				t.Errorf("Owner = %d, want %d", got, tt.wantOwner)
			}
			if tt.wantOwner == -1 {
				if got := r.involved(request(tt.req)); !slices.Equal(got, tt.wantInvolved) {
					t.Errorf("Involved = %v, want %v", got, tt.wantInvolved)
				}
			}
		})
	}
}

func sorted(xs ...int) []int {
	slices.Sort(xs)
	return xs
}
