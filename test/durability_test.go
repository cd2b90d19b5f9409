package test

// Durability of the data dir, in process: what a server answers before a
// restart it answers identically after one (keys, revisions, history,
// compaction, IDs), revisions continue, the shard count may change, a dir
// that is not ours or not our format is refused and left alone, the
// NOSPACE alarm works and survives a restart, and --in-memory keeps nothing.
//
// These run against MetaStore only: etcd has its own data dir format and
// its own tests for it.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/metastore/metastore/storage"
)

// durAllKeys is etcd's "every key" range: key "\x00" with range_end "\x00".
var durAllKeys = &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}

func (tg *Target) durDelete(t *testing.T, k, end string) *pb.DeleteRangeResponse {
	t.Helper()
	resp, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)})
	if err != nil {
		t.Fatalf("delete %q..%q: %v", k, end, err)
	}
	return resp
}

func (tg *Target) durCompact(t *testing.T, rev int64) {
	t.Helper()
	if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: rev, Physical: true}); err != nil {
		t.Fatalf("compact at %d: %v", rev, err)
	}
}

// durKeys are spread over every shard of any small shard count, and
// include the bytes the on-disk key escaping treats specially (0x00, and
// 0xff after it), keys that are prefixes of one another, and a key that
// sorts first and one that sorts last.
var durKeys = []string{
	"\x00", "a", "a\x00", "a\x00\x00", "a\x00\xff", "a\x01", "a\xff", "ab", "b",
	"dir/1", "dir/2", "dir/3", "dir/4", "dir/5", "dir0", "z", "\xff", "\xff\xff",
}

// durWriteHistory writes a history with every kind of change: puts,
// overwrites, deletes, a key deleted and created again (a new
// generation), multi-key Txns across shards (both branches), a range
// delete, a large and an empty value, and a compaction in the middle.
// It returns the compact revision.
func durWriteHistory(t *testing.T, tg *Target) int64 {
	t.Helper()
	for i, k := range durKeys {
		tg.put(t, k, fmt.Sprintf("v1-%d", i))
	}
	for i, k := range durKeys[:8] {
		tg.put(t, k, fmt.Sprintf("v2-%d", i))
	}
	tg.durDelete(t, "a\x00", "")
	tg.put(t, "a\x00", "reborn")
	tg.put(t, "empty", "")
	tg.put(t, "large", strings.Repeat("0123456789abcdef", 16*1024)) // 256 KiB
	// A cross-shard Txn whose success branch writes several keys.
	resp := tg.txn(t, &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("v2-1")}}},
		Success: []*pb.RequestOp{opPut("dir/1", "txn"), opPut("z", "txn"), opPut("\xff", "txn"), opDel("b", "")},
		Failure: []*pb.RequestOp{opPut("failure", "taken")},
	})
	if !resp.Succeeded {
		t.Fatalf("txn compare on a=v2-1 failed")
	}
	// One whose failure branch is taken.
	resp = tg.txn(t, &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("a"), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: 99}}},
		Success: []*pb.RequestOp{opPut("success", "taken")},
		Failure: []*pb.RequestOp{opPut("failure", "taken"), opPut("dir/2", "failure"), opGet("a")},
	})
	if resp.Succeeded {
		t.Fatalf("txn compare on version 99 succeeded")
	}
	compactAt := tg.currentRev(t)
	// A range delete across shards, then more history after the compact
	// revision on keys that also have history before it.
	if del := tg.durDelete(t, "dir/", "dir0"); del.Deleted != 5 {
		t.Fatalf("range delete of dir/ removed %d keys, want 5", del.Deleted)
	}
	tg.put(t, "dir/3", "after")
	tg.put(t, "a", "v3")
	tg.durCompact(t, compactAt)
	tg.put(t, "a", "v4")
	tg.durDelete(t, "z", "")
	tg.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opPut("ab", "t2"), opPut("\xff\xff", "t2"), opPut("\x00", "t2")}})
	return compactAt
}

// durState is everything a client can durObserve about the store's data,
// rendered so that two states compare with == and print readably.
type durState struct {
	clusterID, memberID uint64
	rev                 int64
	latest              string           // every key, latest revision
	single              string           // each key read alone (the one-shard read path)
	history             map[int64]string // every key at each revision from the compact revision on
	belowCompact        string           // a read below the compact revision
	future              string           // a read above the current revision
	recompact           string           // a compaction at the compact revision
}

// durObserve reads the whole state of tg, whose compact revision is compact.
func durObserve(t *testing.T, tg *Target, compact int64) durState {
	t.Helper()
	all := tg.rangeKV(t, durAllKeys)
	s := durState{
		clusterID: all.Header.ClusterId,
		memberID:  all.Header.MemberId,
		rev:       all.Header.Revision,
		latest:    fmt.Sprintf("count=%d %s", all.Count, kvSummary(all.Kvs)),
		history:   map[int64]string{},
	}
	var single []string
	for _, kv := range all.Kvs {
		one := tg.rangeKV(t, &pb.RangeRequest{Key: kv.Key})
		single = append(single, kvSummary(one.Kvs))
	}
	s.single = strings.Join(single, " ")
	for rev := max(compact, 1); rev <= s.rev; rev++ {
		resp := tg.rangeKV(t, &pb.RangeRequest{Key: durAllKeys.Key, RangeEnd: durAllKeys.RangeEnd, Revision: rev})
		if resp.Header.Revision != s.rev {
			t.Fatalf("history read at %d: header revision %d, want the current %d", rev, resp.Header.Revision, s.rev)
		}
		s.history[rev] = fmt.Sprintf("count=%d %s", resp.Count, kvSummary(resp.Kvs))
	}
	errText := func(err error) string {
		if err == nil {
			return "no error"
		}
		return err.Error()
	}
	if compact > 1 {
		_, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte("a"), Revision: compact - 1})
		s.belowCompact = errText(err)
		wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
		_, err = tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: compact})
		s.recompact = errText(err)
		wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
	}
	_, err := tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte("a"), Revision: s.rev + 1})
	s.future = errText(err)
	wantRPCErr(t, err, rpctypes.ErrGRPCFutureRev)
	return s
}

// durWantSame fails with every difference between two observations.
func durWantSame(t *testing.T, what string, got, want durState) {
	t.Helper()
	var diffs []string
	add := func(field string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			diffs = append(diffs, fmt.Sprintf("%s:\n   got  %v\n   want %v", field, g, w))
		}
	}
	add("cluster_id", got.clusterID, want.clusterID)
	add("member_id", got.memberID, want.memberID)
	add("revision", got.rev, want.rev)
	add("latest", got.latest, want.latest)
	add("single-key reads", got.single, want.single)
	for rev, w := range want.history {
		add(fmt.Sprintf("history at %d", rev), got.history[rev], w)
	}
	add("history revisions", len(got.history), len(want.history))
	add("read below the compact revision", got.belowCompact, want.belowCompact)
	add("compaction at the compact revision", got.recompact, want.recompact)
	add("future read", got.future, want.future)
	if len(diffs) > 0 {
		t.Fatalf("%s differs:\n%s", what, strings.Join(diffs, "\n"))
	}
}

// TestDurableRestart writes a history with every kind of change and a
// compaction, restarts on the same dir and requires every observation to
// be identical; writes after the restart continue the revisions, and a
// restart with another shard count (or none, which keeps the recorded one)
// finds the same data, since records are not stored by shard.
func TestDurableRestart(t *testing.T) {
	dir := t.TempDir()
	ds := durStart(t, durConfig(dir, 4))
	compact := durWriteHistory(t, ds.Target)
	before := durObserve(t, ds.Target, compact)
	if before.clusterID == 0 || before.memberID == 0 {
		t.Fatalf("zero cluster or member ID: %d, %d", before.clusterID, before.memberID)
	}
	ds.close(t)

	ds = durStart(t, durConfig(dir, 4))
	if want := fmt.Sprintf("at revision %d", before.rev); !strings.Contains(ds.log.String(), want) {
		t.Errorf("startup log does not say %q:\n%s", want, ds.log.String())
	}
	durWantSame(t, "state after a restart", durObserve(t, ds.Target, compact), before)

	// Revisions continue exactly where they stopped: a put takes the next
	// one, on the shard path and the coordinator path alike.
	if rev := ds.put(t, "a", "after-restart"); rev != before.rev+1 {
		t.Fatalf("first put after the restart got revision %d, want %d", rev, before.rev+1)
	}
	txn := ds.txn(t, &pb.TxnRequest{Success: []*pb.RequestOp{opPut("b", "x"), opPut("z", "x"), opPut("dir/9", "x"), opPut("\x00", "x")}})
	if txn.Header.Revision != before.rev+2 {
		t.Fatalf("cross-shard txn after the restart got revision %d, want %d", txn.Header.Revision, before.rev+2)
	}
	// A new generation of a key deleted before the restart, and a delete of
	// one written before it.
	ds.put(t, "dir/1", "again")
	if del := ds.durDelete(t, "a\x00", "a\x01"); del.Deleted != 3 || del.Header.Revision != before.rev+4 {
		t.Fatalf("range delete after the restart: deleted %d at %d, want 3 at %d", del.Deleted, del.Header.Revision, before.rev+4)
	}
	// A second compaction, recorded over the first.
	compact = ds.currentRev(t) - 2
	ds.durCompact(t, compact)
	before = durObserve(t, ds.Target, compact)
	ds.close(t)

	for _, shards := range []int{7, 1, 0} {
		ds = durStart(t, durConfig(dir, shards))
		// 0 keeps the count the dir recorded last, 1 here.
		want := shards
		if want == 0 {
			want = 1
		}
		if line := fmt.Sprintf("with %d shards", want); !strings.Contains(ds.log.String(), line) {
			t.Errorf("started with --shards %d, log does not say %q:\n%s", shards, line, ds.log.String())
		}
		durWantSame(t, fmt.Sprintf("state after a restart with --shards %d", shards), durObserve(t, ds.Target, compact), before)
		ds.close(t)
	}

	// And the dir still takes writes at the next revision.
	ds = durStart(t, durConfig(dir, 3))
	if rev := ds.put(t, "last", "x"); rev != before.rev+1 {
		t.Fatalf("put after the shard-count changes got revision %d, want %d", rev, before.rev+1)
	}
}

// TestDurableRestartEmpty: a dir that never saw a write restarts at
// revision 1, like a fresh etcd, with the same IDs.
func TestDurableRestartEmpty(t *testing.T) {
	dir := t.TempDir()
	ds := durStart(t, durConfig(dir, 2))
	before := durObserve(t, ds.Target, 0)
	if before.rev != 1 {
		t.Fatalf("fresh dir at revision %d, want 1", before.rev)
	}
	ds.close(t)
	ds = durStart(t, durConfig(dir, 2))
	durWantSame(t, "empty store after a restart", durObserve(t, ds.Target, 0), before)
	if rev := ds.put(t, "k", "v"); rev != 2 {
		t.Fatalf("first put got revision %d, want 2", rev)
	}
}

// durWriteDir makes a data dir with some history and returns it closed.
func durWriteDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ds := durStart(t, durConfig(dir, 2))
	ds.put(t, "k", "v")
	ds.put(t, "k2", "v2")
	ds.close(t)
	return dir
}

// durWithPebble changes a closed data dir directly, below MetaStore, to make
// it what a test needs: a newer format, a corrupt record.
func durWithPebble(t *testing.T, dir string, fn func(db *pebble.DB)) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{ErrorIfNotExists: true, Logger: durPebbleLog{}})
	if err != nil {
		t.Fatalf("open %s with pebble: %v", dir, err)
	}
	fn(db)
	// A flush puts the records into table files: the damaged-table case
	// needs one, and every case is then a dir with tables as well as a
	// log, like one a server has run on for a while.
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// durPebbleLog keeps pebble's informational lines out of the test output.
type durPebbleLog struct{}

func (durPebbleLog) Infof(string, ...any)  {}
func (durPebbleLog) Errorf(string, ...any) {}
func (durPebbleLog) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

func durPebbleSet(t *testing.T, db *pebble.DB, k, v string) {
	t.Helper()
	if err := db.Set([]byte(k), []byte(v), pebble.Sync); err != nil {
		t.Fatalf("pebble set %q: %v", k, err)
	}
}

// TestDurableFormatRefused: a data dir that is not a MetaStore one, is
// corrupt, or has another format version fails the start with a message
// that says so, and is left exactly as it was: not a byte changed, no file
// added or removed.
func TestDurableFormatRefused(t *testing.T) {
	writeFiles := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, content := range files {
			path := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	cases := []struct {
		name string
		dir  func(t *testing.T) string
		want []string // the error mentions each of these
	}{{
		name: "etcd data dir",
		dir: func(t *testing.T) string {
			return writeFiles(t, map[string]string{
				"member/snap/db": "bolt db of an etcd member",
				"member/wal/0000000000000000-0000000000000000.wal": "etcd wal",
			})
		},
		want: []string{"not a MetaStore data dir"},
	}, {
		name: "unrelated files",
		dir: func(t *testing.T) string {
			return writeFiles(t, map[string]string{"notes.txt": "my notes"})
		},
		want: []string{"not a MetaStore data dir"},
	}, {
		name: "a file, not a dir",
		dir: func(t *testing.T) string {
			// durDirFiles of a file path reads just that file.
			path := filepath.Join(t.TempDir(), "data")
			if err := os.WriteFile(path, []byte("a file"), 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		},
		want: []string{"not a directory"},
	}, {
		name: "garbage named like pebble files",
		dir: func(t *testing.T) string {
			return writeFiles(t, map[string]string{
				"CURRENT":         "MANIFEST-000001\n",
				"MANIFEST-000001": strings.Repeat("\xde\xad\xbe\xef", 1000),
				"000002.log":      strings.Repeat("garbage", 1000),
				"000003.sst":      strings.Repeat("garbage", 1000),
				"OPTIONS-000004":  "[Version]\n  pebble_version=0.1\n",
			})
		},
		want: []string{"not a MetaStore data dir"},
	}, {
		name: "pebble db of another program",
		dir: func(t *testing.T) string {
			dir := t.TempDir()
			db, err := pebble.Open(dir, &pebble.Options{Logger: durPebbleLog{}})
			if err != nil {
				t.Fatal(err)
			}
			durPebbleSet(t, db, "some/key", "some value")
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		want: []string{"not a MetaStore data dir", "no format marker"},
	}, {
		name: "newer format",
		dir: func(t *testing.T) string {
			dir := durWriteDir(t)
			durWithPebble(t, dir, func(db *pebble.DB) { durPebbleSet(t, db, "m/format", "4") })
			return dir
		},
		want: []string{"format", `"4"`},
	}, {
		name: "unknown format",
		dir: func(t *testing.T) string {
			dir := durWriteDir(t)
			durWithPebble(t, dir, func(db *pebble.DB) { durPebbleSet(t, db, "m/format", "x-other") })
			return dir
		},
		want: []string{"format", `"x-other"`},
	}, {
		name: "corrupt compact revision",
		dir: func(t *testing.T) string {
			dir := durWriteDir(t)
			durWithPebble(t, dir, func(db *pebble.DB) { durPebbleSet(t, db, "m/compact", "abc") })
			return dir
		},
		want: []string{"corrupt", "m/compact"},
	}, {
		name: "corrupt record key",
		dir: func(t *testing.T) string {
			dir := durWriteDir(t)
			durWithPebble(t, dir, func(db *pebble.DB) { durPebbleSet(t, db, "r/short", "x") })
			return dir
		},
		want: []string{"corrupt"},
	}, {
		name: "corrupt record",
		dir: func(t *testing.T) string {
			dir := durWriteDir(t)
			durWithPebble(t, dir, func(db *pebble.DB) {
				// r/<rev 2>"k" with a create revision cut off mid-varint.
				durPebbleSet(t, db, "r/\x00\x00\x00\x00\x00\x00\x00\x02k", "\xff")
			})
			return dir
		},
		want: []string{"corrupt", `"k"`},
	}, {
		name: "damaged table file",
		dir: func(t *testing.T) string {
			dir := durWriteDir(t)
			durWithPebble(t, dir, func(*pebble.DB) {}) // the records go to a table
			tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
			if len(tables) == 0 {
				t.Fatalf("no table file in %s after a flush", dir)
			}
			for _, path := range tables {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				// The data blocks come first: flip bytes near the start.
				for i := 8; i < 40 && i < len(b); i++ {
					b[i] ^= 0x5a
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return dir
		},
		// Pebble's own words for a bad checksum will do; what is ruled
		// out is a panic, or a start that serves what it could read.
		want: nil,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir(t)
			before := durDirFiles(t, dir)
			ds, err := durTryStart(t, durConfig(dir, 2))
			if err == nil {
				ds.close(t)
				t.Fatalf("start on %s succeeded; want it refused", c.name)
			}
			if strings.HasPrefix(err.Error(), "panic: ") {
				t.Errorf("start panicked instead of returning an error: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("start error %q does not mention %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("start error %q does not name the data dir", err)
			}
			if d := durDiffFiles(before, durDirFiles(t, dir)); d != "" {
				t.Errorf("refused start changed the data dir: %s", d)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestDurableFormatRefusedBinary: the command fails to start on a dir that
// is not its own, says why on stderr, and exits non-zero without touching it.
func TestDurableFormatRefusedBinary(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "member", "snap"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "member", "snap", "db"), []byte("etcd"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := durDirFiles(t, dir)
	p, err := durTryStartProc(t, "--data-dir", dir, "--shards", "2")
	if err == nil {
		p.kill()
		t.Fatalf("metastore started on an etcd data dir: %s", p.startup)
	}
	if !strings.Contains(err.Error(), "not a MetaStore data dir") || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("want exit status 1 and a message saying it is not a MetaStore data dir, got: %v", err)
	}
	if d := durDiffFiles(before, durDirFiles(t, dir)); d != "" {
		t.Errorf("refused start changed the data dir: %s", d)
	}
}

// durEmptyDirSize is the size a fresh data dir reports against the quota.
func durEmptyDirSize(t *testing.T) int64 {
	t.Helper()
	db, _, err := storage.Open(t.TempDir(), storage.Options{Shards: 2, DefaultShards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.Size()
}

// TestDurableQuota fills a small quota: the NOSPACE alarm rejects puts and
// Txns that could put with etcd's "database space exceeded", while reads,
// deletes, delete-only Txns and compaction go on; the alarm survives a
// restart.
func TestDurableQuota(t *testing.T) {
	empty := durEmptyDirSize(t)
	const headroom = 512 * 1024
	dir := t.TempDir()
	cfg := durConfig(dir, 4)
	cfg.QuotaBackendBytes = empty + headroom
	ds := durStart(t, cfg)

	value := strings.Repeat("q", 4096)
	// The quota is checked after each commit, so the alarm is up a few
	// writes past it; ten times the headroom is a generous bound.
	limit := 10 * headroom / len(value)
	var last int64
	var err error
	n := 0
	for ; n < limit; n++ {
		var resp *pb.PutResponse
		resp, err = ds.KV.Put(reqCtx(t), &pb.PutRequest{Key: fmt.Appendf(nil, "fill/%05d", n), Value: []byte(value)})
		if err != nil {
			break
		}
		last = resp.Header.Revision
	}
	if err == nil {
		t.Fatalf("%d puts of %d bytes (quota %d) all succeeded; want NOSPACE", n, len(value), cfg.QuotaBackendBytes)
	}
	wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
	if n < headroom/len(value)/2 {
		t.Errorf("NOSPACE after only %d puts of %d bytes with %d bytes of headroom", n, len(value), headroom)
	}
	t.Logf("empty dir %d bytes, quota %d: NOSPACE after %d puts, at revision %d", empty, cfg.QuotaBackendBytes, n, last)
	if rev := ds.currentRev(t); rev != last {
		t.Fatalf("revision %d after the refused put, want %d", rev, last)
	}

	rev := checkNoSpace(t, ds.Target, last, value)
	ds.close(t)

	// The alarm is recorded in the dir: a restart keeps refusing puts, even
	// though compaction freed space (etcd keeps it until it is disarmed).
	ds = durStart(t, cfg)
	for i := range 5 {
		// After the deletes above, these keys' names are free; NOSPACE is
		// about the alarm, not the key.
		_, err := ds.KV.Put(reqCtx(t), &pb.PutRequest{Key: fmt.Appendf(nil, "fill/%05d", i), Value: []byte("x")})
		wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
	}
	// The deleted keys are still gone and the rest still there.
	resp := ds.rangeKV(t, &pb.RangeRequest{Key: []byte("fill/"), RangeEnd: []byte("fill0"), CountOnly: true})
	if resp.Count != int64(n-4) {
		t.Fatalf("%d fill keys after the restart, want %d", resp.Count, n-4)
	}
	_, err = ds.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte("fill/more"), Value: []byte("x")})
	wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
	if del := ds.durDelete(t, "fill/00005", ""); del.Header.Revision != rev+1 {
		t.Fatalf("delete after the restart at %d, want %d", del.Header.Revision, rev+1)
	}
}

// TestDurableInMemory: with --in-memory the command says so when it starts,
// writes nothing to its data dir, and a restart finds nothing.
func TestDurableInMemory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for run := range 2 {
		p := durStartProc(t, "--in-memory", "--data-dir", dir, "--shards", "2")
		if !strings.Contains(p.startup, "in memory") {
			t.Fatalf("run %d: startup line does not say in memory: %s", run, p.startup)
		}
		kv, closeConn := p.kvClient(t)
		resp, err := kv.Range(reqCtx(t), &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != 0 || resp.Header.Revision != 1 {
			t.Fatalf("run %d: in-memory server started with %d keys at revision %d; want none at 1", run, resp.Count, resp.Header.Revision)
		}
		for i := range 10 {
			if _, err := kv.Put(reqCtx(t), &pb.PutRequest{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
		}
		closeConn()
		// One graceful stop and one crash: neither leaves anything behind.
		if run == 0 {
			p.stop(t)
		} else {
			p.kill()
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("run %d: in-memory server touched its data dir %s (stat: %v)", run, dir, err)
		}
	}
}

// checkNoSpace checks what a server under the NOSPACE alarm does, from
// revision rev with key fill/00000..fill/00004 holding value: puts and Txns
// that could put are refused and change nothing; reads, deletes,
// delete-only Txns and compaction still work. It returns the revision after.
func checkNoSpace(t *testing.T, tg *Target, rev int64, value string) int64 {
	t.Helper()
	_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte("fill/more"), Value: []byte("x")})
	wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
	// A Txn that could put is refused whichever branch would run.
	_, err = tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{opPut("fill/txn", "x")}})
	wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
	_, err = tg.KV.Txn(reqCtx(t), &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("nope"), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: 0}}},
		Success: []*pb.RequestOp{opRange(&pb.RangeRequest{Key: []byte("fill/"), RangeEnd: []byte("fill0")})},
		Failure: []*pb.RequestOp{opPut("fill/txn", "x")},
	})
	wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
	if got := tg.currentRev(t); got != rev {
		t.Fatalf("refused writes moved the revision from %d to %d", rev, got)
	}
	// Reads work.
	resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte("fill/00000")})
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != value {
		t.Fatalf("read under NOSPACE: %s", kvSummary(resp.Kvs))
	}
	// Deletes work, and take a revision.
	del, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte("fill/00000")})
	if err != nil || del.Deleted != 1 || del.Header.Revision != rev+1 {
		t.Fatalf("delete under NOSPACE: %v, %v; want 1 deleted at %d", del, err, rev+1)
	}
	// So do Txns of deletes and reads only, across shards.
	txn, err := tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Success: []*pb.RequestOp{
		opDel("fill/00001", ""), opDel("fill/00002", "fill/00004"), opGet("fill/00004"),
	}})
	if err != nil || txn.Header.Revision != rev+2 {
		t.Fatalf("delete-only txn under NOSPACE: %v, %v; want it at %d", txn, err, rev+2)
	}
	if got := txn.Responses[1].GetResponseDeleteRange().Deleted; got != 2 {
		t.Fatalf("delete-only txn's range delete removed %d keys, want 2", got)
	}
	// And compaction.
	if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: rev + 2, Physical: true}); err != nil {
		t.Fatalf("compaction under NOSPACE: %v", err)
	}
	_, err = tg.KV.Range(reqCtx(t), &pb.RangeRequest{Key: []byte("fill/00000"), Revision: rev + 1})
	wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
	return rev + 2
}

// TestNoSpaceOnEtcd runs checkNoSpace against a real etcd whose small quota
// its puts have crossed, so every expectation TestDurableQuota has of
// MetaStore under the alarm is also etcd's.
func TestNoSpaceOnEtcd(t *testing.T) {
	const quota = 4 << 20
	value := strings.Repeat("q", 4096)
	onlyBackend(t, "etcd", func(t *testing.T, tg *Target) {
		var last int64
		var err error
		for n := 0; n < 10*quota/len(value); n++ {
			var resp *pb.PutResponse
			resp, err = tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: fmt.Appendf(nil, "fill/%05d", n), Value: []byte(value)})
			if err != nil {
				break
			}
			last = resp.Header.Revision
		}
		wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
		checkNoSpace(t, tg, last, value)
	}, withEtcdQuota(quota))
}
