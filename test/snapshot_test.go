package test

// Snapshots in etcd's own format, both ways: a snapshot that `etcdctl
// snapshot save` takes of one server (MetaStore on a data dir, or etcd) is
// read by `etcdutl snapshot status`, restored (by etcdutl for etcd, by
// `metastore snapshot restore` for MetaStore) and served by the other,
// which must then hold every key with its revisions, version, value and
// lease, the same current and compact revision, every lease with its TTL
// and keys, and the same HashKV; and go on from there: the next write gets
// the next revision, a lease revoke deletes its keys, a lease expires. The
// etcd-to-etcd trip is the oracle: every check passes there.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// snapLeaseShort is a lease with a key that must expire on the
	// restored server; the source keeps it alive until the snapshot is
	// taken.
	snapLeaseShort = 0x5301
	// snapShortTTL is its TTL: above both servers' minimum, short enough
	// to wait for.
	snapShortTTL = 3
)

// snapNeed skips t unless METASTORE_BACKENDS selects every one of names.
func snapNeed(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if !slices.Contains(selectedBackends(t), n) {
			t.Skipf("%s does not select %s", backendsEnv, n)
		}
	}
}

// snapWriteHistory writes hkHistory under p to tg, then a key under the
// short lease, which it keeps alive until stop is called. It returns the
// compact revision.
func snapWriteHistory(t *testing.T, tg *Target, p string) (compact int64, stop func()) {
	t.Helper()
	for _, op := range hkHistory(p) {
		if rev := op.do(t, tg); op.compact {
			compact = rev
		}
	}
	ltGrant(t, tg, snapLeaseShort, snapShortTTL)
	ka, stop := context.WithCancel(t.Context())
	t.Cleanup(stop)
	ch, err := tg.Client.KeepAlive(ka, snapLeaseShort)
	if err != nil {
		t.Fatalf("keep lease %#x alive: %v", snapLeaseShort, err)
	}
	go func() {
		for range ch {
		}
	}()
	ltPut(t, tg, p+"short", "1", snapLeaseShort)
	return compact, stop
}

// snapRestorers restore a snapshot file into a new server of their backend.
var snapRestorers = map[string]func(t *testing.T, file string) *Target{
	"etcd":      snapRestoreEtcd,
	"metastore": snapRestoreMetaStore,
}

// snapTrips are the round trips the snapshot tests make: each way between
// MetaStore and etcd, and each to itself (etcd's is the reference).
var snapTrips = []struct{ from, to string }{
	{from: "metastore", to: "etcd"},
	{from: "etcd", to: "metastore"},
	{from: "metastore", to: "metastore"},
	{from: "etcd", to: "etcd"},
}

// TestSnapshotRoundTrip saves a snapshot of a history on one backend,
// restores it into another and compares what the two serve.
func TestSnapshotRoundTrip(t *testing.T) {
	for _, tc := range snapTrips {
		t.Run(tc.from+" to "+tc.to, func(t *testing.T) {
			snapNeed(t, tc.from, tc.to)
			// Each trip mostly waits for its short lease to expire.
			t.Parallel()
			p := "/snapshot/"
			src := connect(t, tc.from, startBackend(t, tc.from, withDataDir(), withErrorLog()))
			compact, stopKeepAlive := snapWriteHistory(t, src, p)
			want := snapRead(t, src, compact)
			file, srvVersion := snapSave(t, src.Endpoint)
			stopKeepAlive()

			st := snapStatus(t, file)
			if st.Revision != want.rev || st.TotalKey != want.live {
				t.Errorf("etcdutl snapshot status: revision %d, %d keys; the server had revision %d, %d keys",
					st.Revision, st.TotalKey, want.rev, want.live)
			}
			snapWantVersion(t, tc.from, st.Version, srvVersion)
			if got := snapFileHashKV(t, file, 0); got != want.hashNow {
				t.Errorf("etcdutl hashkv of the snapshot: %v; the server answered HashKV with %v", got, want.hashNow)
			}

			dst := snapRestorers[tc.to](t, file)
			snapCompare(t, want, snapRead(t, dst, compact))
			// At the compact revision, the restored server has no stored
			// hash, and computes what etcd computes from the file.
			atCompact := hkRaw(t, dst, compact)
			atCompact.hdrRev = 0
			if fromFile := snapFileHashKV(t, file, compact); atCompact != fromFile {
				t.Errorf("restored HashKV at the compact revision %d: %v; etcdutl hashkv of the file there: %v", compact, atCompact, fromFile)
			}
			if t.Failed() {
				t.FailNow()
			}
			snapContinue(t, dst, p, want.rev)

			// The restored server's own snapshot holds what was
			// written since.
			again, againVersion := snapSave(t, dst.Endpoint)
			st2 := snapStatus(t, again)
			if rev, live := dst.currentRev(t), len(snapLiveKeys(t, dst)); st2.Revision != rev || st2.TotalKey != live {
				t.Errorf("etcdutl snapshot status of the restored server's snapshot: revision %d, %d keys; the server has revision %d, %d keys",
					st2.Revision, st2.TotalKey, rev, live)
			}
			snapWantVersion(t, tc.to, st2.Version, againVersion)
		})
	}
}

// snapWantVersion checks the storage version of a snapshot of a backend's
// server, as etcdutl reads it from the file and etcdctl from the stream:
// for MetaStore, the one etcd writes (its cluster version, major.minor.0).
// etcd itself writes it only once its version monitor has run, seconds
// after it starts, so a snapshot of a fresh etcd may have none yet.
func snapWantVersion(t testing.TB, backend, storage, server string) {
	t.Helper()
	want := version.Cluster(version.Version) + ".0"
	if backend == "metastore" && (storage != want || server != want) {
		t.Errorf("snapshot of MetaStore: storage version %q in the file, server version %q from etcdctl; want %q (etcd %s's)",
			storage, server, want, version.Version)
	}
}

// snapLiveKeys lists every key tg holds now.
func snapLiveKeys(t testing.TB, tg *Target) []string {
	t.Helper()
	return keysOf(tg.rangeKV(t, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true}).Kvs)
}

// snapContinue checks that a server restored at revision rev goes on from
// there: a put gets rev+1, revoking hkLeaseKept deletes its keys at rev+2,
// and the short lease expires, deleting its key at rev+3.
func snapContinue(t *testing.T, tg *Target, p string, rev int64) {
	t.Helper()
	if got := tg.put(t, p+"after", "1"); got != rev+1 {
		t.Errorf("first put after the restore got revision %d, want %d", got, rev+1)
	}
	if got := ltRevoke(t, tg, hkLeaseKept).Header.Revision; got != rev+2 {
		t.Errorf("revoke of restored lease %#x: revision %d, want %d", hkLeaseKept, got, rev+2)
	}
	for _, kv := range tg.rangeKV(t, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}).Kvs {
		if kv.Lease == hkLeaseKept {
			t.Errorf("key %q still holds revoked lease %#x", kv.Key, hkLeaseKept)
		}
	}
	if ttl := ltTimeToLive(t, tg, hkLeaseKept, false).TTL; ttl != -1 {
		t.Errorf("revoked lease %#x has TTL %d, want -1", hkLeaseKept, ttl)
	}
	deadline := time.Now().Add(snapShortTTL*time.Second + ltExpirySlack)
	for {
		resp, err := tg.Client.Get(reqCtx(t), p+"short", clientv3.WithCountOnly())
		if err != nil {
			t.Fatalf("get %sshort: %v", p, err)
		}
		if resp.Count == 0 {
			if resp.Header.Revision != rev+3 {
				t.Errorf("expiry of restored lease %#x: revision %d, want %d", snapLeaseShort, resp.Header.Revision, rev+3)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("restored lease %#x (TTL %ds) has not expired after %v", snapLeaseShort, snapShortTTL, snapShortTTL*time.Second+ltExpirySlack)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSnapshotRestoreRefusals checks that `metastore snapshot restore`
// refuses a file that is not an intact snapshot, or a data dir that is not
// empty, with a message that says why, and leaves nothing a server could
// start on; and that the same restore of an intact file into the same
// place then works.
func TestSnapshotRestoreRefusals(t *testing.T) {
	snapNeed(t, "metastore")
	// The snapshot is etcd's, whichever backends are selected: here it
	// is only the input of the metastore binary.
	src := connect(t, "etcd", startBackend(t, "etcd"))
	src.put(t, "/refusals/a", "1")
	good, _ := snapSave(t, src.Endpoint)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(data)
	flipped[len(flipped)/2] ^= 0x55

	cases := []struct {
		name string
		// file is the snapshot's content; nil means no file at all.
		file []byte
		// nonEmpty puts a file in the data dir first.
		nonEmpty bool
		// wantAny lists words one of which the error must contain.
		wantAny []string
	}{
		{name: "byte flipped", file: flipped, wantAny: []string{"sha256", "checksum", "hash", "corrupt"}},
		{name: "truncated", file: data[:len(data)/2], wantAny: []string{"sha256", "checksum", "hash", "corrupt", "truncated"}},
		{name: "not a snapshot", file: []byte("hello\n"), wantAny: []string{"sha256", "checksum", "hash", "corrupt", "snapshot"}},
		{name: "no such file", wantAny: []string{"no such file"}},
		{name: "data dir not empty", file: data, nonEmpty: true, wantAny: []string{"not empty"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			file := filepath.Join(tmp, "snapshot.db")
			if tc.file != nil {
				if err := os.WriteFile(file, tc.file, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(tmp, "data")
			if tc.nonEmpty {
				if err := os.MkdirAll(filepath.Join(dir, "member"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := durDirFiles(t, tmp)
			out := snapRestoreMetaStoreTo(t, file, dir)
			msg := strings.ToLower(out.stderr)
			if out.code == 0 || !slices.ContainsFunc(tc.wantAny, func(w string) bool { return strings.Contains(msg, w) }) {
				t.Fatalf("metastore snapshot restore: exit %d, stderr %q; want a failure that says one of %q", out.code, out.stderr, tc.wantAny)
			}
			if tc.nonEmpty {
				if diff := durDiffFiles(before, durDirFiles(t, tmp)); diff != "" {
					t.Fatalf("a refused restore into a non-empty dir changed it: %s", diff)
				}
				return
			}
			snapWantDirGone(t, dir)
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if out := snapRestoreMetaStoreTo(t, file, dir); out.code != 0 {
				t.Fatalf("restore of the intact file after the refusal: exit %d, stderr:\n%s", out.code, out.stderr)
			}
			tg := durStart(t, durConfig(dir, 0)).Target
			if got := tg.rangeKV(t, &pb.RangeRequest{Key: []byte("/refusals/a")}).Kvs; len(got) != 1 || string(got[0].Value) != "1" {
				t.Fatalf("restored after a refusal: /refusals/a is %s, want value 1", kvSummary(got))
			}
		})
	}
}

// TestSnapshotSaveInMemory checks that `etcdctl snapshot save` of an
// in-memory MetaStore fails and says why, and writes no file. etcd has no
// in-memory mode.
func TestSnapshotSaveInMemory(t *testing.T) {
	onlyBackend(t, "metastore", func(t *testing.T, tg *Target) {
		tg.put(t, "/in-memory/a", "1")
		file := filepath.Join(t.TempDir(), "snapshot.db")
		out := snapSaveTo(t, tg.Endpoint, file)
		if line := ctlErrorLine(out.stderr); out.code == 0 || !strings.Contains(strings.ToLower(line), "memory") {
			t.Fatalf("etcdctl snapshot save of an in-memory server: exit %d, error line %q; want a failure that says the server keeps no data dir (in memory)", out.code, line)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Fatalf("a failed snapshot save left %s (stat: %v)", file, err)
		}
	})
}

// TestSnapshotUnderWrites takes a snapshot while writers keep changing the
// store, and checks that it is one consistent instant: etcd's own HashKV
// of the file (`etcdutl hashkv`) at its revision R equals the server's
// HashKV at R, and the file holds as many keys as the server did at R.
func TestSnapshotUnderWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := "/snapshot-under-writes/"
		for _, op := range []hkOp{hkPut(p+"a", "1", 0), hkPut(p+"b", "1", 0), hkDel(p+"a", ""), hkCompactHere()} {
			op.do(t, tg)
		}
		ctx, stop := context.WithCancel(t.Context())
		defer stop()
		errc := make(chan error, 2)
		for w := range 2 {
			go func() {
				for i := 0; ctx.Err() == nil; i++ {
					k := fmt.Sprintf("%sw%d/%d", p, w, i%50)
					ops := []*pb.RequestOp{ltOpPut(k, strconv.Itoa(i), 0), ltOpPut(k+"/txn", strconv.Itoa(i), 0)}
					if i%7 == 0 {
						ops = []*pb.RequestOp{hkOpDel(k)}
					}
					if _, err := tg.KV.Txn(ctx, &pb.TxnRequest{Success: ops}); err != nil && ctx.Err() == nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
		}
		// Let the writers get going, so the snapshot is taken among
		// their commits.
		start := tg.currentRev(t)
		for tg.currentRev(t) < start+50 {
			time.Sleep(time.Millisecond)
		}
		file, _ := snapSave(t, tg.Endpoint)
		stop()
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatalf("writer: %v", err)
			}
		}
		st := snapStatus(t, file)
		if st.Revision <= start {
			t.Fatalf("snapshot at revision %d, before the writers' first 50 commits after %d", st.Revision, start)
		}
		want := hkRaw(t, tg, st.Revision)
		want.hdrRev = 0
		if got := snapFileHashKV(t, file, 0); got != want {
			t.Errorf("etcdutl hashkv of a snapshot at revision %d: %v; the server's HashKV there: %v", st.Revision, got, want)
		}
		at := tg.rangeKV(t, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: st.Revision, CountOnly: true})
		if int64(st.TotalKey) != at.Count {
			t.Errorf("snapshot at revision %d holds %d keys; the server had %d there", st.Revision, st.TotalKey, at.Count)
		}
	}, withDataDir())
}
