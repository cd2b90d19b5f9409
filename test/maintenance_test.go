package test

// Tests of the Maintenance service, each run against MetaStore and a real
// etcd: Status, Alarm (NOSPACE raised by hand and by the quota), Defragment,
// Hash, HashKV's errors, Snapshot's stream, MoveLeader and Downgrade.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-semver/semver"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// mtWaitFor polls cond until it holds, failing the test after opTimeout.
func mtWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mtSettled waits until the server reports etcd v3.7's storage version:
// etcd starts from an older one and records its own within a second or
// two. Its snapshots carry it too.
func mtSettled(t testing.TB, tg *Target) *pb.StatusResponse {
	t.Helper()
	var st *pb.StatusResponse
	mtWaitFor(t, "storage version 3.7.0", func() bool { st = mtStatus(t, tg); return st.StorageVersion == "3.7.0" })
	return st
}

func mtStatus(t testing.TB, tg *Target) *pb.StatusResponse {
	t.Helper()
	resp, err := pb.NewMaintenanceClient(tg.Conn).Status(reqCtx(t), &pb.StatusRequest{})
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return resp
}

// TestMaintenanceStatus checks every field of Status on a member with a
// data dir: itself as leader, etcd's API version, sizes, the quota, the
// storage version, no errors; and a raft index that grows with writes.
// Then, as etcd takes seconds to settle its storage version, which
// snapshots carry, the snapshot stream on the same server.
func TestMaintenanceStatus(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		st := mtSettled(t, tg)
		h := st.Header
		if h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm == 0 {
			t.Errorf("header %v: want cluster and member IDs and a raft term", h)
		}
		if st.Leader != h.MemberId || st.IsLearner {
			t.Errorf("leader %d, learner %v; want itself (%d), not a learner", st.Leader, st.IsLearner, h.MemberId)
		}
		if v, err := semver.NewVersion(st.Version); err != nil || v.Major != 3 || v.Minor != 7 {
			t.Errorf("version %q: want a 3.7 semantic version (%v)", st.Version, err)
		}
		if st.DbSize <= 0 || st.DbSizeInUse <= 0 || st.DbSizeInUse > st.DbSize {
			t.Errorf("db size %d, %d in use: want both positive, in use at most the size", st.DbSize, st.DbSizeInUse)
		}
		if st.DbSizeQuota != 2<<30 {
			t.Errorf("quota %d, want the default 2 GiB", st.DbSizeQuota)
		}
		if st.RaftTerm != h.RaftTerm || st.RaftIndex == 0 || st.RaftAppliedIndex != st.RaftIndex {
			t.Errorf("raft term %d (header %d), index %d, applied %d", st.RaftTerm, h.RaftTerm, st.RaftIndex, st.RaftAppliedIndex)
		}
		if len(st.Errors) != 0 || st.DowngradeInfo == nil || st.DowngradeInfo.Enabled {
			t.Errorf("errors %q, downgrade %v; want none", st.Errors, st.DowngradeInfo)
		}
		p := keyPrefix(t)
		index := st.RaftIndex
		for i := range 3 {
			rev := tg.put(t, fmt.Sprintf("%sk%d", p, i), "v")
			st = mtStatus(t, tg)
			if st.RaftIndex <= index || st.RaftAppliedIndex != st.RaftIndex {
				t.Errorf("after a put: raft index %d (applied %d), before %d; want it grown", st.RaftIndex, st.RaftAppliedIndex, index)
			}
			if st.Header.Revision != rev {
				t.Errorf("status header at revision %d after a put at %d", st.Header.Revision, rev)
			}
			index = st.RaftIndex
		}
		t.Run("snapshot stream", func(t *testing.T) { mtSnapshotStream(t, tg) })
	}, withDataDir())
}

// TestMaintenanceStatusInMemory: an in-memory MetaStore has no data dir to
// measure; it reports the heap that holds the store, all of it in use (a
// size of 0 would crash etcdctl's endpoint status, which divides by it).
func TestMaintenanceStatusInMemory(t *testing.T) {
	onlyBackend(t, "metastore", func(t *testing.T, tg *Target) {
		tg.put(t, keyPrefix(t)+"k", "v")
		if st := mtStatus(t, tg); st.DbSize <= 0 || st.DbSizeInUse != st.DbSize || st.Leader != st.Header.MemberId {
			t.Errorf("in memory: db size %d, %d in use, leader %d; want the heap's size, all in use, and itself", st.DbSize, st.DbSizeInUse, st.Leader)
		}
	})
}

// mtAlarms is a set of alarms in a comparable form, sorted (etcd lists
// them in map order).
func mtAlarms(ms []*pb.AlarmMember) string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%d:%s", m.MemberID, m.Alarm))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func mtAlarm(t testing.TB, tg *Target, action pb.AlarmRequest_AlarmAction, typ pb.AlarmType, member uint64) string {
	t.Helper()
	resp, err := pb.NewMaintenanceClient(tg.Conn).Alarm(reqCtx(t), &pb.AlarmRequest{Action: action, Alarm: typ, MemberID: member})
	if err != nil {
		t.Fatalf("alarm %s %s for %d: %v", action, typ, member, err)
	}
	if resp.Header == nil || resp.Header.Revision == 0 {
		t.Errorf("alarm %s: header %v, want one with the revision", action, resp.Header)
	}
	return mtAlarms(resp.Alarms)
}

// mtStatusErrors are the errors Status lists for alarms: etcd's words,
// each alarm's protobuf text.
func mtStatusErrors(alarms ...*pb.AlarmMember) []string {
	out := []string{}
	for _, a := range alarms {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

// TestMaintenanceAlarm raises and clears NOSPACE alarms by hand: for this
// member and for another ID (etcd takes any), each listed, shown in
// Status, refusing puts (but not deletes) while any is raised.
func TestMaintenanceAlarm(t *testing.T) {
	const (
		get, on, off = pb.AlarmRequest_GET, pb.AlarmRequest_ACTIVATE, pb.AlarmRequest_DEACTIVATE
		none, space  = pb.AlarmType_NONE, pb.AlarmType_NOSPACE
		other        = 12345
	)
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		self := mtStatus(t, tg).Header.MemberId
		mine, others := fmt.Sprintf("%d:NOSPACE", self), fmt.Sprintf("%d:NOSPACE", other)
		both := mtAlarms([]*pb.AlarmMember{{MemberID: self, Alarm: space}, {MemberID: other, Alarm: space}})
		tg.put(t, p+"a", "1")
		putRefused := func(refused bool) {
			t.Helper()
			_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte(p + "a"), Value: []byte("2")})
			if refused {
				wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
			} else if err != nil {
				t.Fatalf("put with no alarm raised: %v", err)
			}
		}
		steps := []struct {
			name         string
			action       pb.AlarmRequest_AlarmAction
			typ          pb.AlarmType
			member       uint64
			want, listed string
			refused      bool
		}{
			{"none raised", get, none, 0, "", "", false},
			{"raise NONE: ignored", on, none, self, "", "", false},
			{"raise own NOSPACE", on, space, self, mine, mine, true},
			{"raise it again: listed", on, space, self, mine, mine, true},
			{"raise another ID's", on, space, other, others, both, true},
			{"list NOSPACE", get, space, 0, both, both, true},
			{"list CORRUPT", get, pb.AlarmType_CORRUPT, 0, "", both, true},
			{"clear own", off, space, self, mine, others, true},
			{"clear own again: nothing", off, space, self, "", others, true},
			{"clear the other's", off, space, other, others, "", false},
		}
		for _, s := range steps {
			if got := mtAlarm(t, tg, s.action, s.typ, s.member); got != s.want {
				t.Errorf("%s: answered %q, want %q", s.name, got, s.want)
			}
			if got := mtAlarm(t, tg, get, none, 0); got != s.listed {
				t.Errorf("%s: then listed %q, want %q", s.name, got, s.listed)
			}
			var raised []*pb.AlarmMember
			for _, id := range []uint64{self, other} {
				if strings.Contains(s.listed, fmt.Sprintf("%d:", id)) {
					raised = append(raised, &pb.AlarmMember{MemberID: id, Alarm: space})
				}
			}
			if got, want := slices.Sorted(slices.Values(mtStatus(t, tg).Errors)), mtStatusErrors(raised...); !slices.Equal(got, want) {
				t.Errorf("%s: status errors %q, want %q", s.name, got, want)
			}
			putRefused(s.refused)
		}
		// Deletes go on under the alarm.
		mtAlarm(t, tg, on, space, self)
		if resp, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(p + "a")}); err != nil || resp.Deleted != 1 {
			t.Fatalf("delete under the alarm: %v, %v", resp, err)
		}
	})
}

// TestMaintenanceAlarmUnsupported: MetaStore cannot raise CORRUPT (it has
// no corruption check to act on it) and refuses an unknown action (on
// which etcd crashes).
func TestMaintenanceAlarmUnsupported(t *testing.T) {
	onlyBackend(t, "metastore", func(t *testing.T, tg *Target) {
		m := pb.NewMaintenanceClient(tg.Conn)
		self := mtStatus(t, tg).Header.MemberId
		_, err := m.Alarm(reqCtx(t), &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, Alarm: pb.AlarmType_CORRUPT, MemberID: self})
		wantRPCErr(t, err, status.Error(codes.Unimplemented, "metastore: only the NOSPACE alarm can be raised (MetaStore has no corruption check)"))
		_, err = m.Alarm(reqCtx(t), &pb.AlarmRequest{Action: 7, Alarm: pb.AlarmType_NOSPACE, MemberID: self})
		wantRPCErr(t, err, status.Error(codes.InvalidArgument, "metastore: unknown alarm action"))
		if got := mtAlarm(t, tg, pb.AlarmRequest_GET, pb.AlarmType_NONE, 0); got != "" {
			t.Errorf("alarms after refused requests: %q", got)
		}
	})
}

// TestMaintenanceAlarmDurable: an alarm raised by hand on a data dir holds
// across a restart, and so does its clearing.
func TestMaintenanceAlarmDurable(t *testing.T) {
	dir := t.TempDir()
	ds := durStart(t, durConfig(dir, 2))
	self := mtStatus(t, ds.Target).Header.MemberId
	mine := fmt.Sprintf("%d:NOSPACE", self)
	mtAlarm(t, ds.Target, pb.AlarmRequest_ACTIVATE, pb.AlarmType_NOSPACE, self)
	ds.close(t)
	ds = durStart(t, durConfig(dir, 2))
	if got := mtAlarm(t, ds.Target, pb.AlarmRequest_GET, pb.AlarmType_NONE, 0); got != mine {
		t.Fatalf("after a restart: alarms %q, want %q", got, mine)
	}
	_, err := ds.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte("k"), Value: []byte("v")})
	wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
	mtAlarm(t, ds.Target, pb.AlarmRequest_DEACTIVATE, pb.AlarmType_NOSPACE, self)
	ds.close(t)
	ds = durStart(t, durConfig(dir, 2))
	if got := mtAlarm(t, ds.Target, pb.AlarmRequest_GET, pb.AlarmType_NONE, 0); got != "" {
		t.Fatalf("after clearing and a restart: alarms %q, want none", got)
	}
	ds.put(t, "k", "v")
}

// mtFill puts 4 KiB values until the quota's alarm refuses one, and
// returns the revision of the last put that succeeded.
func mtFill(t *testing.T, tg *Target, limit int) int64 {
	t.Helper()
	value := bytes.Repeat([]byte("q"), 4096)
	var last int64
	for n := range limit {
		resp, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: fmt.Appendf(nil, "fill/%05d", n), Value: value})
		if err != nil {
			wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
			return last
		}
		last = resp.Header.Revision
	}
	t.Fatalf("%d puts of %d bytes all succeeded; want NOSPACE", limit, len(value))
	return 0
}

// mtQuotaAlarm fills tg's small quota: this member's NOSPACE alarm is
// raised, listed and shown in Status; disarming clears it. It returns the
// member's ID.
func mtQuotaAlarm(t *testing.T, tg *Target, limit int) uint64 {
	t.Helper()
	mtFill(t, tg, limit)
	self := mtStatus(t, tg).Header.MemberId
	mine := fmt.Sprintf("%d:NOSPACE", self)
	if got := mtAlarm(t, tg, pb.AlarmRequest_GET, pb.AlarmType_NONE, 0); got != mine {
		t.Fatalf("over the quota: alarms %q, want %q", got, mine)
	}
	if got, want := mtStatus(t, tg).Errors, mtStatusErrors(&pb.AlarmMember{MemberID: self, Alarm: pb.AlarmType_NOSPACE}); !slices.Equal(got, want) {
		t.Errorf("over the quota: status errors %q, want %q", got, want)
	}
	if got := mtAlarm(t, tg, pb.AlarmRequest_DEACTIVATE, pb.AlarmType_NOSPACE, self); got != mine {
		t.Fatalf("disarm: %q, want %q", got, mine)
	}
	if got := mtAlarm(t, tg, pb.AlarmRequest_GET, pb.AlarmType_NONE, 0); got != "" {
		t.Fatalf("after disarming: alarms %q, want none", got)
	}
	return self
}

// TestMaintenanceQuotaAlarmEtcd: etcd checks the quota before each put, so
// once disarmed with the data still over the quota, the next put is
// refused and raises the alarm again.
func TestMaintenanceQuotaAlarmEtcd(t *testing.T) {
	const quota = 4 << 20
	onlyBackend(t, "etcd", func(t *testing.T, tg *Target) {
		self := mtQuotaAlarm(t, tg, 10*quota/4096)
		_, err := tg.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte("after"), Value: []byte("x")})
		wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
		if got, want := mtAlarm(t, tg, pb.AlarmRequest_GET, pb.AlarmType_NONE, 0), fmt.Sprintf("%d:NOSPACE", self); got != want {
			t.Fatalf("after a put over the quota: alarms %q, want %q", got, want)
		}
	}, withEtcdQuota(quota))
}

// TestMaintenanceQuotaAlarmMetaStore: MetaStore checks the quota after
// each commit (measuring the data dir costs too much to do it per put), so
// once disarmed with the data still over the quota, puts work again until
// the next one commits and raises the alarm again; with no write it stays
// cleared.
func TestMaintenanceQuotaAlarmMetaStore(t *testing.T) {
	cfg := durConfig(t.TempDir(), 2)
	cfg.QuotaBackendBytes = durEmptyDirSize(t) + 512*1024
	ds := durStart(t, cfg)
	self := mtQuotaAlarm(t, ds.Target, 10*512*1024/4096)
	ds.put(t, "after", "x")
	mine := fmt.Sprintf("%d:NOSPACE", self)
	mtWaitFor(t, "the alarm raised again", func() bool {
		return mtAlarm(t, ds.Target, pb.AlarmRequest_GET, pb.AlarmType_NONE, 0) == mine
	})
	_, err := ds.KV.Put(reqCtx(t), &pb.PutRequest{Key: []byte("after"), Value: []byte("y")})
	wantRPCErr(t, err, rpctypes.ErrGRPCNoSpace)
}

// TestMaintenanceDefragment defragments beside writes: etcd's empty
// answer (no header), every write acknowledged is there, and the store
// goes on as before.
func TestMaintenanceDefragment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		p := keyPrefix(t)
		for i := range 200 {
			tg.put(t, fmt.Sprintf("%sold%03d", p, i), strings.Repeat("v", 1024))
		}
		if _, err := tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte(p + "old"), RangeEnd: []byte(p + "old999")}); err != nil {
			t.Fatal(err)
		}
		if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: tg.currentRev(t), Physical: true}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var resp *pb.DefragmentResponse
		var err error
		wg.Go(func() { resp, err = pb.NewMaintenanceClient(tg.Conn).Defragment(reqCtx(t), &pb.DefragmentRequest{}) })
		for i := range 20 {
			tg.put(t, fmt.Sprintf("%snew%03d", p, i), "v")
		}
		wg.Wait()
		if err != nil || !proto.Equal(resp, &pb.DefragmentResponse{}) {
			t.Fatalf("defragment: %v, %v; want an empty answer", resp, err)
		}
		got := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p), RangeEnd: []byte(p + "\xff"), CountOnly: true})
		if got.Count != 20 {
			t.Fatalf("%d keys after defragmenting, want 20", got.Count)
		}
		rev := tg.put(t, p+"last", "v")
		if st := mtStatus(t, tg); st.Header.Revision != rev || st.DbSizeInUse > st.DbSize {
			t.Fatalf("status after defragmenting: revision %d (want %d), %d of %d bytes in use", st.Header.Revision, rev, st.DbSizeInUse, st.DbSize)
		}
	}, withDataDir())
}

// TestMaintenanceHash: the hash is the same while nothing changes, and
// changes with a write; the header says the revision it was taken at.
func TestMaintenanceHash(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		m := pb.NewMaintenanceClient(tg.Conn)
		hash := func() *pb.HashResponse {
			t.Helper()
			resp, err := m.Hash(reqCtx(t), &pb.HashRequest{})
			if err != nil {
				t.Fatalf("hash: %v", err)
			}
			return resp
		}
		rev := tg.put(t, keyPrefix(t)+"a", "1")
		h1, h2 := hash(), hash()
		if h1.Header.Revision != rev || h1.Hash != h2.Hash {
			t.Fatalf("hashes %d at %d and %d at %d with no write between; want equal, at %d", h1.Hash, h1.Header.Revision, h2.Hash, h2.Header.Revision, rev)
		}
		rev = tg.put(t, keyPrefix(t)+"a", "2")
		if h3 := hash(); h3.Hash == h1.Hash || h3.Header.Revision != rev {
			t.Fatalf("hash %d at %d after a write, %d before; want it changed, at %d", h3.Hash, h3.Header.Revision, h1.Hash, rev)
		}
	}, withDataDir())
}

// TestMaintenanceHashKVErrors: HashKV at a revision not yet written or
// compacted away gets etcd's errors; at 0 it hashes the current revision,
// and the compact revision is -1 until the first compaction.
func TestMaintenanceHashKVErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		m := pb.NewMaintenanceClient(tg.Conn)
		p := keyPrefix(t)
		for i := range 4 {
			tg.put(t, p+"k", fmt.Sprint(i))
		}
		rev := tg.currentRev(t)
		resp, err := m.HashKV(reqCtx(t), &pb.HashKVRequest{})
		if err != nil || resp.HashRevision != rev || resp.Header.Revision != rev || resp.CompactRevision != -1 {
			t.Fatalf("HashKV at 0: %v, %v; want revision %d, compact revision -1", resp, err, rev)
		}
		_, err = m.HashKV(reqCtx(t), &pb.HashKVRequest{Revision: rev + 1})
		wantRPCErr(t, err, rpctypes.ErrGRPCFutureRev)
		if _, err := tg.KV.Compact(reqCtx(t), &pb.CompactionRequest{Revision: rev - 1, Physical: true}); err != nil {
			t.Fatal(err)
		}
		_, err = m.HashKV(reqCtx(t), &pb.HashKVRequest{Revision: rev - 2})
		wantRPCErr(t, err, rpctypes.ErrGRPCCompacted)
		resp, err = m.HashKV(reqCtx(t), &pb.HashKVRequest{Revision: rev})
		if err != nil || resp.HashRevision != rev || resp.CompactRevision != rev-1 {
			t.Fatalf("HashKV at %d after compacting at %d: %v, %v", rev, rev-1, resp, err)
		}
	}, withDataDir())
}

// TestMaintenanceInMemory: what reads the data dir as etcd's backend is
// refused by an in-memory MetaStore, with a status that says why; the
// rest answers as on a data dir.
func TestMaintenanceInMemory(t *testing.T) {
	onlyBackend(t, "metastore", func(t *testing.T, tg *Target) {
		m := pb.NewMaintenanceClient(tg.Conn)
		noDir := status.Error(codes.FailedPrecondition, "metastore: this needs a data dir; the server runs --in-memory")
		_, err := m.Hash(reqCtx(t), &pb.HashRequest{})
		wantRPCErr(t, err, noDir)
		_, err = m.HashKV(reqCtx(t), &pb.HashKVRequest{})
		wantRPCErr(t, err, noDir)
		stream, err := m.Snapshot(reqCtx(t), &pb.SnapshotRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		wantRPCErr(t, err, noDir)
		if resp, err := m.Defragment(reqCtx(t), &pb.DefragmentRequest{}); err != nil || !proto.Equal(resp, &pb.DefragmentResponse{}) {
			t.Fatalf("defragment in memory: %v, %v", resp, err)
		}
	})
}

// mtSnapshotStream reads a snapshot as etcd streams it: 32 KiB chunks
// with the bytes remaining counting down to 0, then the sha256 of all of
// them alone, each message with the storage version.
func mtSnapshotStream(t *testing.T, tg *Target) {
	p := keyPrefix(t)
	for i := range 100 {
		tg.put(t, fmt.Sprintf("%s%03d", p, i), strings.Repeat("x", 1000))
	}
	stream, err := pb.NewMaintenanceClient(tg.Conn).Snapshot(reqCtx(t), &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*pb.SnapshotResponse
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", len(msgs), err)
		}
		msgs = append(msgs, resp)
	}
	if len(msgs) < 3 {
		t.Fatalf("%d messages; want the data in several chunks, then the sha256", len(msgs))
	}
	data, last := msgs[:len(msgs)-1], msgs[len(msgs)-1]
	var total int
	for _, m := range data {
		total += len(m.Blob)
	}
	h := sha256.New()
	sent := 0
	for i, m := range data {
		sent += len(m.Blob)
		if m.RemainingBytes != uint64(total-sent) || m.Version != "3.7.0" {
			t.Fatalf("chunk %d: %d bytes remaining, version %q; want %d, 3.7.0", i, m.RemainingBytes, m.Version, total-sent)
		}
		if len(m.Blob) != 32*1024 && i != len(data)-1 {
			t.Fatalf("chunk %d of %d bytes; want 32 KiB but for the last", i, len(m.Blob))
		}
		h.Write(m.Blob)
	}
	if !bytes.Equal(last.Blob, h.Sum(nil)) || last.RemainingBytes != 0 || last.Version != "3.7.0" {
		t.Fatalf("last message: %x, %d remaining, version %q; want the sha256 %x of the %d bytes", last.Blob, last.RemainingBytes, last.Version, h.Sum(nil), total)
	}
}

// TestMaintenanceMoveLeader: the one member leads; moving leadership to
// itself succeeds with an empty answer, to anyone else is refused.
func TestMaintenanceMoveLeader(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		m := pb.NewMaintenanceClient(tg.Conn)
		self := mtStatus(t, tg).Header.MemberId
		resp, err := m.MoveLeader(reqCtx(t), &pb.MoveLeaderRequest{TargetID: self})
		if err != nil || !proto.Equal(resp, &pb.MoveLeaderResponse{}) {
			t.Fatalf("move leader to itself: %v, %v; want an empty answer", resp, err)
		}
		for _, id := range []uint64{0, self + 1} {
			_, err := m.MoveLeader(reqCtx(t), &pb.MoveLeaderRequest{TargetID: id})
			wantRPCErr(t, err, rpctypes.ErrGRPCBadLeaderTransferee)
		}
	})
}

// TestMaintenanceDowngrade: a single 3.7 member validates 3.6 only, in any
// form etcd parses; cancelling with no downgrade under way answers; an
// unknown action is etcd's unknown method.
func TestMaintenanceDowngrade(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tg *Target) {
		// etcd validates against its cluster version, which it settles
		// together with its storage version.
		mtSettled(t, tg)
		m := pb.NewMaintenanceClient(tg.Conn)
		cases := []struct {
			action  pb.DowngradeRequest_DowngradeAction
			version string
			err     error
		}{
			{pb.DowngradeRequest_VALIDATE, "3.6", nil},
			{pb.DowngradeRequest_VALIDATE, "3.6.0", nil},
			{pb.DowngradeRequest_VALIDATE, "3.6.1", nil},
			{pb.DowngradeRequest_VALIDATE, "3.7", rpctypes.ErrGRPCInvalidDowngradeTargetVersion},
			{pb.DowngradeRequest_VALIDATE, "3.5", rpctypes.ErrGRPCInvalidDowngradeTargetVersion},
			{pb.DowngradeRequest_VALIDATE, "4.6", rpctypes.ErrGRPCInvalidDowngradeTargetVersion},
			{pb.DowngradeRequest_VALIDATE, "x", rpctypes.ErrGRPCWrongDowngradeVersionFormat},
			{pb.DowngradeRequest_VALIDATE, "", rpctypes.ErrGRPCWrongDowngradeVersionFormat},
			{pb.DowngradeRequest_ENABLE, "3.8", rpctypes.ErrGRPCInvalidDowngradeTargetVersion},
			{pb.DowngradeRequest_ENABLE, "v3.6", rpctypes.ErrGRPCWrongDowngradeVersionFormat},
			{pb.DowngradeRequest_CANCEL, "", nil},
			{pb.DowngradeRequest_CANCEL, "x", nil},
			{7, "3.6", status.Error(codes.Unknown, "etcdserver: unknown method")},
		}
		for _, c := range cases {
			resp, err := m.Downgrade(reqCtx(t), &pb.DowngradeRequest{Action: c.action, Version: c.version})
			if c.err != nil {
				wantRPCErr(t, err, c.err)
				continue
			}
			if err != nil || resp.Version != "3.7" || resp.Header == nil || resp.Header.Revision == 0 {
				t.Errorf("%s %q: %v, %v; want cluster version 3.7 and a header", c.action, c.version, resp, err)
			}
		}
		if st := mtStatus(t, tg); st.DowngradeInfo == nil || st.DowngradeInfo.Enabled {
			t.Errorf("downgrade info %v after validating: want none enabled", st.DowngradeInfo)
		}
	})
}

// TestMaintenanceDowngradeEnable: etcd lowers its versions for an older
// binary to take over its data dir; none can take over MetaStore's, so
// MetaStore refuses to start a downgrade.
func TestMaintenanceDowngradeEnable(t *testing.T) {
	onlyBackend(t, "metastore", func(t *testing.T, tg *Target) {
		_, err := pb.NewMaintenanceClient(tg.Conn).Downgrade(reqCtx(t), &pb.DowngradeRequest{Action: pb.DowngradeRequest_ENABLE, Version: "3.6"})
		wantRPCErr(t, err, status.Error(codes.Unimplemented, "metastore: downgrades are not supported: MetaStore serves etcd API 3.7 only (move the data with a snapshot instead)"))
	})
}
