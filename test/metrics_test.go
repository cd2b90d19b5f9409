package test

import (
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// metricsWorkload is what the metrics test does to a server, and what it
// saw doing it.
type metricsWorkload struct {
	// What was asked: RPCs by method, and the operations etcd's mvcc
	// counts (etcd_mvcc_*_total), with the bytes of every key and value
	// put.
	puts, deletes, ranges, txns, putBytes   int
	putRPCs, txnRPCs, deleteRPCs, rangeRPCs int
	// writes is every write request (they go to a shard or to the
	// coordinator); events is what the watchers received.
	writes, events int
	// What the server answered.
	firstRev, lastRev, compactRev int64
	keys                          int64
	authRev                       uint64
	// Scrapes: before anything, with the watchers open (and the lease
	// granted), and at the end.
	before, watching, after families
}

// TestMetricsLikeEtcd runs one workload (puts, overwrites, Txns with nested
// Txns, deletes, ranges, a lease, two watchers, a compaction) against each
// backend as a process of its own (metrics_helpers_test.go says why) and
// checks that etcd's series move by what the workload did — the same
// numbers from etcd and from MetaStore — that MetaStore's own series
// (metastore_*) are there and add up, and that every series both serve has
// the same type, help and labels in both.
func TestMetricsLikeEtcd(t *testing.T) {
	scrapes := map[string]families{}
	for _, name := range selectedBackends(t) {
		t.Run(name, func(t *testing.T) {
			tg := startMetricsProc(t, name)
			w := runMetricsWorkload(t, tg)
			checkEtcdSeries(t, w)
			if name == "metastore" {
				checkMetaStoreSeries(t, w)
			}
			scrapes[name] = w.after
		})
	}
	ms, etcd := scrapes["metastore"], scrapes["etcd"]
	if ms == nil || etcd == nil {
		return
	}
	for name, want := range etcd {
		got := ms[name]
		if got == nil {
			continue
		}
		if got.GetType() != want.GetType() || got.GetHelp() != want.GetHelp() {
			t.Errorf("%s: MetaStore serves a %v %q, etcd a %v %q", name, got.GetType(), got.GetHelp(), want.GetType(), want.GetHelp())
		}
		if g, w := labelNames(got), labelNames(want); len(g) > 0 && len(w) > 0 && !slices.Equal(g, w) {
			t.Errorf("%s: MetaStore labels it %v, etcd %v", name, g, w)
		}
	}
	// MetaStore's etcd_ and grpc_ series are all etcd's.
	for name := range ms {
		if (strings.HasPrefix(name, "etcd_") || strings.HasPrefix(name, "grpc_")) && etcd[name] == nil {
			t.Errorf("MetaStore serves %s, which etcd does not", name)
		}
	}
}

func runMetricsWorkload(t *testing.T, tg *Target) *metricsWorkload {
	w := &metricsWorkload{}
	w.before = scrapeMetrics(t, tg)
	w.firstRev = tg.currentRev(t)
	w.ranges++
	w.rangeRPCs++

	// Two watchers on one stream (clientv3 shares a stream between the
	// watches of one context).
	wctx := clientv3.WithRequireLeader(t.Context())
	single := tg.Client.Watch(wctx, "/m/w1", clientv3.WithCreatedNotify())
	prefix := tg.Client.Watch(wctx, "/m/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	for _, ch := range []clientv3.WatchChan{single, prefix} {
		if resp := <-ch; !resp.Created {
			t.Fatalf("watch not created: %+v", resp)
		}
	}

	put := func(r *pb.PutRequest) {
		t.Helper()
		if _, err := tg.KV.Put(reqCtx(t), r); err != nil {
			t.Fatalf("put %s: %v", r.Key, err)
		}
		w.puts++
		w.putBytes += len(r.Key) + len(r.Value)
		w.putRPCs++
		w.writes++
	}
	for _, k := range []string{"/m/k0", "/m/k1", "/m/k2", "/m/k3", "/m/k4", "/m/k5", "/m/k6", "/m/k7", "/m/k8", "/m/k9", "/m/w1"} {
		put(&pb.PutRequest{Key: []byte(k), Value: []byte("value")})
	}
	// An overwrite that reads the previous value: etcd counts that read as
	// a range, and so a txn of two operations.
	put(&pb.PutRequest{Key: []byte("/m/k0"), Value: []byte("again"), PrevKv: true})
	w.ranges++
	w.txns++
	putOp := func(k, v string) *pb.RequestOp {
		w.puts++
		w.putBytes += len(k) + len(v)
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
	}
	txn := func(r *pb.TxnRequest) {
		t.Helper()
		if _, err := tg.KV.Txn(reqCtx(t), r); err != nil {
			t.Fatalf("txn: %v", err)
		}
		w.txns++
		w.txnRPCs++
		w.writes++
	}
	// Two puts and a range: etcd counts one txn.
	txn(&pb.TxnRequest{Success: []*pb.RequestOp{
		putOp("/m/t1", "x"), putOp("/m/t2", "y"),
		{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("/m/k0")}}},
	}})
	w.ranges++
	// A put and a nested Txn deleting a key.
	txn(&pb.TxnRequest{Success: []*pb.RequestOp{
		putOp("/m/t3", "z"),
		{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: []*pb.RequestOp{
			{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("/m/t1")}}},
		}}}},
	}})
	w.deletes++
	// A delete with its previous value (a range, and a txn, as above) and
	// a range delete.
	w.ranges++
	w.txns++
	for _, r := range []*pb.DeleteRangeRequest{
		{Key: []byte("/m/k1"), PrevKv: true},
		{Key: []byte("/m/k2"), RangeEnd: []byte("/m/k5")},
	} {
		if _, err := tg.KV.DeleteRange(reqCtx(t), r); err != nil {
			t.Fatalf("delete %s: %v", r.Key, err)
		}
		w.deletes++
		w.deleteRPCs++
		w.writes++
	}
	for _, r := range []*pb.RangeRequest{
		{Key: []byte("/m/k0")},
		{Key: []byte("/m/"), RangeEnd: []byte("/m0"), CountOnly: true},
	} {
		w.rangeKV(t, tg, r)
	}

	// A lease with a key, renewed once, then revoked: the revoke deletes
	// its key (etcd counts that delete).
	lease, err := tg.Client.Grant(reqCtx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	put(&pb.PutRequest{Key: []byte("/m/l1"), Value: []byte("leased"), Lease: int64(lease.ID)})
	if _, err := tg.Client.KeepAliveOnce(reqCtx(t), lease.ID); err != nil {
		t.Fatal(err)
	}

	// By now 22 events were sent: /m/w1's put to the single-key watcher
	// and the 21 changes under /m/ to the prefix watcher. The revoke's
	// delete of /m/l1 makes 23.
	w.watching = waitWatched(t, tg, map[string]float64{"etcd_debugging_mvcc_events_total": 22}, w.before)
	if _, err := tg.Client.Revoke(reqCtx(t), lease.ID); err != nil {
		t.Fatal(err)
	}
	w.deletes++
	w.writes++
	for ch, want := range map[clientv3.WatchChan]int{single: 1, prefix: 22} {
		for got := 0; got < want; {
			select {
			case resp := <-ch:
				if err := resp.Err(); err != nil {
					t.Fatal(err)
				}
				got += len(resp.Events)
				w.events += len(resp.Events)
			case <-time.After(10 * time.Second):
				t.Fatalf("%d of %d events after 10s", got, want)
			}
		}
	}

	resp := w.rangeKV(t, tg, &pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true})
	w.keys = resp.Count
	w.compactRev = resp.Header.Revision - 2
	if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: w.compactRev, Physical: true}); err != nil {
		t.Fatal(err)
	}
	w.ranges++ // etcd reads the current revision for a compaction's answer
	w.lastRev = tg.currentRev(t)
	w.ranges++
	w.rangeRPCs++
	// An auth change moves the auth revision (auth stays off).
	if _, err := tg.Client.RoleAdd(reqCtx(t), "m-role"); err != nil {
		t.Fatal(err)
	}
	status, err := tg.Client.AuthStatus(reqCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	w.authRev = status.AuthRevision
	w.after = scrapeMetrics(t, tg)
	return w
}

// rangeKV runs a range that must succeed, and counts it.
func (w *metricsWorkload) rangeKV(t *testing.T, tg *Target, r *pb.RangeRequest) *pb.RangeResponse {
	t.Helper()
	resp := tg.rangeKV(t, r)
	w.ranges++
	w.rangeRPCs++
	return resp
}

// waitWatched scrapes until each counter of want moved by at least its
// value since before (events reach a watcher's stream after its writes are
// answered), and returns that families.
func waitWatched(t *testing.T, tg *Target, want map[string]float64, before families) families {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := scrapeMetrics(t, tg)
		done := true
		for name, n := range want {
			if s.value(t, name)-before.value(t, name) < n {
				done = false
			}
		}
		if done {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v not reached after 10s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkEtcdSeries checks etcd's series by what the workload did; both
// backends must pass it.
func checkEtcdSeries(t *testing.T, w *metricsWorkload) {
	t.Helper()
	moved := func(name string, labels ...string) float64 {
		return w.after.value(t, name, labels...) - w.before.value(t, name, labels...)
	}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"etcd_mvcc_put_total", moved("etcd_mvcc_put_total"), float64(w.puts)},
		{"etcd_mvcc_delete_total", moved("etcd_mvcc_delete_total"), float64(w.deletes)},
		{"etcd_mvcc_range_total", moved("etcd_mvcc_range_total"), float64(w.ranges)},
		{"etcd_mvcc_txn_total", moved("etcd_mvcc_txn_total"), float64(w.txns)},
		{"etcd_debugging_mvcc_total_put_size_in_bytes", moved("etcd_debugging_mvcc_total_put_size_in_bytes"), float64(w.putBytes)},
		{"etcd_debugging_mvcc_keys_total", w.after.value(t, "etcd_debugging_mvcc_keys_total"), float64(w.keys)},
		{"etcd_debugging_mvcc_current_revision", w.after.value(t, "etcd_debugging_mvcc_current_revision"), float64(w.lastRev)},
		{"etcd_debugging_mvcc_compact_revision", w.after.value(t, "etcd_debugging_mvcc_compact_revision"), float64(w.compactRev)},
		{"etcd_debugging_auth_revision", w.after.value(t, "etcd_debugging_auth_revision"), float64(w.authRev)},
		{"etcd_debugging_mvcc_events_total", moved("etcd_debugging_mvcc_events_total"), float64(w.events)},
		{"etcd_debugging_mvcc_watcher_total while watching", w.watching.value(t, "etcd_debugging_mvcc_watcher_total"), 2},
		{"etcd_debugging_mvcc_watch_stream_total while watching", w.watching.value(t, "etcd_debugging_mvcc_watch_stream_total"), 1},
		{"etcd_debugging_mvcc_slow_watcher_total", w.after.value(t, "etcd_debugging_mvcc_slow_watcher_total"), 0},
		{"etcd_debugging_lease_granted_total", moved("etcd_debugging_lease_granted_total"), 1},
		{"etcd_debugging_lease_renewed_total", moved("etcd_debugging_lease_renewed_total"), 1},
		{"etcd_debugging_lease_revoked_total", moved("etcd_debugging_lease_revoked_total"), 1},
		{"etcd_debugging_lease_ttl_total (grants)", moved("etcd_debugging_lease_ttl_total"), 1},
		{"etcd_debugging_server_lease_expired_total", moved("etcd_debugging_server_lease_expired_total"), 0},
		{"etcd_server_has_leader", w.after.value(t, "etcd_server_has_leader"), 1},
		{"etcd_server_is_leader", w.after.value(t, "etcd_server_is_leader"), 1},
		{"etcd_server_quota_backend_bytes", w.after.value(t, "etcd_server_quota_backend_bytes"), 2 << 30},
		{"etcd_server_id", w.after.value(t, "etcd_server_id"), 1},
		{"grpc_server_handled_total Put OK", moved("grpc_server_handled_total", "grpc_method", "Put", "grpc_code", "OK"), float64(w.putRPCs)},
		{"grpc_server_handled_total Txn OK", moved("grpc_server_handled_total", "grpc_method", "Txn", "grpc_code", "OK"), float64(w.txnRPCs)},
		{"grpc_server_handled_total DeleteRange OK", moved("grpc_server_handled_total", "grpc_method", "DeleteRange", "grpc_code", "OK"), float64(w.deleteRPCs)},
		{"grpc_server_handled_total Range OK", moved("grpc_server_handled_total", "grpc_method", "Range", "grpc_code", "OK"), float64(w.rangeRPCs)},
		{"grpc_server_started_total Put", moved("grpc_server_started_total", "grpc_method", "Put"), float64(w.putRPCs)},
		{"grpc_server_handling_seconds Put", moved("grpc_server_handling_seconds", "grpc_method", "Put"), float64(w.putRPCs)},
		{"grpc_server_started_total Watch", moved("grpc_server_started_total", "grpc_method", "Watch"), 1},
		{"grpc_server_handled_total Txn NotFound (zero series)", w.after.value(t, "grpc_server_handled_total", "grpc_method", "Txn", "grpc_code", "NotFound"), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, name := range []string{"etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes", "process_resident_memory_bytes", "go_goroutines"} {
		if v := w.after.value(t, name); v <= 0 {
			t.Errorf("%s = %v, want a size", name, v)
		}
	}
	for _, name := range []string{"etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds"} {
		w.after.value(t, name) // present
	}
}

// checkMetaStoreSeries checks MetaStore's own series by what the workload
// did.
func checkMetaStoreSeries(t *testing.T, w *metricsWorkload) {
	t.Helper()
	moved := func(name string, labels ...string) float64 {
		return w.after.value(t, name, labels...) - w.before.value(t, name, labels...)
	}
	sumMoved := func(name string, labels ...string) float64 {
		return w.after.histogramSum(t, name, labels...) - w.before.histogramSum(t, name, labels...)
	}
	revisions := float64(w.lastRev - w.firstRev)
	commits := moved("metastore_sequencer_commit_duration_seconds")
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		// Every write was planned in a shard's batch or run by the
		// coordinator.
		{"shard batch writes + coordinator writes", sumMoved("metastore_shard_batch_writes") + moved("metastore_coordinator_writes_total"), float64(w.writes)},
		{"coordinator writes timed", moved("metastore_coordinator_write_shards"), moved("metastore_coordinator_writes_total")},
		// Every revision was made durable by one commit.
		{"revisions committed", sumMoved("metastore_sequencer_commit_writes"), revisions},
		{"commits counted", moved("metastore_sequencer_commit_writes"), commits},
		{"commits as etcd's WAL fsyncs", moved("etcd_disk_wal_fsync_duration_seconds"), commits},
		{"commits as etcd's backend commits", moved("etcd_disk_backend_commit_duration_seconds"), commits},
		{"revision lag at rest", w.after.value(t, "metastore_sequencer_revision_lag"), 0},
		{"watchers while watching", w.watching.value(t, "metastore_watch_watchers"), 2},
		{"watch streams while watching", w.watching.value(t, "metastore_watch_streams"), 1},
		{"slow watchers", w.after.value(t, "metastore_watch_slow_watchers"), 0},
		{"watch events", moved("metastore_watch_events_total"), float64(w.events)},
		{"leases held with the lease granted", w.watching.value(t, "metastore_lease_leases"), 1},
		{"leases held at the end", w.after.value(t, "metastore_lease_leases"), 0},
		{"lease revokes under way at the end", w.after.value(t, "metastore_lease_revoking"), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if commits < 1 {
		t.Errorf("%v commits timed", commits)
	}
	if b := w.after.histogramSum(t, "metastore_sequencer_commit_bytes"); b <= 0 {
		t.Errorf("%v bytes committed", b)
	}
	// Every kind of actor reports its mailbox and timed messages.
	for _, actor := range []string{"shard-*", "coordinator", "sequencer", "lease", "watch-*"} {
		w.after.value(t, "metastore_actor_mailbox_depth", "actor", actor)
		if n := moved("metastore_actor_message_duration_seconds", "actor", actor); n < 1 {
			t.Errorf("actor %s: %v messages timed", actor, n)
		}
	}
	for _, actor := range []string{"shard-*", "coordinator"} {
		w.after.value(t, "metastore_write_queue_writes", "actor", actor)
	}
}
