package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSFiles checks that the certificates the harness makes carry a
// mutual TLS handshake on 127.0.0.1 as the servers configure it
// (--trusted-ca-file with --client-cert-auth), and that a client without
// a certificate is refused.
func TestTLSFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	f, err := writeTLSFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f.ca, f.serverCert, f.serverKey, f.clientCert, f.clientKey} {
		info, err := os.Stat(p)
		if err != nil || info.Mode().Perm() != 0o600 || filepath.Dir(p) != dir {
			t.Errorf("%s: %v %v", p, info, err)
		}
	}
	pair, err := tls.LoadX509KeyPair(f.serverCert, f.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	caPEM, err := os.ReadFile(f.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.Handshake() == nil {
				peers <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			} else {
				peers <- ""
			}
			tc.Close()
		}
	}()
	handshake := func(cfg *tls.Config) error {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 reports the server's refusal of a client certificate on
		// the first read.
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		return err
	}
	if err := handshake(f.client.Clone()); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("with the client certificate: %v", err)
	}
	if cn := <-peers; cn != f.clientName {
		t.Errorf("server saw client %q, want %q", cn, f.clientName)
	}
	noCert := f.client.Clone()
	noCert.Certificates = nil
	if err := handshake(noCert); err == nil || strings.Contains(err.Error(), "EOF") {
		t.Errorf("without a client certificate: %v, want a refusal", err)
	}
	if cn := <-peers; cn != "" {
		t.Errorf("server accepted a client without a certificate: %q", cn)
	}
}

// TestSecurityFlags checks what each mode adds to the servers' and
// bin/benchmark's command lines, and what the report shows of them.
func TestSecurityFlags(t *testing.T) {
	files := &tlsFiles{dir: "/tmp/x/certs", ca: "/tmp/x/certs/ca.pem", serverCert: "/tmp/x/certs/server.pem",
		serverKey: "/tmp/x/certs/server-key.pem", clientCert: "/tmp/x/certs/client.pem", clientKey: "/tmp/x/certs/client-key.pem"}
	cases := []struct {
		sec              security
		url, server      string
		bench, redactedB string
	}{
		{security{}, "http://127.0.0.1:7", "", "", ""},
		{security{mode: modePlain}, "http://127.0.0.1:7", "", "", ""},
		{security{mode: modeAuth, password: "s3cret"}, "http://127.0.0.1:7", "--auth-token simple",
			"--user=root:s3cret", "--user=root:PASSWORD"},
		{security{mode: modeTLS, tls: files}, "https://127.0.0.1:7",
			"--cert-file /tmp/x/certs/server.pem --key-file /tmp/x/certs/server-key.pem --trusted-ca-file /tmp/x/certs/ca.pem --client-cert-auth",
			"--cacert=/tmp/x/certs/ca.pem --cert=/tmp/x/certs/client.pem --key=/tmp/x/certs/client-key.pem",
			"--cacert=CERTS/ca.pem --cert=CERTS/client.pem --key=CERTS/client-key.pem"},
	}
	for _, tc := range cases {
		name := tc.sec.mode
		if got := tc.sec.clientURL(7); got != tc.url {
			t.Errorf("%s: client URL %s, want %s", name, got, tc.url)
		}
		if got := strings.Join(tc.sec.serverFlags(), " "); got != tc.server {
			t.Errorf("%s: server flags %q, want %q", name, got, tc.server)
		}
		bench := strings.Join(tc.sec.benchFlags(), " ")
		if bench != tc.bench {
			t.Errorf("%s: bin/benchmark flags %q, want %q", name, bench, tc.bench)
		}
		if got := tc.sec.redact(bench); got != tc.redactedB {
			t.Errorf("%s: redacted %q, want %q", name, got, tc.redactedB)
		}
		cfg := tc.sec.clientConfig(7, true)
		if cfg.Endpoints[0] != tc.url || (cfg.Username != "") != tc.sec.auth() || (cfg.Password == "s3cret") != tc.sec.auth() {
			t.Errorf("%s: client config %+v", name, cfg)
		}
		if cfg := tc.sec.clientConfig(7, false); cfg.Username != "" {
			t.Errorf("%s: client config without user logs in", name)
		}
	}
	// Both servers are told the https URL.
	o := &options{binDir: "bin"}
	l := launch{port: 7, peer: 8, dataDir: "d", sec: cases[3].sec}
	for _, sys := range []string{"etcd", "metastore"} {
		_, args := systems()[sys].command(o, l)
		if got := strings.Join(args, " "); !strings.Contains(got, "--listen-client-urls https://127.0.0.1:7") {
			t.Errorf("%s over TLS: %s", sys, got)
		}
	}
	name := cell{sys: systems()["etcd"], w: workloads()["range-l"], sec: security{mode: modeTLS}}.name()
	if name != "etcd-range-l-tls" {
		t.Errorf("cell name %q", name)
	}
}

func TestSecureRunFlags(t *testing.T) {
	o, err := parseFlags([]string{"--secure", "--quick"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.systems, ",") + " " + strings.Join(o.workloads, ",") + " " + strings.Join(o.secureModes, ","); got != "metastore,etcd put-100,range-l plain,auth,tls" ||
		o.restartKeys != 0 || o.sweeping() {
		t.Errorf("--secure: %s, restart keys %d", got, o.restartKeys)
	}
	o, err = parseFlags([]string{"--secure", "--secure-modes", "tls,plain", "--systems", "etcd,metastore-mem", "--workloads", "txn-put"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.secureModes, ","); got != "tls,plain" {
		t.Errorf("modes %s", got)
	}
	for _, args := range [][]string{
		{"--secure", "--systems", "etcd,ceiling"},
		{"--secure", "--workloads", "put-100,watch-latency"},
		{"--secure", "--workloads", "none"},
		{"--secure", "--sweep-batch"},
		{"--secure", "--restart-keys", "10"},
		{"--secure", "--secure-modes", "plain,mtls"},
		{"--secure-modes", "tls"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

// fakeSecure is a secure run with made-up numbers: MetaStore 1.2× etcd in
// the clear on put-100, 1.1× with auth, 1.2× over TLS, and a failed TLS
// cell of etcd on range-l.
func fakeSecure() *results {
	r := &results{
		Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Finished: time.Date(2026, 1, 2, 3, 9, 0, 0, time.UTC),
		Command: "bin/harness --secure", Systems: []string{"metastore", "etcd"},
	}
	rps := map[string]map[string]float64{
		"metastore": {modePlain: 12000, modeAuth: 9900, modeTLS: 9600},
		"etcd":      {modePlain: 10000, modeAuth: 9000, modeTLS: 8000},
	}
	for _, wl := range []string{"put-100", "range-l"} {
		r.Workloads = append(r.Workloads, workloadInfo{Name: wl, Desc: "test", Clients: 100, Conns: 100, Total: 1000})
		for _, m := range secureModeNames {
			for _, sys := range r.Systems {
				v := rps[sys][m]
				c := cellResult{System: sys, Workload: wl, Round: 1, Security: m, RPS: v, Requests: 1000, CPUPer1k: 100 / v,
					Command: "bin/benchmark --endpoints=127.0.0.1:1 --clients=100 put", Parts: []partResult{{Name: "all", RPS: v, P50ms: 2, P99ms: 100000 / v}}}
				if m == modeAuth {
					c.Authenticates, c.AuthenticateCPUSeconds = 100, 5
				}
				if wl == "range-l" && sys == "etcd" && m == modeTLS {
					c = cellResult{System: sys, Workload: wl, Round: 1, Security: m, Failure: "etcd did not become ready"}
				}
				r.Secure = append(r.Secure, c)
			}
		}
	}
	return r
}

func TestSecureMarkdown(t *testing.T) {
	r := fakeSecure()
	secs := reportSections(r, "x.json")
	if len(secs) != 1 || !strings.Contains(secs[0].begin, "AUTH AND TLS") {
		t.Fatalf("sections %+v", secs)
	}
	md := secs[0].body
	for _, want := range []string{
		"## Auth and TLS of 2026-01-02 03:04 UTC",
		"| put-100 | test | 100 / 100 | 1000 | `--endpoints=HOST:PORT --clients=100 put` |",
		"| auth | `--auth-token simple`",
		"| put-100 | plain | MetaStore (durable) | 12000 | 1.00 | 2.00 | 8.33 | – | 0.008 | – | 0 | 0 |",
		"| put-100 | auth | etcd v3.7 (durable) | 9000 | 0.90 | 2.00 | 11.11 | – | 0.011 | 50.0 | 0 | 0 |",
		"| range-l | tls | etcd v3.7 (durable) | failed: etcd did not become ready |",
		"| put-100 | plain | MetaStore (durable) | 1.20 | – | 0.83 | 0.83 |",
		"| put-100 | auth | MetaStore (durable) | 1.10 | 0.92 (met) | 0.91 | 0.91 |",
		"| put-100 | tls | MetaStore (durable) | 1.20 | 1.00 (met) | 0.83 | 0.83 |",
		"| range-l | tls | MetaStore (durable) | – | – | – | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("secure section lacks %q:\n%s", want, md)
		}
	}
	// A mode below the target is marked.
	for i := range r.Secure {
		if c := &r.Secure[i]; c.System == "metastore" && c.Security == modeAuth {
			c.RPS = 8000
		}
	}
	if md := secureMarkdown(r, "x.json"); !strings.Contains(md, "| put-100 | auth | MetaStore (durable) | 0.89 | 0.74 (not met) |") {
		t.Errorf("target not marked unmet:\n%s", md)
	}
}
