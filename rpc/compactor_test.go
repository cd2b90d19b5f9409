package rpc

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors"
)

func TestAutoCompactionRetention(t *testing.T) {
	cases := []struct {
		mode, retention string
		want            time.Duration
		err             string
	}{
		{"periodic", "0", 0, ""},
		{"periodic", "", 0, ""},
		{"periodic", "2", 2 * time.Hour, ""},
		{"periodic", "30m", 30 * time.Minute, ""},
		{"periodic", "1.5h", 90 * time.Minute, ""},
		{"revision", "1000", 1000, ""},
		{"revision", "0", 0, ""},
		// etcd counts a duration's nanoseconds as revisions.
		{"revision", "1s", time.Second, ""},
		// A zero Config: off, where etcd refuses the empty mode.
		{"", "", 0, ""},
		{"", "0", 0, ""},
		{"", "1", 0, "undefined auto-compaction-mode"},
		{"", "1h", 0, "undefined auto-compaction-mode"},
		{"daily", "0", 0, `unknown auto-compaction-mode "daily"`},
		{"Periodic", "1", 0, `unknown auto-compaction-mode "Periodic"`},
		{"periodic", "1x", 0, `error parsing CompactionRetention: time: unknown unit "x" in duration "1x"`},
		{"periodic", "-1", 0, `error parsing CompactionRetention: time: missing unit in duration "-1"`},
		{"periodic", "-5m", 0, `error parsing CompactionRetention: negative retention "-5m"`},
	}
	for _, c := range cases {
		got, err := autoCompactionRetention(c.mode, c.retention)
		errText := ""
		if err != nil {
			errText = err.Error()
		}
		if got != c.want || errText != c.err {
			t.Errorf("mode %q retention %q: %v, %v; want %v, %q", c.mode, c.retention, got, err, c.want, c.err)
		}
	}
}

// compactorTest runs fn against an in-memory node with the auto-compactor
// cfg asks for, inside a synctest bubble: the compactor's clock is fake,
// so its hours pass at once.
func compactorTest(t *testing.T, mode, retention string, fn func(n *actors.Node, put func(count int))) {
	synctest.Test(t, func(t *testing.T) {
		logger := slog.New(slog.DiscardHandler)
		node, err := actors.Start(actors.Config{InMemory: true, DefaultShards: 2, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		defer node.Stop()
		cfg := Config{Config: actors.Config{Logger: logger}, AutoCompactionMode: mode, AutoCompactionRetention: retention}
		c, err := startCompactor(cfg, node)
		if err != nil {
			t.Fatal(err)
		}
		defer c.stop()
		// The compactor samples the revision as soon as it runs: let it,
		// before the test writes, so that its first sample is the start's.
		synctest.Wait()
		fn(node, func(count int) {
			for range count {
				if _, err := node.Put(t.Context(), &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
}

// sleep lets d pass on the bubble's clock and waits for what it set off.
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// TestRevisionCompactor: in revision mode etcd's compactor looks every
// five minutes and compacts at the current revision less the retention,
// once per revision.
func TestRevisionCompactor(t *testing.T) {
	compactorTest(t, "revision", "10", func(n *actors.Node, put func(int)) {
		put(25) // revision 26
		steps := []struct {
			wait          time.Duration
			puts          int
			wantCompacted int64
		}{
			{5*time.Minute - time.Second, 0, -1}, // not looked yet
			{time.Second, 0, 16},                 // 26 - 10
			{5 * time.Minute, 3, 16},             // unchanged: written after the look
			{5 * time.Minute, 0, 19},             // 29 - 10
			{5 * time.Minute, 0, 19},
		}
		for i, s := range steps {
			sleep(s.wait)
			if got := n.Stats().Compacted; got != s.wantCompacted {
				t.Fatalf("step %d: compacted at %d, want %d (revision %d)", i, got, s.wantCompacted, n.Revision())
			}
			put(s.puts)
		}
	})
}

// TestPeriodicCompactor: in periodic mode with a bare number of hours,
// etcd's compactor samples the revision every tenth of the retention and,
// once a retention has passed since it last compacted, compacts at the
// oldest sample it keeps: never history younger than the retention, and
// never older than that plus two samples.
func TestPeriodicCompactor(t *testing.T) {
	const retention, sample = time.Hour, 6 * time.Minute
	compactorTest(t, "periodic", "1", func(n *actors.Node, put func(int)) {
		// revAt[i] is the revision at i minutes.
		revAt := []int64{n.Revision()}
		for minute := 1; minute <= 150; minute++ {
			put(1)
			sleep(time.Minute)
			revAt = append(revAt, n.Revision())
			compacted := n.Stats().Compacted
			now := time.Duration(minute) * time.Minute
			if now < retention {
				if compacted != -1 {
					t.Fatalf("at %v: compacted at %d before a retention passed", now, compacted)
				}
				continue
			}
			youngest := revAt[minute-int(retention/time.Minute)]
			if compacted > youngest {
				t.Fatalf("at %v: compacted at %d, past the revision of a retention ago (%d)", now, compacted, youngest)
			}
			if now >= 2*retention+2*sample {
				oldest := revAt[minute-int((2*retention+2*sample)/time.Minute)]
				if compacted < oldest {
					t.Fatalf("at %v: compacted at %d, behind the revision of two retentions and two samples ago (%d)", now, compacted, oldest)
				}
			}
		}
	})
}

// TestCompactorStop: once stopped, the compactor compacts nothing more.
func TestCompactorStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logger := slog.New(slog.DiscardHandler)
		node, err := actors.Start(actors.Config{InMemory: true, DefaultShards: 2, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		defer node.Stop()
		c, err := startCompactor(Config{Config: actors.Config{Logger: logger}, AutoCompactionMode: "revision", AutoCompactionRetention: "1"}, node)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if _, err := node.Put(context.Background(), &pb.PutRequest{Key: []byte("k")}); err != nil {
				t.Fatal(err)
			}
		}
		c.stop()
		sleep(10 * time.Minute) // two looks, had it not stopped
		if got := node.Stats().Compacted; got != -1 {
			t.Fatalf("compacted at %d after the compactor stopped", got)
		}
		if _, err := c.Compact(t.Context(), &pb.CompactionRequest{Revision: 2}); err != context.Canceled {
			t.Fatalf("Compact after stop: %v, want context.Canceled", err)
		}
	})
}
