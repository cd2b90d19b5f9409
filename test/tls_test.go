package test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metastore/metastore/rpc"
)

// tlsClient is a clientv3 client over TLS with tlsCfg.
func tlsClient(t testing.TB, endpoint string, tlsCfg *tls.Config) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clientv3 for %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// shortCtx bounds a call that is expected to fail: a client refused at the
// handshake retries until its context ends.
func shortCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTLSClientCertAuth: with https:// client URLs and --client-cert-auth,
// a gRPC client with a certificate the CA issued is served; one without a
// certificate, and one speaking plain text, are not.
func TestTLSClientCertAuth(t *testing.T) {
	for _, name := range selectedBackends(t) {
		t.Run(name, func(t *testing.T) {
			f := newTLSFiles(t)
			endpoint, _ := startTLSBackend(t, name, f)

			cli := tlsClient(t, endpoint, f.clientTLS(true))
			if _, err := cli.Put(reqCtx(t), "tls-key", "tls-value"); err != nil {
				t.Fatalf("put with a client certificate: %v", err)
			}
			resp, err := cli.Get(reqCtx(t), "tls-key")
			if err != nil {
				t.Fatalf("get with a client certificate: %v", err)
			}
			if got := kvSummary(resp.Kvs); !strings.Contains(got, "tls-value") {
				t.Fatalf("get: %s, want tls-key=tls-value", got)
			}

			noCert := tlsClient(t, endpoint, f.clientTLS(false))
			if _, err := noCert.Get(shortCtx(t), "tls-key"); err == nil {
				t.Fatal("get without a client certificate succeeded")
			}

			conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := pb.NewKVClient(conn).Range(shortCtx(t), &pb.RangeRequest{Key: []byte("tls-key")}); err == nil {
				t.Fatal("plain-text gRPC to an https port succeeded")
			}
		})
	}
}

// TestTLSGateway: the JSON gateway and the health endpoint answer over
// https (the health endpoint on the https metrics URL too), to a client speaking HTTP/1.1 alone and to one that also offers
// HTTP/2 (as curl and browsers do); a client without a certificate is
// refused at the handshake.
func TestTLSGateway(t *testing.T) {
	for _, name := range selectedBackends(t) {
		t.Run(name, func(t *testing.T) {
			f := newTLSFiles(t)
			endpoint, metrics := startTLSBackend(t, name, f)
			cli := tlsClient(t, endpoint, f.clientTLS(true))
			if _, err := cli.Put(reqCtx(t), "gw-key", "gw-value"); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name  string
				http2 bool
			}{{"http1.1", false}, {"h2 offered", true}} {
				t.Run(tc.name, func(t *testing.T) {
					hc := &http.Client{Timeout: opTimeout, Transport: &http.Transport{
						TLSClientConfig:   f.clientTLS(true),
						ForceAttemptHTTP2: tc.http2,
					}}
					defer hc.CloseIdleConnections()
					body := `{"key":"` + base64.StdEncoding.EncodeToString([]byte("gw-key")) + `"}`
					var rng struct {
						KVs []struct{ Value string } `json:"kvs"`
					}
					httpsJSON(t, hc, http.MethodPost, "https://"+endpoint+"/v3/kv/range", body, &rng)
					if len(rng.KVs) != 1 || rng.KVs[0].Value != base64.StdEncoding.EncodeToString([]byte("gw-value")) {
						t.Fatalf("/v3/kv/range: %+v, want gw-value", rng)
					}
					var health struct{ Health string }
					httpsJSON(t, hc, http.MethodGet, "https://"+endpoint+"/health", "", &health)
					if health.Health != "true" {
						t.Fatalf("/health: health %q, want true", health.Health)
					}
					health.Health = ""
					httpsJSON(t, hc, http.MethodGet, "https://"+metrics+"/health", "", &health)
					if health.Health != "true" {
						t.Fatalf("metrics URL /health: health %q, want true", health.Health)
					}
				})
			}
			hc := &http.Client{Timeout: opTimeout, Transport: &http.Transport{TLSClientConfig: f.clientTLS(false)}}
			if resp, err := hc.Get("https://" + endpoint + "/health"); err == nil {
				resp.Body.Close()
				t.Fatalf("/health without a client certificate: %s, want a refused handshake", resp.Status)
			}
		})
	}
}

// httpsJSON sends body to u and decodes the 200 answer into out.
func httpsJSON(t *testing.T, hc *http.Client, method, u, body string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(reqCtx(t), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, u, resp.Status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("%s %s: %v in %s", method, u, err, data)
	}
}

// TestTLSEtcdctl: etcdctl --cacert --cert --key puts and gets over https
// with --client-cert-auth; without --cert and --key it fails.
func TestTLSEtcdctl(t *testing.T) {
	bin := buildBinary(t, etcdctlCmd)
	for _, name := range selectedBackends(t) {
		t.Run(name, func(t *testing.T) {
			f := newTLSFiles(t)
			client, _ := startTLSBackend(t, name, f)
			endpoint := "https://" + client
			common := []string{"--endpoints=" + endpoint, "--command-timeout=" + ctlCommandTimeout, "--dial-timeout=3s", "--cacert=" + f.caFile}
			withCert := append(common[:len(common):len(common)], "--cert="+f.clientCert, "--key="+f.clientKey)
			if out := runTool(t, bin, "", append(withCert, "put", "ctl-key", "ctl-value")...); out.code != 0 || out.stdout != "OK\n" {
				t.Fatalf("put: %+v", out)
			}
			if out := runTool(t, bin, "", append(withCert, "get", "ctl-key")...); out.code != 0 || out.stdout != "ctl-key\nctl-value\n" {
				t.Fatalf("get: %+v", out)
			}
			if out := runTool(t, bin, "", append(common, "--command-timeout=2s", "get", "ctl-key")...); out.code == 0 {
				t.Fatalf("get without a client certificate succeeded: %+v", out)
			}
		})
	}
}

// TestTLSCertReload: a server certificate replaced on disk is served to the
// next connection, without a restart.
func TestTLSCertReload(t *testing.T) {
	for _, name := range selectedBackends(t) {
		t.Run(name, func(t *testing.T) {
			f := newTLSFiles(t)
			endpoint, _ := startTLSBackend(t, name, f)
			first := servedSerial(t, endpoint, f)
			renewed := f.issueServer(t)
			if first.Cmp(renewed) == 0 {
				t.Fatalf("renewed serial %s equals the first", renewed)
			}
			if got := servedSerial(t, endpoint, f); got.Cmp(renewed) != 0 {
				t.Fatalf("after renewal the server presents serial %s, want %s (was %s)", got, renewed, first)
			}
		})
	}
}

// servedSerial is the serial of the certificate the server at endpoint
// presents to a new connection.
func servedSerial(t *testing.T, endpoint string, f *tlsFiles) *big.Int {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: f.clientTLS(true)}
	c, err := d.DialContext(reqCtx(t), "tcp", endpoint)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", endpoint, err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber
}

// TestTLSStartRequiresCert: an https:// client URL without --cert-file and
// --key-file stops start-up with etcd's error.
func TestTLSStartRequiresCert(t *testing.T) {
	const clientURL = "https://127.0.0.1:0"
	cfg := rpc.DefaultConfig()
	cfg.ListenClientURLs = []string{clientURL}
	cfg.InMemory = true
	cfg.DataDir = t.TempDir()
	_, msErr := rpc.Start(cfg)
	if msErr == nil {
		t.Fatal("metastore started with an https URL and no certificate")
	}
	ecfg := embed.NewConfig()
	ecfg.Dir = t.TempDir()
	local := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	ecfg.ListenPeerUrls, ecfg.AdvertisePeerUrls = []url.URL{local}, []url.URL{local}
	ecfg.InitialCluster = ecfg.InitialClusterFromName(ecfg.Name)
	ecfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	client, err := url.Parse(clientURL)
	if err != nil {
		t.Fatal(err)
	}
	ecfg.ListenClientUrls, ecfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	e, etcdErr := embed.StartEtcd(ecfg)
	if etcdErr == nil {
		e.Close()
		t.Fatal("etcd started with an https URL and no certificate")
	}
	if msErr.Error() != etcdErr.Error() {
		t.Fatalf("metastore: %q\netcd:      %q", msErr, etcdErr)
	}
}
