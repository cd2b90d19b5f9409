// Package bench holds MetaStore's benchmarks: Go benchmarks of the write
// paths through the actors (no gRPC), so that the cost of the actor design
// itself can be seen and compared as shard count and concurrency vary; and,
// in bench/tools (its own module), the etcd benchmark tool.
package bench
