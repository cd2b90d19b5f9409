// Command etcdutl is etcd's offline data-dir tool, built from
// go.etcd.io/etcd/etcdutl/v3 at the version pinned in go.mod, with the two
// commands MetaStore's tests and users need: snapshot (status, restore) and
// hashkv. etcdutl keeps its own main at its module root, which cannot be
// built from here, so this is a small root command of our own.
//
// Build it with `make tools` (produces bin/etcdutl).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/etcdutl/v3/etcdutl"
)

func main() {
	root := &cobra.Command{Use: "etcdutl", Short: "etcd's offline data-dir tool (snapshot, hashkv)"}
	root.PersistentFlags().StringVarP(&etcdutl.OutputFormat, "write-out", "w", "simple", "set the output format (fields, json, protobuf, simple, table)")
	root.AddCommand(etcdutl.NewSnapshotCommand(), etcdutl.NewHashKVCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
