package actors

// Stats is the state a node reports in etcd's metrics (the rpc layer's
// GaugeFuncs read it when /metrics is scraped).
type Stats struct {
	// Revision and Compacted are the visible and compact revisions (the
	// latter -1 until the first compaction, as etcd reports it).
	Revision, Compacted int64
	// Keys counts the keys that exist at the shards' newest views.
	Keys int
	// DBBytes and DBBytesInUse are the data dir's size on disk and the
	// part of it that holds live data, as Status reports them (DBSize).
	DBBytes, DBBytesInUse int64
}

// Stats returns the node's stats now. It sends no message: the revisions
// and views are the single-writer values the read path loads, and the data
// dir is measured on the caller's goroutine (pebble's metrics, a few
// microseconds).
func (n *Node) Stats() Stats {
	s := Stats{Revision: n.revs.Visible(), Compacted: n.Compacted(), Keys: n.Keys()}
	s.DBBytes, s.DBBytesInUse = n.DBSize()
	return s
}

// Compacted is the compact revision (-1 until the first compaction, as
// etcd reports it).
func (n *Node) Compacted() int64 { return n.revs.Compacted() }

// Keys counts the keys that exist at the shards' newest views.
func (n *Node) Keys() int {
	keys := 0
	for i := range n.published {
		keys += n.published[i].Load().Keys()
	}
	return keys
}
