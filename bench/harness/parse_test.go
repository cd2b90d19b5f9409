package main

import (
	"math"
	"os"
	"testing"
)

// The testdata files are real bin/benchmark (v3.6.8, --precise) outputs.

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func TestParsePut(t *testing.T) {
	parts, err := parseBenchmark(readTestdata(t, "put.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 {
		t.Fatalf("got %d parts, want 1", len(parts))
	}
	p := parts[0]
	if p.Requests != 3000 || !near(p.RPS, 9926.446388872791) || p.Errors != 0 {
		t.Errorf("requests %d rps %v errors %d", p.Requests, p.RPS, p.Errors)
	}
	if !near(p.P50ms, 0.805422) || !near(p.P99ms, 4.365563) || !near(p.P999ms, 10.287626) {
		t.Errorf("p50 %v p99 %v p99.9 %v", p.P50ms, p.P99ms, p.P999ms)
	}
}

func TestParseTxnMixed(t *testing.T) {
	parts, err := parseBenchmark(readTestdata(t, "txn-mixed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Name != "read" || parts[1].Name != "write" {
		t.Fatalf("parts %+v", parts)
	}
	if parts[0].Requests != 13 || parts[1].Requests != 7 {
		t.Errorf("requests %d + %d, want 13 + 7", parts[0].Requests, parts[1].Requests)
	}
	if !near(parts[1].P50ms, 2.861953) || parts[1].P99ms != 0 {
		t.Errorf("write p50 %v p99 %v (20 requests have no printed p99)", parts[1].P50ms, parts[1].P99ms)
	}
}

func TestParseOnlyErrors(t *testing.T) {
	parts, err := parseBenchmark(readTestdata(t, "errors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	p := parts[0]
	if p.Errors != 4 || p.ErrorCounts["etcdserver: request is too large"] != 4 || p.Requests != 0 {
		t.Errorf("%+v", p)
	}
}

func TestParseGarbage(t *testing.T) {
	if _, err := parseBenchmark("panic: something\n"); err == nil {
		t.Error("no error for output without a report")
	}
}

func TestLastLines(t *testing.T) {
	in := "2026/11/25 19:14:18 INFO: [core] [Channel #1]Channel Connectivity change to READY\n" +
		"105 / 20000 [>_____] 0.53% ? p/s225 / 20000 [>____] 1.12% 710 p/spanic: boom\n\ngoroutine 1 [running]:\n"
	if got, want := lastLines(in, 5), "panic: boom | goroutine 1 [running]:"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
