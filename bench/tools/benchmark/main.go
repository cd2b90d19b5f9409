// Command benchmark is the upstream etcd `benchmark` load generator
// (go.etcd.io/etcd/v3/tools/benchmark, v3.6.8), built from the Go module
// proxy.
//
// It is used to drive identical workloads against MetaStore and against a
// reference etcd (bin/etcd) so their throughput and latency can be compared
// with the tool the etcd project itself uses.
//
// It lives in its own module (github.com/metastore/metastore/bench/tools)
// because the v3.6.8 tool does not compile together with the etcd v3.7.x
// packages that the main module depends on. The main module's `./...`
// therefore does not include it; build it with `make tools`, which produces
// bin/benchmark.
package main

import (
	"fmt"
	"os"

	"go.etcd.io/etcd/v3/tools/benchmark/cmd"
)

func main() {
	if err := cmd.RootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
