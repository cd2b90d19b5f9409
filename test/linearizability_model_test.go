package test

// The sequential specification used by the linearizability tests (see
// linearizability_test.go): a SINGLE etcd member, including its global store
// revision. Every request the workload sends is described as a linInput and
// every response as a linOutput; linApply computes the one response a correct
// member would give in a given state, and the porcupine model accepts a
// recorded response only if it is identical to that.
//
// Why the revision is part of the state: etcd's revision is one global
// counter, so it is exactly what a sharded implementation has to get right
// across shards. It also means per-key partitioning is NOT sound here (an op
// on k1 constrains the revision seen by an op on k2), so the whole history is
// checked as a single partition (made tractable by linTighten and a cap on
// its size, see linearizability_test.go).

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// linNumKeys keys "k0".."k5": few enough to make operations collide often,
// many enough that (with hashing) they spread over several shards.
const linNumKeys = 6

var linKeyNames = [linNumKeys]string{"k0", "k1", "k2", "k3", "k4", "k5"}

// linRangeStart/linRangeEnd cover every workload key: [k0, k6).
const (
	linRangeStart = "k0"
	linRangeEnd   = "k6"
)

func linKeyIndex(key []byte) int {
	for i, k := range linKeyNames {
		if k == string(key) {
			return i
		}
	}
	return -1 // never equal to a model key, so any output holding it mismatches
}

type linOpKind uint8

const (
	linGet   linOpKind = iota // single-key linearizable Range
	linRange                  // Range over [k0, k6): a snapshot of all keys
	linPut
	linDel
)

// linReqOp is one request operation: a whole Put/Get/Delete request, or one
// operation of a Txn branch.
type linReqOp struct {
	kind   linOpKind
	key    int // index into linKeyNames; unused for linRange
	val    string
	prevKV bool // Put/Delete with WithPrevKV: the previous value is checked too
}

type linCmpTarget uint8

const (
	linCmpValue linCmpTarget = iota
	linCmpVersion
	linCmpMod
	linCmpCreate
)

// linCmp is a Txn compare; the workload only uses "=".
type linCmp struct {
	key    int
	target linCmpTarget
	val    string // for linCmpValue
	num    int64  // for the other targets
}

// linInput is one request. A plain Put/Get/Delete is txn=false with its single
// operation in then.
type linInput struct {
	txn  bool
	cmps []linCmp
	then []linReqOp
	els  []linReqOp
}

// readOnly reports whether no branch can write: a failed read-only request
// cannot have changed anything, so it is dropped from the history instead of
// being kept as "maybe applied".
func (in *linInput) readOnly() bool {
	for _, ops := range [][]linReqOp{in.then, in.els} {
		for _, op := range ops {
			if op.kind == linPut || op.kind == linDel {
				return false
			}
		}
	}
	return true
}

// linKV is a key-value as returned by the server.
type linKV struct {
	key              int
	val              string
	create, mod, ver int64
}

// linOpResult is the response of one operation. Get/Range: kvs and count.
// Put: prev (0 or 1 kv, only if prevKV was asked). Delete: deleted and prev.
type linOpResult struct {
	kvs     []linKV
	count   int64
	deleted int64
	prev    []linKV
}

// linOutput is one response. unknown marks a request whose outcome the client
// never learned (error/timeout): the model accepts any response for it, and
// the history gives it a return time after every other operation, so porcupine
// may linearize it anywhere after its call, including "after the end", which
// is the same as "never applied".
type linOutput struct {
	unknown   bool
	err       string
	pinned    int64 // unknown only: the revision it must have created, if known
	rev       int64 // response header revision
	succeeded bool  // Txn: which branch ran; always true for non-Txn requests
	results   []linOpResult
}

// linKeyState is one key in the model; ver == 0 means the key does not exist.
type linKeyState struct {
	val              string
	ver, create, mod int64
}

// linState is the model state. It is a comparable value (no maps or slices),
// so porcupine can copy, compare and hash it cheaply.
type linState struct {
	rev  int64
	keys [linNumKeys]linKeyState
}

func (s *linState) kv(i int) (linKV, bool) {
	ks := s.keys[i]
	if ks.ver == 0 {
		return linKV{}, false
	}
	return linKV{key: i, val: ks.val, create: ks.create, mod: ks.mod, ver: ks.ver}, true
}

func (s *linState) cmpHolds(c linCmp) bool {
	ks := s.keys[c.key]
	switch c.target {
	case linCmpValue:
		// etcd: a Value compare on a missing key always fails (see
		// applyCompare in etcdserver/txn); other targets compare against 0.
		return ks.ver != 0 && ks.val == c.val
	case linCmpVersion:
		return ks.ver == c.num
	case linCmpMod:
		return ks.mod == c.num
	case linCmpCreate:
		return ks.create == c.num
	}
	panic("unknown compare target")
}

// linApply executes in on s exactly as one etcd member would and returns the
// new state and the response it must give. Revision rules: all writes of one
// request share revision s.rev+1, and the revision moves (by exactly one)
// only if something changed: a Put always, a Delete only if the key existed,
// a Txn if its executed branch changed anything. The header revision is the
// revision after the request, which for a read is simply the current one.
func linApply(s linState, in *linInput) (linState, linOutput) {
	succeeded := true
	for _, c := range in.cmps {
		if !s.cmpHolds(c) {
			succeeded = false
			break
		}
	}
	ops := in.then
	if !succeeded {
		ops = in.els
	}
	next := s
	newRev := s.rev + 1
	changed := false
	out := linOutput{succeeded: succeeded, results: make([]linOpResult, len(ops))}
	for i, op := range ops {
		r := &out.results[i]
		switch op.kind {
		case linGet:
			// Reads later in the same Txn branch see the branch's earlier
			// writes, as in etcd, hence reading from next.
			if kv, ok := next.kv(op.key); ok {
				r.kvs = []linKV{kv}
			}
			r.count = int64(len(r.kvs))
		case linRange:
			for k := range linNumKeys {
				if kv, ok := next.kv(k); ok {
					r.kvs = append(r.kvs, kv)
				}
			}
			r.count = int64(len(r.kvs))
		case linPut:
			if kv, ok := next.kv(op.key); ok && op.prevKV {
				r.prev = []linKV{kv}
			}
			ks := next.keys[op.key]
			if ks.ver == 0 {
				ks.create = newRev
			}
			ks.ver++
			ks.mod = newRev
			ks.val = op.val
			next.keys[op.key] = ks
			changed = true
		case linDel:
			if kv, ok := next.kv(op.key); ok {
				r.deleted = 1
				if op.prevKV {
					r.prev = []linKV{kv}
				}
				next.keys[op.key] = linKeyState{}
				changed = true
			}
		}
	}
	if changed {
		next.rev = newRev
	}
	out.rev = next.rev
	return next, out
}

func linKVsEqual(a, b []linKV) bool {
	return slices.Equal(a, b) // linKV is comparable; nil and empty are equal
}

func linOutputEqual(a, b *linOutput) bool {
	if a.rev != b.rev || a.succeeded != b.succeeded || len(a.results) != len(b.results) {
		return false
	}
	for i := range a.results {
		x, y := &a.results[i], &b.results[i]
		if x.count != y.count || x.deleted != y.deleted ||
			!linKVsEqual(x.kvs, y.kvs) || !linKVsEqual(x.prev, y.prev) {
			return false
		}
	}
	return true
}

// linChanged reports whether a successful response shows that its request
// changed the store (so its header revision is one that request created): a
// Put in the executed branch, or a Delete that deleted something.
func linChanged(in *linInput, out *linOutput) bool {
	ops := in.then
	if !out.succeeded {
		ops = in.els
	}
	for i, op := range ops {
		switch op.kind {
		case linPut:
			return true
		case linDel:
			if i < len(out.results) && out.results[i].deleted > 0 {
				return true
			}
		}
	}
	return false
}

// linRevisionGaps returns the revisions in (rev0, maxObs] that no completed
// write reports creating and no unknown-outcome write is pinned to, where
// maxObs is the highest revision any completed response reported. In a
// correct history exactly these revisions were created by the remaining
// writes whose outcome the client never learned.
func linRevisionGaps(history []porcupine.Operation, rev0 int64) (gaps map[int64]bool, maxObs int64) {
	maxObs = rev0
	created := map[int64]bool{}
	for _, op := range history {
		out := op.Output.(*linOutput)
		if out.unknown {
			if out.pinned != 0 {
				created[out.pinned] = true
			}
			continue
		}
		maxObs = max(maxObs, out.rev)
		if linChanged(op.Input.(*linInput), out) {
			created[out.rev] = true
		}
	}
	gaps = map[int64]bool{}
	for r := rev0 + 1; r <= maxObs; r++ {
		if !created[r] {
			gaps[r] = true
		}
	}
	return gaps, maxObs
}

// linModelFor is linModel with the revision gaps of history.
func linModelFor(rev0 int64, history []porcupine.Operation) porcupine.Model {
	gaps, maxObs := linRevisionGaps(history, rev0)
	return linModel(rev0, gaps, maxObs)
}

// linModel is the porcupine model of one etcd member starting at revision
// rev0 with none of the workload keys present. No Partition function: the
// revision is global (see the top of this file).
//
// gaps and maxObs (see linRevisionGaps) restrict where an operation with an
// unknown outcome may be linearized, which keeps the search from trying it
// at every point, without changing the verdict. A pinned one (see
// linPlaceUnknown) must create exactly its revision. Any other, in any
// linearization the model accepts, either changes the store, and then the
// revision it creates is not one a completed or pinned write accounts for
// (the revision grows by one per change), so it is a gap or above maxObs;
// or it changes nothing, and then it can equally be moved to the very end
// (its return is open and nothing depends on it). So the model only lets it
// create a gap revision, or apply once the store has reached maxObs.
func linModel(rev0 int64, gaps map[int64]bool, maxObs int64) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return linState{rev: rev0} },
		Step: func(state, input, output any) (bool, any) {
			s := state.(linState)
			in := input.(*linInput)
			out := output.(*linOutput)
			next, want := linApply(s, in)
			if out.unknown {
				switch {
				case out.pinned != 0 && next.rev == out.pinned && s.rev == out.pinned-1:
				case out.pinned != 0:
					return false, s
				case next.rev > maxObs || s.rev >= maxObs || (next.rev != s.rev && gaps[next.rev]):
				default:
					return false, s
				}
				return true, next
			}
			if !linOutputEqual(&want, out) {
				return false, s
			}
			return true, next
		},
		Equal: func(a, b any) bool { return a.(linState) == b.(linState) },
		// Equal states have equal revisions and mod revisions, so this is a
		// valid hash; it only has to be cheap, porcupine calls it a lot.
		Hash: func(state any) uint64 {
			s := state.(linState)
			const prime = 1099511628211
			h := uint64(s.rev) * prime
			for _, k := range s.keys {
				h = (h ^ uint64(k.mod)) * prime
				h = (h ^ uint64(k.ver)) * prime
			}
			return h
		},
		DescribeOperation: func(input, output any) string {
			return input.(*linInput).String() + " → " + output.(*linOutput).String()
		},
		DescribeState: func(state any) string { return state.(linState).String() },
	}
}

func (s linState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rev=%d", s.rev)
	for i, ks := range s.keys {
		if ks.ver != 0 {
			fmt.Fprintf(&b, " %s=%s(v%d c%d m%d)", linKeyNames[i], ks.val, ks.ver, ks.create, ks.mod)
		}
	}
	return b.String()
}

func (op linReqOp) String() string {
	p := ""
	if op.prevKV {
		p = ",prev"
	}
	switch op.kind {
	case linGet:
		return "get(" + linKeyNames[op.key] + ")"
	case linRange:
		return "range(" + linRangeStart + ".." + linRangeEnd + ")"
	case linPut:
		return "put(" + linKeyNames[op.key] + "=" + op.val + p + ")"
	case linDel:
		return "del(" + linKeyNames[op.key] + p + ")"
	}
	return "?"
}

func (c linCmp) String() string {
	k := linKeyNames[c.key]
	switch c.target {
	case linCmpValue:
		return "value(" + k + ")==" + c.val
	case linCmpVersion:
		return fmt.Sprintf("version(%s)==%d", k, c.num)
	case linCmpMod:
		return fmt.Sprintf("mod(%s)==%d", k, c.num)
	case linCmpCreate:
		return fmt.Sprintf("create(%s)==%d", k, c.num)
	}
	return "?"
}

func linJoin[T fmt.Stringer](xs []T) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.String()
	}
	return strings.Join(parts, ", ")
}

func (in *linInput) String() string {
	if !in.txn {
		return in.then[0].String()
	}
	return "txn(if " + linJoin(in.cmps) + " then " + linJoin(in.then) + " else " + linJoin(in.els) + ")"
}

func (kv linKV) String() string {
	name := "?"
	if kv.key >= 0 && kv.key < linNumKeys {
		name = linKeyNames[kv.key]
	}
	return fmt.Sprintf("%s=%s(v%d c%d m%d)", name, kv.val, kv.ver, kv.create, kv.mod)
}

func (r linOpResult) String() string {
	var parts []string
	if len(r.kvs) > 0 || r.count != 0 {
		parts = append(parts, "["+linJoin(r.kvs)+"]")
	}
	if r.count != int64(len(r.kvs)) {
		parts = append(parts, fmt.Sprintf("count=%d", r.count))
	}
	if r.deleted != 0 {
		parts = append(parts, fmt.Sprintf("deleted=%d", r.deleted))
	}
	if len(r.prev) > 0 {
		parts = append(parts, "prev="+linJoin(r.prev))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func (out *linOutput) String() string {
	if out.unknown && out.pinned != 0 {
		return fmt.Sprintf("unknown (%s), created rev=%d", out.err, out.pinned)
	}
	if out.unknown {
		return "unknown (" + out.err + ")"
	}
	s := fmt.Sprintf("rev=%d", out.rev)
	if !out.succeeded {
		s += " else"
	}
	return s + " " + linJoin(out.results)
}
