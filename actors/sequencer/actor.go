package sequencer

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
)

// Compact asks the sequencer to move the compact revision to Rev. The
// answer on Reply is the current revision, or shards.ErrCompacted or
// shards.ErrFutureRev. Shards drop their history after the answer.
type Compact struct {
	Rev   int64
	Reply chan<- CompactResult
}

// CompactResult answers Compact.
type CompactResult struct {
	Current int64
	Err     error
}

type sequencer struct {
	core *core
	revs *Revisions
}

// Props returns the props of the sequencer actor, starting at revision
// current with compact revision compacted, and publishing into revs.
func Props(revs *Revisions, current, compacted int64) *actor.Props {
	revs.visible.Store(current)
	revs.compacted.Store(compacted)
	return actor.PropsFromProducer(func() actor.Actor {
		return &sequencer{core: newCore(current, compacted), revs: revs}
	})
}

func (s *sequencer) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *msg.Stamp:
		base := s.core.stamp(len(m.Writes), m.Parts)
		ctx.Send(m.ReplyTo, &msg.Stamped{Base: base})
	case *msg.Installed:
		if m.To >= m.From {
			s.core.installed(m.From, m.To)
		}
		s.core.hold(m.Replies)
		s.release()
	case *msg.Deliver:
		s.core.hold(m.Replies)
		s.release()
	case *Compact:
		if err := s.core.compactTo(m.Rev); err != nil {
			m.Reply <- CompactResult{Current: s.core.visible, Err: err}
			return
		}
		s.revs.compacted.Store(m.Rev)
		m.Reply <- CompactResult{Current: s.core.visible}
	}
}

// release publishes the visible revision, then sends what it released:
// a client must never get an answer before readers can see its revision.
func (s *sequencer) release() {
	out := s.core.advance()
	s.revs.visible.Store(s.core.visible)
	for _, r := range out {
		r.Send()
	}
}
