package watch

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// BenchmarkChanges measures what one change costs a watch actor that holds
// n watchers on distinct keys and n/10 on ranges, one of which the change
// matches: the cost of a lookup, which should barely move with n (a scan
// of the watchers would grow a hundredfold from 1,000 to 100,000).
//
//	go test -run '^$' -bench Changes ./actors/watch/
func BenchmarkChanges(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			revs := &fakeRevs{visible: 1, compacted: -1}
			c := newCore(revs, 1, true, 1<<20)
			h := &Stream{out: newOutbox(1<<30, func() {})}
			c.open(h)
			for i := range n {
				c.create(h, &pb.WatchCreateRequest{Key: fmt.Appendf(nil, "key/%07d", i)})
				if i%10 == 0 {
					c.create(h, &pb.WatchCreateRequest{Key: fmt.Appendf(nil, "range/%07d/", i), RangeEnd: fmt.Appendf(nil, "range/%07d0", i)})
				}
			}
			done := make(chan struct{})
			take := func() {
				if h.out.mu.Lock(); len(h.out.items) > 0 {
					h.out.mu.Unlock()
					h.out.Take(done)
					return
				}
				h.out.mu.Unlock()
			}
			take()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				rev := int64(i + 2)
				revs.visible = rev
				key := fmt.Sprintf("key/%07d", i%n)
				c.changes(&msg.Changes{Entries: []storage.Entry{{Rev: rev, Base: rev, Muts: []storage.Mutation{{Key: key, Create: rev, Version: 1}}}}})
				if i%1024 == 0 {
					take()
					c.ring, c.ringBytes = nil, 0
				}
			}
		})
	}
}
