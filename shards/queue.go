package shards

import (
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors/msg"
)

// writeQueue is the writes waiting for a shard or for the coordinator,
// oldest first, bounded in number and in bytes by its owner's limits.
type writeQueue struct {
	ws    []queued
	bytes int // the sum of ws' sizes
}

// queued is a write waiting for its shard, with its size in bytes.
type queued struct {
	w    *msg.Write
	size int
}

// push queues w, or refuses it with msg.ErrTooManyRequests when the queue
// holds max writes already or w would take it past maxBytes. A write
// larger than maxBytes is still taken into an empty queue, so that any
// request the rpc layer lets through can succeed.
func (q *writeQueue) push(w *msg.Write, max, maxBytes int) error {
	size := requestBytes(w.Req)
	if len(q.ws) >= max || (len(q.ws) > 0 && q.bytes+size > maxBytes) {
		return msg.ErrTooManyRequests
	}
	q.ws = append(q.ws, queued{w, size})
	q.bytes += size
	return nil
}

// drop removes the first n writes, whose sizes add up to bytes.
func (q *writeQueue) drop(n, bytes int) {
	clear(q.ws[:n]) // drop the handled writes' payloads now, not at the next reallocation
	q.ws = q.ws[n:]
	q.bytes -= bytes
}

// requestBytes is the size of a request as the client encoded it.
func requestBytes(req msg.Request) int {
	return proto.Size(req.Message())
}

// reply is the answer r to a write, to send on ch once rev is visible.
func reply(ch chan<- msg.Result, rev int64, r msg.Result) msg.Reply {
	return msg.Reply{Rev: rev, Send: func() { ch <- r }}
}
