package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// rangeQuery is one etcdctl read timed over the restart test's keys.
type rangeQuery struct {
	name string
	args []string // etcdctl arguments after the global flags
}

// String is the query as typed in a shell.
func (q rangeQuery) String() string {
	words := make([]string, len(q.args))
	for i, a := range q.args {
		if words[i] = a; a == "" {
			words[i] = `""`
		}
	}
	return strings.Join(words, " ")
}

// rangeQueries are the large reads of issue 9: every key, and the ten
// last keys, which etcd answers from its index before it reads a value.
var rangeQueries = []rangeQuery{
	{name: "full", args: []string{"get", "", "--prefix"}},
	{name: "desc-limit-10", args: []string{"get", "", "--prefix", "--order=DESCEND", "--limit=10"}},
}

// rangeTiming is one query on a server holding the restart test's keys:
// once on a server just started on the data dir (cold: its caches empty,
// the OS page cache as the earlier runs left it), then once more (warm).
type rangeTiming struct {
	Query   string `json:"query"`
	Repeat  int    `json:"repeat"`
	Command string `json:"command"`
	// ColdSeconds and WarmSeconds are etcdctl's exec to exit, its output
	// read and thrown away; the CPU figures are the server's in that time.
	ColdSeconds    float64 `json:"cold_seconds"`
	WarmSeconds    float64 `json:"warm_seconds"`
	ColdCPUSeconds float64 `json:"cold_server_cpu_seconds"`
	WarmCPUSeconds float64 `json:"warm_server_cpu_seconds"`
	// OutputBytes is what etcdctl printed (the same on every run and
	// every system when all is well).
	OutputBytes int64  `json:"output_bytes"`
	Failure     string `json:"failure,omitempty"`
}

// measureRanges times each query o.rangeRepeats times on sys, restarting
// the server before every cold run. It takes over srv, whose log starts at
// from, and returns the server it leaves running (nil when a restart
// failed) with the offset where that one's log starts, and the error and
// warning lines the servers it stopped logged before being asked to stop.
func measureRanges(o *options, sys system, srv *server, logPath string, from int64) (out []rangeTiming, last *server, lastFrom int64, problems int, samples []string) {
	for repeat := 1; repeat <= o.rangeRepeats; repeat++ {
		for _, q := range rangeQueries {
			t := rangeTiming{Query: q.name, Repeat: repeat, Command: "bin/etcdctl " + q.String()}
			port, peer, dir := srv.port, srv.peer, srv.dataDir
			_, err := srv.stop(o.stopTimeout)
			n, s := logProblems(logPath, from, srv.logAtStop, 5)
			problems, samples = problems+n, keepSamples(samples, s)
			from = logSize(logPath)
			if err == nil {
				srv, _, err = startServer(o, sys, launch{port: port, peer: peer, dataDir: dir, knobs: o.knobs}, logPath)
			}
			if err != nil {
				t.Failure = "restart: " + err.Error()
				return append(out, t), nil, from, problems, samples
			}
			var warmBytes int64
			t.ColdSeconds, t.ColdCPUSeconds, t.OutputBytes, err = timeEtcdctl(o, srv, q.args)
			if err == nil {
				t.WarmSeconds, t.WarmCPUSeconds, warmBytes, err = timeEtcdctl(o, srv, q.args)
			}
			switch {
			case err != nil:
				t.Failure = err.Error()
			case warmBytes != t.OutputBytes:
				t.Failure = fmt.Sprintf("cold run printed %d bytes, warm run %d", t.OutputBytes, warmBytes)
			}
			out = append(out, t)
		}
	}
	return out, srv, from, problems, samples
}

// keepSamples adds more log lines to have, keeping five in all.
func keepSamples(have, more []string) []string {
	return append(have, more[:min(len(more), max(0, 5-len(have)))]...)
}

// timeEtcdctl runs bin/etcdctl against srv and returns its wall time, the
// server's CPU time meanwhile, and how many bytes it printed.
func timeEtcdctl(o *options, srv *server, args []string) (wall, serverCPU float64, printed int64, err error) {
	full := append([]string{"--endpoints=" + srv.endpoint(), "--command-timeout=10m"}, args...)
	cmd := exec.Command(filepath.Join(o.binDir, "etcdctl"), full...)
	var out countingWriter
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &stderr
	before, err := sampleProc(srv.pid())
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, 0, fmt.Errorf("etcdctl %s: %w: %s", strings.Join(args, " "), err, truncate(stderr.String(), 300))
	}
	wall = time.Since(start).Seconds()
	after, err := sampleProc(srv.pid())
	if err != nil {
		return 0, 0, 0, err
	}
	return wall, after.cpuSeconds - before.cpuSeconds, out.n, nil
}

// countingWriter counts what it is given and keeps none of it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

func logSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// rangeSummary is the median over repeats of one query on one system in
// one round.
type rangeSummary struct {
	cold, warm, coldCPU, warmCPU float64
	bytes                        int64
	repeats                      int
}

// summarizeRanges takes the median of each query's successful repeats.
func summarizeRanges(ts []rangeTiming, query string) (rangeSummary, bool) {
	var cold, warm, coldCPU, warmCPU []float64
	var s rangeSummary
	for _, t := range ts {
		if t.Query != query || t.Failure != "" {
			continue
		}
		cold, warm = append(cold, t.ColdSeconds), append(warm, t.WarmSeconds)
		coldCPU, warmCPU = append(coldCPU, t.ColdCPUSeconds), append(warmCPU, t.WarmCPUSeconds)
		s.bytes = t.OutputBytes
	}
	if len(cold) == 0 {
		return s, false
	}
	s.repeats = len(cold)
	s.cold, s.warm, s.coldCPU, s.warmCPU = medianOf(cold), medianOf(warm), medianOf(coldCPU), medianOf(warmCPU)
	return s, true
}

// medianOf is the median of vs, the mean of the middle two for an even count.
func medianOf(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// writeRanges is the range table of the restart section.
func writeRanges(w printer, r *results) {
	measured := false
	for _, rr := range r.Restarts {
		measured = measured || len(rr.Ranges) > 0
	}
	if !measured {
		return
	}
	w("\n### Large ranges over the same keys\n\n")
	w("Each query runs as `bin/etcdctl --endpoints=… --command-timeout=10m <query>`, its output read and discarded, " +
		"first on a server just restarted on the data dir (cold: the server's caches are empty, the OS page cache is not dropped), " +
		"then again (warm). Seconds are etcdctl's exec to exit, the median of the repeats; server CPU is the server's utime+stime meanwhile.\n\n")
	w("| system | round | query | repeats | cold s | warm s | server CPU cold s | server CPU warm s | output MiB |\n")
	w("|---|--:|---|--:|--:|--:|--:|--:|--:|\n")
	type cell struct {
		system string
		round  int
		query  string
	}
	med := map[cell]rangeSummary{}
	for _, rr := range r.Restarts {
		for _, q := range rangeQueries {
			label := systems()[rr.System].label
			s, ok := summarizeRanges(rr.Ranges, q.name)
			if !ok {
				if f := firstRangeFailure(rr.Ranges, q.name); f != "" {
					w("| %s | %d | `%s` | failed: %s | | | | | |\n", label, rr.Round, q.String(), mdEscape(truncate(f, 160)))
				}
				continue
			}
			med[cell{rr.System, rr.Round, q.name}] = s
			w("| %s | %d | `%s` | %d | %.2f | %.2f | %.2f | %.2f | %.1f |\n", label, rr.Round, q.String(),
				s.repeats, s.cold, s.warm, s.coldCPU, s.warmCPU, mib(s.bytes))
		}
	}
	last := 0
	for _, rr := range r.Restarts {
		last = max(last, rr.Round)
	}
	for _, q := range rangeQueries {
		m, okM := med[cell{"metastore", last, q.name}]
		e, okE := med[cell{"etcd", last, q.name}]
		if okM && okE && e.cold > 0 && e.warm > 0 {
			w("\nMetaStore / etcd, `%s` (last round): cold %.2f×, warm %.2f×.\n", q.String(), m.cold/e.cold, m.warm/e.warm)
		}
	}
}

func firstRangeFailure(ts []rangeTiming, query string) string {
	for _, t := range ts {
		if t.Query == query && t.Failure != "" {
			return t.Failure
		}
	}
	return ""
}
