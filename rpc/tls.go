package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/soheilhy/cmux"
	"google.golang.org/grpc/credentials"
)

// serverTLS is the TLS of the https client and metrics URLs, as etcd's
// --cert-file, --key-file, --trusted-ca-file and --client-cert-auth set it
// up. The certificate is read again whenever its files change (see
// certFiles), so that a renewed certificate is served without a restart.
type serverTLS struct {
	cert *certFiles
	// clientCAs verify client certificates; nil means the system roots.
	clientCAs *x509.CertPool
	// clientAuth is etcd's: a client certificate is required and verified
	// with --client-cert-auth or --trusted-ca-file.
	clientAuth tls.ClientAuthType
}

// newServerTLS is cfg's TLS, or nil if cfg names no certificate. As etcd,
// it fails at start-up if the certificate, its key or the CA bundle cannot
// be read.
func newServerTLS(cfg Config) (*serverTLS, error) {
	if cfg.CertFile == "" && cfg.KeyFile == "" {
		return nil, nil
	}
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, fmt.Errorf("KeyFile and CertFile must both be present[key: %v, cert: %v]", cfg.KeyFile, cfg.CertFile)
	}
	st := &serverTLS{cert: &certFiles{certFile: cfg.CertFile, keyFile: cfg.KeyFile}, clientAuth: tls.NoClientCert}
	if _, err := st.cert.get(); err != nil {
		return nil, err
	}
	if cfg.TrustedCAFile != "" || cfg.ClientCertAuth {
		st.clientAuth = tls.RequireAndVerifyClientCert
	}
	if cfg.TrustedCAFile != "" {
		pem, err := os.ReadFile(cfg.TrustedCAFile)
		if err != nil {
			return nil, fmt.Errorf("rpc: trusted CA file: %w", err)
		}
		st.clientCAs = x509.NewCertPool()
		if !st.clientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("rpc: trusted CA file %s holds no certificate", cfg.TrustedCAFile)
		}
	}
	return st, nil
}

// config is the listeners' tls.Config. ALPN prefers http/1.1 so that a
// browser or curl, which offer both, speak HTTP/1.1 and reach the JSON
// gateway, while a gRPC client, which offers h2 alone, gets h2 and the
// gRPC server (the listener is split by the first bytes of each
// connection, see front).
func (st *serverTLS) config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1", "h2"},
		ClientAuth:     st.clientAuth,
		ClientCAs:      st.clientCAs,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return st.cert.get() },
	}
}

// gatewayConfig is the TLS of the JSON gateway's loopback connection to
// the server's own gRPC service. As etcd's gateway, it presents the
// server's certificate as its client certificate, so that it passes
// --client-cert-auth. It trusts exactly the certificate the server serves
// (whatever names it holds: the gateway dials an IP address).
func (st *serverTLS) gatewayConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		// VerifyConnection below replaces the name and chain checks.
		InsecureSkipVerify:   true, //nolint:gosec // the peer must be our own certificate, see VerifyConnection
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return st.cert.get() },
		VerifyConnection: func(cs tls.ConnectionState) error {
			own, err := st.cert.get()
			if err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, own.Certificate[0]) {
				return errors.New("rpc: gateway: the server presented a certificate that is not its own")
			}
			return nil
		},
	}
}

// certFiles is a certificate and key pair read from files on every
// handshake, as etcd's transport does, and parsed again only when their
// bytes changed. A pair that fails to load (a renewal caught halfway, the
// new certificate written but not yet its key) leaves the previous one
// served, and is tried again on the next handshake.
type certFiles struct {
	certFile, keyFile string

	mu sync.Mutex
	// certPEM and keyPEM are the bytes cert was parsed from.
	certPEM, keyPEM []byte
	cert            *tls.Certificate
}

func (cf *certFiles) get() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(cf.certFile)
	if err != nil {
		return cf.fallback(fmt.Errorf("rpc: cert file: %w", err))
	}
	keyPEM, err := os.ReadFile(cf.keyFile)
	if err != nil {
		return cf.fallback(fmt.Errorf("rpc: key file: %w", err))
	}
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.cert != nil && bytes.Equal(certPEM, cf.certPEM) && bytes.Equal(keyPEM, cf.keyPEM) {
		return cf.cert, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if cf.cert != nil {
			return cf.cert, nil
		}
		return nil, fmt.Errorf("rpc: certificate %s with key %s: %w", cf.certFile, cf.keyFile, err)
	}
	cf.certPEM, cf.keyPEM, cf.cert = certPEM, keyPEM, &cert
	return cf.cert, nil
}

// fallback is the certificate loaded before, or err if there is none.
func (cf *certFiles) fallback(err error) (*tls.Certificate, error) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.cert != nil {
		return cf.cert, nil
	}
	return nil, err
}

// tlsListener terminates TLS on each connection it accepts; the handshake
// runs on the first read, in the goroutine that serves the connection.
type tlsListener struct {
	net.Listener
	tls *serverTLS
	cfg *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(c, l.cfg), nil
}

// listenerURL is the URL a bound listener serves, such as
// "https://127.0.0.1:41234".
func listenerURL(l net.Listener) string {
	if _, ok := l.(*tlsListener); ok {
		return "https://" + l.Addr().String()
	}
	return "http://" + l.Addr().String()
}

// endedTLS is the gRPC server's transport credentials: TLS has already
// ended on the listener (tlsListener) before the gRPC/HTTP split, so the
// handshake here does nothing but find the connection's TLS state and
// hand it to gRPC as the peer's credentials.TLSInfo, where the auth guard
// reads the client certificate's common name (etcd's --client-cert-auth).
// Plain-text connections pass through with no security.
type endedTLS struct{}

// unwrapper is a connection wrapped by the server's own listeners.
type unwrapper interface{ NetConn() net.Conn }

func (endedTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	for inner := c; inner != nil; {
		switch t := inner.(type) {
		case *tls.Conn:
			return c, credentials.TLSInfo{
				State:          t.ConnectionState(),
				CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
			}, nil
		case *cmux.MuxConn:
			inner = t.Conn
		case unwrapper:
			inner = t.NetConn()
		default:
			inner = nil
		}
	}
	return c, plainText{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (endedTLS) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("rpc: endedTLS serves only")
}

func (endedTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (e endedTLS) Clone() credentials.TransportCredentials { return e }

func (endedTLS) OverrideServerName(string) error { return nil }

// plainText is the AuthInfo of a connection without TLS.
type plainText struct{ credentials.CommonAuthInfo }

func (plainText) AuthType() string { return "insecure" }
