package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// restartResult is the restart measurement of one durable system.
type restartResult struct {
	System  string `json:"system"`
	Round   int    `json:"round"`
	Keys    int    `json:"keys"`
	Command string `json:"load_command"`
	// Load is the bin/benchmark run that wrote the keys.
	LoadRPS    float64 `json:"load_requests_per_second"`
	LoadErrors int     `json:"load_errors"`
	// RSS of the server that wrote the keys, then of the restarted one once
	// it answered (the steady memory cost of holding Keys keys).
	RSSAfterLoadBytes    int64 `json:"rss_after_load_bytes"`
	PeakRSSAfterLoad     int64 `json:"peak_rss_after_load_bytes"`
	RSSAfterRestartBytes int64 `json:"rss_after_restart_bytes"`
	DataDirBytes         int64 `json:"data_dir_bytes"`
	// StopSeconds is SIGTERM to exit; RestartSeconds is exec to the first
	// answered Get.
	StopSeconds    float64 `json:"stop_seconds"`
	RestartSeconds float64 `json:"restart_seconds"`
	// KeysAfterRestart is a count of every key after the restart: the data
	// came back, not just the process.
	KeysAfterRestart int64 `json:"keys_after_restart"`
	// ServerLogProblems counts error/warning lines the server logged while
	// loading and after the restart (shutdown chatter excluded).
	ServerLogProblems int      `json:"server_log_problems"`
	ServerLogSamples  []string `json:"server_log_samples,omitempty"`
	// Ranges times large reads over the keys (--range-repeats), each on a
	// freshly restarted server and again warm.
	Ranges  []rangeTiming `json:"ranges,omitempty"`
	Failure string        `json:"failure,omitempty"`
}

// runRestart loads o.restartKeys keys of o.valSize bytes into a fresh
// server, stops it cleanly, and times a restart on the same data dir.
func runRestart(ctx context.Context, o *options, sys system, round int) restartResult {
	res := restartResult{System: sys.name, Round: round, Keys: o.restartKeys}
	dir, logPath, err := cellDirs(o, fmt.Sprintf("%s-restart-r%d", sys.name, round))
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	defer cleanupDir(o, dir)
	srv, _, err := startServer(o, sys, launch{dataDir: dir, knobs: o.knobs}, logPath)
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	// Sequential keys over a key space of exactly Keys: every key is
	// written once. 1000 clients load fastest on every system; the load
	// is setup, its rate only a by-product.
	args := benchArgs(o, srv.endpoint(), 1000, 100, o.restartKeys, []string{
		"put", "--key-size=8", valSizeFlag(o),
		fmt.Sprintf("--key-space-size=%d", o.restartKeys), "--sequential-keys",
	})
	res.Command = "bin/benchmark " + strings.Join(args, " ")
	bctx, cancel := context.WithTimeout(ctx, o.benchTimeout)
	out, err := runBenchmark(bctx, o, args)
	cancel()
	if err != nil {
		srv.stop(o.stopTimeout) //nolint:errcheck // the load error is the one to report
		res.Failure = "load: " + err.Error()
		return res
	}
	for _, p := range out.Parts {
		res.LoadRPS += p.RPS
		res.LoadErrors += p.Errors
	}
	if ps, err := sampleProc(srv.pid()); err == nil {
		res.RSSAfterLoadBytes, res.PeakRSSAfterLoad = ps.rssBytes, ps.hwmBytes
	}
	port, peer := srv.port, srv.peer
	stopTook, err := srv.stop(o.stopTimeout)
	res.StopSeconds = stopTook.Seconds()
	res.ServerLogProblems, res.ServerLogSamples = logProblems(logPath, 0, srv.logAtStop, 5)
	if err != nil {
		res.Failure = "stop: " + err.Error()
		return res
	}
	res.DataDirBytes = dirSize(dir)
	restartLogFrom := int64(0)
	if info, err := os.Stat(logPath); err == nil {
		restartLogFrom = info.Size()
	}

	// The same ports, so nothing but the process restarts.
	srv, took, err := startServer(o, sys, launch{port: port, peer: peer, dataDir: dir, knobs: o.knobs}, logPath)
	if err != nil {
		res.Failure = "restart: " + err.Error()
		return res
	}
	res.RestartSeconds = took.Seconds()
	if ps, err := sampleProc(srv.pid()); err == nil {
		res.RSSAfterRestartBytes = ps.rssBytes
	}
	err = withClient(ctx, srv.endpoint(), func(ctx context.Context, c *clientv3.Client) error {
		resp, err := c.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithCountOnly())
		if err == nil {
			res.KeysAfterRestart = resp.Count
		}
		return err
	})
	if err != nil {
		res.Failure = "count after restart: " + err.Error()
	} else if res.KeysAfterRestart < int64(o.restartKeys) {
		res.Failure = fmt.Sprintf("only %d of %d keys after restart", res.KeysAfterRestart, o.restartKeys)
	}
	if res.Failure == "" && o.rangeRepeats > 0 {
		var last *server
		var n int
		var samples []string
		res.Ranges, last, restartLogFrom, n, samples = measureRanges(o, sys, srv, logPath, restartLogFrom)
		res.ServerLogProblems += n
		res.ServerLogSamples = keepSamples(res.ServerLogSamples, samples)
		if last == nil {
			res.Failure = "ranges: " + res.Ranges[len(res.Ranges)-1].Failure
			return res
		}
		srv = last
	}
	_, err = srv.stop(o.stopTimeout)
	if err != nil && res.Failure == "" {
		res.Failure = "final stop: " + err.Error()
	}
	n, samples := logProblems(logPath, restartLogFrom, srv.logAtStop, 5)
	res.ServerLogProblems += n
	res.ServerLogSamples = keepSamples(res.ServerLogSamples, samples)
	return res
}
