package test

// The health, version and metrics endpoints of the client URL and of
// --listen-metrics-urls, as etcd serves them; replies are recorded and
// compared between the backends as in gateway_test.go.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-semver/semver"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// sortedLines is r with the lines of its body sorted: etcd runs the
// checks of /livez and /readyz in map order, so ?verbose lists them in any
// order.
func sortedLines(r httpReply) httpReply {
	lines := strings.SplitAfter(string(r.body), "\n")
	slices.Sort(lines)
	r.body = []byte(strings.Join(lines, ""))
	return r
}

// mustSemver parses a version a server reported.
func mustSemver(t testing.TB, v string) *semver.Version {
	t.Helper()
	sv, err := semver.NewVersion(v)
	if err != nil {
		t.Fatalf("version %q: %v", v, err)
	}
	return sv
}

// wantReply checks r's status and body.
func wantReply(t testing.TB, what string, r httpReply, status int, body string) {
	t.Helper()
	if r.status != status || string(r.body) != body {
		t.Errorf("%s: got %d %q, want %d %q", what, r.status, r.body, status, body)
	}
}

func TestHealthEndpoints(t *testing.T) {
	const healthy = `{"health":"true","reason":""}`
	readyz := "[+]data_corruption ok\n[+]linearizable_read ok\n[+]non_learner ok\n[+]serializable_read ok\nok\n"
	gwEachBackend(t, func(g *gwSession) {
		for _, c := range []struct {
			path string
			body string
		}{
			{"/health", healthy},
			{"/health?serializable=true", healthy},
			{"/health?exclude=NOSPACE&exclude=CORRUPT", healthy},
			{"/livez", "ok\n"},
			{"/livez?verbose", "[+]serializable_read ok\nok\n"},
			{"/readyz", "ok\n"},
			{"/readyz?verbose", readyz},
			{"/readyz?verbose&exclude=non_learner&exclude=no_such_check", "[+]data_corruption ok\n[+]linearizable_read ok\n[+]serializable_read ok\nok\n"},
			{"/readyz/linearizable_read?verbose", "[+]linearizable_read ok\nok\n"},
			{"/readyz/data_corruption", "ok\n"},
			{"/livez/serializable_read?verbose=1", "[+]serializable_read ok\nok\n"},
		} {
			r := sortedLines(g.do(http.MethodGet, c.path, ""))
			g.record(c.path, gwRender(r))
			wantReply(g.t, c.path, r, http.StatusOK, c.body)
		}
		for _, path := range []string{"/readyz/", "/livez/no_such_check", "/healthz"} {
			r := g.do(http.MethodGet, path, "")
			g.record(path, gwRender(r))
			wantReply(g.t, path, r, http.StatusNotFound, "404 page not found\n")
		}
		for _, path := range []string{"/health", "/livez", "/readyz", "/readyz/non_learner", "/version", "/debug/vars"} {
			r := g.do(http.MethodPost, path, "{}")
			g.record("POST "+path, gwRender(r))
			wantReply(g.t, "POST "+path, r, http.StatusMethodNotAllowed, "Method Not Allowed\n")
			if allow := r.header.Get("Allow"); allow != http.MethodGet {
				g.t.Errorf("POST %s: Allow %q, want GET", path, allow)
			}
		}

		r := g.do(http.MethodGet, "/debug/vars", "")
		g.record("/debug/vars", fmt.Sprint(r.status, r.header.Get("Content-Type")))
		var vars map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &vars); err != nil || vars["cmdline"] == nil || vars["memstats"] == nil {
			g.t.Errorf("/debug/vars: %v, want JSON with cmdline and memstats", err)
		}
	})
}

// TestVersion reads /version once the server has settled its storage
// version: etcd answers "unknown", then its data's older version, for a
// moment after it starts.
func TestVersion(t *testing.T) {
	gwEachBackend(t, func(g *gwSession) {
		var r httpReply
		var v struct {
			Server  string `json:"etcdserver"`
			Cluster string `json:"etcdcluster"`
			Storage string `json:"storage"`
		}
		for deadline := time.Now().Add(opTimeout); ; time.Sleep(50 * time.Millisecond) {
			r = g.do(http.MethodGet, "/version", "")
			if err := json.Unmarshal(r.body, &v); err != nil {
				g.t.Fatalf("/version: %d %s: %v", r.status, r.body, err)
			}
			if v.Storage == v.Cluster || time.Now().After(deadline) {
				break
			}
		}
		// The server's own patch release is its own.
		g.record("/version", gwRender(r, "etcdserver"))
		server, cluster := mustSemver(g.t, v.Server), mustSemver(g.t, v.Cluster)
		if server.Major != cluster.Major || server.Minor != cluster.Minor || cluster.Patch != 0 || v.Storage != v.Cluster {
			g.t.Errorf("/version %s: want a cluster version of the server's major.minor, and the same storage version", r.body)
		}
	})
}

// TestHealthNoSpace fills each backend's quota: under the NOSPACE alarm
// /health answers 503 with the alarm unless told to ignore it, while
// /livez and /readyz stay ok (the alarm is not data corruption).
func TestHealthNoSpace(t *testing.T) {
	const value = 4096
	fill := func(t *testing.T, tg *Target, limit int) {
		for n := range limit {
			_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: fmt.Appendf(nil, "fill/%05d", n), Value: bytes.Repeat([]byte("q"), value)})
			if err != nil {
				wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
				return
			}
		}
		t.Fatalf("%d puts of %d bytes all succeeded; want NOSPACE", limit, value)
	}
	var done []*gwSession
	check := func(t *testing.T, tg *Target) {
		g := &gwSession{t: t, tg: tg, base: "http://" + tg.Endpoint}
		for _, c := range []struct {
			path   string
			status int
			body   string
		}{
			{"/health", http.StatusServiceUnavailable, `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"},
			{"/health?exclude=NOSPACE", http.StatusOK, `{"health":"true","reason":""}`},
			{"/livez", http.StatusOK, "ok\n"},
			{"/readyz?verbose", http.StatusOK, "[+]data_corruption ok\n[+]linearizable_read ok\n[+]non_learner ok\n[+]serializable_read ok\nok\n"},
		} {
			r := sortedLines(g.do(http.MethodGet, c.path, ""))
			g.record(c.path, gwRender(r))
			wantReply(t, c.path, r, c.status, c.body)
		}
		if !t.Failed() {
			done = append(done, g)
		}
	}
	backends := selectedBackends(t)
	if slices.Contains(backends, "metastore") {
		t.Run("metastore", func(t *testing.T) {
			const headroom = 512 * 1024
			cfg := durConfig(t.TempDir(), 4)
			cfg.QuotaBackendBytes = durEmptyDirSize(t) + headroom
			ds := durStart(t, cfg)
			fill(t, ds.Target, 10*headroom/value)
			check(t, ds.Target)
		})
	}
	if slices.Contains(backends, "etcd") {
		t.Run("etcd", func(t *testing.T) {
			const quota = 4 << 20
			tg := connect(t, "etcd", startBackend(t, "etcd", withEtcdQuota(quota)))
			fill(t, tg, 10*quota/value)
			check(t, tg)
		})
	}
	for _, other := range done[min(1, len(done)):] {
		gwCompare(t, done[0], other)
	}
}

// TestMetricsEndpoints reads /metrics on the client URL and on a metrics
// listener: Prometheus text that parses, with the process's series and
// MetaStore's gRPC handled-calls counter, which counts the calls just made.
// The metrics listener serves the health endpoints too, and nothing else.
//
// NB: the registry is one per process, and MetaStore's collectors replace
// the embedded etcd's of the same names (rpc/metrics.go), so in this
// process etcd's gRPC calls are not counted: metrics_test.go compares the
// series of the two servers, each in a process of its own.
func TestMetricsEndpoints(t *testing.T) {
	var metricsAddr string
	gwEachBackend(t, func(g *gwSession) {
		const calls = 5
		for _, base := range []string{g.base, "http://" + metricsAddr} {
			before := scrapeText(g.t, base)
			for range calls {
				g.tg.rangeKV(g.t, &pb.RangeRequest{Key: []byte("k")})
			}
			after := scrapeText(g.t, base)
			if !slices.ContainsFunc(after.names, func(n string) bool { return strings.HasPrefix(n, "process_") }) {
				g.t.Errorf("%s/metrics has no process_ series", base)
			}
			if n := after.handled - before.handled; g.tg.Name == "metastore" && n < calls {
				g.t.Errorf("%s/metrics: grpc_server_handled_total of KV Range went up by %v after %d calls", base, n, calls)
			}
			g.record(base+"/metrics", after.contentType)
		}
		for _, path := range []string{"/health", "/livez", "/readyz?verbose", "/version", "/v3/kv/range", "/debug/vars"} {
			r := sortedLines(httpDo(g.t, http.MethodGet, "http://"+metricsAddr+path, ""))
			g.record("metrics listener "+path, gwRender(r))
		}
	}, withMetricsListener(&metricsAddr))
}

// scraped is what a test needs of one /metrics page.
type scraped struct {
	contentType string
	names       []string
	// handled is grpc_server_handled_total for KV Range answered OK.
	handled float64
}

func scrapeText(t testing.TB, base string) scraped {
	t.Helper()
	r := httpDo(t, http.MethodGet, base+"/metrics", "")
	if r.status != http.StatusOK {
		t.Fatalf("%s/metrics: %d %s", base, r.status, r.body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("%s/metrics does not parse as Prometheus text: %v", base, err)
	}
	s := scraped{contentType: r.header.Get("Content-Type")}
	for name := range families {
		s.names = append(s.names, name)
	}
	for _, m := range families["grpc_server_handled_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["grpc_service"] == "etcdserverpb.KV" && labels["grpc_method"] == "Range" && labels["grpc_code"] == "OK" {
			s.handled += m.GetCounter().GetValue()
		}
	}
	return s
}
