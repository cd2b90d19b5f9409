package actors

import (
	"context"
	"runtime/metrics"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// Alarm runs etcd's alarm request r (list, raise or clear) on the
// sequencer, which owns the NOSPACE alarm, and returns the alarms it
// listed, raised or cleared (msg.Alarm). It fails with
// msg.ErrAlarmUnsupported for an alarm MetaStore cannot raise, or with the
// log's failure for a change it can no longer record.
func (n *Node) Alarm(ctx context.Context, r *pb.AlarmRequest) ([]*pb.AlarmMember, error) {
	reply := make(chan msg.AlarmResult, 1)
	n.system.Root.Send(n.sequencer, &msg.Alarm{Req: r, Reply: reply})
	select {
	case res := <-reply:
		return res.Alarms, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// DBSize returns the data dir's size on disk and the part of it that
// holds live data (storage.DB.Size and SizeInUse); both are 0 once the node
// has stopped. In memory both are the bytes of the Go heap's objects, which
// hold the store (and whatever else the process holds): etcd reports no
// member without a database, and etcdctl's endpoint status divides by the
// size.
func (n *Node) DBSize() (size, inUse int64) {
	if n.db == nil {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(sample)
		heap := int64(sample[0].Value.Uint64())
		return heap, heap
	}
	_ = n.withDB(func(db *storage.DB) error {
		size, inUse = db.Size(), db.SizeInUse()
		return nil
	})
	return size, inUse
}

// Defragment compacts the data dir's storage engine
// (storage.DB.Defragment); writes go on meanwhile. In memory there is
// nothing to do.
func (n *Node) Defragment(ctx context.Context) error {
	return n.withDB(func(db *storage.DB) error { return db.Defragment(ctx) })
}

// PeerURLs returns the member's peer URLs as a MemberUpdate recorded them
// in the data dir, and false if none did (or in memory).
func (n *Node) PeerURLs() (urls []string, ok bool, err error) {
	err = n.withDB(func(db *storage.DB) error {
		urls, ok, err = db.PeerURLs()
		return err
	})
	return urls, ok, err
}

// SetPeerURLs records the member's peer URLs in the data dir, durably
// (in memory it does nothing: they last until the server stops).
func (n *Node) SetPeerURLs(urls []string) error {
	return n.withDB(func(db *storage.DB) error { return db.SetPeerURLs(urls) })
}

// withDB calls fn with the data dir unless the node runs in memory, or
// fails with storage.ErrClosed once it has stopped. Stop waits for fn.
func (n *Node) withDB(fn func(db *storage.DB) error) error {
	if n.db == nil {
		return nil
	}
	n.dbMu.RLock()
	defer n.dbMu.RUnlock()
	if n.dbClosed {
		return storage.ErrClosed
	}
	return fn(n.db)
}
