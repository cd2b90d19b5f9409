package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/tmc/grpc-websocket-proxy/wsproxy"
	gw "go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	electiongw "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb/gw"
	lockgw "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb/gw"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
)

// gatewayHandlers are the JSON routes etcd serves under /v3/, each a
// generated grpc-gateway handler that calls the gRPC service over a client
// connection: etcd's own generated code, so paths and shapes are etcd's.
var gatewayHandlers = []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
	gw.RegisterKVHandler,
	gw.RegisterWatchHandler,
	gw.RegisterLeaseHandler,
	gw.RegisterClusterHandler,
	gw.RegisterMaintenanceHandler,
	gw.RegisterAuthHandler,
	lockgw.RegisterLockHandler,
	electiongw.RegisterElectionHandler,
}

// dialGateway opens the gateway's client connection to the server's own
// gRPC service on the client listener l, as etcd's gateway dials its own
// client URL: every JSON request then runs exactly as a gRPC one does,
// through the same validation, errors and metrics. grpc.NewClient connects
// lazily, on the first JSON request. On a TLS listener it speaks TLS (see
// serverTLS.gatewayConfig).
func dialGateway(l net.Listener) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tl, ok := l.(*tlsListener); ok {
		creds = credentials.NewTLS(tl.tls.gatewayConfig())
	}
	conn, err := grpc.NewClient(loopback(l.Addr()),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(viaGateway(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(viaGateway(ctx), desc, cc, method, opts...)
		}))
	if err != nil {
		return nil, fmt.Errorf("rpc: gateway connection: %w", err)
	}
	return conn, nil
}

// gatewayMark is the metadata the gateway's calls carry, so that the auth
// guard never takes one for a call made by the gateway's client
// certificate (the server's own) under --client-cert-auth. etcd relies on
// the "grpcgateway-accept" metadata alone, which a request without an
// Accept header does not bring. A client that sends the mark itself only
// gives up being named by its certificate.
const gatewayMark = "metastore-gateway"

// viaGateway marks a call of the gateway's.
func viaGateway(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, gatewayMark, "1")
}

// loopback is addr to dial from this host: a listener on every interface
// (0.0.0.0 or ::) is reached on the loopback address of its family.
func loopback(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	ip := net.IPv6loopback
	if tcp.IP.To4() != nil {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

// newGateway is etcd's JSON gateway over conn: its marshaler (proto field
// names, unset fields left out, so bytes are base64 and 64-bit integers
// strings; unknown request fields ignored), its handlers, and a websocket
// proxy in front so that a browser can hold /v3/watch open as a websocket,
// its messages sent as the stream's POST body.
func newGateway(conn *grpc.ClientConn, logger *slog.Logger) (http.Handler, error) {
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard,
		&runtime.HTTPBodyMarshaler{
			Marshaler: &runtime.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
			},
		}))
	for _, register := range gatewayHandlers {
		// The handlers keep no context: each request runs under its own.
		if err := register(context.Background(), mux, conn); err != nil {
			return nil, fmt.Errorf("rpc: gateway: %w", err)
		}
	}
	return wsproxy.WebsocketProxy(mux,
		wsproxy.WithRequestMutator(func(_, outgoing *http.Request) *http.Request {
			// A websocket opens with a GET; etcd's streams are POSTs.
			outgoing.Method = http.MethodPost
			return outgoing
		}),
		wsproxy.WithMaxRespBodyBufferSize(math.MaxInt32),
		wsproxy.WithLogger(wsLogger{logger}),
		// The proxy would turn a cookie named "token" into an
		// Authorization header, and it takes websockets from any origin: a
		// page of any site could then act with a token a browser holds
		// (etcd's gateway does). No cookie is read; a websocket client
		// names its token as its subprotocol ("Bearer, <token>").
		wsproxy.WithTokenCookieName(""),
	), nil
}

// wsLogger sends the websocket proxy's log lines to the server's logger.
type wsLogger struct{ l *slog.Logger }

func (w wsLogger) Warnln(args ...any)  { w.l.Warn(fmt.Sprint(args...)) }
func (w wsLogger) Debugln(args ...any) { w.l.Debug(fmt.Sprint(args...)) }
