package sequencer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/metastore/metastore/actors/msg"
)

// TestVisibleRatchetsOverContiguousPrefix installs revisions out of order
// and checks that the visible revision only moves over a complete prefix,
// and that replies are released exactly when their revision is visible.
func TestVisibleRatchetsOverContiguousPrefix(t *testing.T) {
	c := newCore(10, 0)
	if base := c.stamp(2, 1); base != 11 { // a shard batch: 11, 12
		t.Fatalf("base %d, want 11", base)
	}
	if base := c.stamp(1, 2); base != 13 { // a cross-shard write on two shards: 13
		t.Fatalf("base %d, want 13", base)
	}
	if base := c.stamp(0, 1); base != 14 { // a batch that wrote nothing
		t.Fatalf("empty stamp base %d, want 14", base)
	}
	c.synced(13)
	var sent []int64
	replyAt := func(rev int64) msg.Reply {
		return msg.Reply{Rev: rev, Send: func() { sent = append(sent, rev) }}
	}
	steps := []struct {
		name        string
		from, to    int64
		hold        []msg.Reply
		wantVisible int64
		wantSent    int
	}{
		{name: "13 half installed", from: 13, to: 13, hold: []msg.Reply{replyAt(13)}, wantVisible: 10},
		{name: "reply at current revision goes at once", from: 1, to: 0, hold: []msg.Reply{replyAt(10)}, wantVisible: 10, wantSent: 1},
		{name: "11..12 installed", from: 11, to: 12, hold: []msg.Reply{replyAt(11), replyAt(12)}, wantVisible: 12, wantSent: 3},
		{name: "13 complete", from: 13, to: 13, wantVisible: 13, wantSent: 4},
	}
	for _, s := range steps {
		if s.to >= s.from {
			c.installed(s.from, s.to)
		}
		c.hold(s.hold)
		for _, r := range c.advance() {
			r.Send()
		}
		if c.visible != s.wantVisible || len(sent) != s.wantSent {
			t.Fatalf("%s: visible %d sent %v, want visible %d and %d sent", s.name, c.visible, sent, s.wantVisible, s.wantSent)
		}
	}
	for i := 1; i < len(sent); i++ {
		if sent[i] < sent[i-1] {
			t.Fatalf("replies released out of revision order: %v", sent)
		}
	}
}

// TestVisibleWaitsForDurable checks that an installed revision stays
// invisible, and its reply held, until the log has synced it.
func TestVisibleWaitsForDurable(t *testing.T) {
	c := newCore(1, 0)
	base := c.stamp(3, 1)
	c.installed(base, base+2)
	sent := 0
	c.hold([]msg.Reply{{Rev: base + 2, Send: func() { sent++ }}})
	if rs := c.advance(); len(rs) != 0 || c.visible != 1 {
		t.Fatalf("visible %d with nothing durable, %d replies released", c.visible, len(rs))
	}
	c.synced(base + 1)
	if rs := c.advance(); len(rs) != 0 || c.visible != base+1 {
		t.Fatalf("visible %d, want %d, with %d replies released", c.visible, base+1, len(rs))
	}
	c.synced(base + 2)
	for _, r := range c.advance() {
		r.Send()
	}
	if c.visible != base+2 || sent != 1 {
		t.Fatalf("visible %d sent %d, want %d and 1", c.visible, sent, base+2)
	}
}

func TestInstallUnstampedPanics(t *testing.T) {
	c := newCore(0, 0)
	c.stamp(1, 1)
	c.synced(1)
	c.installed(1, 1)
	defer func() {
		if recover() == nil {
			t.Fatal("a second install of a one-part revision did not panic")
		}
	}()
	c.installed(1, 1)
}

func TestCompactTo(t *testing.T) {
	c := newCore(10, 0)
	tests := []struct {
		rev     int64
		wantErr error
	}{
		{rev: 11, wantErr: msg.ErrFutureRev},
		{rev: 5},
		{rev: 5, wantErr: msg.ErrCompacted},
		{rev: 4, wantErr: msg.ErrCompacted},
		{rev: 10},
	}
	for _, tt := range tests {
		if err := c.compactTo(tt.rev); !errors.Is(err, tt.wantErr) {
			t.Fatalf("compact %d: err %v, want %v", tt.rev, err, tt.wantErr)
		}
	}
}

func BenchmarkStampInstallAdvance(b *testing.B) {
	for _, batch := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.ReportAllocs()
			c := newCore(0, 0)
			for b.Loop() {
				base := c.stamp(batch, 1)
				c.synced(base + int64(batch) - 1)
				c.installed(base, base+int64(batch)-1)
				c.hold([]msg.Reply{{Rev: base + int64(batch) - 1, Send: func() {}}})
				for _, r := range c.advance() {
					r.Send()
				}
			}
		})
	}
}
