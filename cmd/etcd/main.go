// Command etcd is a real etcd v3 server, built from
// go.etcd.io/etcd/server/v3/etcdmain at the version pinned in go.mod.
//
// It exists so that the benchmark harness (and anyone comparing behaviour)
// can run MetaStore and the reference etcd implementation side by side,
// both built from the Go module proxy, without a prebuilt etcd binary.
//
// Build it with `make tools` (produces bin/etcd). It accepts exactly the
// flags of upstream etcd, e.g. `bin/etcd --version`.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
