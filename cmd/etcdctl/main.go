// Command etcdctl is the real etcd v3 command-line client, built from
// go.etcd.io/etcd/etcdctl/v3 at the version pinned in go.mod.
//
// It exists so that tests and users always get a genuine etcdctl, built
// from the Go module proxy alongside MetaStore, instead of depending on a
// prebuilt binary being installed on the machine. Running it against a
// MetaStore endpoint is the simplest check of etcd wire compatibility.
//
// Build it with `make tools` (produces bin/etcdctl).
package main

import (
	"go.etcd.io/etcd/etcdctl/v3/ctlv3"
)

func main() {
	ctlv3.MustStart()
}
