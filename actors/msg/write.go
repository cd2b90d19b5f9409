package msg

// Result is the answer to a write: an etcd response, or an error.
type Result struct {
	Resp any
	Err  error
}

// Write asks a shard to run a Put, DeleteRange or Txn whose keys it owns
// alone. The answer goes to Reply (buffered, capacity 1) once its revision
// is visible.
type Write struct {
	Req   any
	Reply chan<- Result
}
