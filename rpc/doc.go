// Package rpc serves etcd's v3 gRPC API over a Node: it decodes and checks
// each request, hands it to the node, and turns the answer, or the error,
// into etcd's.
//
// It never touches the data's state; the one thing it holds is this
// member's peer URLs (cluster.go), a copy of what MemberUpdate writes
// through to the data dir. Requests are checked before anything runs, with
// etcd's checks in etcd's order (validate.go), so that a request with
// several faults gets the error etcd would give; errors become etcd's
// exact gRPC status in one table (errors.go), because clients match them by
// their text; every response header carries the cluster and member IDs and
// a revision (header.go). Maintenance (maintenance.go), Cluster
// (cluster.go) and auto-compaction (compactor.go, etcd's own compactor)
// serve one member; Auth answers Unimplemented until its issue lands. Server owns the listeners, each split between the gRPC
// server and an HTTP server with etcd's JSON gateway, health, version and
// metrics endpoints (http.go); an https:// listener terminates TLS first,
// with a certificate read again when its files change (tls.go). Server
// stops within seconds whatever the disk does.
package rpc
