package test

// The KV conformance suite is written once against Target and run against
// every backend: MetaStore started in-process through rpc.Start, and a real
// etcd v3.7 started in-process through embed. etcd is the oracle: any
// expectation that fails against etcd is a wrong test, not a server bug.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/rpc"
)

// backendsEnv selects the backends to run, comma separated; unset means all.
const backendsEnv = "METASTORE_BACKENDS"

// opTimeout bounds every single request so a hung server fails the test
// instead of eating the whole go test timeout.
const opTimeout = 20 * time.Second

// serverOptions are the server settings a test may change from the etcd
// defaults. Both backends honour each of them.
type serverOptions struct {
	maxTxnOps       int
	maxRequestBytes int
	// logErrors sends MetaStore's error log lines to stderr; by default it
	// logs nothing. etcd logs nothing either way.
	logErrors bool
	// quotaBytes, if set, is etcd's --quota-backend-bytes.
	quotaBytes int64
	// progressInterval, if set, is --watch-progress-notify-interval.
	progressInterval time.Duration
	// durable runs MetaStore on a data dir in the test's temp dir instead
	// of in memory (etcd always has one), for what needs it: HashKV,
	// snapshots, defragmentation.
	durable bool
	// metricsAddr, if set, asks for a --listen-metrics-urls listener; the
	// backend writes its host:port there once started.
	metricsAddr *string
	// compactionMode and compactionRetention, if set, are
	// --auto-compaction-mode and --auto-compaction-retention.
	compactionMode, compactionRetention string
	// authToken, authTokenTTL and bcryptCost, if set, are etcd's
	// --auth-token, --auth-token-ttl and --bcrypt-cost.
	authToken    string
	authTokenTTL time.Duration
	bcryptCost   int
}

type serverOption func(*serverOptions)

func newServerOptions(opts []serverOption) serverOptions {
	o := serverOptions{maxTxnOps: rpc.DefaultMaxTxnOps, maxRequestBytes: rpc.DefaultMaxRequestBytes}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func withMaxTxnOps(n int) serverOption {
	return func(o *serverOptions) { o.maxTxnOps = n }
}

func withMaxRequestBytes(n int) serverOption {
	return func(o *serverOptions) { o.maxRequestBytes = n }
}

// withEtcdQuota sets etcd's backend quota (MetaStore's durable quota is
// tested on its own data dir, in durability_test.go).
func withEtcdQuota(n int64) serverOption {
	return func(o *serverOptions) { o.quotaBytes = n }
}

// withProgressNotifyInterval sets --watch-progress-notify-interval. NB: etcd
// keeps it in a package variable (v3rpc.SetProgressReportInterval), so an
// embedded etcd's interval is the last one set in the process: tests that
// set it must not run in parallel with other watch tests.
func withProgressNotifyInterval(d time.Duration) serverOption {
	return func(o *serverOptions) { o.progressInterval = d }
}

// withDataDir runs MetaStore on a data dir rather than in memory.
func withDataDir() serverOption {
	return func(o *serverOptions) { o.durable = true }
}

// withMetricsListener serves /metrics and the health endpoints on a
// listener of their own (--listen-metrics-urls), whose host:port is
// written to *addr when the server has started.
func withMetricsListener(addr *string) serverOption {
	return func(o *serverOptions) { o.metricsAddr = addr }
}

// withAutoCompaction sets --auto-compaction-mode and
// --auto-compaction-retention.
func withAutoCompaction(mode, retention string) serverOption {
	return func(o *serverOptions) { o.compactionMode, o.compactionRetention = mode, retention }
}

// withAuthToken sets --auth-token: "simple" (the default) or a JWT spec
// such as "jwt,pub-key=...,priv-key=...,sign-method=RS256".
func withAuthToken(spec string) serverOption {
	return func(o *serverOptions) { o.authToken = spec }
}

// withAuthTokenTTL sets --auth-token-ttl, how long a simple token lives
// unused. etcd counts it in whole seconds.
func withAuthTokenTTL(d time.Duration) serverOption {
	return func(o *serverOptions) { o.authTokenTTL = d }
}

// withBcryptCost sets --bcrypt-cost. Tests that add users use
// bcrypt.MinCost: at etcd's default every password costs tens of
// milliseconds twice, when set and when checked.
func withBcryptCost(n int) serverOption {
	return func(o *serverOptions) { o.bcryptCost = n }
}

// withErrorLog makes MetaStore log its errors (only) to stderr, for tests
// whose failures they may explain; routine logging would bury the test
// output. Not t.Log: server goroutines may still log after the test ends.
func withErrorLog() serverOption {
	return func(o *serverOptions) { o.logErrors = true }
}

// Target is one running server under test and the ways to talk to it.
type Target struct {
	// Name is the backend's name: "metastore" or "etcd".
	Name string
	// Endpoint is host:port, as clientv3 and grpc want it.
	Endpoint string
	// Client is a clientv3 client, for the tests that go through the
	// official client the way users do.
	Client *clientv3.Client
	// Conn is a plain gRPC connection without clientv3's retry and
	// validation layers, so malformed requests reach the server as sent.
	Conn *grpc.ClientConn
	// KV is the raw KV service on Conn.
	KV pb.KVClient
}

// backend knows how to start one kind of server for a test. start registers
// the server's shutdown with t.Cleanup and returns its host:port endpoint.
type backend struct {
	name  string
	start func(t testing.TB, o serverOptions) string
}

var backends = []backend{
	{name: "metastore", start: startMetaStore},
	{name: "etcd", start: startEtcd},
}

// forEachBackend runs fn once per selected backend, as subtest "<backend>",
// against a server started for this call alone. Subtests inside fn share
// that server, so they must use keys under their own keyPrefix and compute
// revisions relative to one read at their start.
func forEachBackend(t *testing.T, fn func(t *testing.T, tg *Target), opts ...serverOption) {
	t.Helper()
	runBackends(t, selectedBackends(t), fn, opts)
}

// onlyBackend runs fn like forEachBackend, but only against the named
// backend, for behaviour that etcd does not share.
func onlyBackend(t *testing.T, name string, fn func(t *testing.T, tg *Target), opts ...serverOption) {
	t.Helper()
	if !slices.Contains(selectedBackends(t), name) {
		t.Skipf("%s=%s does not select %s", backendsEnv, os.Getenv(backendsEnv), name)
	}
	runBackends(t, []string{name}, fn, opts)
}

func runBackends(t *testing.T, names []string, fn func(t *testing.T, tg *Target), opts []serverOption) {
	t.Helper()
	o := newServerOptions(opts)
	for _, b := range backends {
		if !slices.Contains(names, b.name) {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			fn(t, connect(t, b.name, b.start(t, o)))
		})
	}
}

// selectedBackends reads backendsEnv: backend names separated by commas
// (or spaces or "|"), in order. Unset means every backend. A name listed
// twice stays twice: forEachBackend runs each backend once regardless,
// while the etcdctl and linearizability tests run it twice (subtests "etcd"
// and "etcd#01"); for etcdctl that checks the cross-backend comparison
// itself, as two etcds must always agree.
func selectedBackends(t testing.TB) []string {
	t.Helper()
	env := strings.TrimSpace(os.Getenv(backendsEnv))
	if env == "" {
		return []string{"metastore", "etcd"}
	}
	var names []string
	for _, n := range strings.FieldsFunc(env, func(r rune) bool { return r == ',' || r == '|' || unicode.IsSpace(r) }) {
		if !slices.ContainsFunc(backends, func(b backend) bool { return b.name == n }) {
			t.Fatalf("%s: unknown backend %q (want metastore or etcd)", backendsEnv, n)
		}
		names = append(names, n)
	}
	return names
}

// startBackend starts the named backend for t alone and returns its
// host:port; the server stops when t ends.
func startBackend(t testing.TB, name string, opts ...serverOption) string {
	t.Helper()
	for _, b := range backends {
		if b.name == name {
			return b.start(t, newServerOptions(opts))
		}
	}
	t.Fatalf("unknown backend %q", name)
	return ""
}

// startMetaStore starts MetaStore in-process, in memory unless the test
// asked for a data dir.
func startMetaStore(t testing.TB, o serverOptions) string {
	t.Helper()
	cfg := rpc.DefaultConfig()
	cfg.ListenClientURLs = []string{"http://127.0.0.1:0"}
	cfg.InMemory = !o.durable
	cfg.DataDir = t.TempDir()
	// Four shards so that a handful of keys already spans several shards
	// and the cross-shard paths are exercised.
	cfg.Shards = 4
	cfg.MaxTxnOps = o.maxTxnOps
	cfg.MaxRequestBytes = o.maxRequestBytes
	// etcd's shortest lease TTL follows its election timeout: 1 s for the
	// embedded etcd below (10 ms ticks, 100 ms elections), 2 s with etcd's
	// defaults, which MetaStore keeps unless told.
	cfg.Lease.MinTTL = 1
	if o.progressInterval > 0 {
		cfg.WatchProgressNotifyInterval = o.progressInterval
	}
	if o.metricsAddr != nil {
		cfg.ListenMetricsURLs = []string{"http://127.0.0.1:0"}
	}
	if o.compactionMode != "" {
		cfg.AutoCompactionMode, cfg.AutoCompactionRetention = o.compactionMode, o.compactionRetention
	}
	o.metaStoreAuth(&cfg)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.logErrors {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
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
	if o.metricsAddr != nil {
		*o.metricsAddr = strings.TrimPrefix(srv.MetricsURLs()[0], "http://")
	}
	return strings.TrimPrefix(urls[0], "http://")
}

// startEtcd starts a single-member etcd v3.7 in-process: the oracle the
// MetaStore behaviour is held to.
func startEtcd(t testing.TB, o serverOptions) string {
	t.Helper()
	cfg := embed.NewConfig()
	// The peer listener takes port 0: a single-member cluster never dials
	// its own peer URL.
	local, err := url.Parse("http://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenPeerUrls = []url.URL{*local}
	cfg.AdvertisePeerUrls = []url.URL{*local}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// A short election timeout lets the lone member elect itself in a
	// fraction of a second, so startup does not eat into a test's time.
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	// The data dir is thrown away, so durability buys nothing but slowness.
	cfg.UnsafeNoFsync = true
	cfg.MaxTxnOps = uint(o.maxTxnOps)
	cfg.MaxRequestBytes = uint(o.maxRequestBytes)
	cfg.QuotaBackendBytes = o.quotaBytes
	// Always set: etcd keeps the interval in a package variable, so one
	// test's short interval would outlive its server.
	cfg.WatchProgressNotifyInterval = rpc.DefaultWatchProgressNotifyInterval
	if o.progressInterval > 0 {
		cfg.WatchProgressNotifyInterval = o.progressInterval
	}
	if o.compactionMode != "" {
		cfg.AutoCompactionMode, cfg.AutoCompactionRetention = o.compactionMode, o.compactionRetention
	}
	o.etcdAuth(cfg)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, metrics := startEmbedded(t, cfg, "http", o.metricsAddr != nil)
	if o.metricsAddr != nil {
		*o.metricsAddr = metrics
	}
	return e.Clients[0].Addr().String()
}

// metaStoreAuth applies the auth options to MetaStore's configuration.
func (o serverOptions) metaStoreAuth(cfg *rpc.Config) {
	if o.authToken != "" {
		cfg.Auth.Token = o.authToken
	}
	if o.authTokenTTL > 0 {
		cfg.Auth.TokenTTL = o.authTokenTTL
	}
	if o.bcryptCost > 0 {
		cfg.Auth.BcryptCost = o.bcryptCost
	}
}

// etcdAuth applies the auth options to an embedded etcd's configuration.
func (o serverOptions) etcdAuth(cfg *embed.Config) {
	if o.authToken != "" {
		cfg.AuthToken = o.authToken
	}
	if o.authTokenTTL > 0 {
		cfg.AuthTokenTTL = uint(o.authTokenTTL / time.Second)
	}
	if o.bcryptCost > 0 {
		cfg.BcryptCost = uint(o.bcryptCost)
	}
}

// startEmbedded starts an embedded etcd with cfg on client URLs (and, if
// withMetrics, a metrics URL) of the given scheme, waits until it serves,
// and returns it with the metrics listener's host:port. The listeners
// need real ports: etcd's JSON gateway dials the client URL as configured
// (with port 0 it would dial 127.0.0.1:0), and a metrics listener's
// address cannot be read back. A port picked and freed may be taken
// before etcd binds it, so a start that finds it taken picks again.
func startEmbedded(t testing.TB, cfg *embed.Config, scheme string, withMetrics bool) (*embed.Etcd, string) {
	t.Helper()
	var e *embed.Etcd
	var metrics url.URL
	for attempt := 1; ; attempt++ {
		cfg.Dir = t.TempDir()
		client := freeLocalURL(t)
		client.Scheme = scheme
		cfg.ListenClientUrls = []url.URL{client}
		cfg.AdvertiseClientUrls = []url.URL{client}
		if withMetrics {
			metrics = freeLocalURL(t)
			metrics.Scheme = scheme
			cfg.ListenMetricsUrls = []url.URL{metrics}
		}
		var err error
		if e, err = embed.StartEtcd(cfg); err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("start etcd: %v", err)
		}
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("etcd failed while starting: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready after 30s")
	}
	return e, metrics.Host
}

// freeLocalURL is an http URL on a port of 127.0.0.1 that was free a
// moment ago.
func freeLocalURL(t testing.TB) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a free port: %v", err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// connect makes the clients of a Target for the server at endpoint
// (host:port). The test's cleanup closes them.
func connect(t testing.TB, name, endpoint string) *Target {
	t.Helper()
	cli := newClient(t, endpoint)
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc client for %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &Target{Name: name, Endpoint: endpoint, Client: cli, Conn: conn, KV: pb.NewKVClient(conn)}
}

// newClient makes a clientv3 client for endpoint; the test's cleanup closes
// it.
func newClient(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clientv3 for %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// reqCtx is a per-request context bounded by opTimeout and by the test's life.
func reqCtx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return c
}

// keyPrefix is unique per (sub)test, so subtests sharing a server never see
// each other's keys.
func keyPrefix(t testing.TB) string {
	return "/" + t.Name() + "/"
}

// currentRev reads the store's current revision with a raw Range of a key
// nobody writes.
func (tg *Target) currentRev(t testing.TB) int64 {
	t.Helper()
	resp, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte("\x00never-written")})
	if err != nil {
		t.Fatalf("read current revision: %v", err)
	}
	return resp.Header.Revision
}

// put writes k=v through the raw KV service and returns the new revision.
func (tg *Target) put(t testing.TB, k, v string) int64 {
	t.Helper()
	resp, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(k), Value: []byte(v)})
	if err != nil {
		t.Fatalf("put %q: %v", k, err)
	}
	return resp.Header.Revision
}

// rangeKV is a raw Range that must succeed.
func (tg *Target) rangeKV(t testing.TB, r *pb.RangeRequest) *pb.RangeResponse {
	t.Helper()
	resp, err := tg.KV.Range(reqCtx(t), r)
	if err != nil {
		t.Fatalf("range %q..%q: %v", r.Key, r.RangeEnd, err)
	}
	return resp
}

// wantRPCErr checks that err is the etcd error want (a rpctypes.ErrGRPC*
// value): same gRPC code and same message. It accepts both raw gRPC status
// errors and the rpctypes.EtcdError that clientv3 turns them into.
func wantRPCErr(t testing.TB, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	ws := status.Convert(want)
	var code codes.Code
	var msg string
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code, msg = ee.Code(), ee.Error()
	} else {
		s := status.Convert(err)
		code, msg = s.Code(), s.Message()
	}
	if code != ws.Code() || msg != ws.Message() {
		t.Fatalf("got error code=%v msg=%q, want code=%v msg=%q", code, msg, ws.Code(), ws.Message())
	}
}

// wantCode checks only the gRPC status code of err.
func wantCode(t testing.TB, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("got code %v (err %v), want %v", got, err, want)
	}
}

// kvSummary renders kvs compactly for failure messages and comparisons.
func kvSummary(kvs []*mvccpb.KeyValue) string {
	var b strings.Builder
	for i, kv := range kvs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%q(c%d,m%d,v%d,l%d)", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	return b.String()
}

// keysOf lists the keys of kvs, in order.
func keysOf(kvs []*mvccpb.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
}

// prefixEnd is the range_end that selects every key starting with p.
func prefixEnd(p string) string {
	return clientv3.GetPrefixRangeEnd(p)
}
