// Package tools is the root of the separate module that builds third-party
// benchmark tooling for MetaStore.
//
// It is its own module (github.com/metastore/metastore/bench/tools) because
// the etcd v3.6.8 benchmark tool it wraps (see ./benchmark) does not compile
// together with the etcd v3.7.x packages required by the main module. Being a
// nested module, it is skipped by the main module's `go build ./...` and
// `go test ./...`; `make tools` builds it into bin/benchmark.
//
// This file also keeps `go build ./...` inside this directory working: with
// a single main package matched, go build would try to write an executable
// named "benchmark" over the benchmark/ directory.
package tools
