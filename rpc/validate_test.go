package rpc

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func opPut(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k)}}}
}

func opDel(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

func opGet(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
}

func opTxn(then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: then, Failure: els}}}
}

// TestCheckDuplicates pins etcd's duplicate-key rules (the integration
// suite checks the same cases against a real etcd).
func TestCheckDuplicates(t *testing.T) {
	tests := []struct {
		name    string
		ops     []*pb.RequestOp
		wantDup bool
	}{
		{"distinct puts", []*pb.RequestOp{opPut("a"), opPut("b")}, false},
		{"same put twice", []*pb.RequestOp{opPut("a"), opPut("a")}, true},
		{"put inside a deleted range", []*pb.RequestOp{opDel("a", "c"), opPut("b")}, true},
		{"put after a point delete of it", []*pb.RequestOp{opPut("a"), opDel("a", "")}, true},
		{"put at a range's end is outside it", []*pb.RequestOp{opDel("a", "c"), opPut("c")}, false},
		{"from-key delete overlaps nothing, as in etcd", []*pb.RequestOp{opDel("a", "\x00"), opPut("b")}, false},
		{"overlapping deletes", []*pb.RequestOp{opDel("a", "c"), opDel("b", "d")}, false},
		{"put and get of one key", []*pb.RequestOp{opPut("a"), opGet("a")}, false},
		{"both branches of a nested txn", []*pb.RequestOp{opTxn([]*pb.RequestOp{opPut("a")}, []*pb.RequestOp{opPut("a")})}, false},
		{"nested and outer put", []*pb.RequestOp{opPut("a"), opTxn([]*pb.RequestOp{opPut("a")}, nil)}, true},
		{"two nested txns", []*pb.RequestOp{opTxn([]*pb.RequestOp{opPut("a")}, nil), opTxn(nil, []*pb.RequestOp{opPut("a")})}, true},
		{"nested put in an outer delete", []*pb.RequestOp{opDel("a", "z"), opTxn([]*pb.RequestOp{opPut("k")}, nil)}, true},
		{"nested delete over an outer put", []*pb.RequestOp{opPut("k"), opTxn([]*pb.RequestOp{opDel("a", "z")}, nil)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := checkDuplicates(tt.ops)
			if got := errors.Is(err, rpctypes.ErrGRPCDuplicateKey); got != tt.wantDup || (err != nil && !got) {
				t.Fatalf("err %v, want duplicate=%v", err, tt.wantDup)
			}
		})
	}
}

func TestCheckTxnLimits(t *testing.T) {
	many := func(n int) []*pb.RequestOp {
		ops := make([]*pb.RequestOp, n)
		for i := range ops {
			ops[i] = opGet("k")
		}
		return ops
	}
	tests := []struct {
		name    string
		txn     *pb.TxnRequest
		wantErr error
	}{
		{"at the limit", &pb.TxnRequest{Success: many(4)}, nil},
		{"over the limit", &pb.TxnRequest{Failure: many(5)}, rpctypes.ErrGRPCTooManyOps},
		{"nested txn gets what the outer level leaves", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(many(3), nil), opGet("k")}}, rpctypes.ErrGRPCTooManyOps},
		{"nested txn within what is left", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(many(2), nil), opGet("k")}}, nil},
		{"empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, rpctypes.ErrGRPCEmptyKey},
		{"empty request op", &pb.TxnRequest{Success: []*pb.RequestOp{{}}}, rpctypes.ErrGRPCKeyNotFound},
		{"bad sort option in a branch", &pb.TxnRequest{Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k"), SortOrder: 9}}}}}, rpctypes.ErrGRPCInvalidSortOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkTxn(tt.txn, 4); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
		})
	}
}
