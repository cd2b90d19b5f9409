// Package msg holds the messages and errors that cross package boundaries
// between MetaStore's actors and the Node API that drives them. It is a
// leaf of the actor packages (it imports only storage, for the records
// writes carry, and etcd's protobufs, for the requests and answers), so
// that every actor package can import it without cycles.
//
// One file per protocol:
//
//	stamp.go    shards and coordinator ⇄ sequencer: Stamp, Stamped,
//	            Installed, Deliver, and the Reply a client waits on
//	write.go    Node → shard or coordinator: Write of a typed Request
//	            (Put, DeleteRange or Txn), answered with a Result
//	compact.go  Node → sequencer: Compact, answered with CompactResult;
//	            Node → shard: CompactShard
//	alarm.go    Node → sequencer: Alarm (etcd's alarm requests),
//	            answered with AlarmResult
//	auth.go     auth actor → sequencer: LogAuth, the auth changes to make
//	            durable
//	errors.go   the errors those answers carry, which the rpc layer maps to
//	            etcd's
//
// A message between actors of one package (a shard's freeze by the
// coordinator, the sequencer's own ticks) stays unexported there.
//
// Messages are sent as pointers and never changed after sending.
package msg
