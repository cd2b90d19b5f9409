package sequencer

import (
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/metastore/metastore/actors/msg"
	"github.com/metastore/metastore/storage"
)

// logAuth sends a LogAuth of recs and returns the channel its answer comes
// on.
func logAuth(root *actor.RootContext, seq *actor.PID, recs ...storage.AuthRecord) chan error {
	reply := make(chan error, 1)
	root.Send(seq, &msg.LogAuth{Records: recs, Reply: func(err error) { reply <- err }})
	return reply
}

func answer(t *testing.T, what string, reply chan error) error {
	t.Helper()
	select {
	case err := <-reply:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer to %s", what)
		return nil
	}
}

// TestLogAuthAnswersOnceDurable: auth changes logged while a write's sync
// is under way wait for the next commit, reach the log in the order they
// were sent, and are answered only once that commit is done.
func TestLogAuthAnswersOnceDurable(t *testing.T) {
	log := &gatedLog{gate: make(chan struct{}), started: make(chan struct{})}
	root := actor.NewActorSystem().Root
	seq := root.Spawn(Props(Config{Revisions: &Revisions{}, Log: log, CommitQueue: 8}))
	defer root.Stop(seq)
	shard := root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	defer root.Stop(shard)

	root.Send(seq, &msg.Stamp{Writes: [][]storage.Mutation{{{Key: "k"}}}, Parts: 1, ReplyTo: shard})
	<-log.started // the write's commit is held
	user := storage.AuthRecord{Key: "u/alice", Value: []byte("user")}
	rev := storage.AuthRecord{Key: "revision", Value: []byte{0, 0, 0, 0, 0, 0, 0, 2}}
	off := storage.AuthRecord{Key: "u/alice"}
	first, second := logAuth(root, seq, user, rev), logAuth(root, seq, off)
	select {
	case err := <-first:
		t.Fatalf("answered (%v) before the commit that holds it", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(log.gate)
	for i, reply := range []chan error{first, second} {
		if err := answer(t, "LogAuth", reply); err != nil {
			t.Fatalf("LogAuth %d: %v", i, err)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	want := []storage.AuthRecord{user, rev, off}
	if !slices.EqualFunc(log.auth, want, func(a, b storage.AuthRecord) bool {
		return a.Key == b.Key && string(a.Value) == string(b.Value) && (a.Value == nil) == (b.Value == nil)
	}) {
		t.Fatalf("the log saw %q, want %q", log.auth, want)
	}
	if slices.Contains(log.authAt, 1) {
		t.Fatalf("auth records in commits %v: none belongs in the first, which was under way when they came", log.authAt)
	}
}

// TestLogAuthWithoutDurability: without a log a LogAuth is answered at
// once; once the log failed, or if it fails with the commit the LogAuth
// waits for, with its failure.
func TestLogAuthWithoutDurability(t *testing.T) {
	cases := []struct {
		name string
		log  Log
		// write sends a write first, which the log fails; wait waits for
		// that failure before the LogAuth.
		write, wait bool
		want        error
	}{
		{"no log", nil, false, false, nil},
		{"log failed", failingLog{&spaceLog{}}, true, true, msg.ErrLogFailed},
		{"log failing", failingLog{&spaceLog{}}, true, false, msg.ErrLogFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			revs := &Revisions{}
			root := actor.NewActorSystem().Root
			seq := root.Spawn(Props(Config{Revisions: revs, Log: tc.log, Current: 1, Logger: slog.New(slog.DiscardHandler)}))
			defer root.Stop(seq)
			if tc.write {
				shard := root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
				defer root.Stop(shard)
				root.Send(seq, &msg.Stamp{Writes: [][]storage.Mutation{{{Key: "k"}}}, Parts: 1, ReplyTo: shard})
			}
			if tc.wait {
				waitFor(t, "the log's failure", func() bool { return revs.Failure() != nil })
			}
			err := answer(t, "LogAuth", logAuth(root, seq, storage.AuthRecord{Key: "enabled", Value: []byte{1}}))
			if !errors.Is(err, tc.want) {
				t.Fatalf("answer %v, want %v", err, tc.want)
			}
		})
	}
}
