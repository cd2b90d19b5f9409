package test

// Harness for the etcdctl tests in etcdctl_test.go: it builds the real
// etcdctl (cmd/etcdctl) once per package run, starts the backends under
// test, runs etcdctl against them, and records a normalized transcript of
// every step so the transcripts of MetaStore and etcd can be compared.
//
// Every identifier here starts with "ctl" so it cannot collide with the
// shared backend helpers that other test files in this package define.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/metastore/metastore/rpc"
)

const (
	// ctlBackendsEnv picks the backends: "metastore", "etcd", or both
	// comma separated. Unset runs both, which is what makes the
	// cross-backend comparison possible.
	ctlBackendsEnv = "METASTORE_BACKENDS"

	// ctlCommandTimeout is etcdctl's own --command-timeout. Every request
	// here is tiny, so a few seconds only ever expire on a hung server.
	ctlCommandTimeout = "5s"

	// ctlProcessTimeout kills an etcdctl process that outlives its own
	// timeouts. `etcdctl txn` needs it: it commits with
	// context.Background() and ignores --command-timeout.
	ctlProcessTimeout = 30 * time.Second
)

var ctlAllBackends = []string{"metastore", "etcd"}

// ctlBuild holds the one etcdctl binary that all tests of a package run
// share. Building it from cmd/etcdctl (not using one from PATH or bin/) keeps
// `go test ./test/` working on a fresh clone and pins the exact etcdctl
// version in go.mod.
var ctlBuild struct {
	once sync.Once
	path string
	err  error
}

// ctlBinary returns the path of the etcdctl built for this package run.
//
// The binary goes to a fixed per-user directory under os.TempDir and is
// rebuilt every run (compilation is served from the go build cache, so this
// costs a link, about a second or two). A fixed place rather than a fresh
// MkdirTemp, because without a TestMain (other files in this package own
// that) there is nowhere to delete a fresh directory, and a binary leaked
// per run would pile up. The build writes a unique temporary name and
// renames it into place, so concurrent `go test` runs never see a partial
// file.
func ctlBinary(t *testing.T) string {
	t.Helper()
	ctlBuild.once.Do(func() {
		ctlBuild.path, ctlBuild.err = ctlBuildEtcdctl()
	})
	if ctlBuild.err != nil {
		t.Fatalf("build etcdctl: %v", ctlBuild.err)
	}
	return ctlBuild.path
}

func ctlBuildEtcdctl() (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("metastore-test-etcdctl-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "etcdctl-*.tmp")
	if err != nil {
		return "", err
	}
	tmpName := tmp.Name()
	_ = tmp.Close()
	defer os.Remove(tmpName) // a no-op once renamed

	// The go command of the toolchain running this test, so the binary is
	// built with the same Go version and module settings; PATH may hold
	// another go, or none.
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			return "", fmt.Errorf("no go command: %w", err)
		}
	}
	buildCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(buildCtx, goBin, "build", "-o", tmpName, "github.com/metastore/metastore/cmd/etcdctl")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %v\n%s", cmd.Args, err, out)
	}
	path := filepath.Join(dir, "etcdctl")
	if err := os.Rename(tmpName, path); err != nil {
		return "", err
	}
	return path, nil
}

// ctlSelectedBackends reads ctlBackendsEnv. A backend listed twice runs
// twice (subtests "etcd" and "etcd#01"), which checks the cross-backend
// comparison itself: two etcds must always agree.
func ctlSelectedBackends(t *testing.T) []string {
	t.Helper()
	env := strings.TrimSpace(os.Getenv(ctlBackendsEnv))
	if env == "" {
		return ctlAllBackends
	}
	var names []string
	for _, n := range strings.Split(env, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(ctlAllBackends, n) {
			t.Fatalf("%s: unknown backend %q (want metastore or etcd)", ctlBackendsEnv, n)
		}
		names = append(names, n)
	}
	return names
}

// ctlStartMetaStore starts an in-memory MetaStore for this test and returns
// its host:port.
func ctlStartMetaStore(t *testing.T) string {
	t.Helper()
	cfg := rpc.DefaultConfig()
	cfg.ListenClientURLs = []string{"http://127.0.0.1:0"}
	cfg.InMemory = true
	cfg.DataDir = t.TempDir()
	// Several shards, so even the few keys of one test spread over more than
	// one shard and ranges, deletes and txns take the cross-shard paths.
	cfg.Shards = 4
	// Errors only: a passing run stays quiet, a failing one still says why.
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := rpc.Start(cfg)
	if err != nil {
		t.Fatalf("start metastore: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close metastore: %v", err)
		}
	})
	urls := srv.ClientURLs()
	if len(urls) == 0 {
		t.Fatal("metastore reports no client URLs")
	}
	u, err := url.Parse(urls[0])
	if err != nil {
		t.Fatalf("metastore client URL %q: %v", urls[0], err)
	}
	return u.Host
}

// ctlStartEtcd starts a single-member etcd v3.7 in-process for this test and
// returns its host:port. It is the oracle the MetaStore output is held to.
func ctlStartEtcd(t *testing.T) string {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	// Port 0 on both listeners: the kernel picks free loopback ports with no
	// pick-then-bind race. A lone member never dials its own peer URL, and
	// the bound client address is read back from the listener below.
	local := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{local}
	cfg.AdvertiseClientUrls = []url.URL{local}
	cfg.ListenPeerUrls = []url.URL{local}
	cfg.AdvertisePeerUrls = []url.URL{local}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Fast ticks let the lone member elect itself in a fraction of a second.
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	// The data dir is thrown away; fsync only slows every write down.
	cfg.UnsafeNoFsync = true
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("etcd failed while starting: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready after 30s")
	}
	return e.Clients[0].Addr().String()
}

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
	bin := ctlBinary(t)
	var done []*ctl
	for _, name := range ctlSelectedBackends(t) {
		t.Run(name, func(t *testing.T) {
			var ep string
			switch name {
			case "metastore":
				ep = ctlStartMetaStore(t)
			case "etcd":
				ep = ctlStartEtcd(t)
			}
			c := &ctl{t: t, backend: name, bin: bin, endpoint: ep}
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
	procCtx, cancel := context.WithTimeout(c.t.Context(), ctlProcessTimeout)
	defer cancel()
	full := append([]string{
		"--endpoints=" + c.endpoint,
		"--command-timeout=" + ctlCommandTimeout,
		"--dial-timeout=3s",
	}, args...)
	cmd := exec.CommandContext(procCtx, c.bin, full...)
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
		c.t.Fatalf("etcdctl %q: %v (stderr %q)", args, err, out.stderr)
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

// jsonOut runs etcdctl with -w json, requires success and decodes the one
// JSON document it prints into v. The caller records a normalized form.
func (c *ctl) jsonOut(v any, args ...string) {
	c.t.Helper()
	args = append(slices.Clone(args), "-w", "json")
	out := c.exec("", args...)
	if out.code != 0 {
		c.t.Fatalf("etcdctl %q: exit %d, stderr:\n%s", args, out.code, out.stderr)
	}
	c.decode(out.stdout, v, args)
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
	args := []string{"get", "\x01ctl-never-written", "-w", "json"}
	out := c.exec("", args...)
	if out.code != 0 {
		c.t.Fatalf("etcdctl %q: exit %d, stderr:\n%s", args, out.code, out.stderr)
	}
	c.decode(out.stdout, &r, args)
	// A header without "revision" means revision 0. etcd never reports
	// that (a fresh store is at revision 1), but it is left to the tests to
	// flag, so one wrong start does not hide everything else.
	if r.Header == nil {
		c.t.Fatalf("get -w json has no header: %s", out.stdout)
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

// getJSON runs `get ... -w json`, records the normalized response and
// returns it.
func (c *ctl) getJSON(args ...string) ctlNRange {
	c.t.Helper()
	var r ctlRangeResp
	c.jsonOut(&r, append([]string{"get"}, args...)...)
	n := c.nRange(&r)
	c.record("get -w json "+strings.Join(args, " "), n)
	return n
}

// putJSON runs `put ... -w json`, records and returns the normalized response.
func (c *ctl) putJSON(args ...string) ctlNPut {
	c.t.Helper()
	var r ctlPutResp
	c.jsonOut(&r, append([]string{"put"}, args...)...)
	n := c.nPut(&r)
	c.record("put -w json "+strings.Join(args, " "), n)
	return n
}

// delJSON runs `del ... -w json`, records and returns the normalized response.
func (c *ctl) delJSON(args ...string) ctlNDel {
	c.t.Helper()
	var r ctlDelResp
	c.jsonOut(&r, append([]string{"del"}, args...)...)
	n := c.nDel(&r)
	c.record("del -w json "+strings.Join(args, " "), n)
	return n
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
