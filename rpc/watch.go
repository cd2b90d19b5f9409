package rpc

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/actors/watch"
)

// watchServer serves etcd's Watch service. Each gRPC stream becomes a
// watch.Stream on one watch actor: its receive loop forwards requests to
// that actor, and the handler's goroutine sends what the actor queues in
// the stream's outbox, adding previous key-values and splitting fragments
// on the way, off the actor (as etcd's send loop does).
type watchServer struct {
	pb.UnimplementedWatchServer

	node  *actors.Node
	hdr   *header
	guard *guard
	// fragmentBytes is the size past which a response is split for a
	// watcher that asked for fragments: etcd's request-size limit with its
	// gRPC allowance.
	fragmentBytes int
	// stopping is closed when the server stops: watch streams never end
	// by themselves, and a graceful stop would wait for them.
	stopping <-chan struct{}
}

func (ws *watchServer) Watch(stream pb.Watch_WatchServer) error {
	ctx := stream.Context()
	s := ws.node.Watch()
	defer s.Close()
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		if err := ws.recvLoop(stream, s, done); err != nil {
			errc <- err
		}
	}()
	sent := make(chan error, 1)
	go func() { sent <- ws.sendLoop(stream, s.Outbox(), done) }()
	var err error
	senderDone := false
	select {
	case err = <-errc:
	case err = <-sent:
		senderDone = true
	case <-ctx.Done():
		err = ctx.Err()
	case <-ws.stopping:
		err = rpctypes.ErrGRPCStopped
	}
	// The sender must be done with the stream before the handler returns:
	// gRPC allows no send after that.
	close(done)
	if !senderDone {
		<-sent
	}
	if errors.Is(err, context.Canceled) {
		return rpctypes.ErrGRPCWatchCanceled
	}
	return err
}

// recvLoop forwards the client's requests. It returns nil when the client
// closes its side: as in etcd, the stream goes on sending until it ends.
// Each request waits for a place among the stream's requests on their way
// (Outbox.Reserve): a client that does not read its answers is slowed.
func (ws *watchServer) recvLoop(stream pb.Watch_WatchServer, s *watch.Stream, done <-chan struct{}) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch u := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			if u.CreateRequest == nil {
				continue
			}
			if !s.Outbox().Reserve(done) {
				return nil
			}
			if reason := ws.denied(stream.Context(), u.CreateRequest); reason != "" {
				s.Refuse(reason)
				continue
			}
			s.Create(u.CreateRequest)
		case *pb.WatchRequest_CancelRequest:
			if u.CancelRequest == nil {
				continue
			}
			if !s.Outbox().Reserve(done) {
				return nil
			}
			s.Cancel(u.CancelRequest.WatchId)
		case *pb.WatchRequest_ProgressRequest:
			if u.ProgressRequest == nil {
				continue
			}
			if !s.Outbox().Reserve(done) {
				return nil
			}
			s.RequestProgress()
		}
	}
}

// denied returns why the caller may not watch what r asks for, "" if it
// may: as etcd, the check is made once, at creation, with the token the
// stream was opened with, over the whole range (a start revision below 0
// is refused as compacted first).
func (ws *watchServer) denied(ctx context.Context, r *pb.WatchCreateRequest) string {
	if r.StartRevision < 0 {
		return ""
	}
	c, err := ws.guard.caller(ctx)
	if err == nil {
		key := r.Key
		if len(key) == 0 {
			key = []byte{0}
		}
		err = c.read(key, r.RangeEnd)
	}
	if err == nil {
		return ""
	}
	// etcd's reason is the gRPC error's whole text ("rpc error: code =
	// PermissionDenied desc = etcdserver: permission denied"), which
	// clientv3 hands on as the watch's error.
	return err.Error()
}

// sendLoop sends what the stream's actor queues, in order, until done or a
// send fails.
func (ws *watchServer) sendLoop(stream pb.Watch_WatchServer, out *watch.Outbox, done <-chan struct{}) error {
	for {
		items, ok := out.Take(done)
		if !ok {
			return nil
		}
		items = watch.Coalesce(items)
		for _, it := range items {
			resp := it.Resp
			resp.Header.ClusterId, resp.Header.MemberId, resp.Header.RaftTerm = ws.hdr.clusterID, ws.hdr.memberID, raftTerm
			if it.PrevKV && len(resp.Events) > 0 {
				resp.Events = ws.withPrevKV(resp.Events)
			}
			var err error
			if it.Fragment {
				err = sendFragments(resp, ws.fragmentBytes, stream.Send)
			} else {
				err = stream.Send(resp)
			}
			if err != nil {
				return err
			}
		}
		out.Sent(items)
	}
}

// withPrevKV returns evs with each event's previous key-value, read at the
// revision before it, as etcd's send loop does: not for a creation, and
// not when that revision is compacted. The events are shared with other
// watchers, so those that gain a previous key-value are copies.
func (ws *watchServer) withPrevKV(evs []*mvccpb.Event) []*mvccpb.Event {
	out := make([]*mvccpb.Event, len(evs))
	for i, ev := range evs {
		out[i] = ev
		if ev.Type == mvccpb.PUT && ev.Kv.CreateRevision == ev.Kv.ModRevision {
			continue
		}
		r, err := ws.node.Range(&pb.RangeRequest{Key: ev.Kv.Key, Revision: ev.Kv.ModRevision - 1})
		if err == nil && len(r.Kvs) > 0 {
			out[i] = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv, PrevKv: r.Kvs[0]}
		}
	}
	return out
}

// sendFragments sends resp whole if it is under limit bytes or holds one
// event; otherwise in pieces marked fragment (but the last), each as many
// events as stay under limit, and at least one: how etcd splits a watch
// response for a watcher that asked for fragments.
func sendFragments(resp *pb.WatchResponse, limit int, send func(*pb.WatchResponse) error) error {
	if proto.Size(resp) < limit || len(resp.Events) < 2 {
		return send(resp)
	}
	evs := resp.Events
	for len(evs) > 0 {
		piece := &pb.WatchResponse{
			Header: resp.Header, WatchId: resp.WatchId, Created: resp.Created, Canceled: resp.Canceled,
			CompactRevision: resp.CompactRevision, CancelReason: resp.CancelReason, Fragment: true,
		}
		n := 0
		for n < len(evs) {
			piece.Events = evs[:n+1]
			if n > 0 && proto.Size(piece) >= limit {
				break
			}
			n++
		}
		piece.Events = evs[:n]
		evs = evs[n:]
		piece.Fragment = len(evs) > 0
		if err := send(piece); err != nil {
			return err
		}
	}
	return nil
}
