package rpc

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/soheilhy/cmux"
	"google.golang.org/grpc"
)

// front serves the client and metrics listeners. As etcd does, each client
// listener is split by the first bytes of each connection (cmux): an
// HTTP/2 preface goes to the gRPC server's own Serve loop, so gRPC runs
// exactly as on a listener of its own (grpc.Server.ServeHTTP would run
// every call on net/http's separate, slower HTTP/2 server instead); an
// HTTP/1.1 request line goes to an http.Server with the JSON gateway, the
// health endpoints, /version and /metrics. The metrics listeners serve
// /metrics and the health endpoints alone. On an https:// listener TLS is
// terminated first (tlsListener) and the split is the same, inside it.
type front struct {
	grpc    *grpc.Server
	web     *http.Server
	metrics *http.Server
	// gateway is the JSON gateway's connection to the gRPC server.
	gateway *grpc.ClientConn
	muxes   []cmux.CMux
	// conns holds every connection accepted on any listener until it is
	// closed, for stop to close those no server will: a connection cmux is
	// still sniffing (a client that sent nothing yet) and a hijacked one
	// (a websocket /v3/watch).
	conns connSet
	// silent are the HTTP connections that have not sent a request yet.
	silent silentConns
	// websockets are the websocket proxies running.
	websockets websockets
	// serving counts the goroutines front started: the Serve loops.
	serving sync.WaitGroup
}

// serveFront starts serving gs and the HTTP endpoints on clients (at least
// one) and the metrics endpoints on metrics.
func serveFront(gs *grpc.Server, clients, metrics []net.Listener, node healthNode, logger *slog.Logger) (*front, error) {
	f := &front{grpc: gs}
	conn, err := dialGateway(clients[0])
	if err != nil {
		return nil, err
	}
	gateway, err := newGateway(conn, logger)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	f.gateway = conn
	h := &health{node: node, logger: logger}
	f.web = f.newHTTPServer(clientHandler(f.websockets.count(gateway), h))
	for _, l := range clients {
		m := cmux.New(f.conns.track(l))
		web := m.Match(cmux.HTTP1())
		calls := m.Match(cmux.HTTP2())
		f.muxes = append(f.muxes, m)
		f.serving.Go(func() { _ = f.web.Serve(web) })
		f.serving.Go(func() { _ = gs.Serve(calls) })
		f.serving.Go(func() { _ = m.Serve() })
	}
	if len(metrics) > 0 {
		f.metrics = f.newHTTPServer(metricsHandler(h))
		addrs := make([]string, len(metrics))
		for i, l := range metrics {
			addrs[i] = listenerURL(l)
			f.serving.Go(func() { _ = f.metrics.Serve(f.conns.track(l)) })
		}
		logger.Info("serving /metrics and the health endpoints on " + strings.Join(addrs, ","))
	}
	return f, nil
}

// newHTTPServer is an http.Server as etcd configures its client one.
func (f *front) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Minute,
		// A client's malformed request is its own problem, not the log's.
		ErrorLog:  log.New(io.Discard, "", 0),
		ConnState: f.silent.track,
	}
}

// clientHandler is what the client URLs serve over HTTP/1.1, as etcd's:
// the gateway under /v3/, and beside it /health, /livez, /readyz (and
// their checks), /version, /metrics and /debug/vars.
func clientHandler(gateway http.Handler, h *health) http.Handler {
	endpoints := metricsHandler(h)
	endpoints.HandleFunc("/version", serveVersion)
	endpoints.HandleFunc("/debug/vars", serveVars)
	mux := http.NewServeMux()
	mux.Handle("/v3/", gateway)
	mux.Handle("/", endpoints)
	return withCORS(mux)
}

// metricsHandler is what --listen-metrics-urls serve: /metrics (the
// default Prometheus registry) and the health endpoints.
func metricsHandler(h *health) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	h.register(mux)
	return mux
}

// withCORS does what etcd does, with its default --cors='*', to every
// client HTTP request before routing it: the old /v3beta/ prefix becomes
// /v3/, every answer allows any origin, and a preflight OPTIONS request is
// answered 200 with no body.
func withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/v3beta/"); ok {
			r.URL.Path = "/v3/" + rest
		}
		w.Header().Add("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
		w.Header().Add("Access-Control-Allow-Origin", "*")
		w.Header().Add("Access-Control-Allow-Headers", "accept, content-type, authorization")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// stop stops serving. HTTP requests and gRPC calls in flight get wait, all
// together, to finish, then are cut off. (Streams never end by themselves:
// Server.Close ends them before it calls stop.) When stop returns, every
// connection is closed and every goroutine front started has returned.
func (f *front) stop(wait time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// No new connection reaches the servers, and their Serve loops return
	// (grpc's GracefulStop waits for them).
	for _, m := range f.muxes {
		m.Close()
	}
	websocketsDone := f.websockets.stop()
	var stopping sync.WaitGroup
	stopping.Go(func() {
		select {
		case <-websocketsDone:
		case <-ctx.Done():
		}
	})
	for _, srv := range []*http.Server{f.web, f.metrics} {
		if srv != nil {
			stopping.Go(func() {
				if srv.Shutdown(ctx) != nil {
					_ = srv.Close()
				}
			})
		}
	}
	f.silent.closeAll()
	stopping.Go(func() {
		done := make(chan struct{})
		go func() {
			f.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			f.grpc.Stop()
			<-done
		}
	})
	stopping.Wait()
	f.conns.closeAll()
	_ = f.gateway.Close()
	// A proxy still running returns once its connection is closed.
	<-websocketsDone
	f.serving.Wait()
}

// websockets counts the websocket proxies (websocket /v3/watch streams)
// running: their connections are hijacked from the http.Server, whose
// Shutdown therefore does not wait for them, while stop does, so that a
// websocket client gets the last message of its stream as an HTTP one
// does.
type websockets struct {
	mu      sync.Mutex
	stopped bool
	running sync.WaitGroup
}

// count is next, counting the websocket upgrades it serves. Once stop was
// called an upgrade is refused, so that the count only falls.
func (ws *websockets) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		if !ws.enter() {
			http.Error(w, "server is stopping", http.StatusServiceUnavailable)
			return
		}
		defer ws.running.Done()
		next.ServeHTTP(w, r)
	})
}

func (ws *websockets) enter() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.stopped {
		return false
	}
	ws.running.Add(1)
	return true
}

// stop refuses new websockets and returns a channel closed when the
// running ones have ended.
func (ws *websockets) stop() <-chan struct{} {
	ws.mu.Lock()
	ws.stopped = true
	ws.mu.Unlock()
	done := make(chan struct{})
	go func() {
		ws.running.Wait()
		close(done)
	}()
	return done
}

// silentConns are the connections of the HTTP servers that have not sent a
// request yet. http.Server.Shutdown waits 5 seconds for such a connection
// to send one; stop closes them at once instead, so that a client that
// connected and said nothing does not hold up Close.
type silentConns struct {
	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{}
}

// track is the servers' ConnState hook.
func (sc *silentConns) track(c net.Conn, state http.ConnState) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	switch {
	case state != http.StateNew:
		delete(sc.conns, c)
	case sc.closing:
		_ = c.Close()
	default:
		if sc.conns == nil {
			sc.conns = make(map[net.Conn]struct{})
		}
		sc.conns[c] = struct{}{}
	}
}

// closeAll closes the connections that have sent nothing, and from now on
// every new one.
func (sc *silentConns) closeAll() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.closing = true
	for c := range sc.conns {
		_ = c.Close()
	}
	sc.conns = nil
}

// connSet is the open connections accepted on the listeners it tracks.
type connSet struct {
	mu sync.Mutex
	// closed is set by closeAll: a connection accepted after it is closed
	// at once.
	closed bool
	// listeners are closed by closeAll, so that no Accept outlives it.
	listeners []net.Listener
	conns     map[*trackedConn]struct{}
}

// track returns l with its accepted connections in s.
func (s *connSet) track(l net.Listener) net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, l)
	return &trackedListener{Listener: l, set: s}
}

func (s *connSet) add(c *trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*trackedConn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// closeAll closes the tracked listeners and every connection still open.
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	listeners := s.listeners
	s.mu.Unlock()
	for _, l := range listeners {
		_ = l.Close()
	}
	for c := range conns {
		_ = c.Conn.Close()
	}
}

type trackedListener struct {
	net.Listener
	set *connSet
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: l.set}
	if !l.set.add(tc) {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

type trackedConn struct {
	net.Conn
	set *connSet
}

// NetConn is the connection tracked, for the gRPC server's credentials
// (endedTLS), which look for its TLS state.
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

func (c *trackedConn) Close() error {
	c.set.remove(c)
	return c.Conn.Close()
}

// MetricsURLs are the bound --listen-metrics-urls, such as
// "http://127.0.0.1:41235" (https:// for a TLS one).
func (s *Server) MetricsURLs() []string {
	urls := make([]string, len(s.metricsListeners))
	for i, l := range s.metricsListeners {
		urls[i] = listenerURL(l)
	}
	return urls
}
