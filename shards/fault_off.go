//go:build !metastore_fault_stalereads

package shards

// FaultStaleReads reports whether this binary was built with the
// metastore_fault_stalereads tag. That build deliberately answers reads one
// revision behind, so the linearizability checker can be shown to catch it;
// it is never what a user runs.
const FaultStaleReads = false
