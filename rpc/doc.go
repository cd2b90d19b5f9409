// Package rpc serves etcd's v3 gRPC API over a Node: it decodes and checks
// each request, hands it to the node, and turns the answer, or the error,
// into etcd's.
//
// It never touches state. Requests are checked before anything runs, with
// etcd's checks in etcd's order (validate.go), so that a request with
// several faults gets the error etcd would give; errors become etcd's
// exact gRPC status in one table (errors.go), because clients match them by
// their text; every response header carries the cluster and member IDs and
// a revision (header.go). Services whose issues have not landed answer
// Unimplemented. Server owns the listeners and the gRPC server, and stops
// within seconds whatever the disk does.
package rpc
