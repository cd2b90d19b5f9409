// Package test holds MetaStore's integration suite: it starts the real
// server, in-process through rpc.Start or as the metastore binary, and
// drives it through clientv3, raw gRPC and a real etcdctl. Every case that
// asserts etcd behaviour also runs against a real etcd v3.7 started
// in-process (go.etcd.io/etcd/server/v3/embed): a case that fails there is
// a wrong test. Cases that only MetaStore can answer (storage faults, its
// own start-up messages, memory bounds) say why in their file.
package test
