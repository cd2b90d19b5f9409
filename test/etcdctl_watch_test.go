package test

// `etcdctl watch` end to end, against every selected backend (see
// etcdctl_test.go for the harness): a live watch of a key, a prefix and a
// range, history replayed with --rev, --prev-kv, -w json, a watch from a
// compacted revision, and the interactive mode (-i), whose `progress`
// command prints a progress notification per watch.
//
// A watch runs until it is killed, so it is started in the background (see
// ewProc) and its stdout read line by line as the test writes; every wait is
// bounded. A watch started without --rev begins at whatever the revision is
// when the server registers it, which the test cannot see, so such a watch
// is first synced (ewProc.sync): probe values are put to a key in its range
// until the first one is printed. The probes are not recorded, so the
// transcripts of the backends compare, and they take revisions, so the
// recorded progress notifications say whether they name the current
// revision rather than which one that is.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// ewLineTimeout bounds the wait for a line a watch must print.
	ewLineTimeout = 10 * time.Second
	// ewProbeWait is how long a probe may take to show before the next is
	// put; a slow server only costs more probes.
	ewProbeWait = 300 * time.Millisecond
	// ewMaxProbes bounds the sync of a watch that never reports anything.
	ewMaxProbes = 40
)

// ewProc is an etcdctl process running in the background: stdin is a pipe,
// stdout arrives line by line on lines (closed at EOF), stderr is kept for
// failure messages.
type ewProc struct {
	c      *ctl
	label  string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *durLog
	exited chan struct{} // closed once Wait has returned
}

// ewStart starts etcdctl with args (global flags are added here); the
// test's cleanup kills it.
func (c *ctl) ewStart(args ...string) *ewProc {
	c.t.Helper()
	full := append([]string{
		"--endpoints=" + c.endpoint,
		"--command-timeout=" + ctlCommandTimeout,
		"--dial-timeout=3s",
	}, args...)
	p := &ewProc{
		c: c, label: strings.Join(args, " "), cmd: exec.Command(c.bin, full...),
		lines: make(chan string, 1024), stderr: &durLog{}, exited: make(chan struct{}),
	}
	p.cmd.Env = ctlEnviron()
	p.cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		c.t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("etcdctl %s: %v", p.label, err)
	}
	c.t.Cleanup(p.kill)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		// Wait only after stdout is drained, as os/exec requires.
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	return p
}

// kill ends the process and waits for it (bounded: a process that
// survives SIGKILL is not the test's to wait for).
func (p *ewProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(ewLineTimeout):
	}
}

// send writes one line to stdin, for the interactive mode.
func (p *ewProc) send(line string) {
	p.c.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.c.t.Fatalf("etcdctl %s: write %q to stdin: %v", p.label, line, err)
	}
}

// within returns the next stdout line, or false if none comes within d.
func (p *ewProc) within(d time.Duration) (string, bool) {
	p.c.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.c.t.Fatalf("etcdctl %s exited; stderr:\n%s", p.label, p.stderr)
		}
		return l, true
	case <-time.After(d):
		return "", false
	}
}

// next returns the next stdout line, which must come.
func (p *ewProc) next(what string) string {
	p.c.t.Helper()
	l, ok := p.within(ewLineTimeout)
	if !ok {
		p.c.t.Fatalf("etcdctl %s: no line after %v, waiting for %s; stderr:\n%s", p.label, ewLineTimeout, what, p.stderr)
	}
	return l
}

// want reads as many lines as want has and requires them, and records
// them under label.
func (p *ewProc) want(label string, want ...string) {
	p.c.t.Helper()
	var got []string
	for range want {
		got = append(got, p.next(fmt.Sprintf("%q", want)))
	}
	if !slices.Equal(got, want) {
		p.c.t.Errorf("etcdctl %s, %s:\n got lines %q\nwant lines %q", p.label, label, got, want)
	}
	p.c.record(p.label+": "+label, got)
}

// wantNotify reads n progress notifications, which must name rev. The
// transcript records only whether they did, as rev depends on the probes.
func (p *ewProc) wantNotify(label string, n int, rev int64) {
	p.c.t.Helper()
	want := fmt.Sprintf("progress notify: %d", rev)
	ok := true
	for range n {
		if l := p.next(want); l != want {
			p.c.t.Errorf("etcdctl %s, %s: got %q, want %q", p.label, label, l, want)
			ok = false
		}
	}
	p.c.record(p.label+": "+label, fmt.Sprintf("%d notifications of the current revision: %v", n, ok))
}

// finish kills the process and requires that it printed nothing more than
// was read: a duplicate or stray event would show here.
func (p *ewProc) finish() {
	p.c.t.Helper()
	p.kill()
	var rest []string
	for l := range p.lines {
		rest = append(rest, l)
	}
	if len(rest) > 0 {
		p.c.t.Errorf("etcdctl %s printed more than expected: %q", p.label, rest)
	}
	p.c.record(p.label+": nothing more", rest)
}

// sync waits until a watch started without --rev is in place: it puts
// probe-1, probe-2, ... to key, which the watch covers, until the first
// probe event is printed, then reads the rest: the watch reports every
// probe from the first one after it was registered on.
func (p *ewProc) sync(key string) {
	p.c.t.Helper()
	var first string
	n := 0
	for {
		if n++; n > ewMaxProbes {
			p.c.t.Fatalf("etcdctl %s printed nothing after %d probes; stderr:\n%s", p.label, ewMaxProbes, p.stderr)
		}
		if out := p.c.exec("", "put", key, fmt.Sprintf("probe-%d", n)); out.code != 0 {
			p.c.t.Fatalf("put probe: exit %d, stderr:\n%s", out.code, out.stderr)
		}
		if l, ok := p.within(ewProbeWait); ok {
			first = l
			break
		}
	}
	ev := []string{first, p.next("the first probe's key"), p.next("the first probe's value")}
	j, err := strconv.Atoi(strings.TrimPrefix(ev[2], "probe-"))
	if ev[0] != "PUT" || ev[1] != key || err != nil || j < 1 || j > n {
		p.c.t.Fatalf("etcdctl %s: first event %q, want a put of %s=probe-<1..%d>", p.label, ev, key, n)
	}
	for i := j + 1; i <= n; i++ {
		if got := []string{p.next("a probe"), p.next("a probe"), p.next("a probe")}; !slices.Equal(got, []string{"PUT", key, fmt.Sprintf("probe-%d", i)}) {
			p.c.t.Fatalf("etcdctl %s: probe event %q, want probe-%d", p.label, got, i)
		}
	}
	p.c.record(p.label+": in place", "probes seen")
}

// ewPut is etcdctl's simple output of a put event: the type, the old pair
// (key and value lines, with --prev-kv and if there was one), then the key
// and the value.
func ewPut(k, v string, prev ...string) []string {
	return append(append([]string{"PUT"}, prev...), k, v)
}

// ewDel is the simple output of a delete event: the key and an empty value.
func ewDel(k string, prev ...string) []string {
	return append(append([]string{"DELETE"}, prev...), k, "")
}

// ewLines joins the lines of several events.
func ewLines(evs ...[]string) []string {
	return slices.Concat(evs...)
}

// TestEtcdctlWatch watches live writes with a plain `etcdctl watch` of a
// key, of a prefix and of a range. Each row's writes run one by one, and
// the lines each must make are read before the next: a write outside the
// range makes none, which the next write's lines then show.
func TestEtcdctlWatch(t *testing.T) {
	const p = "ctl-watch/"
	type step struct {
		args  []string // etcdctl; "txn" reads the stdin
		stdin string
		lines []string
	}
	rows := []struct {
		name  string
		watch []string // after "watch"
		probe string   // a key the watch covers
		steps []step
	}{
		{
			name: "key", watch: []string{p + "k"}, probe: p + "k",
			steps: []step{
				{args: []string{"put", p + "k", "v1"}, lines: ewPut(p+"k", "v1")},
				{args: []string{"put", p + "k2", "other"}}, // another key, nothing
				{args: []string{"put", p + "k", "v2"}, lines: ewPut(p+"k", "v2")},
				{args: []string{"del", p + "k"}, lines: ewDel(p + "k")},
				{args: []string{"put", p + "k", "v3"}, lines: ewPut(p+"k", "v3")},
			},
		},
		{
			name: "prefix", watch: []string{"--prefix", p + "dir/"}, probe: p + "dir/probe",
			steps: []step{
				{args: []string{"put", p + "dir/a", "1"}, lines: ewPut(p+"dir/a", "1")},
				{args: []string{"put", p + "dir0", "outside"}}, // just past the prefix
				{args: []string{"put", p + "dir", "outside"}},  // just before it
				// A Txn's events come in the order of its operations.
				{args: []string{"txn"}, stdin: "\nput " + p + "dir/c 3\nput " + p + "dir/b 2\n\n\n",
					lines: ewLines(ewPut(p+"dir/c", "3"), ewPut(p+"dir/b", "2"))},
				// A range delete's in key order.
				{args: []string{"del", "--prefix", p + "dir/"},
					lines: ewLines(ewDel(p+"dir/a"), ewDel(p+"dir/b"), ewDel(p+"dir/c"), ewDel(p+"dir/probe"))},
			},
		},
		{
			name: "range", watch: []string{p + "r/b", p + "r/d"}, probe: p + "r/b",
			steps: []step{
				{args: []string{"put", p + "r/a", "1"}},
				{args: []string{"put", p + "r/c", "1"}, lines: ewPut(p+"r/c", "1")},
				{args: []string{"put", p + "r/d", "1"}}, // the range end is exclusive
				{args: []string{"del", p + "r/", p + "r/z"}, lines: ewLines(ewDel(p+"r/b"), ewDel(p+"r/c"))},
			},
		},
	}
	ctlEachBackend(t, func(c *ctl) {
		for _, r := range rows {
			w := c.ewStart(append([]string{"watch"}, r.watch...)...)
			w.sync(r.probe)
			for _, s := range r.steps {
				c.okIn(s.stdin, s.args...)
				if len(s.lines) > 0 {
					w.want(r.name+" after "+strings.Join(s.args, " "), s.lines...)
				}
			}
			w.finish()
		}
	})
}

// ewJSONResp is one line of `etcdctl watch -w json`: clientv3's
// WatchResponse through encoding/json, so Go field names except in the
// header and the events, which carry their protobuf json tags (a PUT, type
// 0, has no "type").
type ewJSONResp struct {
	Header *ctlHeader
	Events []struct {
		Type   int    `json:"type"`
		Kv     *ctlKV `json:"kv"`
		PrevKv *ctlKV `json:"prev_kv"`
	}
	CompactRevision int64
	Canceled        bool
}

// ewNEvent is a normalized watch event.
type ewNEvent struct {
	Type string
	KV   ctlNKV
	Prev *ctlNKV
}

// TestEtcdctlWatchRev replays history with --rev, with --prev-kv, and as
// JSON, and watches from a compacted revision. The history:
//
//	rev 1  put k=h1
//	rev 2  put k=h2
//	rev 3  del k
//	rev 4  put k=h3
//	rev 5  put other=o
//
// and each watch then also sees a put made after it started.
func TestEtcdctlWatchRev(t *testing.T) {
	const p = "ctl-watchrev/"
	k := p + "k"
	ctlEachBackend(t, func(c *ctl) {
		c.want("OK\n", "put", k, "h1")
		c.want("OK\n", "put", k, "h2")
		c.want("1\n", "del", k)
		c.want("OK\n", "put", k, "h3")
		c.want("OK\n", "put", p+"other", "o")

		w := c.ewStart("watch", "--rev", c.revArg(2), k)
		w.want("replay from rev 2", ewLines(ewPut(k, "h2"), ewDel(k), ewPut(k, "h3"))...)
		c.want("OK\n", "put", k, "h4") // rev 6
		w.want("live", ewPut(k, "h4")...)
		w.finish()

		// The old pair comes first; a create (the first put, and the
		// put after the delete) has none.
		w = c.ewStart("watch", "--prev-kv", "--rev", c.revArg(1), k)
		w.want("replay with prev-kv", ewLines(
			ewPut(k, "h1"), ewPut(k, "h2", k, "h1"), ewDel(k, k, "h2"), ewPut(k, "h3"), ewPut(k, "h4", k, "h3"))...)
		c.want("OK\n", "put", k, "h5") // rev 7
		w.want("live with prev-kv", ewPut(k, "h5", k, "h4")...)
		w.finish()

		// JSON shows the revisions and versions. How a server groups
		// events into responses is its own business (etcd sends a
		// replay as one), so the events are compared flattened.
		w = c.ewStart("watch", "-w", "json", "--prev-kv", "--prefix", "--rev", c.revArg(3), p)
		kv := func(key, v string, create, mod, ver int64) *ctlNKV {
			return &ctlNKV{Key: key, Value: v, Create: create, Mod: mod, Version: ver}
		}
		want := []ewNEvent{
			{Type: "DELETE", KV: *kv(k, "", 0, 3, 0), Prev: kv(k, "h2", 1, 2, 2)},
			{Type: "PUT", KV: *kv(k, "h3", 4, 4, 1)},
			{Type: "PUT", KV: *kv(p+"other", "o", 5, 5, 1)},
			{Type: "PUT", KV: *kv(k, "h4", 4, 6, 2), Prev: kv(k, "h3", 4, 4, 1)},
			{Type: "PUT", KV: *kv(k, "h5", 4, 7, 3), Prev: kv(k, "h4", 4, 6, 2)},
		}
		ctlCheck(c, "watch -w json replay", ewReadJSON(w, len(want)), want)
		w.finish()

		// A watch from a compacted revision is canceled by the server;
		// etcdctl says so on stderr and exits.
		c.want(fmt.Sprintf("compacted revision %d\n", c.rev(4)), "compaction", c.revArg(4))
		out := c.exec("", "watch", "--rev", c.revArg(2), k)
		canceled := strings.Contains(out.stderr, "watch was canceled (etcdserver: mvcc: required revision has been compacted)")
		if out.code != 5 || !canceled || ctlErrorLine(out.stderr) != "Error: watch is canceled by the server" || out.stdout != "" {
			c.t.Errorf("watch from a compacted revision: exit %d, stdout %q, stderr %q; want exit 5, the compacted cancel and %q",
				out.code, out.stdout, out.stderr, "Error: watch is canceled by the server")
		}
		c.record("watch from a compacted revision", fmt.Sprintf("exit %d, canceled as compacted %v: %s", out.code, canceled, ctlErrorLine(out.stderr)))
		// The compaction revision itself is still watchable.
		w = c.ewStart("watch", "--rev", c.revArg(4), k)
		w.want("from the compaction revision", ewLines(ewPut(k, "h3"), ewPut(k, "h4"), ewPut(k, "h5"))...)
		w.finish()
	})
}

// ewReadJSON reads JSON responses until n events came and returns them
// normalized. Each response's header must be at least as new as its events.
func ewReadJSON(w *ewProc, n int) []ewNEvent {
	c := w.c
	c.t.Helper()
	var out []ewNEvent
	for len(out) < n {
		line := w.next(fmt.Sprintf("%d more events", n-len(out)))
		var r ewJSONResp
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			c.t.Fatalf("etcdctl %s: not a JSON response (%v): %s", w.label, err, line)
		}
		if r.Canceled || r.CompactRevision != 0 || r.Header == nil {
			c.t.Fatalf("etcdctl %s: unexpected response %s", w.label, line)
		}
		for _, ev := range r.Events {
			e := ewNEvent{Type: "PUT"}
			if ev.Type == 1 {
				e.Type = "DELETE"
			}
			if ev.Kv == nil {
				c.t.Fatalf("etcdctl %s: event without kv: %s", w.label, line)
			}
			e.KV = c.nkv(*ev.Kv)
			if ev.Kv.CreateRevision == 0 {
				e.KV.Create = 0 // a delete's: none, not base-relative
			}
			if ev.Kv.ModRevision > r.Header.Revision {
				c.t.Errorf("etcdctl %s: event at %d in a response at %d: %s", w.label, ev.Kv.ModRevision, r.Header.Revision, line)
			}
			if ev.PrevKv != nil {
				prev := c.nkv(*ev.PrevKv)
				e.Prev = &prev
			}
			out = append(out, e)
		}
	}
	return out
}

// TestEtcdctlWatchInteractive drives `etcdctl watch -i`: each `watch` line
// on stdin adds a watch on the one stream, and each `progress` line asks
// the server for a progress notification, which etcdctl prints once per
// watch as "progress notify: <revision>" (the stream's notification goes
// to every watch on it). etcd answers a progress request only when every
// watch on the stream is caught up, and before the client knows of a new
// watch it drops the answer for that watch, so a progress is asked for
// only after each watch has shown it is in place.
func TestEtcdctlWatchInteractive(t *testing.T) {
	const p = "ctl-watchi/"
	k, d := p+"k", p+"dir/"
	ctlEachBackend(t, func(c *ctl) {
		w := c.ewStart("watch", "-i")
		// The first watch: asking for progress until it is answered syncs
		// it, as nothing is written meanwhile.
		w.send("watch " + k)
		notify := "progress notify: " + c.revArg(0)
		for i := 0; ; i++ {
			if i == ewMaxProbes {
				c.t.Fatalf("no progress notification after %d requests; stderr:\n%s", i, w.stderr)
			}
			w.send("progress")
			if l, ok := w.within(ewProbeWait); ok {
				if l != notify {
					c.t.Fatalf("first line %q, want %q", l, notify)
				}
				break
			}
		}
		c.record("first watch in place", "progress notified")

		c.want("OK\n", "put", k, "v1") // rev 1
		w.want("put", ewPut(k, "v1")...)
		w.send("progress")
		w.wantNotify("progress after a put", 1, c.rev(1))

		// A second watch, a prefix, synced with probes (the first watch
		// does not cover them); then the progress goes to both.
		w.send("watch --prefix " + d)
		w.sync(d + "probe")
		w.send("progress")
		w.wantNotify("progress with two watches", 2, c.currentRev())

		c.want("OK\n", "put", d+"x", "x1")
		w.want("put under the prefix", ewPut(d+"x", "x1")...)
		c.want("1\n", "del", k)
		w.want("delete of the key", ewDel(k)...)

		// A third, replaying the key's history with prev_kv: this line's
		// flags are its own.
		w.send("watch --prev-kv --rev " + c.revArg(1) + " " + k)
		w.want("replay with prev-kv", ewLines(ewPut(k, "v1"), ewDel(k, k, "v1"))...)
		w.send("progress")
		w.wantNotify("progress with three watches", 3, c.currentRev())
		c.want("OK\n", "put", k, "v2")
		// The first and third watch both print it; which first is up to
		// etcdctl's goroutines, and each prints three lines one by one, so
		// only the whole is compared, sorted.
		var got []string
		for range 2 * 3 {
			got = append(got, w.next("the put, twice"))
		}
		slices.Sort(got)
		want := ewLines(ewPut(k, "v2"), ewPut(k, "v2"))
		slices.Sort(want)
		if !slices.Equal(got, want) {
			c.t.Errorf("put seen by two watches: got lines %q, want (sorted) %q", got, want)
		}
		c.record("put seen by two watches (sorted lines)", got)
		w.finish()
	})
}
