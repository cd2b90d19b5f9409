package watch

import (
	"github.com/asynkron/protoactor-go/actor"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Stream is one client watch stream, held by the RPC layer: its requests
// go to the watch actor that owns the stream's watchers, and that actor's
// responses come back through the Outbox, in the order it made them.
type Stream struct {
	root *actor.RootContext
	pid  *actor.PID
	out  *Outbox
}

// Open opens a stream on the watch actor pid; outboxBytes bounds the event
// bytes queued for it (0: DefaultOutboxBytes).
func Open(root *actor.RootContext, pid *actor.PID, outboxBytes int) *Stream {
	if outboxBytes <= 0 {
		outboxBytes = DefaultOutboxBytes
	}
	s := &Stream{root: root, pid: pid}
	s.out = newOutbox(outboxBytes, func() { root.Send(pid, drained{s}) })
	root.Send(pid, opened{s})
	return s
}

// Outbox is where the stream's responses wait for its sender.
func (s *Stream) Outbox() *Outbox { return s.out }

// Create asks for a watcher; the answer (created, or created and canceled
// with etcd's reason) comes through the outbox.
func (s *Stream) Create(r *pb.WatchCreateRequest) { s.root.Send(s.pid, created{s, r}) }

// Refuse answers a create request the caller may not make (etcd's answer
// to a watch on a range its user may not read): created and canceled at
// once, with reason, in order with the stream's other answers.
func (s *Stream) Refuse(reason string) { s.root.Send(s.pid, refused{s, reason}) }

// Cancel cancels watcher id; the answer comes through the outbox, none for
// an unknown ID (as etcd).
func (s *Stream) Cancel(id int64) { s.root.Send(s.pid, canceled{s, id}) }

// RequestProgress asks for a progress answer for the whole stream (etcd's
// WatchProgressRequest).
func (s *Stream) RequestProgress() { s.root.Send(s.pid, progressAsked{s}) }

// Close ends the stream and its watchers and closes its outbox.
func (s *Stream) Close() { s.root.Send(s.pid, closed{s}) }

// The messages a Stream sends its actor.
type (
	opened  struct{ s *Stream }
	closed  struct{ s *Stream }
	refused struct {
		s      *Stream
		reason string
	}
	drained       struct{ s *Stream }
	progressAsked struct{ s *Stream }
	created       struct {
		s *Stream
		r *pb.WatchCreateRequest
	}
	canceled struct {
		s  *Stream
		id int64
	}
)
