package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseWatchLatency(t *testing.T) {
	parts, err := parseBenchmark(readTestdata(t, "watch-latency.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Name != putPart || parts[1].Name != eventsPart {
		t.Fatalf("parts %+v", parts)
	}
	// 150 puts, each an event of 10 watchers.
	if parts[0].Requests != 150 || parts[1].Requests != 1500 {
		t.Errorf("requests %d puts, %d events, want 150 and 1500", parts[0].Requests, parts[1].Requests)
	}
	if !near(parts[1].P50ms, 0.02075) || !near(parts[1].P99ms, 1.410388) || !near(parts[0].P99ms, 8.108329) {
		t.Errorf("event p50 %v p99 %v, put p99 %v", parts[1].P50ms, parts[1].P99ms, parts[0].P99ms)
	}
	c := cellResult{Parts: parts}
	if got := countedParts(parts); len(got) != 1 || got[0].Name != eventsPart || c.p99() != parts[1].P99ms {
		t.Errorf("counted %+v, p99 %v", got, c.p99())
	}
}

func TestParseWatch(t *testing.T) {
	parts, err := parseBenchmark(readTestdata(t, "watch.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Name != createPart || parts[1].Name != eventsPart {
		t.Fatalf("parts %+v", parts)
	}
	// 100 watchers created; 300 puts on 10 keys of 10 watchers each.
	if parts[0].Requests != 100 || parts[1].Requests != 3000 || !near(parts[1].RPS, 15941.351809204209) {
		t.Errorf("requests %d created, %d events at %v/s", parts[0].Requests, parts[1].Requests, parts[1].RPS)
	}
}

func TestParseWatchWithoutEvents(t *testing.T) {
	// bin/benchmark watch cut short after creating its watchers.
	out := readTestdata(t, "watch.txt")
	out = out[:strings.Index(out, "Watch events received summary:")]
	if _, err := parseBenchmark(out); err == nil || !strings.Contains(err.Error(), "no watch events report") {
		t.Errorf("err %v", err)
	}
}

func TestBenchArgsTotalFlag(t *testing.T) {
	o := &options{valSize: 256}
	w := workloads()["watch-latency"]
	got := strings.Join(benchArgsTotal(o, "h:1", w.clients, w.conns, w.totalFlag, 300, w.args(o)), " ")
	want := "--endpoints=h:1 --clients=10 --conns=10 --precise watch-latency --streams=10 --watchers-per-stream=10 --put-rate=100 --key-size=32 --val-size=256 --put-total=300"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// benchmarkPutKey is a key bin/benchmark put writes: a varint into a
// reused buffer of keySize bytes.
func benchmarkPutKey(buf []byte, n int) string {
	binary.PutVarint(buf, int64(n))
	return string(buf)
}

// TestBenchmarkKeyRanges checks that the ranges partition every key:
// each key bin/benchmark put writes (with its reused buffer, too) falls
// in exactly one, and each range holds its share of the key space.
func TestBenchmarkKeyRanges(t *testing.T) {
	const keySize, keySpace, n = 8, 100000, 1000
	ts, err := benchmarkKeyRanges(keySize, keySpace, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != n || ts[0].key != "\x00" || ts[n-1].end != "\x00" {
		t.Fatalf("%d ranges, first %q, last end %q", len(ts), ts[0].key, ts[n-1].end)
	}
	for i := 1; i < n; i++ {
		if ts[i-1].end != ts[i].key || ts[i].key <= ts[i-1].key {
			t.Fatalf("range %d [%q, %q) does not follow [%q, %q)", i, ts[i].key, ts[i].end, ts[i-1].key, ts[i-1].end)
		}
	}
	which := func(k string) int {
		found := -1
		for i, tg := range ts {
			if tg.contains(k) {
				if found >= 0 {
					t.Fatalf("key %x in ranges %d and %d", k, found, i)
				}
				found = i
			}
		}
		if found < 0 {
			t.Fatalf("key %x in no range", k)
		}
		return found
	}
	per := make([]int, n)
	buf := make([]byte, keySize)
	for i := 0; i < keySpace; i++ {
		per[which(benchmarkPutKey(make([]byte, keySize), i))]++
	}
	for i, c := range per {
		if c != keySpace/n {
			t.Fatalf("range %d holds %d keys, want %d", i, c, keySpace/n)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		which(benchmarkPutKey(buf, rng.Intn(keySpace)))
	}
	if _, err := benchmarkKeyRanges(keySize, 10, 1000); err == nil {
		t.Error("no error for fewer keys than watchers")
	}
	if _, err := benchmarkKeyRanges(2, keySpace, n); err == nil {
		t.Error("no error for a key size the varint does not fit")
	}
}

func TestWatchTargets(t *testing.T) {
	ts, err := watchTargets(holderSpec{watchers: 3, prefix: "idle/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || ts[2] != (watchTarget{key: "idle/0000002"}) || !ts[1].contains("idle/0000001") || ts[1].contains("idle/0000002") {
		t.Errorf("%+v", ts)
	}
	spec := holderSpec{watchers: 1000, streams: 10, conns: 10, keySize: 8, keySpace: 100000}
	if got := strings.Join(spec.args("h:1"), " "); got != "--endpoint h:1 --watchers 1000 --streams 10 --conns 10 --key-size 8 --key-space 100000" {
		t.Errorf("args %s", got)
	}
}

func TestHolderLines(t *testing.T) {
	if r, err := parseReady("ready 100000 8.560594"); err != nil || r.count != 100000 || r.seconds != 8.560594 {
		t.Errorf("%+v %v", r, err)
	}
	if e, err := parseEvents("events 10000 987 2"); err != nil || e != (holderEvents{10000, 987, 2}) {
		t.Errorf("%+v %v", e, err)
	}
	if n, d, err := parseWait("wait 100 1.5"); err != nil || n != 100 || d != 1500*time.Millisecond {
		t.Errorf("%d %v %v", n, d, err)
	}
	for _, bad := range []string{"", "ready 1", "ready x 1", "events 1 2", "wait -1 1", "wait 1", "watchers: boom"} {
		_, err1 := parseReady(bad)
		_, err2 := parseEvents(bad)
		_, _, err3 := parseWait(bad)
		if err1 == nil || err2 == nil || err3 == nil {
			t.Errorf("%q: %v, %v, %v", bad, err1, err2, err3)
		}
	}
}

// TestHoldingServe drives the holder's stdin protocol without a server.
func TestHoldingServe(t *testing.T) {
	h := &holding{counts: make([]atomic.Int64, 3)}
	h.counts[1].Store(2)
	h.events.Store(2)
	var out bytes.Buffer
	if err := h.serve(context.Background(), strings.NewReader("wait 2 5\nwait 3 0.01\n"), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "events 2 1 0\nevents 2 1 0\n" {
		t.Errorf("got %q", got)
	}
	if err := (&holding{}).serve(context.Background(), strings.NewReader("count\n"), &out); err == nil {
		t.Error("no error for an unknown line")
	}
}

// TestWatchMarkdown renders the watch section of made-up results: etcd
// and MetaStore, MetaStore's put-100-watched with a lost event.
func TestWatchMarkdown(t *testing.T) {
	r := &results{
		Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Finished: time.Date(2026, 1, 2, 3, 6, 0, 0, time.UTC),
		Systems: []string{"metastore", "etcd", "ceiling"}, Options: map[string]any{"val_size": 256},
	}
	all := workloads()
	for _, n := range append([]string{"put-100"}, watchWorkloadNames...) {
		r.Workloads = append(r.Workloads, workloadInfo{Name: n, Desc: all[n].desc, Total: 10})
	}
	add := func(c cellResult) { c.Round = 1; r.Cells = append(r.Cells, c) }
	for _, s := range []struct {
		sys   string
		speed float64
	}{{"metastore", 2}, {"etcd", 1}} {
		f := s.speed
		add(cellResult{System: s.sys, Workload: "put-100", RPS: 5000 * f, CPUPer1k: 0.2 / f, Parts: []partResult{{Name: "all", RPS: 5000 * f, P99ms: 40 / f}}})
		add(cellResult{System: s.sys, Workload: "watch-latency", Command: "bin/benchmark --endpoints=127.0.0.1:5 watch-latency", RPS: 10000, CPUPer1k: 0.01,
			Parts: []partResult{{Name: putPart, P99ms: 4}, {Name: eventsPart, Requests: 30000, RPS: 10000, P50ms: 0.1, P99ms: 3 / f}}})
		add(cellResult{System: s.sys, Workload: "watch", RPS: 200000 * f * f, CPUPer1k: 0.01,
			Parts: []partResult{{Name: createPart, P99ms: 2}, {Name: eventsPart, Requests: 200000, RPS: 200000 * f * f}}})
		watched := cellResult{System: s.sys, Workload: "put-100-watched", RPS: 4800 * f, CPUPer1k: 0.21 / f, Parts: []partResult{{Name: "all", RPS: 4800 * f, P99ms: 41 / f}},
			Watch: &watchStats{Command: "harness watchers --endpoint HOST:PORT", Watchers: 1000, EventsExpected: 10000, EventsReceived: 10000, WatchersWithEvents: 1000}}
		add(watched)
		add(cellResult{System: s.sys, Workload: "watchers-idle-100k", ServerCPUSeconds: 3,
			Watch: &watchStats{Command: "harness watchers --endpoint HOST:PORT --prefix idle/", Watchers: 100000, Streams: 100, Conns: 10, CreateSeconds: 8,
				RSSBeforeBytes: 40 << 20, RSSWatchingBytes: 100 << 20 / int64(f), HWMWatchingBytes: 120 << 20 / int64(f), EventsExpected: 100, EventsReceived: 100}})
	}
	md := markdown(r, "x.json")
	for _, want := range []string{
		"| put-100 | test |", // absent: the KV table lists put-100 with its own description
		"### Watch\n",
		"| watch-latency | " + all["watch-latency"].desc + " | 10 | `bin/benchmark --endpoints=HOST:PORT watch-latency` |",
		"| put-100-watched | " + all["put-100-watched"].desc + " | 10 | `harness watchers --endpoint HOST:PORT` |",
		"| MetaStore (durable) | 0.10 | 1.50 | – | 4.00 | 30000 | 0.010 | 0 | 0 |",
		"| etcd v3.7 (durable) | 200000 | 200000 | 2.00 | 0.010 | 0 | 0 |",
		"| MetaStore (durable) | 10000 | 9600 | 0.96 | 20.00 | 20.50 | 0.100 | 0.105 | 10000 / 10000 | 1000 of 1000 | 0 | 0 |",
		"| etcd v3.7 (durable) | 100000 / 100 / 10 | 8.00 | 40 | 100 | 120 | 3.00 | 100 / 100 | 0 |",
		"| event latency p99 at most etcd's (watch-latency) | 0.50 (met) | – |",
		"| events a second at least 2× etcd's (watch) | 4.00 (met) | – |",
		"| put-100 with 1,000 watchers at least 90% of put-100 without (put-100-watched / put-100) | 0.96 (met) | 0.96 (met) |",
		"| peak RSS with 100,000 idle watchers at most etcd's (watchers-idle-100k) | 0.50 (met) | – |",
	} {
		if want == "| put-100 | test |" {
			if strings.Contains(md, want) {
				t.Errorf("unexpected %q", want)
			}
			continue
		}
		if !strings.Contains(md, want) {
			t.Errorf("watch section lacks %q:\n%s", want, md)
		}
	}
	// The KV tables keep to the KV workloads; the ceiling has no watch rows.
	if strings.Contains(md, "| watch-latency | MetaStore") || strings.Contains(md, "ceiling (no storage) |") {
		t.Errorf("watch workloads in the KV tables, or a ceiling row:\n%s", md)
	}

	// A lost event fails the cell: its row says so and its target is left out.
	for i := range r.Cells {
		if c := &r.Cells[i]; c.System == "metastore" && c.Workload == "put-100-watched" {
			c.Watch.EventsReceived = 9999
			c.Failure = "watchers received 9999 of 10000 events"
		}
	}
	md = markdown(r, "x.json")
	if !strings.Contains(md, "| 9999 / 10000 | 1000 of 1000 | 0 | 0 ⚠ watchers received 9999 of 10000 events |") ||
		!strings.Contains(md, "(put-100-watched / put-100) | – | 0.96 (met) |") {
		t.Errorf("failed cell:\n%s", md)
	}
}

func TestWorkloadGroups(t *testing.T) {
	o, err := parseFlags([]string{"--workloads", "put-100,watches", "--systems", "etcd"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.workloads, ","); got != "put-100,watch-latency,watch,put-100-watched,watchers-idle-100k" {
		t.Errorf("workloads %s", got)
	}
	o, err = parseFlags([]string{"--workloads", "kv"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.workloads) != 9 || o.workloads[8] != "stm" {
		t.Errorf("kv: %v", o.workloads)
	}
	// The idle watchers are 100,000 whatever --quick and --scale say.
	if w := workloads()["watchers-idle-100k"]; w.total(&options{quick: true, scale: 0.5}) != 100000 {
		t.Error("watchers-idle-100k scaled")
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}
