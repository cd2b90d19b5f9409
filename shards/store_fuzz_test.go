package shards

import (
	"fmt"
	"testing"
)

// modelKV is the reference model's view of one key.
type modelKV struct {
	value                string
	create, mod, version int64
}

// FuzzStoreAgainstModel runs a random sequence of puts, deletes and
// compactions on a Store and on a naive model that keeps a full copy of the
// key space at every revision, and checks every read at every revision the
// store still holds.
func FuzzStoreAgainstModel(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 1, 3, 4, 0, 2, 5})
	f.Add([]byte{1, 1, 1, 2, 2, 0, 0, 0, 7, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := NewStore(nil)
		states := []map[string]modelKV{{}, {}} // states[rev]; the store starts at revision 1
		rev, compacted := int64(1), int64(0)
		for i, op := range ops {
			key := fmt.Sprintf("k%d", op%4)
			cur := states[rev]
			next := make(map[string]modelKV, len(cur))
			for k, v := range cur {
				next[k] = v
			}
			switch op / 4 % 4 {
			case 0, 1: // put
				rev++
				kv := modelKV{value: fmt.Sprint(i), create: rev, mod: rev, version: 1}
				if old, ok := cur[key]; ok {
					kv.create, kv.version = old.create, old.version+1
				}
				next[key] = kv
				s.put(key, []byte(kv.value), 0, rev)
				states = append(states, next)
			case 2: // delete
				_, existed := cur[key]
				if s.del(key, rev+1) != existed {
					t.Fatalf("op %d: delete of %s reported %v, model %v", i, key, !existed, existed)
				}
				if existed {
					rev++
					delete(next, key)
					states = append(states, next)
				}
			case 3: // compact at a revision between the last one and now
				if c := compacted + int64(op)%(rev-compacted+1); c > compacted {
					compacted = c
					s.Compact(c)
				}
			}
		}
		v := s.Snapshot()
		for r := max(compacted, 1); r <= rev; r++ {
			for k := range 4 {
				key := fmt.Sprintf("k%d", k)
				want, wantOK := states[r][key]
				got, ok := getKV(t, v, key, r)
				if ok != wantOK {
					t.Fatalf("%s at %d: found=%v, model %v", key, r, ok, wantOK)
				}
				if ok && (string(got.Value) != want.value || got.CreateRevision != want.create || got.ModRevision != want.mod || got.Version != want.version) {
					t.Fatalf("%s at %d: %+v, model %+v", key, r, got, want)
				}
			}
		}
	})
}
