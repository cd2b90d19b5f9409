//go:build metastore_fault_stalereads

package shards

// FaultStaleReads is true in the deliberately broken build: reads are served
// one revision behind the visible revision. See fault_off.go.
const FaultStaleReads = true
