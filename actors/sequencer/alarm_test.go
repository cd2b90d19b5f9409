package sequencer

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// spaceLog is a Log of a settable size and free space that records the
// NOSPACE alarm it was last told.
type spaceLog struct {
	mu      sync.Mutex
	size    int64
	low     bool
	noSpace bool
}

func (l *spaceLog) Commit([]storage.Entry, []storage.LeaseRecord, []storage.AuthRecord, int64) error {
	return nil
}

func (l *spaceLog) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

func (l *spaceLog) SetNoSpace(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.noSpace = on
	return nil
}

func (l *spaceLog) LowSpace(bool) (bool, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.low, 0, nil
}

func (l *spaceLog) recorded() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.noSpace
}

const self = 100

// alarmTester drives one sequencer with alarm requests.
type alarmTester struct {
	t    *testing.T
	root *actor.RootContext
	seq  *actor.PID
	revs *Revisions
	next int64 // the next revision to write
}

func newAlarmTester(t *testing.T, log Log, quota int64) *alarmTester {
	revs := &Revisions{}
	system := actor.NewActorSystem()
	seq := system.Root.Spawn(Props(Config{Revisions: revs, Log: log, Quota: quota, MemberID: self, Current: 1, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(func() { _ = system.Root.PoisonFuture(seq).Wait() })
	return &alarmTester{t: t, root: system.Root, seq: seq, revs: revs, next: 2}
}

func (a *alarmTester) alarm(action pb.AlarmRequest_AlarmAction, typ pb.AlarmType, member uint64) msg.AlarmResult {
	a.t.Helper()
	reply := make(chan msg.AlarmResult, 1)
	a.root.Send(a.seq, &msg.Alarm{Req: &pb.AlarmRequest{Action: action, Alarm: typ, MemberID: member}, Reply: reply})
	select {
	case r := <-reply:
		return r
	case <-time.After(10 * time.Second):
		a.t.Fatal("no answer to an alarm request")
		return msg.AlarmResult{}
	}
}

// write commits one revision and waits until it is visible.
func (a *alarmTester) write() {
	a.t.Helper()
	shard := a.root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	defer a.root.Stop(shard)
	a.root.Send(a.seq, &msg.Stamp{Writes: [][]storage.Mutation{{{Key: "k", Value: []byte("v")}}}, Parts: 1, ReplyTo: shard})
	a.root.Send(a.seq, &msg.Installed{From: a.next, To: a.next})
	rev := a.next
	a.next++
	waitFor(a.t, fmt.Sprintf("revision %d visible", rev), func() bool { return a.revs.Visible() == rev })
}

func alarmsOf(r msg.AlarmResult) string {
	if r.Err != nil {
		return "error: " + r.Err.Error()
	}
	var out []string
	for _, m := range r.Alarms {
		out = append(out, fmt.Sprintf("%d:%s", m.MemberID, m.Alarm))
	}
	return fmt.Sprint(out)
}

// TestAlarmRequests runs etcd's alarm requests in turn, each with the
// alarms it must answer and whether puts are refused after it.
func TestAlarmRequests(t *testing.T) {
	const (
		get, on, off       = pb.AlarmRequest_GET, pb.AlarmRequest_ACTIVATE, pb.AlarmRequest_DEACTIVATE
		none, space, crpt  = pb.AlarmType_NONE, pb.AlarmType_NOSPACE, pb.AlarmType_CORRUPT
		unsupported        = "error: " + "only the NOSPACE alarm can be raised"
		selfSpace, other   = "[100:NOSPACE]", "[7:NOSPACE]"
		both               = "[7:NOSPACE 100:NOSPACE]"
		noAlarms           = "[]"
		refused, unrefused = true, false
	)
	log := &spaceLog{}
	a := newAlarmTester(t, log, 0)
	steps := []struct {
		name        string
		action      pb.AlarmRequest_AlarmAction
		typ         pb.AlarmType
		member      uint64
		want        string
		wantRefused bool
		wantOnDisk  bool
	}{
		{"none raised", get, none, 0, noAlarms, unrefused, false},
		{"raise NONE: ignored", on, none, self, noAlarms, unrefused, false},
		{"raise CORRUPT: unsupported", on, crpt, self, unsupported, unrefused, false},
		{"raise own NOSPACE", on, space, self, selfSpace, refused, true},
		{"raise it again: listed", on, space, self, selfSpace, refused, true},
		{"raise another member's", on, space, 7, other, refused, true},
		{"list all, by member", get, none, 0, both, refused, true},
		{"list NOSPACE", get, space, 0, both, refused, true},
		{"list CORRUPT", get, crpt, 0, noAlarms, refused, true},
		{"clear own", off, space, self, selfSpace, refused, false},
		{"clear own again: nothing", off, space, self, noAlarms, refused, false},
		{"clear CORRUPT: nothing", off, crpt, 7, noAlarms, refused, false},
		{"clear the other", off, space, 7, other, unrefused, false},
		{"none left", get, none, 0, noAlarms, unrefused, false},
		{"unknown action", 9, space, self, unsupported, unrefused, false},
	}
	for _, s := range steps {
		if got := alarmsOf(a.alarm(s.action, s.typ, s.member)); got != s.want {
			t.Errorf("%s: %s, want %s", s.name, got, s.want)
		}
		if got := a.revs.NoSpace(); got != s.wantRefused {
			t.Errorf("%s: puts refused %v, want %v", s.name, got, s.wantRefused)
		}
		if got := log.recorded(); got != s.wantOnDisk {
			t.Errorf("%s: alarm recorded %v, want %v", s.name, got, s.wantOnDisk)
		}
	}
}

// TestQuotaAlarmClearedComesBackWithAWrite: once an operator clears the
// quota's alarm while the data is still over the quota, idle checks leave
// it cleared; the next write raises it again, as etcd's quota check does.
// The alarm was raised by the check as the sequencer started, or was
// recorded in the data dir before.
func TestQuotaAlarmClearedComesBackWithAWrite(t *testing.T) {
	for _, recorded := range []bool{false, true} {
		t.Run(fmt.Sprintf("recorded=%v", recorded), func(t *testing.T) {
			log := &spaceLog{size: 2000, noSpace: recorded}
			revs := &Revisions{}
			system := actor.NewActorSystem()
			seq := system.Root.Spawn(Props(Config{Revisions: revs, Log: log, Quota: 1000, NoSpace: recorded, MemberID: self, Current: 1, Logger: slog.New(slog.DiscardHandler)}))
			t.Cleanup(func() { _ = system.Root.PoisonFuture(seq).Wait() })
			a := &alarmTester{t: t, root: system.Root, seq: seq, revs: revs, next: 2}
			if got := alarmsOf(a.alarm(pb.AlarmRequest_GET, pb.AlarmType_NONE, 0)); got != "[100:NOSPACE]" || !log.recorded() {
				t.Fatalf("over quota at the start: alarms %s, recorded %v", got, log.recorded())
			}
			if got := alarmsOf(a.alarm(pb.AlarmRequest_DEACTIVATE, pb.AlarmType_NOSPACE, self)); got != "[100:NOSPACE]" {
				t.Fatalf("clear: %s", got)
			}
			a.root.Send(a.seq, tick{})
			if got := alarmsOf(a.alarm(pb.AlarmRequest_GET, pb.AlarmType_NONE, 0)); got != "[]" || a.revs.NoSpace() || log.recorded() {
				t.Fatalf("after a tick without writes: alarms %s, refused %v, recorded %v; want it cleared", got, a.revs.NoSpace(), log.recorded())
			}
			a.write()
			a.root.Send(a.seq, tick{})
			if got := alarmsOf(a.alarm(pb.AlarmRequest_GET, pb.AlarmType_NONE, 0)); got != "[100:NOSPACE]" || !a.revs.NoSpace() || !log.recorded() {
				t.Fatalf("after a write over the quota: alarms %s, refused %v, recorded %v; want it raised", got, a.revs.NoSpace(), log.recorded())
			}
		})
	}
}

// TestLowSpaceAlarm: the free-space alarm shows as this member's NOSPACE;
// clearing it lasts only until the next check finds space still short,
// and it clears itself once space is freed.
func TestLowSpaceAlarm(t *testing.T) {
	log := &spaceLog{low: true}
	a := newAlarmTester(t, log, 0)
	get := func() string { return alarmsOf(a.alarm(pb.AlarmRequest_GET, pb.AlarmType_NOSPACE, 0)) }
	if got := get(); got != "[100:NOSPACE]" || log.recorded() {
		t.Fatalf("space short: alarms %s, recorded %v; want it raised in memory", got, log.recorded())
	}
	if got := alarmsOf(a.alarm(pb.AlarmRequest_DEACTIVATE, pb.AlarmType_NOSPACE, self)); got != "[100:NOSPACE]" || a.revs.NoSpace() {
		t.Fatalf("clear: %s, refused %v", got, a.revs.NoSpace())
	}
	a.root.Send(a.seq, tick{})
	if got := get(); got != "[100:NOSPACE]" {
		t.Fatalf("space still short after a check: alarms %s", got)
	}
	log.mu.Lock()
	log.low = false
	log.mu.Unlock()
	a.root.Send(a.seq, tick{})
	if got := get(); got != "[]" || a.revs.NoSpace() {
		t.Fatalf("space freed: alarms %s, refused %v", got, a.revs.NoSpace())
	}
}

// TestAlarmAfterFailure: once the log failed, the durable alarm cannot
// change, and the request says why.
func TestAlarmAfterFailure(t *testing.T) {
	log := &spaceLog{}
	a := newAlarmTester(t, &failingLog{spaceLog: log}, 0)
	shard := a.root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	defer a.root.Stop(shard)
	a.root.Send(a.seq, &msg.Stamp{Writes: [][]storage.Mutation{{{Key: "k"}}}, Parts: 1, ReplyTo: shard})
	waitFor(t, "the log's failure", func() bool { return a.revs.Failure() != nil })
	r := a.alarm(pb.AlarmRequest_ACTIVATE, pb.AlarmType_NOSPACE, self)
	if !errors.Is(r.Err, msg.ErrLogFailed) || log.recorded() {
		t.Fatalf("raise after the log failed: %s, recorded %v; want the failure", alarmsOf(r), log.recorded())
	}
	if got := alarmsOf(a.alarm(pb.AlarmRequest_GET, pb.AlarmType_NONE, 0)); got != "[]" {
		t.Fatalf("list after the log failed: %s", got)
	}
}

// failingLog fails every commit.
type failingLog struct{ *spaceLog }

func (failingLog) Commit([]storage.Entry, []storage.LeaseRecord, []storage.AuthRecord, int64) error {
	return errors.New("disk on fire")
}
