package test

// Linearizability tests: concurrent clients run a random mix of etcd requests
// against a backend, every request's call and return time is recorded, and
// porcupine checks that the history is linearizable with respect to a single
// etcd member INCLUDING its global revision (the model is in
// linearizability_model_test.go).
//
// TestLinearizability runs one subtest per backend:
//
//   - metastore: a MetaStore started in-process via rpc.Start (4 shards).
//   - etcd:      a real etcd v3.7.3 started in-process via embed, which
//     validates the workload and the model against the reference.
//
// METASTORE_BACKENDS=metastore or =etcd (comma-separated list allowed) selects
// the backends; the default is both.
//
// Fault mode. The shards package can be built broken on purpose:
//
//	go test -tags metastore_fault_stalereads -run TestLinearizability/metastore ./test/
//
// makes shards.FaultStaleReads true and the server answer reads one revision
// behind. In that build the metastore subtest inverts its assertion: it PASSES
// only if the checker finds the history ILLEGAL, proving the test has teeth
// against a real server (`make test` runs it that way too). In the normal
// build the history must be linearizable. The etcd subtest is unaffected.
//
// TestLinearizabilityCheckerCatchesStaleReads needs no server: hand-written
// histories pin down the model's rules (stale reads, revision accounting,
// unknown outcomes), in-process fake stores (correct, stale reads, failing
// writes, lost writes) run the full workload and checker at full size, and
// many small random histories show the preprocessing below never changes a
// verdict.
//
// How the history is recorded and checked:
//   - Call/return times come from one logical clock (linTick), so real-time
//     order is exact. Every response must match the single-member model
//     exactly: values, versions, create/mod revisions, header revision,
//     Txn branch, deleted counts, prev KVs.
//   - A request that fails (error or timeout) has an unknown outcome. A
//     failed read-only request is dropped. A failed write is kept, returning
//     after everything else: porcupine may linearize it anywhere after its
//     call, and placing it last is the same as "never applied". When placed,
//     it moves the revision exactly like a successful request would (+1 if
//     it changed something). To keep the search small it is narrowed without
//     changing the verdict (linPlaceUnknown, linModel): if a response saw its
//     value, it is pinned to the revision that created that value; otherwise
//     it may only create a revision no completed write accounts for, and it
//     is dropped if there is none.
//   - The check runs on one partition: the revision is global, so per-key
//     partitioning would be unsound. Before checking, linTighten narrows the
//     intervals by revision order (again without changing the verdict), which
//     spares porcupine's DFS the exponential backtracking it otherwise does
//     on this many concurrent clients.
//   - On a healthy server the workload never fails, so more than
//     linMaxErrors failed requests fail the test outright. The check has a
//     timeout; Unknown (undecided) is a failure too.
//   - On an Illegal result the log shows the longest linearizable prefix and
//     the operations that could not follow it, and the porcupine
//     visualization is written to $METASTORE_ARTIFACTS_DIR, or else to
//     t.ArtifactDir() (kept when `go test -artifacts` is given).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/metastore/metastore/shards"
)

// Workload size. The history is checked as a single partition; thanks to
// linTighten the check is about linear in the number of operations (well
// under a second for the 16k cap), but porcupine's memory grows with its
// square (a bitset of all operations per step), hence the cap.
const (
	linWorkers         = 16 // concurrent sequential processes (porcupine clients)
	linClients         = 4  // clientv3 clients (gRPC connections) they share
	linDuration        = 4 * time.Second
	linMaxOpsPerWorker = 1000
	linOpTimeout       = 5 * time.Second
	linCheckTimeout    = 20 * time.Second
	linMaxErrors       = 16
)

// linTick is the step of the logical clock that timestamps the history. A
// shared atomic counter, bumped right before a request is sent and right
// after its response arrives, orders the events exactly as they happened
// (A's return < B's call iff A finished before B started) and makes every
// timestamp distinct. The large step leaves room between recorded events for
// linTighten to place narrowed calls and returns (one slot per position in
// revision order, so up to linTick/2 positions).
const linTick = 1 << 22

func TestLinearizability(t *testing.T) {
	for _, backend := range selectedBackends(t) {
		t.Run(backend, func(t *testing.T) {
			// Errors only: they may explain a violation.
			endpoint := startBackend(t, backend, withErrorLog())
			wantIllegal := backend == "metastore" && shards.FaultStaleReads
			if wantIllegal {
				t.Log("built with metastore_fault_stalereads: expecting the checker to find the history ILLEGAL")
			}
			// Each clientv3 client is one gRPC connection; the workers
			// share linClients of them.
			execs := make([]linExec, linClients)
			for i := range execs {
				execs[i] = linClientExec(newClient(t, endpoint))
			}
			res := linRun(t, func(w int) linExec { return execs[w%len(execs)] }, linRunConfig{
				workers:   linWorkers,
				maxOps:    linMaxOpsPerWorker,
				duration:  linDuration,
				opTimeout: linOpTimeout,
				seed:      time.Now().UnixNano(),
			})
			linCheck(t, res, wantIllegal)
		})
	}
}

// ---------------------------------------------------------------------------
// Executing linInputs.

// linExec performs one request and returns the server's response converted to
// the model's terms. An error means the outcome is unknown.
type linExec func(ctx context.Context, in *linInput) (*linOutput, error)

func linClientOp(op linReqOp) clientv3.Op {
	var opts []clientv3.OpOption
	if op.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	switch op.kind {
	case linGet:
		return clientv3.OpGet(linKeyNames[op.key])
	case linRange:
		return clientv3.OpGet(linRangeStart, clientv3.WithRange(linRangeEnd))
	case linPut:
		return clientv3.OpPut(linKeyNames[op.key], op.val, opts...)
	case linDel:
		return clientv3.OpDelete(linKeyNames[op.key], opts...)
	}
	panic("unknown op kind")
}

func linClientCmp(c linCmp) clientv3.Cmp {
	k := linKeyNames[c.key]
	switch c.target {
	case linCmpValue:
		return clientv3.Compare(clientv3.Value(k), "=", c.val)
	case linCmpVersion:
		return clientv3.Compare(clientv3.Version(k), "=", c.num)
	case linCmpMod:
		return clientv3.Compare(clientv3.ModRevision(k), "=", c.num)
	case linCmpCreate:
		return clientv3.Compare(clientv3.CreateRevision(k), "=", c.num)
	}
	panic("unknown compare target")
}

func linKVsFrom(kvs []*mvccpb.KeyValue) []linKV {
	var out []linKV
	for _, kv := range kvs {
		if kv == nil {
			continue
		}
		out = append(out, linKV{
			key:    linKeyIndex(kv.Key),
			val:    string(kv.Value),
			create: kv.CreateRevision,
			mod:    kv.ModRevision,
			ver:    kv.Version,
		})
	}
	return out
}

// linBadResult never equals a model result: used when the server answers an
// operation with a response of the wrong type.
var linBadResult = linOpResult{count: -1}

func linClientExec(c *clientv3.Client) linExec {
	kv := clientv3.NewKV(c)
	return func(ctx context.Context, in *linInput) (*linOutput, error) {
		if !in.txn {
			op := in.then[0]
			resp, err := kv.Do(ctx, linClientOp(op))
			if err != nil {
				return nil, err
			}
			out := &linOutput{succeeded: true, results: make([]linOpResult, 1)}
			r := &out.results[0]
			switch op.kind {
			case linGet, linRange:
				g := resp.Get()
				if g == nil {
					out.results[0] = linBadResult
					return out, nil
				}
				out.rev = g.Header.GetRevision()
				r.kvs, r.count = linKVsFrom(g.Kvs), g.Count
			case linPut:
				p := resp.Put()
				if p == nil {
					out.results[0] = linBadResult
					return out, nil
				}
				out.rev = p.Header.GetRevision()
				if p.PrevKv != nil {
					r.prev = linKVsFrom([]*mvccpb.KeyValue{p.PrevKv})
				}
			case linDel:
				d := resp.Del()
				if d == nil {
					out.results[0] = linBadResult
					return out, nil
				}
				out.rev = d.Header.GetRevision()
				r.deleted, r.prev = d.Deleted, linKVsFrom(d.PrevKvs)
			}
			return out, nil
		}

		cmps := make([]clientv3.Cmp, len(in.cmps))
		for i, c := range in.cmps {
			cmps[i] = linClientCmp(c)
		}
		thenOps := make([]clientv3.Op, len(in.then))
		for i, op := range in.then {
			thenOps[i] = linClientOp(op)
		}
		elseOps := make([]clientv3.Op, len(in.els))
		for i, op := range in.els {
			elseOps[i] = linClientOp(op)
		}
		resp, err := kv.Txn(ctx).If(cmps...).Then(thenOps...).Else(elseOps...).Commit()
		if err != nil {
			return nil, err
		}
		out := &linOutput{rev: resp.Header.GetRevision(), succeeded: resp.Succeeded}
		ops := in.then
		if !resp.Succeeded {
			ops = in.els
		}
		// One result per response, interpreted as the operation the branch
		// holds at that position; a missing or extra response changes the
		// length and so cannot match the model.
		for i, ro := range resp.Responses {
			if i >= len(ops) {
				out.results = append(out.results, linBadResult)
				continue
			}
			var r linOpResult
			switch ops[i].kind {
			case linGet, linRange:
				g := ro.GetResponseRange()
				if g == nil {
					r = linBadResult
					break
				}
				r.kvs, r.count = linKVsFrom(g.Kvs), g.Count
			case linPut:
				p := ro.GetResponsePut()
				if p == nil {
					r = linBadResult
					break
				}
				if p.PrevKv != nil {
					r.prev = linKVsFrom([]*mvccpb.KeyValue{p.PrevKv})
				}
			case linDel:
				d := ro.GetResponseDeleteRange()
				if d == nil {
					r = linBadResult
					break
				}
				r.deleted, r.prev = d.Deleted, linKVsFrom(d.PrevKvs)
			}
			out.results = append(out.results, r)
		}
		return out, nil
	}
}

// ---------------------------------------------------------------------------
// Workload.

type linRunConfig struct {
	workers, maxOps     int
	duration, opTimeout time.Duration
	seed                int64
	quiet               bool // no log lines (the self-test runs many small workloads)
}

type linRunResult struct {
	rev0    int64 // revision before the workload, the model's initial revision
	history []porcupine.Operation
	raw     []porcupine.Operation // history before linPlaceUnknown, for the self-test
	labels  map[string]int        // operations by kind, for the log
	txnElse int                   // conditional Txns that took the Else branch
	unknown int                   // failed writes kept as "maybe applied"
	dropped int                   // failed reads, dropped
	errs    []string              // the first few errors
}

// linWorker generates one sequential process's requests. It remembers what it
// last saw of each key so that its compares succeed often enough for both Txn
// branches to be exercised.
type linWorker struct {
	id     int
	rng    *rand.Rand
	seq    int
	seen   [linNumKeys]linKV // ver == 0: absent (or never seen)
	follow *linInput         // queued read-your-own-write Get
}

func (w *linWorker) value() string {
	w.seq++
	return fmt.Sprintf("w%d.%d", w.id, w.seq)
}

func (w *linWorker) next() (string, *linInput) {
	if f := w.follow; f != nil {
		w.follow = nil
		return "get-own-write", f
	}
	k := w.rng.IntN(linNumKeys)
	k2 := (k + 1 + w.rng.IntN(linNumKeys-1)) % linNumKeys // distinct from k
	k3 := (k2 + 1 + w.rng.IntN(linNumKeys-2)) % linNumKeys
	if k3 == k {
		k3 = (k3 + 1) % linNumKeys
	}
	prev := w.rng.IntN(2) == 0
	var label string
	var in *linInput
	switch p := w.rng.IntN(100); {
	case p < 20:
		label = "put"
		in = &linInput{then: []linReqOp{{kind: linPut, key: k, val: w.value(), prevKV: prev}}}
	case p < 36:
		label = "get"
		in = &linInput{then: []linReqOp{{kind: linGet, key: k}}}
	case p < 44:
		// A snapshot of all keys: catches non-atomic multi-key Txns and
		// revisions that disagree between shards.
		label = "range"
		in = &linInput{then: []linReqOp{{kind: linRange}}}
	case p < 54:
		label = "delete"
		in = &linInput{then: []linReqOp{{kind: linDel, key: k, prevKV: prev}}}
	case p < 70:
		// Compare-and-swap on the last value this worker saw; "create if
		// absent" (version == 0) when it saw none.
		label = "cas"
		c := linCmp{key: k, target: linCmpVersion}
		if s := w.seen[k]; s.ver != 0 {
			c = linCmp{key: k, target: linCmpValue, val: s.val}
		}
		in = &linInput{txn: true, cmps: []linCmp{c},
			then: []linReqOp{{kind: linPut, key: k, val: w.value()}},
			els:  []linReqOp{{kind: linGet, key: k}}}
	case p < 86:
		// Conditional multi-key write: both keys (usually on different
		// shards) must change at one revision, or neither.
		label = "txn-cond"
		s := w.seen[k]
		c := linCmp{key: k, target: linCmpMod, num: s.mod}
		switch w.rng.IntN(3) {
		case 1:
			c = linCmp{key: k, target: linCmpVersion, num: s.ver}
		case 2:
			c = linCmp{key: k, target: linCmpCreate, num: s.create}
		}
		in = &linInput{txn: true, cmps: []linCmp{c},
			then: []linReqOp{{kind: linPut, key: k, val: w.value()}, {kind: linPut, key: k2, val: w.value(), prevKV: prev}},
			els:  []linReqOp{{kind: linGet, key: k}, {kind: linGet, key: k2}}}
	default:
		// Unconditional multi-key write, sometimes with a delete (which may
		// or may not change anything) and a third key.
		label = "txn-multi"
		ops := []linReqOp{{kind: linPut, key: k, val: w.value()}}
		if w.rng.IntN(3) == 0 {
			ops = append(ops, linReqOp{kind: linDel, key: k2, prevKV: prev})
		} else {
			ops = append(ops, linReqOp{kind: linPut, key: k2, val: w.value(), prevKV: prev})
		}
		if w.rng.IntN(2) == 0 {
			ops = append(ops, linReqOp{kind: linPut, key: k3, val: w.value()})
		}
		in = &linInput{txn: true, then: ops}
	}
	if !in.readOnly() && w.rng.IntN(2) == 0 {
		// Read-your-own-write: Get the key right after our write returned.
		// A server answering reads from an older revision returns what was
		// there before the write (unless another write to it intervened),
		// which no linearization allows. This is what makes the fault
		// build's stale reads visible.
		w.follow = &linInput{then: []linReqOp{{kind: linGet, key: k}}}
	}
	return label, in
}

// afterFailure queues a Get of a key the failed write would have put: if the
// value is there, the write is known to have happened (linPlaceUnknown pins
// it), which keeps the check cheap.
func (w *linWorker) afterFailure(in *linInput) {
	for _, op := range in.then {
		if op.kind == linPut {
			w.follow = &linInput{then: []linReqOp{{kind: linGet, key: op.key}}}
			return
		}
	}
}

// observe remembers what a response revealed about the keys.
func (w *linWorker) observe(in *linInput, out *linOutput) {
	ops := in.then
	if !out.succeeded {
		ops = in.els
	}
	for i, op := range ops {
		if i >= len(out.results) {
			return
		}
		r := out.results[i]
		switch op.kind {
		case linGet:
			w.seen[op.key] = linKV{}
			for _, kv := range r.kvs {
				if kv.key == op.key {
					w.seen[op.key] = kv
				}
			}
		case linRange:
			w.seen = [linNumKeys]linKV{}
			for _, kv := range r.kvs {
				if kv.key >= 0 && kv.key < linNumKeys {
					w.seen[kv.key] = kv
				}
			}
		case linPut:
			// Version/create are a guess unless a read tells otherwise; a
			// wrong guess only sends a Txn down its Else branch.
			s := w.seen[op.key]
			if s.ver == 0 {
				s.create = out.rev
			}
			w.seen[op.key] = linKV{key: op.key, val: op.val, create: s.create, mod: out.rev, ver: s.ver + 1}
		case linDel:
			w.seen[op.key] = linKV{}
		}
	}
}

// linRun runs the workload: cfg.workers sequential processes, each issuing up
// to cfg.maxOps requests until cfg.duration has passed. Worker w uses exec(w).
func linRun(t *testing.T, exec func(worker int) linExec, cfg linRunConfig) *linRunResult {
	t.Helper()
	ctx := t.Context()

	// The store must start empty; its revision is the model's start.
	ictx, cancel := context.WithTimeout(ctx, cfg.opTimeout)
	init, err := exec(0)(ictx, &linInput{then: []linReqOp{{kind: linRange}}})
	cancel()
	if err != nil {
		t.Fatalf("initial range: %v", err)
	}
	if len(init.results) != 1 || len(init.results[0].kvs) != 0 {
		t.Fatalf("store not empty before the workload: %s", init)
	}
	res := &linRunResult{rev0: init.rev, labels: map[string]int{}}

	type workerResult struct {
		ops     []porcupine.Operation
		pending []porcupine.Operation // failed writes; return time set later
		labels  map[string]int
		txnElse int
		dropped int
		errs    []string
	}
	results := make([]workerResult, cfg.workers)
	base := time.Now()
	deadline := base.Add(cfg.duration)
	var clock atomic.Int64 // see linTick
	var wg sync.WaitGroup
	for w := range cfg.workers {
		wg.Go(func() {
			wr := &results[w]
			wr.labels = map[string]int{}
			e := exec(w)
			wk := &linWorker{id: w, rng: rand.New(rand.NewPCG(uint64(cfg.seed), uint64(w)))}
			for n := 0; n < cfg.maxOps && time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				label, in := wk.next()
				octx, cancel := context.WithTimeout(ctx, cfg.opTimeout)
				call := clock.Add(linTick)
				out, err := e(octx, in)
				ret := clock.Add(linTick)
				cancel()
				wr.labels[label]++
				if err != nil {
					if len(wr.errs) < 3 {
						wr.errs = append(wr.errs, fmt.Sprintf("%s: %v", in, err))
					}
					if in.readOnly() {
						wr.dropped++
						continue
					}
					wr.pending = append(wr.pending, porcupine.Operation{
						Input: in, Call: call,
						Output: &linOutput{unknown: true, err: err.Error()},
					})
					wk.afterFailure(in)
					continue
				}
				if in.txn && len(in.cmps) > 0 && !out.succeeded {
					wr.txnElse++
				}
				wk.observe(in, out)
				wr.ops = append(wr.ops, porcupine.Operation{
					ClientId: w, Input: in, Call: call, Output: out, Return: ret,
				})
			}
		})
	}
	wg.Wait()

	var pending []porcupine.Operation
	for _, wr := range results {
		res.history = append(res.history, wr.ops...)
		pending = append(pending, wr.pending...)
		for l, n := range wr.labels {
			res.labels[l] += n
		}
		res.txnElse += wr.txnElse
		res.dropped += wr.dropped
		res.errs = append(res.errs, wr.errs...)
	}
	res.unknown = len(pending)
	var maxRet int64
	for _, op := range res.history {
		maxRet = max(maxRet, op.Return)
	}
	res.raw = slices.Clone(res.history)
	for i, op := range pending {
		op.Return, op.ClientId = maxRet+linTick, cfg.workers+i
		res.raw = append(res.raw, op)
	}
	var note string
	res.history, note = linPlaceUnknown(res.history, pending, res.rev0, cfg.workers)
	if cfg.quiet {
		return res
	}
	if note != "" {
		t.Log(note)
	}
	t.Logf("workload: %d ops (%d failed writes with unknown outcome, %d failed reads dropped) in %v; %d txns took Else; by kind %v",
		len(res.history), res.unknown, res.dropped, time.Since(base).Round(time.Millisecond), res.txnElse, res.labels)
	return res
}

// linPlaceUnknown adds the writes whose outcome is unknown to the history of
// completed operations. By default such a write "returns" after everything
// else, so porcupine may linearize it anywhere after its call, or last, which
// is the same as never. Each one left that open multiplies the search, so
// they are narrowed down first; every step only rules out placements that
// no linearization accepted by the model can use, so none can hide a
// violation or invent one:
//
//   - A write whose (unique) value a response returned was applied, before
//     that response returned, and created the revision that response gives
//     as the value's mod revision. It "returns" at the earliest such response
//     and is pinned to that revision (linOutput.pinned): the model only
//     accepts it creating exactly that revision, and linTighten orders it.
//   - The rest may only create a revision that no completed or pinned write
//     accounts for (see linModel). If there is no such revision up to the
//     highest one any response reported, they cannot have changed the
//     observed history at all and are dropped.
func linPlaceUnknown(known, pending []porcupine.Operation, rev0 int64, firstClientID int) ([]porcupine.Operation, string) {
	if len(pending) == 0 {
		return known, ""
	}
	type sighting struct{ ret, mod int64 }
	var maxRet int64
	firstSeen := map[string]sighting{} // value → earliest response holding it
	for _, op := range known {
		out := op.Output.(*linOutput)
		maxRet = max(maxRet, op.Return)
		for _, r := range out.results {
			for _, kv := range slices.Concat(r.kvs, r.prev) {
				if s, ok := firstSeen[kv.val]; !ok || op.Return < s.ret {
					firstSeen[kv.val] = sighting{op.Return, kv.mod}
				}
			}
		}
	}
	var open []porcupine.Operation
	pinned := 0
	for i, op := range pending {
		op.Return = maxRet + linTick
		// Its own client id: it may overlap its worker's later operations.
		op.ClientId = firstClientID + i
		in := op.Input.(*linInput)
		var pin int64
		for _, o := range slices.Concat(in.then, in.els) {
			// A sighting before the call is impossible and left to porcupine.
			if s, ok := firstSeen[o.val]; ok && o.kind == linPut && s.ret >= op.Call && s.ret < op.Return {
				op.Return, pin = s.ret, s.mod
			}
		}
		if pin == 0 {
			open = append(open, op)
			continue
		}
		out := *op.Output.(*linOutput)
		out.pinned = pin
		op.Output = &out
		known = append(known, op)
		pinned++
	}
	gaps, maxObs := linRevisionGaps(known, rev0)
	if len(gaps) == 0 {
		return known, fmt.Sprintf("%d writes with unknown outcome: %d pinned by a response that saw their value, %d dropped (completed and pinned writes account for every revision up to %d, so they changed nothing observed)",
			len(pending), pinned, len(open), maxObs)
	}
	return append(known, open...), fmt.Sprintf("%d writes with unknown outcome: %d pinned by a response that saw their value, %d open (%d revisions up to %d unaccounted for)",
		len(pending), pinned, len(open), len(gaps), maxObs)
}

// linTighten narrows the operations' [call, return] intervals using the
// revisions in the responses, without changing the verdict. Porcupine's
// search is a DFS in call-time order: a write called before a concurrent
// read of the previous revision gets linearized first, the dead end only
// shows when that read's return is reached, and with many concurrent clients
// the search then backtracks exponentially.
//
// Every completed operation has a position in revision order: the write that
// created revision R sits at 2R, anything that observed R without changing
// it (reads, Else branches, deletes of missing keys) at 2R+1. In every
// linearization the model accepts, the store revision only grows, so an
// operation comes after every operation at a lower position, hence after
// their calls, and before every operation at a higher position, hence before
// their returns. So each call is raised into the gap just after the latest
// recorded call of any lower position, and each return lowered into the gap
// just before the earliest recorded return of any higher position. Recorded
// events are distinct multiples of linTick; raised calls use the lower half
// of a gap, lowered returns the upper half, and within a half the offset grows
// with the position, so that ties between positions cannot arise and the
// call order afterwards follows revision order (which is what lets the DFS
// run without backtracking).
//
// Why the verdict is unchanged: the new intervals lie inside the old ones, so
// every linearization of the new history is one of the old. Conversely,
// every new real-time ordering "A returns before B is called" implies,
// through the recorded event the moved endpoint sits next to, a chain of
// recorded orderings and position orderings, all of which every accepted
// linearization satisfies. If narrowing leaves an operation with
// call > return, no accepted linearization exists; it then keeps its recorded
// interval and porcupine reports the violation. Unknown-outcome writes sit at
// the position of the revision they are pinned to, if any, else they are left
// alone. Moved operations carry their recorded times in Metadata.
func linTighten(history []porcupine.Operation) []porcupine.Operation {
	out := slices.Clone(history)
	type posOp struct {
		pos int64
		i   int
	}
	var ops []posOp
	for i, op := range out {
		o := op.Output.(*linOutput)
		var pos int64
		switch {
		case o.unknown && o.pinned == 0:
			continue
		case o.unknown:
			pos = 2 * o.pinned
		case linChanged(op.Input.(*linInput), o):
			pos = 2 * o.rev
		default:
			pos = 2*o.rev + 1
		}
		ops = append(ops, posOp{pos, i})
	}
	slices.SortFunc(ops, func(a, b posOp) int { return cmp.Compare(a.pos, b.pos) })
	// Group by position; rank 1..n in position order.
	type group struct{ lo, hi int } // ops[lo:hi]
	var groups []group
	for j := 0; j < len(ops); {
		k := j
		for k < len(ops) && ops[k].pos == ops[j].pos {
			k++
		}
		groups = append(groups, group{j, k})
		j = k
	}
	n := int64(len(groups))
	if n+1 >= linTick/2 {
		return out // too many positions for the gaps; check the recorded history
	}
	calls := make([]int64, len(ops))
	rets := make([]int64, len(ops))
	// Raise calls: latest recorded call strictly below, plus the rank.
	maxCall := int64(math.MinInt64)
	for g, gr := range groups {
		groupMax := maxCall
		for m := gr.lo; m < gr.hi; m++ {
			c := out[ops[m].i].Call
			calls[m] = c
			if maxCall != math.MinInt64 {
				calls[m] = max(c, maxCall+int64(g)+1)
			}
			groupMax = max(groupMax, c)
		}
		maxCall = groupMax
	}
	// Lower returns: earliest recorded return strictly above, minus the
	// reverse rank.
	minRet := int64(math.MaxInt64)
	for g := len(groups) - 1; g >= 0; g-- {
		gr := groups[g]
		groupMin := minRet
		for m := gr.lo; m < gr.hi; m++ {
			r := out[ops[m].i].Return
			rets[m] = r
			if minRet != math.MaxInt64 {
				rets[m] = min(r, minRet-(n-int64(g)))
			}
			groupMin = min(groupMin, r)
		}
		minRet = groupMin
	}
	for m, p := range ops {
		op := &out[p.i]
		if calls[m] > rets[m] {
			continue // no accepted linearization exists; leave it to porcupine
		}
		if calls[m] != op.Call || rets[m] != op.Return {
			op.Metadata = fmt.Sprintf("recorded [%d, %d]", op.Call/linTick, op.Return/linTick)
			op.Call, op.Return = calls[m], rets[m]
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Checking.

func linCheck(t *testing.T, res *linRunResult, wantIllegal bool) {
	t.Helper()
	if n := res.unknown + res.dropped; n > linMaxErrors {
		t.Fatalf("%d requests failed (first errors: %s); the workload never fails on a healthy server, and so many unknown writes would make the check intractable",
			n, strings.Join(res.errs, "; "))
	}
	if len(res.errs) > 0 {
		t.Logf("some requests failed (modelled as unknown outcome): %s", strings.Join(res.errs, "; "))
	}
	model := linModelFor(res.rev0, res.history)
	start := time.Now()
	res.history = linTighten(res.history)
	result := porcupine.CheckOperationsTimeout(model, res.history, linCheckTimeout)
	t.Logf("porcupine: %s for %d operations in %v", result, len(res.history), time.Since(start).Round(time.Millisecond))

	switch result {
	case porcupine.Unknown:
		t.Fatalf("linearizability check timed out after %v: undecided. The history is too big or too concurrent to check (reduce linMaxOpsPerWorker/linWorkers), or many writes have unknown outcomes", linCheckTimeout)
	case porcupine.Ok:
		if wantIllegal {
			t.Fatalf("built with metastore_fault_stalereads, yet the history is linearizable: either the fault is not active or the workload/checker failed to expose stale reads")
		}
	case porcupine.Illegal:
		explanation, vis := linExplain(t, model, res.history)
		if wantIllegal {
			t.Logf("history is ILLEGAL, as expected:\n%s", explanation)
			return
		}
		t.Errorf("history is NOT linearizable:\n%s", explanation)
		if vis != "" {
			t.Errorf("porcupine visualization: %s", vis)
		}
	}
}

// linExplain re-checks in verbose mode and describes where linearization
// got stuck: the end state of the longest linearizable prefix found, and the
// operations that had to come next with what the model expected of them.
// It also writes the porcupine visualization and returns its path.
func linExplain(t *testing.T, model porcupine.Model, history []porcupine.Operation) (string, string) {
	t.Helper()
	result, info := porcupine.CheckOperationsVerbose(model, history, linCheckTimeout)
	if result != porcupine.Illegal {
		return fmt.Sprintf("(verbose re-check returned %s)", result), ""
	}
	var longest []int
	for _, part := range info.PartialLinearizations() {
		for _, seq := range part {
			if len(seq) > len(longest) {
				longest = seq
			}
		}
	}
	state := model.Init()
	in := make([]bool, len(history))
	for _, id := range longest {
		_, state = model.Step(state, history[id].Input, history[id].Output)
		in[id] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  longest linearizable prefix: %d of %d operations, ending in state %s\n", len(longest), len(history), state.(linState))
	for _, id := range longest[max(0, len(longest)-3):] {
		op := history[id]
		fmt.Fprintf(&b, "    ... client %d: %s\n", op.ClientId, model.DescribeOperation(op.Input, op.Output))
	}
	// The operations that had to come next: everything not linearized that
	// was called before the earliest return among them. Those whose response
	// the model rejects in that state come first.
	var rest []int
	firstRet := int64(1<<63 - 1)
	for id := range history {
		if !in[id] {
			rest = append(rest, id)
			firstRet = min(firstRet, history[id].Return)
		}
	}
	type cand struct {
		id       int
		want     linOutput
		mismatch bool
	}
	var cands []cand
	for _, id := range rest {
		op := history[id]
		if op.Call > firstRet {
			continue
		}
		_, want := linApply(state.(linState), op.Input.(*linInput))
		out := op.Output.(*linOutput)
		cands = append(cands, cand{id, want, !out.unknown && !linOutputEqual(&want, out)})
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		if a.mismatch != b.mismatch {
			if a.mismatch {
				return -1
			}
			return 1
		}
		return int(history[a.id].Return - history[b.id].Return)
	})
	b.WriteString("  operations that had to come next (none can):\n")
	for _, c := range cands[:min(4, len(cands))] {
		op := history[c.id]
		verdict := "matches the model here, but cannot be followed"
		if c.mismatch {
			verdict = "MISMATCH"
		}
		fmt.Fprintf(&b, "    client %d, events %d..%d: %s\n      got:  %s\n      want: %s  (%s)\n",
			op.ClientId, op.Call/linTick, op.Return/linTick, op.Input.(*linInput), op.Output.(*linOutput), &c.want, verdict)
	}

	dir := os.Getenv("METASTORE_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.ArtifactDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("artifacts dir: %v", err)
		return b.String(), ""
	}
	path := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-porcupine.html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		t.Logf("write visualization: %v", err)
		return b.String(), ""
	}
	return b.String(), path
}

// ---------------------------------------------------------------------------
// Checker self-test.

func TestLinearizabilityCheckerCatchesStaleReads(t *testing.T) {
	t.Run("handwritten", linHandwrittenCases)
	t.Run("fake-store", linFakeStoreCases)
}

// linOp builds a history entry; ret < 0 means unknown outcome (returns at the
// end of the history). Times are distinct small integers, scaled by linTick
// as linTighten requires.
func linOp(client int, call, ret int64, in *linInput, out *linOutput) porcupine.Operation {
	if ret < 0 {
		ret = 1 << 20
		out = &linOutput{unknown: true, err: "timeout"}
	}
	return porcupine.Operation{ClientId: client, Input: in, Call: call * linTick, Output: out, Return: ret * linTick}
}

func linHandwrittenCases(t *testing.T) {
	put := func(k int, v string) *linInput { return &linInput{then: []linReqOp{{kind: linPut, key: k, val: v}}} }
	get := func(k int) *linInput { return &linInput{then: []linReqOp{{kind: linGet, key: k}}} }
	del := func(k int) *linInput { return &linInput{then: []linReqOp{{kind: linDel, key: k}}} }
	wrote := func(rev int64) *linOutput { return &linOutput{rev: rev, succeeded: true, results: []linOpResult{{}}} }
	deleted := func(rev, n int64) *linOutput {
		return &linOutput{rev: rev, succeeded: true, results: []linOpResult{{deleted: n}}}
	}
	read := func(rev int64, kvs ...linKV) *linOutput {
		return &linOutput{rev: rev, succeeded: true, results: []linOpResult{{kvs: kvs, count: int64(len(kvs))}}}
	}
	kv := func(k int, v string, create, mod, ver int64) linKV {
		return linKV{key: k, val: v, create: create, mod: mod, ver: ver}
	}
	cas := &linInput{txn: true, cmps: []linCmp{{key: 0, target: linCmpValue, val: "zzz"}},
		then: []linReqOp{{kind: linPut, key: 0, val: "b"}}, els: []linReqOp{{kind: linGet, key: 0}}}

	// All histories start from an empty store at revision 1, like a fresh
	// etcd. Put k0=a therefore creates revision 2.
	cases := []struct {
		name  string
		ok    bool
		hist  []porcupine.Operation
		about string
	}{
		{"read-after-put", true, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(1, 20, 30, get(0), read(2, kv(0, "a", 2, 2, 1))),
		}, "control: the fresh value at the fresh revision"},
		{"stale-read", false, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(1, 20, 30, get(0), read(1)),
		}, "the Put completed before the Get started, yet the Get answers from revision 1"},
		{"stale-data-fresh-header", false, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(1, 20, 30, get(0), read(2)),
		}, "old data under the new header revision"},
		{"stale-read-other-key-header", false, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(1, 20, 30, get(1), read(1)),
		}, "k1 never changed, but revision 1 is in the past once the Put returned"},
		{"concurrent-read-may-be-old", true, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(1, 5, 30, get(0), read(1)),
		}, "control: a Get overlapping the Put may see either side"},
		{"wrong-mod-revision", false, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(0, 11, 20, put(0, "b"), wrote(3)),
			linOp(1, 30, 40, get(0), read(3, kv(0, "b", 2, 2, 2))),
		}, "right value, but the mod revision of the first Put"},
		{"delete-missing-bumps-revision", false, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(0, 20, 30, del(1), deleted(3, 0)),
		}, "deleting a missing key must not move the revision"},
		{"failed-txn-bumps-revision", false, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(0, 20, 30, cas, &linOutput{rev: 3, results: []linOpResult{{kvs: []linKV{kv(0, "a", 2, 2, 1)}, count: 1}}}),
		}, "a Txn whose Else branch only reads must not move the revision"},
		{"revision-gap", false, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(0, 20, 30, put(1, "b"), wrote(4)),
		}, "each write moves the revision by exactly one"},
		{"unknown-put-not-applied", true, []porcupine.Operation{
			linOp(0, 0, -1, put(0, "a"), nil),
			linOp(1, 20, 30, get(0), read(1)),
		}, "control: a failed Put may never have happened"},
		{"unknown-put-applied", true, []porcupine.Operation{
			linOp(0, 0, -1, put(0, "a"), nil),
			linOp(1, 20, 30, get(0), read(2, kv(0, "a", 2, 2, 1))),
		}, "control: a failed Put may have happened"},
		{"unknown-put-unapplied-after-seen", false, []porcupine.Operation{
			linOp(0, 0, -1, put(0, "a"), nil),
			linOp(1, 20, 30, get(0), read(2, kv(0, "a", 2, 2, 1))),
			linOp(1, 40, 50, get(0), read(1)),
		}, "once a failed Put was observed it cannot vanish again"},
		{"unknown-put-fills-gap", true, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(1, 5, -1, put(1, "b"), nil),
			linOp(0, 20, 30, put(0, "c"), wrote(4)),
			linOp(0, 40, 50, get(1), read(4, kv(1, "b", 3, 3, 1))),
		}, "control: a failed Put may take the revision nobody else reported"},
		{"unknown-put-no-gap", false, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(1, 5, -1, put(1, "b"), nil),
			linOp(0, 20, 30, put(0, "c"), wrote(3)),
			linOp(0, 40, 50, get(1), read(3, kv(1, "b", 3, 3, 1))),
		}, "revision 3 belongs to the second Put, so the failed Put cannot have it"},
		{"unknown-noop-anywhere", true, []porcupine.Operation{
			linOp(0, 0, 10, put(0, "a"), wrote(2)),
			linOp(1, 5, -1, cas, nil),
			linOp(0, 20, 30, put(0, "zzz"), wrote(3)),
			linOp(0, 40, 50, get(0), read(3, kv(0, "zzz", 2, 3, 2))),
		}, "control: a failed CAS that (if applied) changed nothing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := porcupine.Illegal
			if c.ok {
				want = porcupine.Ok
			}
			if got := porcupine.CheckOperationsTimeout(linModelFor(1, c.hist), c.hist, 10*time.Second); got != want {
				t.Errorf("%s: porcupine says %s, want %s", c.about, got, want)
			}
			// Narrowing the intervals must not change the verdict.
			if got := porcupine.CheckOperationsTimeout(linModelFor(1, c.hist), linTighten(c.hist), 10*time.Second); got != want {
				t.Errorf("%s: after linTighten porcupine says %s, want %s", c.about, got, want)
			}
		})
	}
}

// linFakeStore is an in-process store that applies requests to the model
// state under a mutex (so it is linearizable by construction) and can break
// that on purpose.
type linFakeStore struct {
	linFakeFaults
	mu        sync.Mutex
	cur, prev linState // prev: the state one revision ago
	rng       *rand.Rand
}

type linFakeFaults struct {
	// staleReads answers read-only requests from the previous revision,
	// like the metastore_fault_stalereads build; freshHeader then still
	// reports the current revision in the header.
	staleReads, freshHeader bool
	// failPer100k of the writes fail with an error; half of those are
	// applied anyway, so the client cannot know.
	failPer100k int
	// lostPer100k of the writes are acknowledged but not applied (a bug).
	lostPer100k int
}

func newLinFakeStore(faults linFakeFaults) *linFakeStore {
	f := &linFakeStore{linFakeFaults: faults, cur: linState{rev: 1}}
	f.prev = f.cur
	f.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	return f
}

func (f *linFakeStore) exec(_ context.Context, in *linInput) (*linOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in.readOnly() && f.staleReads {
		_, out := linApply(f.prev, in)
		if f.freshHeader {
			out.rev = f.cur.rev
		}
		return &out, nil
	}
	next, out := linApply(f.cur, in)
	if in.readOnly() {
		return &out, nil
	}
	if f.rng.IntN(100_000) < f.lostPer100k {
		return &out, nil
	}
	fail := f.rng.IntN(100_000) < f.failPer100k
	if fail && f.rng.IntN(2) == 0 {
		return nil, errors.New("injected failure, not applied")
	}
	if next.rev != f.cur.rev {
		f.prev, f.cur = f.cur, next
	}
	if fail {
		return nil, errors.New("injected failure, applied")
	}
	return &out, nil
}

func linFakeStoreCases(t *testing.T) {
	cases := []struct {
		name        string
		store       linFakeFaults
		wantIllegal bool
	}{
		{"correct", linFakeFaults{}, false},
		{"stale-reads", linFakeFaults{staleReads: true}, true},
		{"stale-data-fresh-header", linFakeFaults{staleReads: true, freshHeader: true}, true},
		// About as many unknown outcomes as linMaxErrors allows.
		{"failing-writes", linFakeFaults{failPer100k: 70}, false},
		{"lost-writes", linFakeFaults{lostPer100k: 100}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newLinFakeStore(c.store)
			res := linRun(t, func(int) linExec { return f.exec }, linRunConfig{
				workers:   linWorkers,
				maxOps:    linMaxOpsPerWorker,
				duration:  linDuration,
				opTimeout: linOpTimeout,
				seed:      time.Now().UnixNano(),
			})
			if c.store.failPer100k > 0 {
				// The failures are the point here; they are few enough
				// to check, so skip linCheck's error budget.
				res.dropped, res.unknown = 0, 0
			}
			linCheck(t, res, c.wantIllegal)
		})
	}

	// The history preprocessing (linPlaceUnknown, linTighten and the gap
	// restriction in linModel) exists only to make big histories
	// checkable; it must never change a verdict. Small random histories
	// from correct and broken fake stores, many with unknown outcomes, are
	// checked both ways.
	t.Run("preprocessing-keeps-verdict", func(t *testing.T) {
		stores := []linFakeFaults{
			{},
			{failPer100k: 15_000},
			{staleReads: true},
			{staleReads: true, failPer100k: 15_000},
			{lostPer100k: 3_000},
			{lostPer100k: 3_000, failPer100k: 15_000},
		}
		verdicts := map[porcupine.CheckResult]int{}
		for i := range 240 {
			f := newLinFakeStore(stores[i%len(stores)])
			res := linRun(t, func(int) linExec { return f.exec }, linRunConfig{
				workers: 4, maxOps: 20, duration: time.Second, opTimeout: time.Second,
				seed: int64(i), quiet: true,
			})
			raw := porcupine.CheckOperationsTimeout(linModel(res.rev0, nil, 0), res.raw, 5*time.Second)
			if raw == porcupine.Unknown {
				continue
			}
			verdicts[raw]++
			got := porcupine.CheckOperationsTimeout(linModelFor(res.rev0, res.history), linTighten(res.history), 5*time.Second)
			if got != raw {
				t.Errorf("history %d (store %+v): %s as recorded but %s after preprocessing", i, stores[i%len(stores)], raw, got)
			}
		}
		t.Logf("verdicts of the recorded histories: %v", verdicts)
		if verdicts[porcupine.Ok] < 20 || verdicts[porcupine.Illegal] < 20 {
			t.Errorf("want plenty of both verdicts, got %v", verdicts)
		}
	})
}
