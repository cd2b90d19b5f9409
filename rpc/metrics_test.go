package rpc

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestMVCCOpsFollowTheBranchTaken counts a Txn's operations as etcd's mvcc
// does: those of the branch its answer says it took, nested Txns by their
// own answers, and a read for each previous value asked for.
func TestMVCCOpsFollowTheBranchTaken(t *testing.T) {
	put := func(k string, prev bool) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("vv"), PrevKv: prev}}}
	}
	del := &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("d"), PrevKv: true}}}
	get := &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("r")}}}
	nested := &pb.TxnRequest{Success: []*pb.RequestOp{put("n", false)}, Failure: []*pb.RequestOp{get, get}}
	txn := &pb.TxnRequest{
		Success: []*pb.RequestOp{put("a", false), {Request: &pb.RequestOp_RequestTxn{RequestTxn: nested}}},
		Failure: []*pb.RequestOp{del, put("b", true)},
	}
	nestedAnswer := func(succeeded bool) *pb.ResponseOp {
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: &pb.TxnResponse{Succeeded: succeeded}}}
	}
	tests := []struct {
		name string
		resp *pb.TxnResponse
		want mvccOps
	}{
		{"success, nested success", &pb.TxnResponse{Succeeded: true, Responses: []*pb.ResponseOp{{}, nestedAnswer(true)}},
			mvccOps{puts: 2, putBytes: 6}},
		{"success, nested failure", &pb.TxnResponse{Succeeded: true, Responses: []*pb.ResponseOp{{}, nestedAnswer(false)}},
			mvccOps{puts: 1, ranges: 2, putBytes: 3}},
		{"failure: previous values read", &pb.TxnResponse{Succeeded: false},
			mvccOps{deletes: 1, puts: 1, ranges: 2, putBytes: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got mvccOps
			got.txn(txn, tt.resp)
			if got != tt.want {
				t.Fatalf("counted %+v, want %+v", got, tt.want)
			}
		})
	}
}
