package test

// Helpers of the snapshot tests (snapshot_test.go): the tools run as real
// processes (etcdctl snapshot save, etcdutl snapshot status and restore,
// metastore snapshot restore), a server started on a restored data dir,
// and snapState, everything a snapshot must carry as clients see it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/rpc"
)

const (
	// snapEtcdName and snapEtcdPeerURL are the member etcdutl restores a
	// snapshot as, and etcd then starts as (etcdStartOn): they must
	// match. Port 0, as in startEtcd: a lone member never dials its peer
	// URL.
	snapEtcdName    = "restored"
	snapEtcdPeerURL = "http://127.0.0.1:0"
	// snapRestoreShards is the shard count `metastore snapshot restore`
	// is given; the server started on the dir keeps it.
	snapRestoreShards = "3"
)

// snapRun runs the binary bin with args, without etcdctl's global flags,
// and returns what it did.
func snapRun(t testing.TB, bin string, args ...string) ctlOut {
	t.Helper()
	return runTool(t, bin, "", args...)
}

// snapSaveTo runs `etcdctl snapshot save file` against endpoint.
func snapSaveTo(t *testing.T, endpoint, file string) ctlOut {
	t.Helper()
	c := &ctl{t: t, bin: buildBinary(t, etcdctlCmd), endpoint: endpoint}
	return c.exec("", "snapshot", "save", file)
}

// snapSave saves a snapshot of the server at endpoint into a new file and
// returns its path and the server version etcdctl reports.
func snapSave(t *testing.T, endpoint string) (file, version string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "snapshot.db")
	out := snapSaveTo(t, endpoint, file)
	if out.code != 0 {
		t.Fatalf("etcdctl snapshot save %s: exit %d, stderr:\n%s", file, out.code, out.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out.stdout, "\n"), "\n")
	if lines[0] != "Snapshot saved at "+file {
		t.Fatalf("etcdctl snapshot save printed %q, want it to start with %q", out.stdout, "Snapshot saved at "+file)
	}
	if len(lines) > 1 {
		version, _ = strings.CutPrefix(lines[1], "Server version ")
	}
	return file, version
}

// snapStatusJSON is `etcdutl snapshot status -w json` (etcdutl's
// snapshot.Status).
type snapStatusJSON struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}

// snapStatus reads a snapshot file with etcdutl.
func snapStatus(t testing.TB, file string) snapStatusJSON {
	t.Helper()
	args := []string{"snapshot", "status", file, "-w", "json"}
	out := snapRun(t, buildBinary(t, etcdutlCmd), args...)
	if out.code != 0 {
		t.Fatalf("etcdutl %q: exit %d, stderr:\n%s", args, out.code, out.stderr)
	}
	var st snapStatusJSON
	if err := json.Unmarshal([]byte(out.stdout), &st); err != nil {
		t.Fatalf("etcdutl %q printed %q: %v", args, out.stdout, err)
	}
	return st
}

// snapFileHashKV is `etcdutl hashkv --rev=rev` of a snapshot file: etcd's
// own HashKV of the file's key space at rev, 0 for the file's revision, as
// a server started on it computes it. It runs on a copy, as etcd opens the
// file to write.
func snapFileHashKV(t testing.TB, file string, rev int64) hkResult {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "hashkv.db")
	if err := os.WriteFile(cp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"hashkv", cp, "--rev", strconv.FormatInt(rev, 10), "-w", "json"}
	out := snapRun(t, buildBinary(t, etcdutlCmd), args...)
	if out.code != 0 {
		t.Fatalf("etcdutl %q: exit %d, stderr:\n%s", args, out.code, out.stderr)
	}
	var h struct {
		Hash            uint32 `json:"hash"`
		HashRevision    int64  `json:"hashRevision"`
		CompactRevision int64  `json:"compactRevision"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &h); err != nil {
		t.Fatalf("etcdutl %q printed %q: %v", args, out.stdout, err)
	}
	return hkResult{hash: h.Hash, compact: h.CompactRevision, hashRev: h.HashRevision}
}

// snapRestoreEtcd restores file with etcdutl into a new data dir and serves
// it with etcd.
func snapRestoreEtcd(t *testing.T, file string) *Target {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "etcd")
	args := []string{"snapshot", "restore", file, "--data-dir", dir, "--name", snapEtcdName,
		"--initial-cluster", snapEtcdName + "=" + snapEtcdPeerURL, "--initial-advertise-peer-urls", snapEtcdPeerURL}
	if out := snapRun(t, buildBinary(t, etcdutlCmd), args...); out.code != 0 {
		t.Fatalf("etcdutl %q: exit %d, stderr:\n%s", args, out.code, out.stderr)
	}
	endpoint, _ := etcdStartOn(t, dir, snapEtcdName)
	return connect(t, "etcd", endpoint)
}

// etcdStartOn starts etcd as member name on the data dir dir, new or one it
// (or etcdutl, restoring a snapshot as that member) wrote before, with the
// settings of startEtcd. It returns the client endpoint and a func that
// stops the server, which the test's cleanup also calls.
func etcdStartOn(t *testing.T, dir, name string) (string, func()) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = name
	// Client and peer URLs alike; the peer URL is the one etcdutl
	// restores a member with.
	local, err := url.Parse(snapEtcdPeerURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenClientUrls = []url.URL{*local}
	cfg.AdvertiseClientUrls = []url.URL{*local}
	cfg.ListenPeerUrls = []url.URL{*local}
	cfg.AdvertisePeerUrls = []url.URL{*local}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	cfg.UnsafeNoFsync = true
	cfg.WatchProgressNotifyInterval = rpc.DefaultWatchProgressNotifyInterval
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start etcd on %s: %v", dir, err)
	}
	stop := sync.OnceFunc(e.Close)
	t.Cleanup(stop)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("etcd on %s failed while starting: %v", dir, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("etcd on %s not ready after 30s", dir)
	}
	return e.Clients[0].Addr().String(), stop
}

// snapRestoreMetaStoreTo runs `metastore snapshot restore file --data-dir
// dir --shards N`.
func snapRestoreMetaStoreTo(t testing.TB, file, dir string) ctlOut {
	t.Helper()
	return snapRun(t, buildBinary(t, metastoreCmd), "snapshot", "restore", file, "--data-dir", dir, "--shards", snapRestoreShards)
}

// snapRestoreMetaStore restores file with the metastore binary into a new
// data dir and serves it in-process.
func snapRestoreMetaStore(t *testing.T, file string) *Target {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "metastore")
	if out := snapRestoreMetaStoreTo(t, file, dir); out.code != 0 {
		t.Fatalf("metastore snapshot restore %s --data-dir %s: exit %d, stderr:\n%s", file, dir, out.code, out.stderr)
	}
	// Shards 0: the count the restore recorded.
	return durStart(t, durConfig(dir, 0)).Target
}

// snapState is what a snapshot must carry, as clients see it. Two states
// are compared field by field.
type snapState struct {
	// rev is the current revision, compact the compact revision.
	rev, compact int64
	// kvs are all keys now (snapKVs); history all keys at every
	// revision from the compact revision on; belowCompact the answer to a
	// read below it.
	kvs          string
	history      []string
	belowCompact string
	// events are the events a watch from the revision after the compact
	// revision gets, with their previous values, up to rev.
	events []string
	// live is the number of keys now.
	live int
	// leases are the leases in ID order, each with its granted TTL and
	// its keys.
	leases []string
	// hashes are the HashKV answers at 0 and at every revision after
	// the compact revision. Not at the compact revision itself: a
	// server that compacted answers there with the hash it stored then,
	// one started on a copy computes it afresh (etcd does both).
	hashes []string
	// hashNow is the answer at 0 without its header revision, as
	// `etcdutl hashkv` computes it from a file.
	hashNow hkResult
}

// snapKVs renders kvs as kvSummary does, but a long value as its length
// and checksum, so that a failure message stays readable, and a nil one
// as "none".
func snapKVs(kvs ...*mvccpb.KeyValue) string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		switch {
		case kv == nil:
			out[i] = "none"
		case len(kv.Value) > 32:
			c := proto.CloneOf(kv)
			c.Value = fmt.Appendf(nil, "<%d bytes, crc32 %08x>", len(kv.Value), crc32.ChecksumIEEE(kv.Value))
			out[i] = kvSummary([]*mvccpb.KeyValue{c})
		default:
			out[i] = kvSummary([]*mvccpb.KeyValue{kv})
		}
	}
	return strings.Join(out, " ")
}

// snapRead reads tg's state; compact is the revision the history was
// compacted at.
func snapRead(t testing.TB, tg *Target, compact int64) snapState {
	t.Helper()
	all := func(rev int64) (*pb.RangeResponse, error) {
		return tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
	}
	now, err := all(0)
	if err != nil {
		t.Fatalf("%s: read all keys: %v", tg.Name, err)
	}
	s := snapState{rev: now.Header.Revision, compact: compact, kvs: snapKVs(now.Kvs...), live: len(now.Kvs)}
	for rev := compact; rev <= s.rev; rev++ {
		at, err := all(rev)
		if err != nil {
			t.Fatalf("%s: read all keys at revision %d: %v", tg.Name, rev, err)
		}
		s.history = append(s.history, fmt.Sprintf("at %d: %s", rev, snapKVs(at.Kvs...)))
	}
	_, err = all(compact - 1)
	s.belowCompact = hkFromResp(nil, err).err
	if err == nil {
		s.belowCompact = "no error"
	}
	s.events = snapWatch(t, tg, compact+1, s.rev)
	for _, id := range slices.Sorted(slices.Values(ltLeaseIDs(t, tg))) {
		ttl := ltTimeToLive(t, tg, id, true)
		keys := make([]string, len(ttl.Keys))
		for i, k := range ttl.Keys {
			keys[i] = string(k)
		}
		slices.Sort(keys)
		s.leases = append(s.leases, fmt.Sprintf("%#x granted %ds keys %q", id, ttl.GrantedTTL, keys))
	}
	for rev := int64(0); rev <= s.rev; rev = max(rev+1, compact+1) {
		h := hkRaw(t, tg, rev)
		s.hashes = append(s.hashes, fmt.Sprintf("at %d: %v", rev, h))
		if rev == 0 {
			s.hashNow = h
			s.hashNow.hdrRev = 0
		}
	}
	return s
}

// snapWatch watches every key from revision from, with previous values,
// and renders the events up to revision to.
func snapWatch(t testing.TB, tg *Target, from, to int64) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(reqCtx(t))
	defer cancel()
	var events []string
	for resp := range tg.Client.Watch(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(from), clientv3.WithPrevKV()) {
		if err := resp.Err(); err != nil {
			t.Fatalf("%s: watch from revision %d: %v", tg.Name, from, err)
		}
		for _, ev := range resp.Events {
			events = append(events, fmt.Sprintf("%v %s prev %s", ev.Type, snapKVs(ev.Kv), snapKVs(ev.PrevKv)))
			if ev.Kv.ModRevision == to && ev == resp.Events[len(resp.Events)-1] {
				return events
			}
		}
	}
	t.Fatalf("%s: watch from revision %d ended before revision %d: %v", tg.Name, from, to, ctx.Err())
	return nil
}

// snapCompare reports where got, read from a restored server, differs
// from want, read from the server the snapshot was taken of.
func snapCompare(t testing.TB, want, got snapState) {
	t.Helper()
	field := func(name string, w, g any) {
		t.Helper()
		if ws, gs := fmt.Sprint(w), fmt.Sprint(g); ws != gs {
			t.Errorf("restored %s:\n got %s\nwant %s", name, gs, ws)
		}
	}
	lines := func(l []string) string { return strings.Join(l, "\n     ") }
	field("revision", want.rev, got.rev)
	field("keys", want.kvs, got.kvs)
	field("keys at each revision since the compaction", lines(want.history), lines(got.history))
	field("read below the compact revision", want.belowCompact, got.belowCompact)
	field("events since the compaction", lines(want.events), lines(got.events))
	field("leases", lines(want.leases), lines(got.leases))
	field("hashes", lines(want.hashes), lines(got.hashes))
}

// snapWantDirGone checks that dir, the target of a refused restore, was
// not left behind with anything in it.
func snapWantDirGone(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read %s: %v", dir, err)
	}
	if len(entries) > 0 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		t.Errorf("a refused restore left %s with %q in it", dir, names)
	}
}
