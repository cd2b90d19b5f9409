package rpc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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

// TestCheckDuplicates pins etcd's duplicate-key rules, one case per rule
// and per exception (the integration suite, test/kv_txn_test.go and
// test/kv_txn_dupcheck_test.go, checks such cases against a real etcd).
func TestCheckDuplicates(t *testing.T) {
	type ops = []*pb.RequestOp
	tests := []struct {
		name    string
		ops     ops
		wantDup bool
	}{
		// Puts and puts.
		{"distinct puts", ops{opPut("a"), opPut("b")}, false},
		{"same put twice", ops{opPut("a"), opPut("a")}, true},
		{"put and get of one key", ops{opPut("a"), opGet("a")}, false},
		{"nested and outer put", ops{opPut("a"), opTxn(ops{opPut("a")}, nil)}, true},
		{"outer put after a nested one", ops{opTxn(nil, ops{opPut("a")}), opPut("a")}, true},
		{"both branches of a nested txn", ops{opTxn(ops{opPut("a")}, ops{opPut("a")})}, false},
		{"same put twice in one nested branch", ops{opTxn(ops{opPut("a"), opPut("a")}, nil)}, true},
		{"two nested txns, success and failure", ops{opTxn(ops{opPut("a")}, nil), opTxn(nil, ops{opPut("a")})}, true},
		{"two nested txns, both failure", ops{opTxn(nil, ops{opPut("a")}), opTxn(nil, ops{opPut("a")})}, true},
		{"deeper nesting against an outer put", ops{opPut("a"), opTxn(nil, ops{opTxn(ops{opPut("a")}, nil)})}, true},
		{"deep branches apart", ops{opTxn(ops{opTxn(ops{opPut("a")}, nil)}, ops{opTxn(nil, ops{opPut("a")})})}, false},
		{"both branches apart, then a third put", ops{opTxn(ops{opPut("a")}, ops{opPut("a")}), opPut("a")}, true},

		// Puts and deletes at one level, in either order.
		{"put inside a deleted range", ops{opDel("a", "c"), opPut("b")}, true},
		{"put before the range that holds it", ops{opPut("b"), opDel("a", "c")}, true},
		{"put at a range's start", ops{opDel("a", "c"), opPut("a")}, true},
		{"put at a range's end is outside it", ops{opDel("a", "c"), opPut("c")}, false},
		{"put before a range is outside it", ops{opPut("0"), opDel("a", "c")}, false},
		{"put after a point delete of it", ops{opPut("a"), opDel("a", "")}, true},
		{"point delete of a longer key", ops{opPut("a"), opDel("a\x00", "")}, false},
		{"put under a prefix delete", ops{opDel("a/", "a0"), opPut("a/x")}, true},
		{"put of the prefix itself is outside", ops{opDel("a/", "a0"), opPut("a")}, false},
		{"from-key delete overlaps nothing, as in etcd", ops{opDel("a", "\x00"), opPut("b")}, false},
		{"from-key delete misses its own key, as in etcd", ops{opPut("a"), opDel("a", "\x00")}, false},
		{"inverted range holds nothing", ops{opDel("c", "a"), opPut("b")}, false},
		{"empty range holds nothing", ops{opDel("b", "b"), opPut("b")}, false},
		{"overlapping deletes", ops{opDel("a", "c"), opDel("b", "d")}, false},
		{"same point delete twice", ops{opDel("a", ""), opDel("a", "")}, false},

		// Puts and deletes across levels.
		{"nested put in an outer delete", ops{opDel("a", "z"), opTxn(ops{opPut("k")}, nil)}, true},
		{"nested put in a later outer delete", ops{opTxn(nil, ops{opPut("k")}), opDel("a", "z")}, true},
		{"nested delete over an outer put", ops{opPut("k"), opTxn(ops{opDel("a", "z")}, nil)}, true},
		{"nested delete over a later outer put", ops{opTxn(nil, ops{opDel("k", "")}), opPut("k")}, true},
		{"deep delete over an outer put", ops{opPut("k"), opTxn(ops{opTxn(nil, ops{opDel("k", "")})}, nil)}, true},
		{"deep put in an outer delete", ops{opTxn(ops{opTxn(nil, ops{opPut("k")})}, nil), opDel("k", "l")}, true},
		{"put and delete in a nested txn's two branches", ops{opTxn(ops{opPut("k")}, ops{opDel("k", "")})}, false},
		{"delete and put in a nested txn's two branches", ops{opTxn(ops{opDel("a", "z")}, ops{opPut("k")})}, false},
		{"deep branches apart, put and delete", ops{opTxn(ops{opTxn(ops{opPut("k")}, nil)}, ops{opDel("a", "z")})}, false},
		{"nested delete, then a nested put", ops{opTxn(ops{opDel("a", "z")}, nil), opTxn(nil, ops{opPut("k")})}, true},
		// NB: etcd checks a nested txn's puts only against the deletes met
		// before it, so this one passes.
		{"nested put, then a nested delete, as in etcd", ops{opTxn(ops{opPut("k")}, nil), opTxn(nil, ops{opDel("a", "z")})}, false},
		{"inner pair in order at a deeper level", ops{opTxn(ops{opTxn(nil, ops{opDel("k", "")}), opTxn(ops{opPut("k")}, nil)}, nil)}, true},
		{"inner pair out of order at a deeper level", ops{opTxn(ops{opTxn(nil, ops{opPut("k")}), opTxn(ops{opDel("k", "")}, nil)}, nil)}, false},
		{"direct put, then a deep delete in a sibling", ops{opTxn(ops{opPut("k"), opTxn(nil, ops{opTxn(ops{opDel("k", "")}, nil)})}, nil)}, true},
		{"deep put, then a direct delete after it", ops{opTxn(nil, ops{opTxn(ops{opTxn(nil, ops{opPut("k")})}, nil), opDel("a", "z")})}, true},
		{"nested from-key delete overlaps nothing", ops{opPut("k"), opTxn(ops{opDel("a", "\x00")}, nil)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDuplicates(tt.ops)
			if got := errors.Is(err, rpctypes.ErrGRPCDuplicateKey); got != tt.wantDup || (err != nil && !got) {
				t.Fatalf("err %v, want duplicate=%v", err, tt.wantDup)
			}
			if model := modelDuplicates(tt.ops); model != tt.wantDup {
				t.Fatalf("the model says duplicate=%v, the table %v", model, tt.wantDup)
			}
		})
	}
}

// modelDuplicates is the reference model for checkDuplicates: MetaStore's
// first check, whose answers were held to etcd's, with etcd's structure
// (each level checks its nested txns' puts against its deletes so far and
// hands its puts and deletes up) and a linear scan per put. Quadratic, so
// only for small inputs.
func modelDuplicates(ops []*pb.RequestOp) bool {
	_, _, dup := modelLevel(ops)
	return dup
}

type modelInterval struct{ key, end string }

func (iv modelInterval) contains(k string) bool {
	if iv.end == "" {
		return k == iv.key
	}
	return iv.key <= k && k < iv.end
}

func modelContain(ivs []modelInterval, k string) bool {
	return slices.ContainsFunc(ivs, func(iv modelInterval) bool { return iv.contains(k) })
}

func modelLevel(ops []*pb.RequestOp) (map[string]bool, []modelInterval, bool) {
	var dels []modelInterval
	for _, op := range ops {
		if d := op.GetRequestDeleteRange(); d != nil {
			dels = append(dels, modelInterval{string(d.Key), string(d.RangeEnd)})
		}
	}
	puts := make(map[string]bool)
	for _, op := range ops {
		txn := op.GetRequestTxn()
		if txn == nil {
			continue
		}
		putsThen, delsThen, dup := modelLevel(txn.Success)
		if dup {
			return nil, nil, true
		}
		putsElse, delsElse, dup := modelLevel(txn.Failure)
		if dup {
			return nil, nil, true
		}
		for k := range putsThen {
			if puts[k] || modelContain(dels, k) {
				return nil, nil, true
			}
			puts[k] = true
		}
		for k := range putsElse {
			if (puts[k] && !putsThen[k]) || modelContain(dels, k) {
				return nil, nil, true
			}
			puts[k] = true
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}
	for _, op := range ops {
		if p := op.GetRequestPut(); p != nil {
			k := string(p.Key)
			if puts[k] || modelContain(dels, k) {
				return nil, nil, true
			}
			puts[k] = true
		}
	}
	return puts, dels, false
}

// randomBranch makes a random branch of up to width ops per level, nested
// up to depth levels, over a few short keys so that clashes are common but
// not certain. Ranges include point, prefix, from-key ("\x00"), inverted
// and empty ones.
func randomBranch(rnd *rand.Rand, width, depth int) []*pb.RequestOp {
	keys := []string{"a", "a\x00", "ab", "b", "ba", "c", "d"}
	ends := []string{"", "", "\x00", "a", "ab", "b", "c", "d", "e"}
	n := rnd.IntN(width + 1)
	ops := make([]*pb.RequestOp, 0, n)
	for range n {
		switch k := keys[rnd.IntN(len(keys))]; rnd.IntN(9) {
		case 0, 1, 2:
			ops = append(ops, opPut(k))
		case 3, 4:
			ops = append(ops, opDel(k, ends[rnd.IntN(len(ends))]))
		case 5:
			ops = append(ops, opGet(k))
		default:
			if depth > 0 {
				ops = append(ops, opTxn(randomBranch(rnd, width, depth-1), randomBranch(rnd, width, depth-1)))
			}
		}
	}
	return ops
}

// TestCheckDuplicatesMatchesModel holds the O(n log n) check to the model
// on random branches, nested several levels deep.
func TestCheckDuplicatesMatchesModel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 3))
	runs := 100000
	if testing.Short() {
		runs = 10000
	}
	var dups int
	for i := range runs {
		ops := randomBranch(rnd, 1+i%6, i%4)
		want := modelDuplicates(ops)
		err := checkDuplicates(ops)
		if got := err != nil; got != want {
			t.Fatalf("run %d: duplicate=%v (err %v), the model says %v for\n%s", i, got, err, want, opsString(ops))
		}
		if want {
			dups++
		}
	}
	// Both answers must be common, or the comparison proves little.
	if dups < runs/5 || dups > runs*4/5 {
		t.Fatalf("%d of %d random branches have duplicates; tune randomBranch", dups, runs)
	}
}

// FuzzCheckDuplicates is TestCheckDuplicatesMatchesModel with the seed,
// width and depth chosen by the fuzzer.
func FuzzCheckDuplicates(f *testing.F) {
	f.Add(uint64(1), uint8(4), uint8(3))
	f.Add(uint64(2), uint8(8), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, width, depth uint8) {
		ops := randomBranch(rand.New(rand.NewPCG(seed, 0)), int(width%10), int(depth%6))
		want := modelDuplicates(ops)
		if err := checkDuplicates(ops); (err != nil) != want {
			t.Fatalf("err %v, the model says duplicate=%v for\n%s", err, want, opsString(ops))
		}
	})
}

func opsString(ops []*pb.RequestOp) string {
	var b strings.Builder
	var walk func(ops []*pb.RequestOp, indent string)
	walk = func(ops []*pb.RequestOp, indent string) {
		for _, op := range ops {
			switch {
			case op.GetRequestPut() != nil:
				fmt.Fprintf(&b, "%sput %q\n", indent, op.GetRequestPut().Key)
			case op.GetRequestDeleteRange() != nil:
				d := op.GetRequestDeleteRange()
				fmt.Fprintf(&b, "%sdel %q %q\n", indent, d.Key, d.RangeEnd)
			case op.GetRequestRange() != nil:
				fmt.Fprintf(&b, "%sget %q\n", indent, op.GetRequestRange().Key)
			case op.GetRequestTxn() != nil:
				fmt.Fprintf(&b, "%stxn success:\n", indent)
				walk(op.GetRequestTxn().Success, indent+"    ")
				fmt.Fprintf(&b, "%s    failure:\n", indent)
				walk(op.GetRequestTxn().Failure, indent+"    ")
			}
		}
	}
	walk(ops, "")
	return b.String()
}

// TestCheckDuplicatesDeepChain nests txns thousands of levels deep, each
// level deleting one key and putting another, as a raised max-txn-ops
// allows; a put at either end of the chain that the other end deletes is
// found, and the model agrees.
func TestCheckDuplicatesDeepChain(t *testing.T) {
	const depth = 1000
	chain := func(put func(level int) string) []*pb.RequestOp {
		var inner []*pb.RequestOp
		for level := depth - 1; level >= 0; level-- {
			ops := []*pb.RequestOp{opDel(fmt.Sprintf("d%06d", level), ""), opPut(put(level))}
			if inner != nil {
				ops = append(ops, opTxn(inner, nil))
			}
			inner = ops
		}
		return inner
	}
	own := func(level int) string { return fmt.Sprintf("p%06d", level) }
	tests := []struct {
		name    string
		put     func(level int) string
		wantDup bool
	}{
		{"no clash", own, false},
		{"bottom puts what the top deletes", func(level int) string {
			if level == depth-1 {
				return "d000000"
			}
			return own(level)
		}, true},
		{"top puts what the bottom deletes", func(level int) string {
			if level == 0 {
				return fmt.Sprintf("d%06d", depth-1)
			}
			return own(level)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := chain(tt.put)
			err := checkDuplicates(ops)
			if got := err != nil; got != tt.wantDup {
				t.Fatalf("err %v, want duplicate=%v", err, tt.wantDup)
			}
			if model := modelDuplicates(ops); model != tt.wantDup {
				t.Fatalf("the model says duplicate=%v", model)
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

// nestedDupInput is the Txn branch of issue 9: one nested Txn whose success
// branch deletes n keys and puts n other keys, none overlapping, so the
// check has to look at every pair's keys and finds no duplicate.
func nestedDupInput(n int) []*pb.RequestOp {
	ops := make([]*pb.RequestOp, 0, 2*n)
	for i := range n {
		ops = append(ops, opDel(fmt.Sprintf("d/%05d", i), ""))
	}
	for i := range n {
		ops = append(ops, opPut(fmt.Sprintf("p/%05d", i)))
	}
	return []*pb.RequestOp{opTxn(ops, nil)}
}

func BenchmarkCheckDuplicates(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 55000} {
		ops := nestedDupInput(n)
		b.Run(fmt.Sprintf("dels=%d/puts=%d", n, n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := checkDuplicates(ops); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
