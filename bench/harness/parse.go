package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// benchOutput is what one bin/benchmark run reported.
type benchOutput struct {
	Parts  []partResult `json:"parts"`
	Stdout string       `json:"-"`
}

// partResult is one report printed by bin/benchmark; txn-mixed prints two
// (reads and writes), every other sub-command one.
type partResult struct {
	Name        string         `json:"name"`
	Requests    int            `json:"requests"`
	TotalSec    float64        `json:"total_seconds"`
	RPS         float64        `json:"requests_per_second"`
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
	P999ms      float64        `json:"p99_9_ms"`
	AvgMs       float64        `json:"avg_ms"`
	SlowestMs   float64        `json:"slowest_ms"`
	Errors      int            `json:"errors"`
	ErrorCounts map[string]int `json:"error_counts,omitempty"`
	// ServerCPUSeconds is the server's utime+stime during this part, when
	// the harness's own tools measured it (`harness leases`, `harness
	// locks`); 0 otherwise.
	ServerCPUSeconds float64 `json:"server_cpu_seconds,omitempty"`
}

// runBenchmark runs bin/benchmark and parses its report.
func runBenchmark(ctx context.Context, o *options, args []string) (benchOutput, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(o.binDir, "benchmark"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := benchOutput{Stdout: stdout.String()}
	if err != nil {
		// The progress bar goes to stderr; the useful part of a failure
		// (a panic, a usage error) is at its end.
		return out, fmt.Errorf("benchmark %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String()+stdout.String(), 8))
	}
	parts, err := parseBenchmark(out.Stdout)
	out.Parts = parts
	return out, err
}

// reProgress matches one redraw of bin/benchmark's progress bar, which it
// prints to stderr without newlines when that is not a terminal.
var reProgress = regexp.MustCompile(`\d+ / \d+ \[[-=>_ ]*\][^\n]*?(\? |[0-9.]+ )?p/s`)

// lastLines returns the last n meaningful lines of bin/benchmark's output
// for an error message: no progress bars, no gRPC INFO chatter.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(reProgress.ReplaceAllString(s, ""), "\n") {
		if i := strings.LastIndexByte(l, '\r'); i >= 0 {
			l = l[i+1:]
		}
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "INFO: [core]") || strings.Contains(l, "INFO: [transport]") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

var (
	reTotal   = regexp.MustCompile(`(?m)^\s*Total:\s+([0-9.eE+-]+) secs`)
	reSlowest = regexp.MustCompile(`(?m)^\s*Slowest:\s+([0-9.eE+-]+) secs`)
	reAverage = regexp.MustCompile(`(?m)^\s*Average:\s+([0-9.eE+-]+) secs`)
	reRPS     = regexp.MustCompile(`(?m)^\s*Requests/sec:\s+([0-9.eE+-]+)`)
	rePctl    = regexp.MustCompile(`(?m)^\s*([0-9.]+)% in ([0-9.eE+-]+) secs`)
	reErrLine = regexp.MustCompile(`^\s*\[(\d+)\]\s+(.*)$`)
	reMixed   = regexp.MustCompile(`(?m)^Total (Read|Write) Ops: (\d+)`)
	// reWatchReport heads each report of bin/benchmark watch ("Watch
	// creation summary:", "Watch events received summary:") and
	// watch-latency ("Put summary:", "Watch events summary:").
	reWatchReport = regexp.MustCompile(`(?m)^(Put|Watch creation|Watch events|Watch events received) summary:`)
)

// eventsPart names the report of the events a watch benchmark's watchers
// received; putPart and createPart its other reports.
const (
	eventsPart = "events"
	putPart    = "put"
	createPart = "create"
)

var watchPartNames = map[string]string{
	"Put": putPart, "Watch creation": createPart, "Watch events": eventsPart, "Watch events received": eventsPart,
}

// parseBenchmark reads the reports bin/benchmark (tools/benchmark v3.6)
// prints: "Summary:" with Total and Requests/sec, a histogram, a "Latency
// distribution:" of percentiles, and an "Error distribution:" of
// "[count] message" lines when requests failed.
func parseBenchmark(out string) ([]partResult, error) {
	if locs := reWatchReport.FindAllStringSubmatchIndex(out, -1); len(locs) > 0 {
		return parseWatchReports(out, locs)
	}
	// txn-mixed prints "Total Read Ops: N\nDetails:<report>" then the same
	// for writes; split there so each report is parsed alone.
	locs := reMixed.FindAllStringSubmatchIndex(out, -1)
	if len(locs) == 0 {
		p, err := parseReport("all", out)
		return []partResult{p}, err
	}
	var parts []partResult
	var errs []error
	for i, loc := range locs {
		end := len(out)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		name := strings.ToLower(out[loc[2]:loc[3]])
		ops, _ := strconv.Atoi(out[loc[4]:loc[5]])
		if ops == 0 {
			continue
		}
		p, err := parseReport(name, out[loc[1]:end])
		errs = append(errs, err)
		parts = append(parts, p)
	}
	return parts, errors.Join(errs...)
}

// parseWatchReports reads the reports of bin/benchmark watch and
// watch-latency, each headed by its summary line; locs are reWatchReport's
// matches. Both must have printed their events report.
func parseWatchReports(out string, locs [][]int) ([]partResult, error) {
	var parts []partResult
	var errs []error
	events := false
	for i, loc := range locs {
		end := len(out)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		name := watchPartNames[out[loc[2]:loc[3]]]
		events = events || name == eventsPart
		p, err := parseReport(name, out[loc[1]:end])
		errs = append(errs, err)
		parts = append(parts, p)
	}
	if !events {
		errs = append(errs, fmt.Errorf("no watch events report in benchmark output: %q", lastLines(out, 5)))
	}
	return parts, errors.Join(errs...)
}

func parseReport(name, s string) (partResult, error) {
	p := partResult{Name: name}
	if i := strings.Index(s, "Error distribution:"); i >= 0 {
		p.ErrorCounts = map[string]int{}
		for _, line := range strings.Split(s[i+len("Error distribution:"):], "\n") {
			if m := reErrLine.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				p.ErrorCounts[m[2]] += n
				p.Errors += n
			}
		}
	}
	if !strings.Contains(s, "Summary:") {
		// Every request failed: there is no summary, only errors.
		if p.Errors > 0 {
			return p, nil
		}
		return p, fmt.Errorf("no Summary in benchmark output: %q", lastLines(s, 5))
	}
	p.TotalSec = firstFloat(reTotal, s)
	p.RPS = firstFloat(reRPS, s)
	p.AvgMs = firstFloat(reAverage, s) * 1000
	p.SlowestMs = firstFloat(reSlowest, s) * 1000
	p.Requests = int(p.RPS*p.TotalSec + 0.5)
	for _, m := range rePctl.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[1] {
		case "50":
			p.P50ms = v * 1000
		case "99":
			p.P99ms = v * 1000
		case "99.9":
			p.P999ms = v * 1000
		}
	}
	if p.RPS == 0 {
		return p, errors.New("benchmark output has a Summary but no Requests/sec")
	}
	return p, nil
}

func firstFloat(re *regexp.Regexp, s string) float64 {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
