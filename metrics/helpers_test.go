package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// registry is a registry of this package's collectors alone. They are the
// package's globals, so a test reads differences, not absolute values.
func registry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := Register(reg, Collectors()...); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestMVCCRequestCountsLikeEtcdTxn(t *testing.T) {
	reg := registry(t)
	series := []string{"etcd_mvcc_range_total", "etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_txn_total", "etcd_debugging_mvcc_total_put_size_in_bytes"}
	tests := []struct {
		name                            string
		ranges, puts, deletes, putBytes int
		want                            []float64 // by series
	}{
		{name: "a range", ranges: 1, want: []float64{1, 0, 0, 0, 0}},
		{name: "a put", puts: 1, putBytes: 11, want: []float64{0, 1, 0, 0, 11}},
		{name: "a delete", deletes: 1, want: []float64{0, 0, 1, 0, 0}},
		{name: "a txn of a put and a range", ranges: 1, puts: 1, putBytes: 4, want: []float64{1, 1, 0, 1, 4}},
		{name: "a txn of two deletes", deletes: 2, want: []float64{0, 0, 2, 1, 0}},
		{name: "a txn that ran nothing", want: []float64{0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := make([]float64, len(series))
			for i, s := range series {
				before[i] = gatherValue(t, reg, s, nil)
			}
			MVCCRequest(tt.ranges, tt.puts, tt.deletes, tt.putBytes)
			for i, s := range series {
				if got := gatherValue(t, reg, s, nil) - before[i]; got != tt.want[i] {
					t.Errorf("%s moved by %v, want %v", s, got, tt.want[i])
				}
			}
		})
	}
}

func TestActorReportsMailboxDepthAndHandlingTime(t *testing.T) {
	reg := registry(t)
	name := map[string]string{"actor": "test-actor"}
	// Two actors of one name (two nodes in one process) share the series.
	a, b := NewActor("test-actor"), NewActor("test-actor")
	depth0 := gatherValue(t, reg, "metastore_actor_mailbox_depth", name)
	handled0 := gatherValue(t, reg, "metastore_actor_message_duration_seconds", name)
	a.MessagePosted(nil)
	a.MessagePosted(nil)
	b.MessagePosted(nil)
	if got := gatherValue(t, reg, "metastore_actor_mailbox_depth", name) - depth0; got != 3 {
		t.Fatalf("depth moved by %v after three posts, want 3", got)
	}
	a.RunStarted()
	a.MessageReceived(nil)
	a.MessageReceived(nil)
	b.RunStarted()
	b.MessageReceived(nil)
	if got := gatherValue(t, reg, "metastore_actor_mailbox_depth", name) - depth0; got != 0 {
		t.Fatalf("depth moved by %v after three posts and three receives, want 0", got)
	}
	if got := gatherValue(t, reg, "metastore_actor_message_duration_seconds", name) - handled0; got != 3 {
		t.Fatalf("%v messages timed, want 3", got)
	}
}

// TestWatchAddsDifferences: two watch actors of one name (two nodes in one
// process) add up, and each takes back what it reported when it empties.
func TestWatchAddsDifferences(t *testing.T) {
	reg := registry(t)
	name := map[string]string{"actor": "test-watch"}
	read := func() [3]float64 {
		return [3]float64{
			gatherValue(t, reg, "metastore_watch_watchers", name),
			gatherValue(t, reg, "etcd_debugging_mvcc_watcher_total", nil),
			gatherValue(t, reg, "etcd_debugging_mvcc_slow_watcher_total", nil),
		}
	}
	a, b := NewWatch("test-watch"), NewWatch("test-watch")
	before := read()
	a.Update(1, 5, 2)
	b.Update(1, 3, 0)
	a.Update(1, 4, 1)
	if got, want := sub(read(), before), [3]float64{7, 7, 1}; got != want {
		t.Fatalf("watchers, all watchers, slow moved by %v, want %v", got, want)
	}
	a.Update(0, 0, 0)
	b.Update(0, 0, 0)
	if got := sub(read(), before); got != [3]float64{} {
		t.Fatalf("after both emptied, moved by %v, want nothing", got)
	}
	events := gatherValue(t, reg, "etcd_debugging_mvcc_events_total", nil)
	a.Events(3)
	if got := gatherValue(t, reg, "etcd_debugging_mvcc_events_total", nil) - events; got != 3 {
		t.Fatalf("events moved by %v, want 3", got)
	}
}

func sub(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
