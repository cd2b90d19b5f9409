package test

// Helpers of the metrics tests (metrics_test.go): each backend as a process
// of its own, and /metrics scraped and read.
//
// Why processes: the Prometheus registry is one per process, and this test
// binary links an embedded etcd, whose packages register their collectors
// in it under the very names MetaStore uses. In one process both servers'
// /metrics would show the same series, so neither could be compared with
// the other. As processes, each shows only its own, as in production.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// etcdCmd is the real etcd server (v3.7, cmd/etcd).
const etcdCmd = "github.com/metastore/metastore/cmd/etcd"

// startMetricsProc starts the named backend as a process on a data dir
// (etcd with --metrics extensive, which adds gRPC's handling-time
// histogram, as MetaStore always serves it) and returns a Target for it.
func startMetricsProc(t *testing.T, name string) *Target {
	t.Helper()
	if name == "metastore" {
		return connect(t, name, durStartProc(t, "--data-dir", t.TempDir()).endpoint)
	}
	for attempt := 0; ; attempt++ {
		endpoint, err := tryStartEtcdProc(t)
		if errors.Is(err, durErrPortTaken) && attempt < 5 {
			continue
		}
		if err != nil {
			t.Fatalf("start etcd: %v", err)
		}
		return connect(t, name, endpoint)
	}
}

// tryStartEtcdProc runs etcd once on free ports and returns its client
// host:port once /health says it has a leader; durErrPortTaken if it lost
// a port to another process.
func tryStartEtcdProc(t *testing.T) (string, error) {
	client, peer := durFreePort(t), durFreePort(t)
	clientURL := "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	cmd := exec.Command(buildBinary(t, etcdCmd),
		"--name", "default", "--data-dir", t.TempDir(),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL,
		// As the embedded etcd of startEtcd: elected in a fraction of a
		// second.
		"--heartbeat-interval", "10", "--election-timeout", "100",
		"--metrics", "extensive", "--log-level", "error")
	output := &durLog{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatalf("run etcd: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			if strings.Contains(output.String(), "address already in use") {
				return "", durErrPortTaken
			}
			return "", fmt.Errorf("etcd exited; output:\n%s", output.String())
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := http.Get(clientURL + "/health"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"health":"true"`) {
				return "127.0.0.1:" + strconv.Itoa(client), nil
			}
		}
	}
	return "", fmt.Errorf("etcd not healthy after 30s; output:\n%s", output.String())
}

// families is one reading of a server's /metrics, by family name.
type families map[string]*dto.MetricFamily

// scrapeMetrics reads /metrics from tg's client URL, over HTTP/1.1 as
// Prometheus does.
func scrapeMetrics(t testing.TB, tg *Target) families {
	t.Helper()
	resp, err := http.Get("http://" + tg.Endpoint + "/metrics")
	if err != nil {
		t.Fatalf("%s: GET /metrics: %v", tg.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: GET /metrics: %s", tg.Name, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatalf("%s: parse /metrics: %v", tg.Name, err)
	}
	return families
}

// value sums the series of family name whose labels include labels: a
// counter's or gauge's value, a histogram's count. It fails the test if
// the family is missing, or has no such series.
func (s families) value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, _ := s.sums(t, name, labels...)
	return v
}

// histogramSum sums the observed values (not the counts) of histogram
// name's series whose labels include labels.
func (s families) histogramSum(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	_, sum := s.sums(t, name, labels...)
	return sum
}

func (s families) sums(t testing.TB, name string, labels ...string) (value, histogramSum float64) {
	t.Helper()
	mf := s[name]
	if mf == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	found := false
	for _, m := range mf.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			value += m.Counter.GetValue()
		case m.Gauge != nil:
			value += m.Gauge.GetValue()
		case m.Histogram != nil:
			value += float64(m.Histogram.GetSampleCount())
			histogramSum += m.Histogram.GetSampleSum()
		}
	}
	if !found {
		t.Fatalf("no %s%v in /metrics", name, labels)
	}
	return value, histogramSum
}

// matches reports whether m has every name=value pair of labels (name,
// value, name, value…); a value ending in "*" matches by prefix.
func matches(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		ok := false
		for _, l := range m.GetLabel() {
			if l.GetName() != labels[i] {
				continue
			}
			want := labels[i+1]
			if p, prefix := strings.CutSuffix(want, "*"); prefix {
				ok = strings.HasPrefix(l.GetValue(), p)
			} else {
				ok = l.GetValue() == want
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// labelNames is the sorted set of label names of a family's series.
func labelNames(mf *dto.MetricFamily) []string {
	var names []string
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(names, l.GetName()) {
				names = append(names, l.GetName())
			}
		}
	}
	slices.Sort(names)
	return names
}
