package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// readValues is Values collected into a slice in krs's order.
func readValues(db *DB, krs []KeyRev) ([]string, error) {
	out := make([]string, len(krs))
	seen := make([]bool, len(krs))
	err := db.Values(krs, func(i int, value []byte) {
		if seen[i] {
			panic(fmt.Sprintf("Values called back twice for %d", i))
		}
		seen[i], out[i] = true, string(value)
	})
	if err != nil {
		return nil, err
	}
	if i := slices.Index(seen, false); i >= 0 {
		return nil, fmt.Errorf("no value for %v", krs[i])
	}
	return out, nil
}

// TestValues reads records in one pass, asked for in an order that is not
// the data dir's, and fails with ErrNoRecord for one that is not there.
func TestValues(t *testing.T) {
	db, _, err := Open(t.TempDir(), Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Commit([]Entry{
		{Rev: 2, Base: 2, Muts: []Mutation{{Key: "b", Value: []byte("b2"), Create: 2, Version: 1}, {Key: "a", Value: []byte("a2"), Create: 2, Version: 1}}},
		{Rev: 3, Base: 3, Muts: []Mutation{{Key: "a", Delete: true}}},
		{Rev: 4, Base: 4, Muts: []Mutation{{Key: "c", Value: nil, Create: 4, Version: 1}, {Key: "b", Value: []byte("b4"), Lease: 7, Create: 2, Version: 2}}},
		{Rev: 5, Base: 5, Muts: []Mutation{{Key: "a", Value: []byte("a5"), Create: 5, Version: 1}}},
	}, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		krs     []KeyRev
		want    []string
		wantErr error
	}{
		{name: "nothing", krs: nil, want: []string{}},
		{name: "one", krs: []KeyRev{{"b", 4}}, want: []string{"b4"}},
		{
			name: "key order, not revision order",
			krs:  []KeyRev{{"a", 5}, {"b", 2}, {"b", 4}, {"c", 4}},
			want: []string{"a5", "b2", "b4", ""},
		},
		{
			name: "revision descending, keys of one revision reversed",
			krs:  []KeyRev{{"a", 5}, {"b", 4}, {"c", 4}, {"b", 2}, {"a", 2}},
			want: []string{"a5", "b4", "", "b2", "a2"},
		},
		{name: "a tombstone has no value", krs: []KeyRev{{"a", 3}, {"a", 2}}, want: []string{"", "a2"}},
		{name: "the same record twice", krs: []KeyRev{{"b", 2}, {"b", 2}}, want: []string{"b2", "b2"}},
		{name: "missing among present", krs: []KeyRev{{"a", 2}, {"a", 4}, {"b", 4}}, wantErr: ErrNoRecord},
		{name: "missing before the first record", krs: []KeyRev{{"a", 1}, {"a", 2}}, wantErr: ErrNoRecord},
		{name: "missing after the last record", krs: []KeyRev{{"a", 5}, {"z", 9}}, wantErr: ErrNoRecord},
		{name: "a key that is a prefix of a stored one", krs: []KeyRev{{"", 2}}, wantErr: ErrNoRecord},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readValues(db, tc.krs)
			if !errors.Is(err, tc.wantErr) || (err == nil && !slices.Equal(got, tc.want)) {
				t.Fatalf("Values(%v) = %q, %v; want %q, %v", tc.krs, got, err, tc.want, tc.wantErr)
			}
		})
	}

	// A record that compaction dropped is gone for a bulk read as for Value.
	if err := db.Drop([]KeyRev{{"b", 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := readValues(db, []KeyRev{{"a", 2}, {"b", 2}}); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("dropped record: %v, want ErrNoRecord", err)
	}
}

// TestValuesMatchValue checks Values against Value, one Get per record,
// over many records of many revisions asked for in random order.
func TestValuesMatchValue(t *testing.T) {
	db, _, err := Open(t.TempDir(), Options{DefaultShards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var all []KeyRev
	for rev := int64(2); rev < 400; rev++ {
		var muts []Mutation
		for range 1 + rng.IntN(8) {
			key := fmt.Sprintf("key/%04d", rng.IntN(2000))
			if slices.ContainsFunc(muts, func(m Mutation) bool { return m.Key == key }) {
				continue
			}
			value := make([]byte, rng.IntN(600))
			for i := range value {
				value[i] = byte(rng.Uint32())
			}
			muts = append(muts, Mutation{Key: key, Value: value, Create: rev, Version: 1})
			all = append(all, KeyRev{Key: key, Rev: rev})
		}
		if err := db.Commit([]Entry{{Rev: rev, Base: rev, Muts: muts}}, nil, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{1, 10, len(all) / 3, len(all)} {
		krs := slices.Clone(all)
		rng.Shuffle(len(krs), func(i, j int) { krs[i], krs[j] = krs[j], krs[i] })
		krs = krs[:n]
		got, err := readValues(db, krs)
		if err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		for i, kr := range krs {
			want, err := db.Value(kr.Key, kr.Rev)
			if err != nil || got[i] != string(want) {
				t.Fatalf("%d records: %v = %d bytes, Value has %d bytes (%v)", n, kr, len(got[i]), len(want), err)
			}
		}
	}
}
