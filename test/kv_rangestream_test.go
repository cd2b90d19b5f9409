package test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// rangeStream runs a raw RangeStream and returns its chunks, or the error
// that ended the stream.
func (tg *Target) rangeStream(t testing.TB, r *pb.RangeRequest) ([]*pb.RangeResponse, error) {
	t.Helper()
	stream, err := tg.KV.RangeStream(reqCtx(t), r)
	if err != nil {
		return nil, err
	}
	var chunks []*pb.RangeResponse
	// A stream has at most one chunk per key plus the final one; the bound
	// keeps a misbehaving server from looping the test forever.
	for range 10000 {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return chunks, nil
		}
		if err != nil {
			return nil, err
		}
		chunks = append(chunks, resp.RangeResponse)
	}
	t.Fatal("RangeStream sent more than 10000 chunks")
	return nil, nil
}

// mergeChunks merges stream chunks the way the proto comment of
// RangeStreamResponse specifies: proto.Merge of all of them in order.
func mergeChunks(chunks []*pb.RangeResponse) *pb.RangeResponse {
	out := &pb.RangeResponse{}
	for _, c := range chunks {
		proto.Merge(out, c)
	}
	return out
}

func TestKVRangeStream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		// 45 keys: several of etcd's chunks (it starts at 10 keys a chunk).
		const n = 45
		for i := range n {
			tg.put(t, fmt.Sprintf("%sk%02d", p, i), fmt.Sprintf("value-%d", i))
		}
		histRev := tg.currentRev(t)
		tg.put(t, p+"k00", "rewritten")
		tg.put(t, p+"k44", "rewritten")
		if _, err := tg.Client.Delete(reqCtx(t), p+"k10", clientv3.WithRange(p+"k20")); err != nil {
			t.Fatal(err)
		}
		end := prefixEnd(p)
		tests := []struct {
			name string
			req  *pb.RangeRequest
		}{
			{"all", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end)}},
			{"limit 5", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Limit: 5}},
			{"limit 10", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Limit: 10}},
			{"limit 11", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Limit: 11}},
			{"limit 25", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Limit: 25}},
			{"limit equals count", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Limit: n - 10}},
			{"limit above count", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Limit: 1000}},
			{"sub range", &pb.RangeRequest{Key: []byte(p + "k05"), RangeEnd: []byte(p + "k30")}},
			{"keys_only", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), KeysOnly: true, Limit: 30}},
			{"count_only", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), CountOnly: true}},
			{"single key", &pb.RangeRequest{Key: []byte(p + "k03")}},
			{"missing key", &pb.RangeRequest{Key: []byte(p + "nope")}},
			{"empty range", &pb.RangeRequest{Key: []byte(p + "k10"), RangeEnd: []byte(p + "k20")}},
			{"at old revision", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Revision: histRev}},
			{"at old revision limit 15", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Revision: histRev, Limit: 15}},
			{"serializable", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Serializable: true, Limit: 20}},
			{"explicit key order", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), SortTarget: pb.RangeRequest_KEY, SortOrder: pb.RangeRequest_ASCEND, Limit: 12}},
			{"sort target without order", &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), SortTarget: pb.RangeRequest_KEY, SortOrder: pb.RangeRequest_NONE}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				want := tg.rangeKV(t, tc.req)
				chunks, err := tg.rangeStream(t, tc.req)
				if err != nil {
					t.Fatalf("RangeStream: %v", err)
				}
				if len(chunks) == 0 {
					t.Fatal("RangeStream sent no chunk")
				}
				// Header, count and more ride on the final chunk only.
				for i, c := range chunks[:len(chunks)-1] {
					if c.Header != nil || c.Count != 0 || c.More {
						t.Fatalf("chunk %d of %d carries header=%v count=%d more=%v", i, len(chunks), c.Header, c.Count, c.More)
					}
				}
				last := chunks[len(chunks)-1]
				if last.Header == nil || last.Header.ClusterId == 0 || last.Header.MemberId == 0 || last.Header.RaftTerm == 0 {
					t.Fatalf("final chunk header %v, want one with ids and term", last.Header)
				}
				got := mergeChunks(chunks)
				if !proto.Equal(got, want) {
					t.Fatalf("merged stream differs from Range:\nstream: kvs=%s count=%d more=%v header=%v\nrange:  kvs=%s count=%d more=%v header=%v",
						kvSummary(got.Kvs), got.Count, got.More, got.Header, kvSummary(want.Kvs), want.Count, want.More, want.Header)
				}
			})
		}

		t.Run("clientv3", func(t *testing.T) {
			want, err := tg.Client.Get(reqCtx(t), p, clientv3.WithPrefix(), clientv3.WithLimit(17))
			if err != nil {
				t.Fatal(err)
			}
			ch, err := tg.Client.GetStream(reqCtx(t), p, clientv3.WithPrefix(), clientv3.WithLimit(17))
			if err != nil {
				t.Fatal(err)
			}
			got, err := clientv3.GetStreamToGetResponse(ch)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal((*pb.RangeResponse)(got), (*pb.RangeResponse)(want)) {
				t.Fatalf("GetStream: kvs=%s count=%d more=%v, Get: kvs=%s count=%d more=%v",
					kvSummary(got.Kvs), got.Count, got.More, kvSummary(want.Kvs), want.Count, want.More)
			}
		})

		t.Run("errors", func(t *testing.T) {
			before := tg.currentRev(t)
			_, err := tg.rangeStream(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(end), Revision: before + 1})
			wantRPCErr(t, err, rpctypes.ErrGRPCFutureRev)
			_, err = tg.rangeStream(t, &pb.RangeRequest{})
			wantRPCErr(t, err, rpctypes.ErrGRPCEmptyKey)
			_, err = tg.rangeStream(t, &pb.RangeRequest{Key: []byte(p), SortOrder: 7})
			wantRPCErr(t, err, rpctypes.ErrGRPCInvalidSortOption)
			_, err = tg.rangeStream(t, &pb.RangeRequest{Key: []byte(p), SortTarget: 9})
			wantRPCErr(t, err, rpctypes.ErrGRPCInvalidSortOption)
		})
	})
}
