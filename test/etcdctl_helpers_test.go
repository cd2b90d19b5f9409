package test

// Harness for the etcdctl tests in etcdctl_test.go: it runs the real
// etcdctl (cmd/etcdctl, see buildBinary) against the backends under test
// (see startBackend), and records a normalized transcript of every step so
// the transcripts of MetaStore and etcd can be compared.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// ctlCommandTimeout is etcdctl's own --command-timeout. Every request
	// here is tiny, so a few seconds only ever expire on a hung server.
	ctlCommandTimeout = "5s"

	// ctlProcessTimeout kills an etcdctl process that outlives its own
	// timeouts. `etcdctl txn` needs it: it commits with
	// context.Background() and ignores --command-timeout.
	ctlProcessTimeout = 30 * time.Second
)

// ctl runs etcdctl against one backend and keeps the transcript of the test.
type ctl struct {
	t        *testing.T
	backend  string
	bin      string
	endpoint string
	// base is the store revision when the test began; revisions are
	// recorded relative to it so the two backends can be compared even if
	// their revision counters started differently.
	base  int64
	steps []ctlStep
}

// ctlStep is one recorded observation: label says what ran (for messages),
// got is the backend-independent form of what came back.
type ctlStep struct {
	label string
	got   string
}

// ctlOut is what one etcdctl process did.
type ctlOut struct {
	stdout, stderr string
	code           int
}

// ctlEachBackend runs scenario once per selected backend, each as subtest
// "<backend>" against a server started for it alone, then checks that all
// backends recorded the same transcript. The scenario itself asserts the
// etcd behaviour it expects, so a single backend is still checked; the
// comparison adds whatever the scenario recorded but did not spell out.
func ctlEachBackend(t *testing.T, scenario func(c *ctl)) {
	t.Helper()
	ctlEachBackendWith(t, nil, scenario)
}

// ctlEachBackendWith is ctlEachBackend on servers started with opts (such
// as withDataDir()).
func ctlEachBackendWith(t *testing.T, opts []serverOption, scenario func(c *ctl)) {
	t.Helper()
	bin := buildBinary(t, etcdctlCmd)
	var done []*ctl
	for _, name := range selectedBackends(t) {
		t.Run(name, func(t *testing.T) {
			// Errors only: a passing run stays quiet, a failing one still
			// says why.
			c := &ctl{t: t, backend: name, bin: bin, endpoint: startBackend(t, name, append([]serverOption{withErrorLog()}, opts...)...)}
			c.base = c.currentRev()
			scenario(c)
			if !t.Failed() {
				done = append(done, c)
			}
		})
	}
	// A backend that failed its own assertions has already reported why;
	// comparing its partial transcript would only add noise.
	for _, other := range done[min(1, len(done)):] {
		ctlCompare(t, done[0], other)
	}
}

// ctlCompare reports the steps where two backends' transcripts disagree,
// the first few in full. Labels may differ (they hold absolute revisions);
// the recorded results must not.
func ctlCompare(t *testing.T, a, b *ctl) {
	t.Helper()
	const shown = 8
	if len(a.steps) != len(b.steps) {
		t.Errorf("%s recorded %d steps, %s recorded %d", a.backend, len(a.steps), b.backend, len(b.steps))
	}
	diffs := 0
	for i := range min(len(a.steps), len(b.steps)) {
		sa, sb := a.steps[i], b.steps[i]
		if sa.got == sb.got {
			continue
		}
		if diffs++; diffs <= shown {
			t.Errorf("step %d differs:\n  %s: %s\n    => %s\n  %s: %s\n    => %s",
				i, a.backend, sa.label, sa.got, b.backend, sb.label, sb.got)
		}
	}
	if diffs > shown {
		t.Errorf("... %d more steps differ between %s and %s", diffs-shown, a.backend, b.backend)
	}
}

// exec runs etcdctl with args (global flags are added here) and stdin, and
// records nothing.
func (c *ctl) exec(stdin string, args ...string) ctlOut {
	c.t.Helper()
	full := append([]string{
		"--endpoints=" + c.endpoint,
		"--command-timeout=" + ctlCommandTimeout,
		"--dial-timeout=3s",
	}, args...)
	return runTool(c.t, c.bin, stdin, full...)
}

// runTool runs the binary bin (etcdctl, etcdutl, metastore) with args and
// stdin, in ctlEnviron, bounded by ctlProcessTimeout, and returns what it
// did; a tool that cannot run or does not finish fails the test.
func runTool(t testing.TB, bin, stdin string, args ...string) ctlOut {
	t.Helper()
	procCtx, cancel := context.WithTimeout(t.Context(), ctlProcessTimeout)
	defer cancel()
	cmd := exec.CommandContext(procCtx, bin, args...)
	cmd.Env = ctlEnviron()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := ctlOut{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && procCtx.Err() == nil:
		out.code = exitErr.ExitCode()
	default:
		t.Fatalf("%s %q: %v (stderr %q)", filepath.Base(bin), args, err, out.stderr)
	}
	return out
}

// ctlEnviron is this process's environment for etcdctl, minus any ETCDCTL_*
// settings of the person running the tests: an ETCDCTL_ENDPOINTS or
// ETCDCTL_CERT would redirect or break every command. ETCDCTL_API=3 is not
// set either: etcdctl v3.7 only speaks v3, no longer knows that variable and
// warns "unrecognized environment variable" on every run.
func ctlEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			env = append(env, kv)
		}
	}
	return env
}

// record appends an observation to the transcript.
func (c *ctl) record(label string, got any) {
	c.t.Helper()
	s, ok := got.(string)
	if !ok {
		b, err := json.Marshal(got)
		if err != nil {
			c.t.Fatalf("record %s: %v", label, err)
		}
		s = string(b)
	}
	c.steps = append(c.steps, ctlStep{label: label, got: s})
}

// ok runs etcdctl, requires success, records and returns stdout.
func (c *ctl) ok(args ...string) string {
	c.t.Helper()
	return c.okIn("", args...)
}

// okIn is ok with stdin.
func (c *ctl) okIn(stdin string, args ...string) string {
	c.t.Helper()
	out := c.exec(stdin, args...)
	if out.code != 0 {
		c.t.Fatalf("etcdctl %q: exit %d, stderr:\n%s", args, out.code, out.stderr)
	}
	c.record(strings.Join(args, " "), out.stdout)
	return out.stdout
}

// want runs etcdctl, requires success and exactly the stdout want.
func (c *ctl) want(want string, args ...string) {
	c.t.Helper()
	c.wantIn("", want, args...)
}

// wantIn is want with stdin.
func (c *ctl) wantIn(stdin, want string, args ...string) {
	c.t.Helper()
	if got := c.okIn(stdin, args...); got != want {
		c.t.Errorf("etcdctl %q:\n got stdout %q\nwant stdout %q", args, got, want)
	}
}

// fails runs etcdctl, requires exit code code and an "Error: ..." line
// equal to wantErr, and records both plus the gRPC status code behind the
// error. Only the "Error:" line is asserted: etcdctl prints just the status
// message, and the client's retry warnings around it carry timestamps and
// addresses. The code is recorded so the cross-backend comparison catches a
// server that sends the right text with the wrong code (clientv3 decides
// on retries by code).
func (c *ctl) fails(code int, wantErr string, args ...string) {
	c.t.Helper()
	c.failsIn("", code, wantErr, args...)
}

// failsIn is fails with stdin.
func (c *ctl) failsIn(stdin string, code int, wantErr string, args ...string) {
	c.t.Helper()
	out := c.exec(stdin, args...)
	line := ctlErrorLine(out.stderr)
	if out.code != code || line != wantErr {
		c.t.Errorf("etcdctl %q:\n got exit %d, error line %q (stdout %q, stderr %q)\nwant exit %d, error line %q",
			args, out.code, line, out.stdout, out.stderr, code, wantErr)
	}
	c.record(strings.Join(args, " "), fmt.Sprintf("exit %d, gRPC code %q: %s", out.code, ctlGRPCCode(out.stderr), line))
}

// ctlGRPCCodeRE finds the status code in clientv3's "retrying of unary
// invoker failed" warning, which it logs for every failed unary call.
var ctlGRPCCodeRE = regexp.MustCompile(`rpc error: code = (\w+) desc`)

// ctlGRPCCode is the gRPC status code the server failed a call with, or ""
// for an error etcdctl raised itself.
func ctlGRPCCode(stderr string) string {
	if m := ctlGRPCCodeRE.FindStringSubmatch(stderr); m != nil {
		return m[1]
	}
	return ""
}

// ctlErrorLine is the "Error: ..." line that etcdctl prints before exiting
// non-zero, or "" if there is none.
func ctlErrorLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "Error:") {
			return l
		}
	}
	return ""
}

// jsonOut runs etcdctl with -w json, requires success, decodes the one
// JSON document it prints into v and returns it as printed. The caller
// records a normalized form.
func (c *ctl) jsonOut(v any, args ...string) string {
	c.t.Helper()
	args = append(slices.Clone(args), "-w", "json")
	out := c.exec("", args...)
	if out.code != 0 {
		c.t.Fatalf("etcdctl %q: exit %d, stderr:\n%s", args, out.code, out.stderr)
	}
	c.decode(out.stdout, v, args)
	return out.stdout
}

func (c *ctl) decode(stdout string, v any, args []string) {
	c.t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(v); err != nil {
		c.t.Fatalf("etcdctl %q: stdout is not JSON (%v):\n%s", args, err, stdout)
	}
	if _, err := dec.Token(); err != io.EOF {
		c.t.Fatalf("etcdctl %q: more than one JSON document:\n%s", args, stdout)
	}
}

// currentRev is the store's revision now, from the header of a get of a
// key nobody writes.
func (c *ctl) currentRev() int64 {
	c.t.Helper()
	var r ctlRangeResp
	stdout := c.jsonOut(&r, "get", "\x01ctl-never-written")
	// A header without "revision" means revision 0. etcd never reports
	// that (a fresh store is at revision 1), but it is left to the tests to
	// flag, so one wrong start does not hide everything else.
	if r.Header == nil {
		c.t.Fatalf("get -w json has no header: %s", stdout)
	}
	return r.Header.Revision
}

// rev turns a revision relative to the test's start into the absolute one.
func (c *ctl) rev(rel int64) int64 { return c.base + rel }

// revArg is rev formatted for a command line.
func (c *ctl) revArg(rel int64) string { return strconv.FormatInt(c.rev(rel), 10) }

// The JSON that `etcdctl -w json` prints is encoding/json applied to the
// etcdserverpb response structs: snake_case field names from their json
// tags, every field omitempty (a zero count, a false more, a zero version
// are simply absent), int64/uint64 as JSON numbers, and keys and values
// ([]byte) as standard base64. These mirror that shape; []byte fields decode
// the base64.

type ctlHeader struct {
	ClusterID uint64 `json:"cluster_id"`
	MemberID  uint64 `json:"member_id"`
	Revision  int64  `json:"revision"`
	RaftTerm  uint64 `json:"raft_term"`
}

type ctlKV struct {
	Key            []byte `json:"key"`
	CreateRevision int64  `json:"create_revision"`
	ModRevision    int64  `json:"mod_revision"`
	Version        int64  `json:"version"`
	Value          []byte `json:"value"`
	Lease          int64  `json:"lease"`
}

type ctlRangeResp struct {
	Header *ctlHeader `json:"header"`
	Kvs    []ctlKV    `json:"kvs"`
	More   bool       `json:"more"`
	Count  int64      `json:"count"`
}

type ctlPutResp struct {
	Header *ctlHeader `json:"header"`
	PrevKv *ctlKV     `json:"prev_kv"`
}

type ctlDelResp struct {
	Header  *ctlHeader `json:"header"`
	Deleted int64      `json:"deleted"`
	PrevKvs []ctlKV    `json:"prev_kvs"`
}

// ctlTxnResp is etcdctl's own TxnResponseJSON: unlike the other responses
// it wraps each op result as {"Response": {"response_put": ...}} (capital
// "Response", the Go field name, because the oneof has no json tag).
type ctlTxnResp struct {
	Header    *ctlHeader `json:"header"`
	Succeeded bool       `json:"succeeded"`
	Responses []struct {
		Response struct {
			ResponseRange       *ctlRangeResp `json:"response_range"`
			ResponsePut         *ctlPutResp   `json:"response_put"`
			ResponseDeleteRange *ctlDelResp   `json:"response_delete_range"`
		} `json:"Response"`
	} `json:"responses"`
}

// Normalized forms: what the transcript records and assertions compare.
// Revisions are relative to ctl.base; cluster/member ids and raft term are
// dropped because they are per-cluster identities, not KV semantics.

type ctlNKV struct {
	Key, Value  string
	Create, Mod int64
	Version     int64
	Lease       int64
}

type ctlNRange struct {
	Rev   int64
	Kvs   []ctlNKV
	More  bool
	Count int64
}

type ctlNPut struct {
	Rev    int64
	PrevKv *ctlNKV
}

type ctlNDel struct {
	Rev     int64
	Deleted int64
	PrevKvs []ctlNKV
}

type ctlNTxn struct {
	Rev       int64
	Succeeded bool
	Responses []any
}

// hdrRev is the header revision relative to base; a missing header is a
// protocol bug that etcdctl would print as no "header" at all.
func (c *ctl) hdrRev(h *ctlHeader) int64 {
	c.t.Helper()
	if h == nil {
		c.t.Errorf("response has no header")
		return -1 << 62
	}
	return h.Revision - c.base
}

func (c *ctl) nkv(kv ctlKV) ctlNKV {
	return ctlNKV{
		Key: string(kv.Key), Value: string(kv.Value),
		Create: kv.CreateRevision - c.base, Mod: kv.ModRevision - c.base,
		Version: kv.Version, Lease: kv.Lease,
	}
}

func (c *ctl) nkvs(kvs []ctlKV) []ctlNKV {
	var out []ctlNKV
	for _, kv := range kvs {
		out = append(out, c.nkv(kv))
	}
	return out
}

func (c *ctl) nRange(r *ctlRangeResp) ctlNRange {
	return ctlNRange{Rev: c.hdrRev(r.Header), Kvs: c.nkvs(r.Kvs), More: r.More, Count: r.Count}
}

func (c *ctl) nPut(r *ctlPutResp) ctlNPut {
	n := ctlNPut{Rev: c.hdrRev(r.Header)}
	if r.PrevKv != nil {
		kv := c.nkv(*r.PrevKv)
		n.PrevKv = &kv
	}
	return n
}

func (c *ctl) nDel(r *ctlDelResp) ctlNDel {
	return ctlNDel{Rev: c.hdrRev(r.Header), Deleted: r.Deleted, PrevKvs: c.nkvs(r.PrevKvs)}
}

func (c *ctl) nTxn(r *ctlTxnResp) ctlNTxn {
	n := ctlNTxn{Rev: c.hdrRev(r.Header), Succeeded: r.Succeeded}
	for i, op := range r.Responses {
		switch o := op.Response; {
		case o.ResponseRange != nil:
			n.Responses = append(n.Responses, map[string]ctlNRange{"range": c.nRange(o.ResponseRange)})
		case o.ResponsePut != nil:
			n.Responses = append(n.Responses, map[string]ctlNPut{"put": c.nPut(o.ResponsePut)})
		case o.ResponseDeleteRange != nil:
			n.Responses = append(n.Responses, map[string]ctlNDel{"delete": c.nDel(o.ResponseDeleteRange)})
		default:
			c.t.Errorf("txn response %d has no known op result", i)
			n.Responses = append(n.Responses, nil)
		}
	}
	return n
}

// ctlRecordJSON runs `<cmd> args... -w json`, decodes the response into an
// R, records its normalized form and returns it.
func ctlRecordJSON[R, N any](c *ctl, cmd string, normalize func(*R) N, args []string) N {
	c.t.Helper()
	var r R
	c.jsonOut(&r, append([]string{cmd}, args...)...)
	n := normalize(&r)
	c.record(cmd+" -w json "+strings.Join(args, " "), n)
	return n
}

// getJSON runs `get ... -w json`, records and returns the normalized response.
func (c *ctl) getJSON(args ...string) ctlNRange {
	c.t.Helper()
	return ctlRecordJSON(c, "get", c.nRange, args)
}

// putJSON runs `put ... -w json`, records and returns the normalized response.
func (c *ctl) putJSON(args ...string) ctlNPut {
	c.t.Helper()
	return ctlRecordJSON(c, "put", c.nPut, args)
}

// delJSON runs `del ... -w json`, records and returns the normalized response.
func (c *ctl) delJSON(args ...string) ctlNDel {
	c.t.Helper()
	return ctlRecordJSON(c, "del", c.nDel, args)
}

// txnJSON runs `txn -w json` with stdin, records and returns the normalized
// response.
func (c *ctl) txnJSON(stdin string) ctlNTxn {
	c.t.Helper()
	args := []string{"txn", "-w", "json"}
	out := c.exec(stdin, args...)
	if out.code != 0 {
		c.t.Fatalf("etcdctl txn -w json <<%q: exit %d, stderr:\n%s", stdin, out.code, out.stderr)
	}
	var r ctlTxnResp
	c.decode(out.stdout, &r, args)
	n := c.nTxn(&r)
	c.record("txn -w json <<"+strconv.Quote(stdin), n)
	return n
}

// ctlKeys lists the keys of kvs in order.
func ctlKeys(kvs []ctlNKV) []string {
	keys := []string{}
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	return keys
}

// ctlSimpleKVs renders key/value pairs the way etcdctl's simple output
// prints them: key line, value line.
func ctlSimpleKVs(kv ...string) string {
	var b strings.Builder
	for _, s := range kv {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}
