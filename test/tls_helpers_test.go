package test

// Harness for the TLS tests in tls_test.go: a CA, a server and a client
// certificate made in the test, and MetaStore and etcd serving https://
// client URLs with them and --client-cert-auth.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/metastore/metastore/rpc"
)

// tlsFiles are a CA and the certificates it issued, as PEM files in a
// temporary directory.
type tlsFiles struct {
	dir   string
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	// serial is the last serial number issued.
	serial int64
	pool   *x509.CertPool
	caFile string
	// certFile and keyFile are the server's.
	certFile, keyFile     string
	clientCert, clientKey string
	clientPair            tls.Certificate
}

// newTLSFiles makes a CA, a server certificate for 127.0.0.1 and a client
// certificate (common name "client"), all in t.TempDir().
func newTLSFiles(t testing.TB) *tlsFiles {
	t.Helper()
	f := &tlsFiles{dir: t.TempDir(), serial: 1}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(f.serial),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if f.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	f.caKey = key
	f.caFile = filepath.Join(f.dir, "ca.pem")
	writePEM(t, f.caFile, "CERTIFICATE", der)
	f.pool = x509.NewCertPool()
	f.pool.AddCert(f.ca)
	f.certFile, f.keyFile = filepath.Join(f.dir, "server.pem"), filepath.Join(f.dir, "server-key.pem")
	f.issueServer(t)
	f.clientCert, f.clientKey = filepath.Join(f.dir, "client.pem"), filepath.Join(f.dir, "client-key.pem")
	f.issue(t, "client", x509.ExtKeyUsageClientAuth, f.clientCert, f.clientKey)
	if f.clientPair, err = tls.LoadX509KeyPair(f.clientCert, f.clientKey); err != nil {
		t.Fatal(err)
	}
	return f
}

// issueServer writes a new server certificate (a new serial) for 127.0.0.1
// over the server's files and returns its serial.
func (f *tlsFiles) issueServer(t testing.TB) *big.Int {
	t.Helper()
	return f.issue(t, "server", x509.ExtKeyUsageServerAuth, f.certFile, f.keyFile)
}

// issue writes a certificate signed by the CA, and its key, to the files.
// Servers present theirs as client certificates too (etcd's gateway does),
// so every certificate may serve both ends.
func (f *tlsFiles) issue(t testing.TB, name string, usage x509.ExtKeyUsage, certFile, keyFile string) *big.Int {
	t.Helper()
	f.serial++
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(f.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca, &key.PublicKey, f.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	writePEM(t, certFile, "CERTIFICATE", der)
	return tmpl.SerialNumber
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientTLS is a client's TLS config trusting the CA, with the client
// certificate if withCert.
func (f *tlsFiles) clientTLS(withCert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: f.pool, MinVersion: tls.VersionTLS12}
	if withCert {
		cfg.Certificates = []tls.Certificate{f.clientPair}
	}
	return cfg
}

// startTLSBackend starts the named backend serving one https:// client URL
// and one https:// --listen-metrics-urls with f's server certificate, f's
// CA as --trusted-ca-file and --client-cert-auth, and returns their
// host:ports. Of opts, only the auth options apply.
func startTLSBackend(t testing.TB, name string, f *tlsFiles, opts ...serverOption) (client, metrics string) {
	t.Helper()
	o := newServerOptions(opts)
	if name == "etcd" {
		return startTLSEtcd(t, f, o)
	}
	cfg := rpc.DefaultConfig()
	cfg.ListenClientURLs = []string{"https://127.0.0.1:0"}
	cfg.ListenMetricsURLs = []string{"https://127.0.0.1:0"}
	cfg.InMemory = true
	cfg.DataDir = t.TempDir()
	cfg.CertFile, cfg.KeyFile, cfg.TrustedCAFile, cfg.ClientCertAuth = f.certFile, f.keyFile, f.caFile, true
	o.metaStoreAuth(&cfg)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := rpc.Start(cfg)
	if err != nil {
		t.Fatalf("start metastore: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close metastore: %v", err)
		}
	})
	return httpsHost(t, srv.ClientURLs()[0]), httpsHost(t, srv.MetricsURLs()[0])
}

// httpsHost is the host:port of a reported https:// URL.
func httpsHost(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" {
		t.Fatalf("metastore reports URL %s, want https", u)
	}
	return u.Host
}

// startTLSEtcd is startEtcd's set-up (see there for why the client port is
// picked beforehand) with TLS on the client URL.
func startTLSEtcd(t testing.TB, f *tlsFiles, o serverOptions) (client, metrics string) {
	t.Helper()
	cfg := embed.NewConfig()
	local := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenPeerUrls = []url.URL{local}
	cfg.AdvertisePeerUrls = []url.URL{local}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.TickMs, cfg.ElectionMs = 10, 100
	cfg.UnsafeNoFsync = true
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = f.certFile, f.keyFile
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = f.caFile, true
	o.etcdAuth(cfg)
	e, metrics := startEmbedded(t, cfg, "https", true)
	return e.Clients[0].Addr().String(), metrics
}
