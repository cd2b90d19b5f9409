package rpc

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/metastore/metastore/actors"
)

// Version is MetaStore's own version.
const Version = "0.1.0"

// APIVersion is the etcd API version MetaStore implements; clients parse it.
const APIVersion = "3.7.0"

// grpcOverheadBytes is what etcd allows on top of --max-request-bytes for
// gRPC framing, so that an oversized request reaches the server and gets
// etcd's "request is too large" rather than a transport error.
const grpcOverheadBytes = 512 * 1024

// Server is a running MetaStore: the actor system and the gRPC front door.
type Server struct {
	cfg       Config
	node      *actors.Node
	grpc      *grpc.Server
	pprof     *http.Server
	listeners []net.Listener
	urls      []string
	// metricsListeners serve /metrics and the health endpoints alone
	// (--listen-metrics-urls).
	metricsListeners []net.Listener
	// front serves gRPC and HTTP on the listeners (http.go).
	front *front
	// stopping ends the watch and keep-alive streams when the server stops.
	stopping chan struct{}
	// closeRecipes closes the in-process client of the lock and election
	// services.
	closeRecipes func()
	// compactor is the auto-compactor, nil if it is off.
	compactor *compactor
}

// Start starts a server with cfg and returns once it accepts requests.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, err := autoCompactionRetention(cfg.AutoCompactionMode, cfg.AutoCompactionRetention); err != nil {
		return nil, err
	}
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	quota := cfg.QuotaBackendBytes
	switch {
	case quota == 0: // etcd's meaning: the default
		quota = DefaultQuotaBackendBytes
	case quota < 0: // etcd's meaning: no quota
		quota = 0
	}
	if len(cfg.ListenClientURLs) == 0 {
		cfg.ListenClientURLs = []string{DefaultListenClientURL}
	}
	st, err := newServerTLS(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, stopping: make(chan struct{})}
	for _, u := range cfg.ListenClientURLs {
		l, err := listen(u, st, false)
		if err != nil {
			s.closeListeners()
			return nil, err
		}
		s.listeners = append(s.listeners, l)
		s.urls = append(s.urls, listenerURL(l))
	}
	for _, u := range cfg.ListenMetricsURLs {
		l, err := listen(u, st, true)
		if err != nil {
			s.closeListeners()
			return nil, err
		}
		s.metricsListeners = append(s.metricsListeners, l)
	}
	node, err := actors.Start(nodeConfig(cfg, quota))
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	s.node = node
	meta := node.Meta()
	hdr := &header{clusterID: meta.ClusterID, memberID: meta.MemberID, revision: node.Revision}
	// endedTLS shows gRPC the TLS state of connections whose TLS ended on
	// the listener, for the client certificate's common name.
	s.grpc = grpc.NewServer(slices.Concat(serverOptions(cfg.MaxRequestBytes), metricsOptions(), []grpc.ServerOption{grpc.Creds(endedTLS{})})...)
	g := &guard{node: node, clientCertAuth: cfg.ClientCertAuth}
	kv := &kvServer{node: node, hdr: hdr, guard: g, maxTxnOps: cfg.MaxTxnOps, maxRequestBytes: cfg.MaxRequestBytes}
	watch := &watchServer{node: node, hdr: hdr, guard: g, fragmentBytes: cfg.MaxRequestBytes + grpcOverheadBytes, stopping: s.stopping}
	lease := &leaseServer{node: node, hdr: hdr, guard: g, stopping: s.stopping}
	pb.RegisterKVServer(s.grpc, kv)
	pb.RegisterWatchServer(s.grpc, watch)
	pb.RegisterLeaseServer(s.grpc, lease)
	s.closeRecipes = registerRecipes(s.grpc, kv, lease, watch)
	advertise := s.urls
	if len(cfg.AdvertiseClientURLs) > 0 {
		advertise = cfg.AdvertiseClientURLs
	}
	self, err := newMember(cfg, node, advertise)
	if err != nil {
		s.Close()
		return nil, err
	}
	pb.RegisterClusterServer(s.grpc, &clusterServer{self: self, guard: g})
	pb.RegisterMaintenanceServer(s.grpc, &maintenanceServer{node: node, hdr: hdr, guard: g, self: self, quota: cfg.QuotaBackendBytes, logger: cfg.Logger})
	pb.RegisterAuthServer(s.grpc, newAuthServer(node, hdr, g, cfg.Auth.BcryptCost))
	startMetrics(s.grpc, node, cfg.QuotaBackendBytes, cfg.Logger)
	if s.front, err = serveFront(s.grpc, s.listeners, s.metricsListeners, node, cfg.Logger); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.PprofAddr != "" {
		if err := s.servePprof(cfg.PprofAddr); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.compactor, err = startCompactor(cfg, node); err != nil {
		s.Close()
		return nil, err
	}
	storage := fmt.Sprintf("data dir %s at revision %d", cfg.DataDir, node.Revision())
	if cfg.InMemory {
		storage = "in memory (nothing is written to disk)"
	}
	cfg.Logger.Info(fmt.Sprintf("metastore %s (etcd API %s) member %q serving %s (advertised %s) with %d shards, %s",
		Version, APIVersion, cfg.Name, strings.Join(s.urls, ","), strings.Join(advertise, ","), meta.Shards, storage))
	return s, nil
}

// serverOptions are the gRPC server options MetaStore serves with. The
// benchmark harness's ceiling server serves with a copy of them
// (bench/harness/ceiling.go; its TestServerOptionsMatchServer compares).
func serverOptions(maxRequestBytes int) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRequestBytes + grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		// A worker pool serves streams, so handler goroutines keep their
		// grown stacks instead of starting one per request.
		grpc.NumStreamWorkers(uint32(runtime.NumCPU())),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
}

// listen opens a listener for an etcd-style client (or, if metrics, metrics)
// URL: http:// serves plain text, https:// TLS with st, which etcd's error
// demands when the URL is https and no certificate was given.
func listen(rawURL string, st *serverTLS, metrics bool) (net.Listener, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rpc: bad client URL %q: %w", rawURL, err)
	}
	switch {
	case u.Scheme == "http":
	case u.Scheme != "https":
		return nil, fmt.Errorf("rpc: client URL %q: only http:// and https:// are supported", rawURL)
	case st == nil && metrics:
		return nil, errors.New("client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url")
	case st == nil:
		return nil, fmt.Errorf("TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme", u.String())
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("rpc: listen on %s: %w", u.Host, err)
	}
	if u.Scheme == "https" {
		return &tlsListener{Listener: l, tls: st, cfg: st.config()}, nil
	}
	return l, nil
}

// ClientURLs are the bound client URLs, such as "http://127.0.0.1:41234".
func (s *Server) ClientURLs() []string { return s.urls }

// Close stops accepting requests, lets those in flight finish, then stops
// the actors in order.
func (s *Server) Close() error {
	if s.pprof != nil {
		s.pprof.Close()
	}
	close(s.stopping)
	s.closeRecipes()
	if s.front != nil {
		// Calls still running after gracefulStopWait (a write waiting
		// on a stalled disk, a long stream) are cut off: the server must
		// stop within seconds.
		s.front.stop(gracefulStopWait)
	} else {
		s.grpc.Stop()
	}
	s.closeListeners()
	s.compactor.stop()
	s.node.Stop()
	return nil
}

// nodeConfig is the node's part of cfg with what Start derives for it.
func nodeConfig(cfg Config, quota int64) actors.Config {
	n := cfg.Config
	n.QuotaBytes = quota
	n.DefaultShards = DefaultShards()
	if n.Watch.ProgressInterval == 0 {
		n.Watch.ProgressInterval = cfg.WatchProgressNotifyInterval
	}
	return n
}

// gracefulStopWait is how long Close lets calls in flight finish.
const gracefulStopWait = 5 * time.Second

// servePprof serves the Go profiler, for profiling the server under load.
func (s *Server) servePprof(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("rpc: pprof listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.pprof.Serve(l) //nolint:errcheck // Serve returns when Close stops it
	return nil
}

func (s *Server) closeListeners() {
	for _, l := range slices.Concat(s.listeners, s.metricsListeners) {
		l.Close()
	}
}
