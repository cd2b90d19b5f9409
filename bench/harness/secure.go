package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// The modes of a secure run (--secure): each workload runs on each system
// in the clear, with auth on and over TLS, so that what auth and TLS cost
// each system is read against the same run's plain numbers (issue 14: the
// same ratios to etcd with auth and TLS as without).
const (
	modePlain = "plain"
	modeAuth  = "auth"
	modeTLS   = "tls"
)

// secureModeNames is the default order of the modes within a workload.
var secureModeNames = []string{modePlain, modeAuth, modeTLS}

// A secure run compares the durable systems, like the main comparison's
// headline, on a write and a read workload; --systems and --workloads
// change that.
var (
	secureSystemNames   = []string{"metastore", "etcd"}
	secureWorkloadNames = []string{"put-100", "range-l"}
)

// rootUser is the user auth mode creates and bin/benchmark runs as: with
// the root role every request passes the permission check by role alone,
// so what is measured is the token check every request pays.
const rootUser = "root"

// security is how the server of a cell is reached. The zero value is the
// main comparison's: plain gRPC, no auth, and no mode named in the
// results.
type security struct {
	mode string
	// password is root's, in auth mode: random per run.
	password string
	// tls holds the certificates of tls mode.
	tls *tlsFiles
}

func (s security) auth() bool { return s.mode == modeAuth }

// clientURL is the client URL the server listens on and advertises.
func (s security) clientURL(port int) string {
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
}

// serverFlags are what the mode adds to the server's command line: etcd
// and MetaStore take the same flags. Auth mode names the token kind
// although simple is both servers' default, so the command line says
// what was measured; auth itself is turned on over the API once the
// server runs (enableAuth), as an operator does.
func (s security) serverFlags() []string {
	switch {
	case s.tls != nil:
		// Mutual TLS: the deployment that keeps unknown clients out.
		return []string{"--cert-file", s.tls.serverCert, "--key-file", s.tls.serverKey,
			"--trusted-ca-file", s.tls.ca, "--client-cert-auth"}
	case s.auth():
		return []string{"--auth-token", "simple"}
	}
	return nil
}

// benchFlags are what the mode adds to bin/benchmark's command line.
func (s security) benchFlags() []string {
	switch {
	case s.tls != nil:
		return []string{"--cacert=" + s.tls.ca, "--cert=" + s.tls.clientCert, "--key=" + s.tls.clientKey}
	case s.auth():
		return []string{"--user=" + rootUser + ":" + s.password}
	}
	return nil
}

// redact hides the run's password and certificate directory in text that
// goes to the report (a recorded command, an error quoting one): neither
// is secret once the run is over, but both differ every run and say
// nothing.
func (s security) redact(text string) string {
	if s.password != "" {
		text = strings.ReplaceAll(text, s.password, "PASSWORD")
	}
	if s.tls != nil {
		text = strings.ReplaceAll(text, s.tls.dir, "CERTS")
	}
	return text
}

// transportCredentials are the gRPC credentials of a raw connection to
// the server (the readiness probe).
func (s security) transportCredentials() credentials.TransportCredentials {
	if s.tls != nil {
		return credentials.NewTLS(s.tls.client.Clone())
	}
	return insecure.NewCredentials()
}

// clientConfig is a clientv3 configuration for the server at port; with
// user set it authenticates as root (auth mode, once auth is on).
func (s security) clientConfig(port int, user bool) clientv3.Config {
	cfg := clientv3.Config{Endpoints: []string{s.clientURL(port)}}
	if s.tls != nil {
		cfg.TLS = s.tls.client.Clone()
	}
	if user && s.auth() {
		cfg.Username, cfg.Password = rootUser, s.password
	}
	return cfg
}

// newSecurities prepares every mode of modes: a password for auth, a
// throwaway CA and certificates under dir for tls.
func newSecurities(modes []string, dir string) (map[string]security, error) {
	out := make(map[string]security, len(modes))
	for _, m := range modes {
		s := security{mode: m}
		switch m {
		case modeAuth:
			b := make([]byte, 16)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			s.password = hex.EncodeToString(b)
		case modeTLS:
			files, err := writeTLSFiles(dir)
			if err != nil {
				return nil, fmt.Errorf("certificates: %w", err)
			}
			s.tls = files
		}
		out[m] = s
	}
	return out, nil
}

// tlsFiles are a CA, a server certificate it signed (for 127.0.0.1 and
// localhost) and a client certificate it signed, as PEM files.
type tlsFiles struct {
	dir                    string
	ca                     string
	serverCert, serverKey  string
	clientCert, clientKey  string
	client                 *tls.Config // trusts the CA, presents the client certificate
	serverName, clientName string      // their subjects' common names
}

// certValidity is long enough for any run; the certificates are made
// anew by each.
const certValidity = 48 * time.Hour

// writeTLSFiles makes a CA, a server and a client certificate in dir
// (created if need be). The keys are ECDSA P-256, what a new deployment
// would choose; the key only matters to the handshake, once per
// connection, and the requests that follow pay for the symmetric cipher
// alone.
func writeTLSFiles(dir string) (*tlsFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f := &tlsFiles{
		dir: dir, ca: filepath.Join(dir, "ca.pem"),
		serverCert: filepath.Join(dir, "server.pem"), serverKey: filepath.Join(dir, "server-key.pem"),
		clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client-key.pem"),
		serverName: "metastore-bench server", clientName: "metastore-bench client",
	}
	now := time.Now()
	caKey, caDER, err := newCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "metastore-bench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	// The server's certificate serves as a client one too: etcd's gRPC
	// gateway dials its own server with it, which --client-cert-auth
	// checks.
	serverKey, serverDER, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: f.serverName},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
	}, caCert, caKey)
	if err != nil {
		return nil, err
	}
	clientKey, clientDER, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: f.clientName},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, caKey)
	if err != nil {
		return nil, err
	}
	serverPEM, err1 := pemKey(serverKey)
	clientPEM, err2 := pemKey(clientKey)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	for path, block := range map[string]*pem.Block{
		f.ca:         {Type: "CERTIFICATE", Bytes: caDER},
		f.serverCert: {Type: "CERTIFICATE", Bytes: serverDER},
		f.clientCert: {Type: "CERTIFICATE", Bytes: clientDER},
		f.serverKey:  serverPEM,
		f.clientKey:  clientPEM,
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, err
		}
	}
	pair, err := tls.LoadX509KeyPair(f.clientCert, f.clientKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	f.client = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	return f, nil
}

// newCert signs tmpl for a new key with parentKey as parent (self-signed
// when parent is nil); it returns the key and the certificate (DER).
func newCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	return key, der, nil
}

// pemKey is key as a PKCS #8 PEM block.
func pemKey(key *ecdsa.PrivateKey) (*pem.Block, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}, nil
}

// runSecure runs every round: each workload in each mode on every system,
// the systems innermost, so that the two numbers of each ratio to etcd are
// taken one right after the other.
func runSecure(ctx context.Context, o *options, res *results) error {
	secs, err := newSecurities(o.secureModes, filepath.Join(o.workDir, "certs"))
	if err != nil {
		return err
	}
	allW, allS := workloads(), systems()
	for round := 1; round <= o.rounds; round++ {
		for _, wn := range o.workloads {
			for _, m := range o.secureModes {
				for _, sn := range o.systems {
					if err := ctx.Err(); err != nil {
						return err
					}
					c := runCell(ctx, o, cell{sys: allS[sn], w: allW[wn], round: round, knobs: o.knobs, sec: secs[m]})
					logCell(c)
					res.Secure = append(res.Secure, c)
				}
			}
		}
	}
	return ctx.Err()
}

// enableAuth turns auth on as an operator does: user root with the root
// role, then auth enable.
func enableAuth(ctx context.Context, srv *server) error {
	return withConfig(ctx, srv.clientConfig(false), func(ctx context.Context, c *clientv3.Client) error {
		if _, err := c.UserAdd(ctx, rootUser, srv.sec.password); err != nil {
			return fmt.Errorf("user add: %w", err)
		}
		if _, err := c.UserGrantRole(ctx, rootUser, "root"); err != nil {
			return fmt.Errorf("user grant-role: %w", err)
		}
		if _, err := c.AuthEnable(ctx); err != nil {
			return fmt.Errorf("auth enable: %w", err)
		}
		return nil
	})
}

// authenticateCPU is the server CPU that n Authenticates as root take,
// made one after another as bin/benchmark makes them while it opens its
// connections. Each checks the password with bcrypt at the server's
// default cost, tens of milliseconds of CPU: a hundred of them would
// weigh more than the token checks of a quick run's requests.
func authenticateCPU(ctx context.Context, srv *server, n int) (float64, error) {
	var cpu float64
	err := withConfig(ctx, srv.clientConfig(false), func(ctx context.Context, c *clientv3.Client) error {
		before, err := sampleProc(srv.pid())
		if err != nil {
			return err
		}
		for range n {
			if _, err := c.Authenticate(ctx, rootUser, srv.sec.password); err != nil {
				return err
			}
		}
		after, err := sampleProc(srv.pid())
		if err != nil {
			return err
		}
		cpu = after.cpuSeconds - before.cpuSeconds
		return nil
	})
	return cpu, err
}
