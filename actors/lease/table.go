package lease

import "github.com/puzpuzpuz/xsync/v3"

// Table is the set of leases that exist, published for the shards and the
// coordinator, which check a write's lease against it when they plan it.
// Its single writer is the lease actor: it adds a lease once its grant is
// durable and removes it before its revoke runs, so that a write planned
// after the removal fails with "requested lease not found", and one
// planned before is installed before the revoke freezes the shards (and
// its key is deleted with the others).
type Table struct {
	m *xsync.MapOf[int64, struct{}]
}

// NewTable returns a table of the leases a data dir holds, published before
// any shard plans a write.
func NewTable(leases map[int64]int64) *Table {
	t := &Table{m: xsync.NewMapOf[int64, struct{}]()}
	for id := range leases {
		t.add(id)
	}
	return t
}

// Exists reports whether lease id exists.
func (t *Table) Exists(id int64) bool {
	_, ok := t.m.Load(id)
	return ok
}

func (t *Table) add(id int64)    { t.m.Store(id, struct{}{}) }
func (t *Table) remove(id int64) { t.m.Delete(id) }
