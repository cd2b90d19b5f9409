package test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Shorthands for building raw transactions.

func opPut(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func opGet(k string) *pb.RequestOp {
	return opRange(&pb.RangeRequest{Key: []byte(k)})
}

func opRange(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func opDel(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}}}
}

func opTxn(r *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
}

func cmpVersion(k string, res pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_VERSION, Result: res, TargetUnion: &pb.Compare_Version{Version: v}}
}

func cmpValue(k string, res pb.Compare_CompareResult, v string) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_VALUE, Result: res, TargetUnion: &pb.Compare_Value{Value: []byte(v)}}
}

func cmpMod(k string, res pb.Compare_CompareResult, rev int64) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_MOD, Result: res, TargetUnion: &pb.Compare_ModRevision{ModRevision: rev}}
}

// txn runs a raw Txn that must succeed.
func (tg *Target) txn(t testing.TB, r *pb.TxnRequest) *pb.TxnResponse {
	t.Helper()
	resp, err := tg.KV.Txn(reqCtx(t), r)
	if err != nil {
		t.Fatalf("txn: %v", err)
	}
	return resp
}

func TestKVTxn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		t.Run("compare single key", func(t *testing.T) { testTxnCompareSingleKey(t, tg) })
		t.Run("compare missing key", func(t *testing.T) { testTxnCompareMissingKey(t, tg) })
		t.Run("compare range", func(t *testing.T) { testTxnCompareRange(t, tg) })
		t.Run("branches", func(t *testing.T) { testTxnBranches(t, tg) })
		t.Run("nested", func(t *testing.T) { testTxnNested(t, tg) })
		t.Run("read your writes", func(t *testing.T) { testTxnReadYourWrites(t, tg) })
		t.Run("pinned revision reads", func(t *testing.T) { testTxnPinnedRevisionReads(t, tg) })
		t.Run("read-only", func(t *testing.T) { testTxnReadOnly(t, tg) })
		t.Run("one revision", func(t *testing.T) { testTxnOneRevision(t, tg) })
		t.Run("op response headers", func(t *testing.T) { testTxnOpHeaders(t, tg) })
		t.Run("all or nothing", func(t *testing.T) { testTxnAllOrNothing(t, tg) })
		t.Run("clientv3", func(t *testing.T) { testTxnClientV3(t, tg) })
	})
}

var compareResults = []pb.Compare_CompareResult{pb.Compare_EQUAL, pb.Compare_GREATER, pb.Compare_LESS, pb.Compare_NOT_EQUAL}

// holds reports whether a comparison outcome c (-1, 0, 1 of actual vs
// operand) satisfies res.
func holds(c int, res pb.Compare_CompareResult) bool {
	switch res {
	case pb.Compare_EQUAL:
		return c == 0
	case pb.Compare_GREATER:
		return c > 0
	case pb.Compare_LESS:
		return c < 0
	default:
		return c != 0
	}
}

// compareCase is one operand of one compare target, and how the key's
// actual attribute compares to it.
type compareCase struct {
	target  pb.Compare_CompareTarget
	operand func(c *pb.Compare) // sets c.TargetUnion
	desc    string
	order   int // cmp.Compare(actual, operand)
}

// intCases yields operands below, at and above actual for an integer target.
func intCases(target pb.Compare_CompareTarget, actual int64, set func(c *pb.Compare, v int64)) []compareCase {
	var out []compareCase
	for _, d := range []int64{-1, 0, 1} {
		operand := actual + d
		out = append(out, compareCase{
			target:  target,
			operand: func(c *pb.Compare) { set(c, operand) },
			desc:    fmt.Sprintf("%v %d", target, operand),
			order:   cmp.Compare(actual, operand),
		})
	}
	return out
}

// intTargets are the integer compare targets of a key with the given
// version, create and mod revisions and lease.
func intTargets(version, create, mod, lease int64) []compareCase {
	return slices.Concat(
		intCases(pb.Compare_VERSION, version, func(c *pb.Compare, v int64) { c.TargetUnion = &pb.Compare_Version{Version: v} }),
		intCases(pb.Compare_CREATE, create, func(c *pb.Compare, v int64) { c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: v} }),
		intCases(pb.Compare_MOD, mod, func(c *pb.Compare, v int64) { c.TargetUnion = &pb.Compare_ModRevision{ModRevision: v} }),
		intCases(pb.Compare_LEASE, lease, func(c *pb.Compare, v int64) { c.TargetUnion = &pb.Compare_Lease{Lease: v} }),
	)
}

// testTxnCompareSingleKey checks every target × result against a key whose
// attributes are known, with operands below, equal to and above them.
func testTxnCompareSingleKey(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	k := p + "k"
	c := tg.put(t, k, "a")
	tg.put(t, k, "b")
	m := tg.put(t, k, "m")
	// version 3, create c, mod m, value "m", no lease.

	cases := intTargets(3, c, m, 0)
	for _, v := range []string{"", "l", "m", "m\x00", "n"} {
		cases = append(cases, compareCase{
			target:  pb.Compare_VALUE,
			operand: func(c *pb.Compare) { c.TargetUnion = &pb.Compare_Value{Value: []byte(v)} },
			desc:    fmt.Sprintf("VALUE %q", v),
			order:   strings.Compare("m", v),
		})
	}
	before := tg.currentRev(t)
	for _, cc := range cases {
		for _, res := range compareResults {
			cmpReq := &pb.Compare{Key: []byte(k), Target: cc.target, Result: res}
			cc.operand(cmpReq)
			resp := tg.txn(t, &pb.TxnRequest{
				Compare: []*pb.Compare{cmpReq},
				Success: []*pb.RequestOp{opGet(k)},
			})
			if want := holds(cc.order, res); resp.Succeeded != want {
				t.Errorf("%s %v: succeeded=%v, want %v", cc.desc, res, resp.Succeeded, want)
			}
		}
	}
	if got := tg.currentRev(t); got != before {
		t.Fatalf("read-only txns moved the revision from %d to %d", before, got)
	}
}

// testTxnCompareMissingKey: a missing key compares as a zero KeyValue for
// the integer targets, and every VALUE compare on it fails, NOT_EQUAL too.
func testTxnCompareMissingKey(t *testing.T, tg *Target) {
	k := keyPrefix(t) + "missing"
	for _, cc := range intTargets(0, 0, 0, 0) {
		for _, res := range compareResults {
			cmpReq := &pb.Compare{Key: []byte(k), Target: cc.target, Result: res}
			cc.operand(cmpReq)
			resp := tg.txn(t, &pb.TxnRequest{Compare: []*pb.Compare{cmpReq}})
			if want := holds(cc.order, res); resp.Succeeded != want {
				t.Errorf("missing key, %s %v: succeeded=%v, want %v", cc.desc, res, resp.Succeeded, want)
			}
		}
	}
	for _, v := range []string{"", "x"} {
		for _, res := range compareResults {
			resp := tg.txn(t, &pb.TxnRequest{Compare: []*pb.Compare{cmpValue(k, res, v)}})
			if resp.Succeeded {
				t.Errorf("missing key, VALUE %q %v succeeded, want failed", v, res)
			}
		}
	}
	// An existing key with an empty value is not a missing key.
	empty := keyPrefix(t) + "empty"
	tg.put(t, empty, "")
	if !tg.txn(t, &pb.TxnRequest{Compare: []*pb.Compare{cmpValue(empty, pb.Compare_EQUAL, "")}}).Succeeded {
		t.Error(`empty value = "": failed, want succeeded`)
	}
}

// testTxnCompareRange: a compare with range_end must hold for every key in
// the range; an empty range compares like a missing key.
func testTxnCompareRange(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"r/a", "1")
	tg.put(t, p+"r/b", "2")
	tg.put(t, p+"r/b", "2")
	tg.put(t, p+"r/c", "3")
	tg.put(t, p+"r/c", "3")
	tg.put(t, p+"r/c", "3")
	// versions: a=1, b=2, c=3; values "1" "2" "3".
	rng := func(c *pb.Compare, key, end string) *pb.Compare {
		c.Key, c.RangeEnd = []byte(p+key), []byte(end)
		return c
	}
	all := prefixEnd(p + "r/")
	tests := []struct {
		name string
		cmp  *pb.Compare
		want bool
	}{
		{"every version > 0", rng(cmpVersion("", pb.Compare_GREATER, 0), "r/", all), true},
		{"every version < 4", rng(cmpVersion("", pb.Compare_LESS, 4), "r/", all), true},
		{"every version < 3", rng(cmpVersion("", pb.Compare_LESS, 3), "r/", all), false},
		{"every version = 2", rng(cmpVersion("", pb.Compare_EQUAL, 2), "r/", all), false},
		{"every version != 2", rng(cmpVersion("", pb.Compare_NOT_EQUAL, 2), "r/", all), false},
		{"every version != 5", rng(cmpVersion("", pb.Compare_NOT_EQUAL, 5), "r/", all), true},
		{"sub range versions > 1", rng(cmpVersion("", pb.Compare_GREATER, 1), "r/b", p+"r/d"), true},
		{"values > 0", rng(cmpValue("", pb.Compare_GREATER, "0"), "r/", all), true},
		{"values = 1", rng(cmpValue("", pb.Compare_EQUAL, "1"), "r/", all), false},
		{"values = 1 in [a,b)", rng(cmpValue("", pb.Compare_EQUAL, "1"), "r/a", p+"r/b"), true},
		{"empty range version = 0", rng(cmpVersion("", pb.Compare_EQUAL, 0), "s/", prefixEnd(p+"s/")), true},
		{"empty range value != x", rng(cmpValue("", pb.Compare_NOT_EQUAL, "x"), "s/", prefixEnd(p+"s/")), false},
		{"from key version > 0", rng(cmpVersion("", pb.Compare_GREATER, 0), "r/b", "\x00"), true},
	}
	for _, tc := range tests {
		resp := tg.txn(t, &pb.TxnRequest{Compare: []*pb.Compare{tc.cmp}})
		if resp.Succeeded != tc.want {
			t.Errorf("%s: succeeded=%v, want %v", tc.name, resp.Succeeded, tc.want)
		}
	}

	// Several compares are ANDed.
	and := func(cs ...*pb.Compare) bool { return tg.txn(t, &pb.TxnRequest{Compare: cs}).Succeeded }
	if !and(cmpVersion(p+"r/a", pb.Compare_EQUAL, 1), cmpVersion(p+"r/c", pb.Compare_EQUAL, 3)) {
		t.Error("two true compares: failed")
	}
	if and(cmpVersion(p+"r/a", pb.Compare_EQUAL, 1), cmpVersion(p+"r/c", pb.Compare_EQUAL, 1)) {
		t.Error("true and false compares: succeeded")
	}
	if !and() {
		t.Error("no compares: failed")
	}
}

func testTxnBranches(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	rk := tg.put(t, p+"k", "v")
	for _, cond := range []bool{true, false} {
		start := tg.currentRev(t)
		res := pb.Compare_EQUAL
		if !cond {
			res = pb.Compare_NOT_EQUAL
		}
		branch := fmt.Sprint(cond)
		resp := tg.txn(t, &pb.TxnRequest{
			Compare: []*pb.Compare{cmpValue(p+"k", res, "v")},
			Success: []*pb.RequestOp{opPut(p+"then", "1"), opGet(p + "k")},
			Failure: []*pb.RequestOp{opGet(p + "k"), opPut(p+"else", "1"), opDel(p+"k", "")},
		})
		if resp.Succeeded != cond {
			t.Fatalf("branch %s: succeeded=%v", branch, resp.Succeeded)
		}
		if resp.Header.Revision != start+1 {
			t.Fatalf("branch %s: header rev %d, want %d", branch, resp.Header.Revision, start+1)
		}
		if cond {
			if len(resp.Responses) != 2 || resp.Responses[0].GetResponsePut() == nil || resp.Responses[1].GetResponseRange() == nil {
				t.Fatalf("then branch responses: %v", resp.Responses)
			}
			if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) != 1 || kvs[0].ModRevision != rk {
				t.Fatalf("then branch get: %s", kvSummary(kvs))
			}
			tg.wantKV(t, p+"then", "1", start+1, start+1, 1)
			continue
		}
		if len(resp.Responses) != 3 || resp.Responses[0].GetResponseRange() == nil ||
			resp.Responses[1].GetResponsePut() == nil || resp.Responses[2].GetResponseDeleteRange() == nil {
			t.Fatalf("else branch responses: %v", resp.Responses)
		}
		if d := resp.Responses[2].GetResponseDeleteRange().Deleted; d != 1 {
			t.Fatalf("else branch delete: deleted %d", d)
		}
		tg.wantKV(t, p+"else", "1", start+1, start+1, 1)
		tg.wantKV(t, p+"k", "", 0, 0, 0)
	}
}

// testTxnNested runs transactions inside transactions. Every compare, the
// nested ones included, is evaluated against the store as it was before the
// outer transaction, not against the outer transaction's own writes.
func testTxnNested(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"x", "old")
	start := tg.currentRev(t)
	resp := tg.txn(t, &pb.TxnRequest{
		Compare: []*pb.Compare{cmpValue(p+"x", pb.Compare_EQUAL, "old")},
		Success: []*pb.RequestOp{
			opPut(p+"x", "new"),
			opTxn(&pb.TxnRequest{
				// Sees x=old although the outer txn already wrote x=new.
				Compare: []*pb.Compare{cmpValue(p+"x", pb.Compare_EQUAL, "new")},
				Success: []*pb.RequestOp{opPut(p+"saw-new", "1")},
				Failure: []*pb.RequestOp{
					opPut(p+"saw-old", "1"),
					opTxn(&pb.TxnRequest{
						Compare: []*pb.Compare{cmpVersion(p+"x", pb.Compare_EQUAL, 1)},
						Success: []*pb.RequestOp{opGet(p + "x")},
					}),
				},
			}),
			opGet(p + "saw-old"),
		},
	})
	if !resp.Succeeded || len(resp.Responses) != 3 {
		t.Fatalf("outer: succeeded=%v responses=%d", resp.Succeeded, len(resp.Responses))
	}
	inner := resp.Responses[1].GetResponseTxn()
	if inner == nil || inner.Succeeded || len(inner.Responses) != 2 || inner.Responses[0].GetResponsePut() == nil {
		t.Fatalf("inner txn response: %v", inner)
	}
	innermost := inner.Responses[1].GetResponseTxn()
	if innermost == nil || !innermost.Succeeded || len(innermost.Responses) != 1 {
		t.Fatalf("innermost txn response: %v", innermost)
	}
	// The innermost read runs after the outer put: read-your-writes holds
	// at every depth.
	if kvs := innermost.Responses[0].GetResponseRange().GetKvs(); len(kvs) != 1 || string(kvs[0].Value) != "new" || kvs[0].ModRevision != start+1 {
		t.Fatalf("innermost get x: %s, want new at %d", kvSummary(kvs), start+1)
	}
	if kvs := resp.Responses[2].GetResponseRange().GetKvs(); len(kvs) != 1 || kvs[0].ModRevision != start+1 {
		t.Fatalf("outer get saw-old: %s, want it written at %d", kvSummary(kvs), start+1)
	}
	tg.wantKV(t, p+"saw-new", "", 0, 0, 0)
	tg.wantKV(t, p+"x", "new", start, start+1, 2)
	if got := tg.currentRev(t); got != start+1 {
		t.Fatalf("nested txn took revisions %d..%d, want just %d", start+1, got, start+1)
	}

	// Nested in the failure branch.
	resp = tg.txn(t, &pb.TxnRequest{
		Compare: []*pb.Compare{cmpVersion(p+"x", pb.Compare_EQUAL, 100)},
		Failure: []*pb.RequestOp{opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"from-failure", "1")}})},
	})
	if resp.Succeeded || !resp.Responses[0].GetResponseTxn().GetSucceeded() {
		t.Fatalf("failure-branch nesting: %v", resp)
	}
	tg.wantKV(t, p+"from-failure", "1", start+2, start+2, 1)
}

// testTxnReadYourWrites: a range after a write in the same txn sees that
// write, stamped with the txn's revision.
func testTxnReadYourWrites(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	c := tg.put(t, p+"k", "v1")
	tg.put(t, p+"gone", "x")
	tg.put(t, p+"other", "o")
	start := tg.currentRev(t)
	resp := tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{
		opGet(p + "k"),
		opPut(p+"k", "v2"),
		opGet(p + "k"),
		opDel(p+"gone", ""),
		opGet(p + "gone"),
		opPut(p+"fresh", "f"),
		opRange(&pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), Limit: 2}),
		opRange(&pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), CountOnly: true}),
	}})
	rev := start + 1
	if resp.Header.Revision != rev {
		t.Fatalf("header rev %d, want %d", resp.Header.Revision, rev)
	}
	got := func(i int) *pb.RangeResponse { return resp.Responses[i].GetResponseRange() }
	if kvs := got(0).Kvs; len(kvs) != 1 || string(kvs[0].Value) != "v1" || kvs[0].Version != 1 {
		t.Fatalf("get before put: %s", kvSummary(kvs))
	}
	if kvs := got(2).Kvs; len(kvs) != 1 || string(kvs[0].Value) != "v2" || kvs[0].ModRevision != rev || kvs[0].CreateRevision != c || kvs[0].Version != 2 {
		t.Fatalf("get after put: %s, want v2 c%d m%d v2", kvSummary(kvs), c, rev)
	}
	if kvs := got(4).Kvs; len(kvs) != 0 || got(4).Count != 0 {
		t.Fatalf("get after delete: %s", kvSummary(kvs))
	}
	// Keys now: fresh, k, other (gone is deleted).
	if r := got(6); !slices.Equal(keysOf(r.Kvs), prefixAll(p, []string{"fresh", "k"})) || r.Count != 3 || !r.More {
		t.Fatalf("prefix limit 2 after writes: %q count=%d more=%v", keysOf(r.Kvs), r.Count, r.More)
	}
	if r := got(7); r.Count != 3 || len(r.Kvs) != 0 {
		t.Fatalf("count after writes: %d", r.Count)
	}
	tg.wantKV(t, p+"fresh", "f", rev, rev, 1)
}

// testTxnPinnedRevisionReads: a range with an explicit revision inside a
// write txn reads history as of that revision, not the txn's own writes;
// the revision the txn is about to create counts as a future revision,
// because revisions are checked against the store before the txn writes.
func testTxnPinnedRevisionReads(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	k := p + "k"
	start := tg.put(t, k, "old")
	resp := tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{
		opPut(k, "new"),
		opRange(&pb.RangeRequest{Key: []byte(k), Revision: start}),
		opGet(k),
	}})
	if kvs := resp.Responses[1].GetResponseRange().GetKvs(); len(kvs) != 1 || string(kvs[0].Value) != "old" {
		t.Fatalf("range at rev %d after a put in the same txn: got %s, want old", start, kvSummary(kvs))
	}
	if kvs := resp.Responses[2].GetResponseRange().GetKvs(); len(kvs) != 1 || string(kvs[0].Value) != "new" {
		t.Fatalf("range at latest after a put in the same txn: got %s, want new", kvSummary(kvs))
	}

	before := tg.currentRev(t)
	_, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{
		opPut(k, "newer"),
		opRange(&pb.RangeRequest{Key: []byte(k), Revision: before + 1}),
	}})
	wantRPCErr(t, err, rpctypes.ErrGRPCFutureRev)
	if got := tg.currentRev(t); got != before {
		t.Fatalf("failed txn moved the revision from %d to %d", before, got)
	}
	tg.wantKV(t, k, "new", start, before, 2)
}

// testTxnReadOnly: a txn that writes nothing, whichever branch runs, does
// not move the revision, and its header carries the current one.
func testTxnReadOnly(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"k", "v")
	before := tg.currentRev(t)
	reqs := []*pb.TxnRequest{
		{Success: []*pb.RequestOp{opGet(p + "k"), opGet(p + "missing")}},
		{},
		// The failure branch runs and has no ops; the put never happens.
		{Compare: []*pb.Compare{cmpValue(p+"k", pb.Compare_EQUAL, "nope")}, Success: []*pb.RequestOp{opPut(p+"k", "w")}},
		// Deleting nothing is not a write either.
		{Success: []*pb.RequestOp{opDel(p+"missing", ""), opGet(p + "k")}},
		{Success: []*pb.RequestOp{opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opGet(p + "k")}})}},
	}
	for i, r := range reqs {
		resp := tg.txn(t, r)
		if resp.Header.Revision != before {
			t.Fatalf("txn %d: header rev %d, want %d", i, resp.Header.Revision, before)
		}
	}
	if got := tg.currentRev(t); got != before {
		t.Fatalf("read-only txns moved the revision from %d to %d", before, got)
	}
	tg.wantKV(t, p+"k", "v", before, before, 1)
}

// testTxnOneRevision: however many keys a txn writes or deletes, it takes a
// single revision, shared by every kv it writes.
func testTxnOneRevision(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"del1", "x")
	tg.put(t, p+"del2", "x")
	tg.put(t, p+"upd", "x")
	start := tg.currentRev(t)
	var ops []*pb.RequestOp
	for i := range 20 {
		ops = append(ops, opPut(fmt.Sprintf("%sn%02d", p, i), "v"))
	}
	// prev_kv works inside a txn as it does outside.
	upd := opPut(p+"upd", "y")
	upd.GetRequestPut().PrevKv = true
	del := opDel(p+"del", p+"dem")
	del.GetRequestDeleteRange().PrevKv = true
	ops = append(ops, upd, del)
	resp := tg.txn(t, &pb.TxnRequest{Success: ops})
	rev := start + 1
	if resp.Header.Revision != rev {
		t.Fatalf("header rev %d, want %d", resp.Header.Revision, rev)
	}
	if prev := resp.Responses[len(ops)-2].GetResponsePut().GetPrevKv(); prev == nil || string(prev.Value) != "x" || prev.ModRevision != start {
		t.Fatalf("put prev_kv %v, want x at %d", prev, start)
	}
	dresp := resp.Responses[len(ops)-1].GetResponseDeleteRange()
	if dresp.Deleted != 2 || !slices.Equal(keysOf(dresp.PrevKvs), []string{p + "del1", p + "del2"}) {
		t.Fatalf("deleted %d prev %s, want del1 and del2", dresp.Deleted, kvSummary(dresp.PrevKvs))
	}
	all := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(prefixEnd(p))})
	if len(all.Kvs) != 21 {
		t.Fatalf("got %d keys, want 21: %s", len(all.Kvs), kvSummary(all.Kvs))
	}
	for _, kv := range all.Kvs {
		if kv.ModRevision != rev {
			t.Fatalf("%s: mod rev %d, want %d", kv.Key, kv.ModRevision, rev)
		}
	}
	if got := tg.currentRev(t); got != rev {
		t.Fatalf("current rev %d, want %d", got, rev)
	}
}

// testTxnOpHeaders pins down the headers of the responses inside a Txn,
// which etcd fills differently from top-level responses: only the top-level
// header gets cluster_id/member_id/raft_term; a nested TxnResponse's header
// is present but all zero; a put's header has the txn's revision; a range's
// and a delete's header has the revision as of that point in the txn: the
// txn's revision once anything was written before it (or, for a delete, by
// it), the previous revision otherwise.
func testTxnOpHeaders(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"a", "1")
	start := tg.currentRev(t)
	resp := tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{
		opGet(p + "a"),          // before any write: start
		opDel(p+"missing", ""),  // deletes nothing, nothing written yet: start
		opDel(p+"a", ""),        // deletes: start+1
		opGet(p + "a"),          // after a write: start+1
		opPut(p+"b", "2"),       // start+1
		opDel(p+"missing2", ""), // deletes nothing, but after writes: start+1
		opTxn(&pb.TxnRequest{}), // nested: zero header
		opRange(&pb.RangeRequest{ // count_only after writes: start+1
			Key: []byte(p), RangeEnd: []byte(prefixEnd(p)), CountOnly: true,
		}),
	}})
	want := []int64{start, start, start + 1, start + 1, start + 1, start + 1, 0, start + 1}
	for i, w := range want {
		if got := opHeader(resp.Responses[i]); got == nil || got.Revision != w {
			t.Errorf("op %d header %v, want revision %d", i, got, w)
		}
	}
	if resp.Header.Revision != start+1 || resp.Header.ClusterId == 0 || resp.Header.MemberId == 0 || resp.Header.RaftTerm == 0 {
		t.Errorf("top-level header %v, want revision %d and nonzero ids and term", resp.Header, start+1)
	}

	// In a txn that writes nothing every header shows the current revision.
	cur := tg.currentRev(t)
	ro := tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opGet(p + "b"), opDel(p+"missing", "")}})
	for i := range ro.Responses {
		if got := opHeader(ro.Responses[i]); got == nil || got.Revision != cur {
			t.Errorf("read-only txn op %d header %v, want revision %d", i, got, cur)
		}
	}
}

// opHeader is the header of one response inside a TxnResponse.
func opHeader(r *pb.ResponseOp) *pb.ResponseHeader {
	switch r := r.Response.(type) {
	case *pb.ResponseOp_ResponseRange:
		return r.ResponseRange.Header
	case *pb.ResponseOp_ResponsePut:
		return r.ResponsePut.Header
	case *pb.ResponseOp_ResponseDeleteRange:
		return r.ResponseDeleteRange.Header
	case *pb.ResponseOp_ResponseTxn:
		return r.ResponseTxn.Header
	}
	return nil
}

// testTxnAllOrNothing: a txn whose chosen branch fails a check at apply
// time (missing lease, ignore_value on a missing key, a future revision)
// returns the error and writes none of its ops.
func testTxnAllOrNothing(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	tg.put(t, p+"k", "v")
	before := tg.currentRev(t)
	leased := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(p + "l"), Value: []byte("v"), Lease: 0x7eadbeef}}}
	ignoreMissing := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(p + "missing"), IgnoreValue: true}}}
	future := opRange(&pb.RangeRequest{Key: []byte(p + "k"), Revision: before + 10})
	tests := []struct {
		name string
		req  *pb.TxnRequest
		want error
	}{
		{"missing lease", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"a", "1"), leased}}, rpctypes.ErrGRPCLeaseNotFound},
		{"ignore_value on missing key", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"a", "1"), ignoreMissing}}, rpctypes.ErrGRPCKeyNotFound},
		{"future revision", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"a", "1"), future}}, rpctypes.ErrGRPCFutureRev},
		{"in nested txn", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"a", "1"), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{leased}})}}, rpctypes.ErrGRPCLeaseNotFound},
		{"in failure branch", &pb.TxnRequest{
			Compare: []*pb.Compare{cmpVersion(p+"k", pb.Compare_EQUAL, 0)},
			Failure: []*pb.RequestOp{opDel(p+"k", ""), ignoreMissing},
		}, rpctypes.ErrGRPCKeyNotFound},
	}
	for _, tc := range tests {
		_, err := tg.KV.Txn(reqCtx(t), tc.req)
		wantRPCErr(t, err, tc.want)
	}
	if got := tg.currentRev(t); got != before {
		t.Fatalf("failed txns moved the revision from %d to %d", before, got)
	}
	tg.wantKV(t, p+"a", "", 0, 0, 0)
	tg.wantKV(t, p+"k", "v", before, before, 1)

	// A bad op in the branch that does not run is never checked.
	resp := tg.txn(t, &pb.TxnRequest{
		Compare: []*pb.Compare{cmpVersion(p+"k", pb.Compare_EQUAL, 1)},
		Success: []*pb.RequestOp{opPut(p+"a", "1")},
		Failure: []*pb.RequestOp{leased, ignoreMissing, future},
	})
	if !resp.Succeeded || resp.Header.Revision != before+1 {
		t.Fatalf("txn with bad ops only in the untaken branch: succeeded=%v rev=%d", resp.Succeeded, resp.Header.Revision)
	}
}

// testTxnClientV3 drives a compare-and-swap through clientv3's Txn builder.
func testTxnClientV3(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	k := p + "k"
	cas := func(from, to string) bool {
		t.Helper()
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.Value(k), "=", from)}
		if from == "" {
			cmps = []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", 0)}
		}
		resp, err := tg.Client.Txn(reqCtx(t)).If(cmps...).Then(clientv3.OpPut(k, to)).Else(clientv3.OpGet(k)).Commit()
		if err != nil {
			t.Fatal(err)
		}
		return resp.Succeeded
	}
	if !cas("", "1") || cas("", "2") || !cas("1", "2") || cas("1", "3") {
		t.Fatal("compare-and-swap sequence went wrong")
	}
	resp, err := tg.Client.Txn(reqCtx(t)).If(
		clientv3.Compare(clientv3.Version(p), ">", 0).WithPrefix(),
		clientv3.Compare(clientv3.ModRevision(k), "<", tg.currentRev(t)+1),
	).Then(clientv3.OpGet(p, clientv3.WithPrefix(), clientv3.WithCountOnly())).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || resp.Responses[0].GetResponseRange().Count != 1 {
		t.Fatalf("prefix compare txn: %v", resp)
	}
}

func TestKVTxnErrors(t *testing.T) {
	const maxOps = 8
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		tg.put(t, p+"k", "v")
		puts := func(n int) []*pb.RequestOp {
			var ops []*pb.RequestOp
			for i := range n {
				ops = append(ops, opPut(fmt.Sprintf("%sp%d", p, i), "v"))
			}
			return ops
		}
		cmps := func(n int) []*pb.Compare {
			var cs []*pb.Compare
			for range n {
				cs = append(cs, cmpVersion(p+"k", pb.Compare_GREATER, 0))
			}
			return cs
		}
		badSort := opRange(&pb.RangeRequest{Key: []byte(p + "k"), SortOrder: 7})
		valueWithIgnore := &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(p + "k"), Value: []byte("x"), IgnoreValue: true}}}
		tests := []struct {
			name string
			req  *pb.TxnRequest
			want error // nil: accepted
		}{
			{"max ops puts", &pb.TxnRequest{Success: puts(maxOps)}, nil},
			{"too many puts", &pb.TxnRequest{Success: puts(maxOps + 1)}, rpctypes.ErrGRPCTooManyOps},
			{"too many failure ops", &pb.TxnRequest{Failure: puts(maxOps + 1)}, rpctypes.ErrGRPCTooManyOps},
			{"too many compares", &pb.TxnRequest{Compare: cmps(maxOps + 1)}, rpctypes.ErrGRPCTooManyOps},
			{"max compares and ops", &pb.TxnRequest{Compare: cmps(maxOps), Success: puts(maxOps), Failure: puts(maxOps)}, nil},
			// A nested txn may use only what its parent level left: max
			// minus the parent's largest of compares/success/failure.
			{"nested within budget", &pb.TxnRequest{Success: []*pb.RequestOp{opGet(p + "k"), opTxn(&pb.TxnRequest{Success: puts(maxOps - 2)})}}, nil},
			{"nested over budget", &pb.TxnRequest{Success: []*pb.RequestOp{opGet(p + "k"), opTxn(&pb.TxnRequest{Success: puts(maxOps - 1)})}}, rpctypes.ErrGRPCTooManyOps},

			{"duplicate put", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "1"), opPut(p+"d", "2")}}, rpctypes.ErrGRPCDuplicateKey},
			{"put and delete same key", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "1"), opDel(p+"d", "")}}, rpctypes.ErrGRPCDuplicateKey},
			{"delete then put same key", &pb.TxnRequest{Success: []*pb.RequestOp{opDel(p+"d", ""), opPut(p+"d", "1")}}, rpctypes.ErrGRPCDuplicateKey},
			{"put inside deleted range", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d/x", "1"), opDel(p+"d/", prefixEnd(p+"d/"))}}, rpctypes.ErrGRPCDuplicateKey},
			{"duplicate put in failure", &pb.TxnRequest{Failure: []*pb.RequestOp{opPut(p+"d", "1"), opPut(p+"d", "2")}}, rpctypes.ErrGRPCDuplicateKey},
			{"put at two levels", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "1"), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "2")}})}}, rpctypes.ErrGRPCDuplicateKey},
			{"nested put under outer delete", &pb.TxnRequest{Success: []*pb.RequestOp{opDel(p+"d", ""), opTxn(&pb.TxnRequest{Failure: []*pb.RequestOp{opPut(p+"d", "2")}})}}, rpctypes.ErrGRPCDuplicateKey},
			{"two nested txns put same key", &pb.TxnRequest{Success: []*pb.RequestOp{
				opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "1")}}),
				opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "2")}}),
			}}, rpctypes.ErrGRPCDuplicateKey},
			// Allowed: the same key in both branches (only one runs), in both
			// branches of a nested txn, overlapping deletes, and a get of a
			// written key.
			{"same key in success and failure", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "1")}, Failure: []*pb.RequestOp{opPut(p+"d", "2")}}, nil},
			{"same key in nested branches", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "1")}, Failure: []*pb.RequestOp{opPut(p+"d", "2")}})}}, nil},
			{"overlapping deletes", &pb.TxnRequest{Success: []*pb.RequestOp{opDel(p+"d", ""), opDel(p+"c", p+"e")}}, nil},
			{"put and get same key", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "1"), opGet(p + "d")}}, nil},

			{"empty key in put", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("", "1")}}, rpctypes.ErrGRPCEmptyKey},
			{"empty key in range", &pb.TxnRequest{Success: []*pb.RequestOp{opGet("")}}, rpctypes.ErrGRPCEmptyKey},
			{"empty key in delete", &pb.TxnRequest{Failure: []*pb.RequestOp{opDel("", "")}}, rpctypes.ErrGRPCEmptyKey},
			{"empty key in compare", &pb.TxnRequest{Compare: []*pb.Compare{cmpVersion("", pb.Compare_EQUAL, 0)}}, rpctypes.ErrGRPCEmptyKey},
			{"empty key in nested txn", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(&pb.TxnRequest{Failure: []*pb.RequestOp{opPut("", "1")}})}}, rpctypes.ErrGRPCEmptyKey},
			{"empty request op", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"e", "1"), {}}}, rpctypes.ErrGRPCKeyNotFound},
			{"invalid sort in range op", &pb.TxnRequest{Success: []*pb.RequestOp{badSort}}, rpctypes.ErrGRPCInvalidSortOption},
			{"value with ignore_value", &pb.TxnRequest{Success: []*pb.RequestOp{valueWithIgnore}}, rpctypes.ErrGRPCValueProvided},
			// Request checks run over both branches before any compare.
			{"bad op in untaken branch", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"e", "1")}, Failure: []*pb.RequestOp{opPut("", "1")}}, rpctypes.ErrGRPCEmptyKey},
			// The op count is checked before keys and duplicates.
			{"too many ops beats empty key", &pb.TxnRequest{Success: append(puts(maxOps), opPut("", "1"))}, rpctypes.ErrGRPCTooManyOps},
			{"empty key beats duplicate", &pb.TxnRequest{Success: []*pb.RequestOp{opPut(p+"d", "1"), opPut(p+"d", "1"), opPut("", "1")}}, rpctypes.ErrGRPCEmptyKey},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := tg.currentRev(t)
				_, err := tg.KV.Txn(reqCtx(t), tc.req)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("rejected: %v", err)
					}
					return
				}
				wantRPCErr(t, err, tc.want)
				if got := tg.currentRev(t); got != before {
					t.Fatalf("rejected txn moved the revision from %d to %d", before, got)
				}
			})
		}
		// Nothing the rejected txns named was written.
		for _, k := range []string{"e", "d/x"} {
			tg.wantKV(t, p+k, "", 0, 0, 0)
		}
		// clientv3 reports the same errors.
		_, err := tg.Client.Txn(reqCtx(t)).Then(clientv3.OpPut(p+"z", "1"), clientv3.OpPut(p+"z", "2")).Commit()
		wantRPCErr(t, err, rpctypes.ErrGRPCDuplicateKey)
		var many []clientv3.Op
		for i := range maxOps + 1 {
			many = append(many, clientv3.OpPut(fmt.Sprintf("%sm%d", p, i), "v"))
		}
		_, err = tg.Client.Txn(reqCtx(t)).Then(many...).Commit()
		if err == nil || err.Error() != rpctypes.ErrTooManyOps.Error() {
			t.Fatalf("clientv3 too many ops: got %v, want %v", err, rpctypes.ErrTooManyOps)
		}
	}, withMaxTxnOps(maxOps))
}
