package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	page := `# HELP metastore_actor_mailbox_depth Messages posted to an actor's mailbox.
# TYPE metastore_actor_mailbox_depth gauge
metastore_actor_mailbox_depth{actor="shard-0"} 3
metastore_actor_mailbox_depth{actor="shard-1"} 4
metastore_actor_mailbox_depth{actor="sequencer"} 1
grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1.5e+06
go_info{version="go1.26 \"x\"\\y"} 1
etcd_server_has_leader 1
process_start_time_seconds 1.7e+09 1700000000000
`
	ss, err := parseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	s := scrape{series: ss}
	for _, c := range []struct {
		name string
		keep func(map[string]string) bool
		want float64
	}{
		{"metastore_actor_mailbox_depth", nil, 8},
		{"metastore_actor_mailbox_depth", ofKind("shards"), 7},
		{"metastore_actor_mailbox_depth", ofKind("sequencer"), 1},
		{"grpc_server_handled_total", writeRPCs, 1.5e6},
		{"go_info", func(l map[string]string) bool { return l["version"] == `go1.26 "x"\y` }, 1},
		{"etcd_server_has_leader", nil, 1},
		{"process_start_time_seconds", nil, 1.7e9},
		{"absent", nil, 0},
	} {
		if got := s.sum(c.name, c.keep); got != c.want {
			t.Errorf("sum(%s) = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseMetricsRefusesGarbage(t *testing.T) {
	for _, page := range []string{
		"lonely_name\n",
		`x{a="b" 1` + "\n",
		`x{a=b} 1` + "\n",
		"x not-a-number\n",
	} {
		if _, err := parseMetrics(strings.NewReader(page)); err == nil {
			t.Errorf("%q parsed", page)
		}
	}
}

func TestWindowRatesAndMeans(t *testing.T) {
	at := time.Unix(100, 0)
	a := scrape{at: at, series: []promSeries{
		{name: "c_total", value: 10},
		{name: "h_sum", value: 1},
		{name: "h_count", value: 4},
	}}
	b := scrape{at: at.Add(2 * time.Second), series: []promSeries{
		{name: "c_total", value: 30},
		{name: "h_sum", value: 4},
		{name: "h_count", value: 10},
	}}
	w := window{a, b}
	if got := w.rate("c_total", nil); got != 10 {
		t.Errorf("rate = %v, want 10/s", got)
	}
	if got := w.mean("h", nil); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("mean = %v, want 0.5", got)
	}
	if got := (window{a, a}).mean("h", nil); got != 0 {
		t.Errorf("mean of nothing observed = %v, want 0", got)
	}
}

func TestShortTickLabels(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 6000: "6000", 1.2000000000000002: "1.2", 0.25: "0.25", 123456: "123000"} {
		if got := short(v); got != want {
			t.Errorf("short(%v) = %q, want %q", v, got, want)
		}
	}
}
