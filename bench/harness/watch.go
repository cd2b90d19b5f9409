package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The watch workloads measure etcd's Watch service: how soon an event
// reaches its watchers, how many events a second a server delivers, what
// 1,000 watchers cost put-100, and the memory 100,000 idle watchers take.
// The ceiling serves no Watch, so they run on the other systems only.
var watchWorkloadNames = []string{"watch-latency", "watch", "put-100-watched", "watchers-idle-100k"}

// Watch workload parameters.
const (
	// watchedPutWatchers hold put-100-watched's key space, a range each.
	watchedPutWatchers = 1000
	watchedPutStreams  = 10
	watchedPutConns    = 10
	// idleStreams carry watchers-idle-100k's watchers, idleConns carry the
	// streams.
	idleStreams = 100
	idleConns   = 10
	// idleProbes of the idle watchers see a put each after the RSS is
	// read, to show they are live.
	idleProbes = 100
	// idleSettle is how long the idle watchers are held before the RSS is
	// read.
	idleSettle = 2 * time.Second
	// holderTimeout bounds opening a holder's watchers; eventTimeout
	// bounds waiting for events after the puts.
	holderTimeout = 5 * time.Minute
	eventTimeout  = 30 * time.Second
	// watchRunLimit bounds a run of bin/benchmark watch and watch-latency
	// (quick: watchRunLimitQuick): both wait forever for an event that
	// never comes.
	watchRunLimit      = 10 * time.Minute
	watchRunLimitQuick = time.Minute
	// watchProbeTimeout bounds the check that a server serves Watch.
	watchProbeTimeout = 10 * time.Second
)

func watchWorkloads() []workload {
	return []workload{
		{
			name: "watch-latency", full: 2000, quick: 300, clients: 10, conns: 10, watch: true, totalFlag: "--put-total",
			desc: "100 watchers (10 streams of 10) on one key, puts to it at 100/s; latency from a put's response to each watcher's event",
			args: func(o *options) []string {
				return []string{"watch-latency", "--streams=10", "--watchers-per-stream=10", "--put-rate=100", "--key-size=32", valSizeFlag(o)}
			},
		},
		{
			name: "watch", full: 10000, quick: 2000, clients: 100, conns: 10, watch: true, totalFlag: "--put-total",
			desc: "1,000 watchers (10 streams of 100) on 10 keys, 100 on each; puts to the keys as fast as 100 clients go; events a second delivered to the watchers",
			args: func(o *options) []string {
				return []string{"watch", "--streams=10", "--watch-per-stream=100", "--watched-key-total=10", "--key-space-size=10", "--sequential-keys"}
			},
		},
		{
			name: "put-100-watched", full: 200000, quick: 10000, clients: 100, conns: 100, watch: true,
			desc: fmt.Sprintf("put-100 while `harness watchers` holds %s watchers (%d streams on %d connections), each on a range of the key space holding 1/%d of its keys, so every put is one event",
				thousands(watchedPutWatchers), watchedPutStreams, watchedPutConns, watchedPutWatchers),
			args: putArgs,
			holder: func(o *options, _ int) holderSpec {
				return holderSpec{watchers: watchedPutWatchers, streams: watchedPutStreams, conns: watchedPutConns, keySize: 8, keySpace: o.keySpace}
			},
		},
		{
			name: "watchers-idle-100k", full: 100000, quick: 100000, fixed: true, clients: idleStreams, conns: idleConns, watch: true,
			desc: fmt.Sprintf("`harness watchers` opens 100,000 watchers on distinct keys (%d streams on %d connections) and holds them idle; the server's peak RSS; then %d of the keys are put once, each event must arrive",
				idleStreams, idleConns, idleProbes),
			holder: func(o *options, total int) holderSpec {
				return holderSpec{watchers: total, streams: idleStreams, conns: idleConns, prefix: "idle/"}
			},
		},
	}
}

// thousands writes n with a comma between thousands: 100,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// watchStats is what a watcher holder saw in one cell.
type watchStats struct {
	Command  string `json:"holder_command"`
	Watchers int    `json:"watchers"`
	Streams  int    `json:"streams"`
	Conns    int    `json:"conns"`
	// CreateSeconds is the holder's time to open every watcher.
	CreateSeconds float64 `json:"create_seconds"`
	// EventsExpected is how many events the puts should have raised (one
	// per successful put); EventsReceived how many arrived, and in how
	// many of the watchers. LostWatchers were closed by the server.
	EventsExpected     int64 `json:"events_expected"`
	EventsReceived     int64 `json:"events_received"`
	WatchersWithEvents int   `json:"watchers_with_events"`
	LostWatchers       int64 `json:"lost_watchers"`
	// Idle watchers: the server's VmRSS before the holder started, and its
	// VmRSS and VmHWM after the watchers had been held idle a moment.
	RSSBeforeBytes   int64 `json:"server_rss_before_watchers_bytes,omitempty"`
	RSSWatchingBytes int64 `json:"server_rss_with_watchers_bytes,omitempty"`
	HWMWatchingBytes int64 `json:"server_peak_rss_with_watchers_bytes,omitempty"`
}

// delivered says whether every expected event arrived and no watcher was
// lost.
func (s *watchStats) delivered() bool {
	return s != nil && s.EventsReceived >= s.EventsExpected && s.LostWatchers == 0
}

// holder is a running `harness watchers` (or `harness leases --hold`)
// process.
type holder struct {
	name    string // its subcommand, for error messages
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string
	logPath string
	exited  chan struct{}
	waitErr error
	stats   watchStats
}

// startHolder starts `harness watchers` on the server and waits until it
// has opened every watcher. Its stderr goes to logPath.
func startHolder(ctx context.Context, endpoint string, spec holderSpec, logPath string) (*holder, error) {
	h, r, err := startSelf(ctx, append([]string{watchersSubcommand}, spec.args(endpoint)...), logPath)
	if err != nil {
		return nil, err
	}
	h.stats = watchStats{
		Command:  "harness " + strings.Join(append([]string{watchersSubcommand}, spec.args("HOST:PORT")...), " "),
		Watchers: spec.watchers, Streams: spec.streams, Conns: spec.conns,
		CreateSeconds: r.seconds,
	}
	return h, nil
}

// startSelf starts the harness binary with args (a subcommand first) and
// waits for its "ready" line. Its stderr goes to logPath; it exits when
// its stdin closes.
func startSelf(ctx context.Context, args []string, logPath string) (*holder, holderReady, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, holderReady{}, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, holderReady{}, err
	}
	defer logf.Close()
	cmd := exec.Command(self, args...)
	cmd.Stderr = logf
	// Its own process group, like the servers: a ^C reaches the harness,
	// which closes the holder in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, holderReady{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, holderReady{}, err
	}
	h := &holder{name: args[0], cmd: cmd, stdin: stdin, lines: make(chan string, 4), logPath: logPath, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, holderReady{}, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.waitErr = cmd.Wait()
		close(h.exited)
	}()
	line, err := h.readLine(ctx, holderTimeout)
	if err == nil {
		var r holderReady
		if r, err = parseReady(line); err == nil {
			return h, r, nil
		}
	}
	h.kill()
	return nil, holderReady{}, fmt.Errorf("%s: %w (log: %s)", h.name, err, tail(logPath, 3))
}

// readLine is the holder's next line of output.
func (h *holder) readLine(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-h.lines:
		if !ok {
			<-h.exited
			return "", fmt.Errorf("exited: %v", h.waitErr)
		}
		return line, nil
	case <-t.C:
		return "", fmt.Errorf("no answer within %v", timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// waitEvents waits until the holder has received want events, or
// timeout, and records what it received.
func (h *holder) waitEvents(ctx context.Context, want int64, timeout time.Duration) error {
	h.stats.EventsExpected = want
	if _, err := fmt.Fprintf(h.stdin, "wait %d %.3f\n", want, timeout.Seconds()); err != nil {
		return fmt.Errorf("watchers: %w (log: %s)", err, tail(h.logPath, 3))
	}
	line, err := h.readLine(ctx, timeout+30*time.Second)
	if err != nil {
		return fmt.Errorf("watchers: %w (log: %s)", err, tail(h.logPath, 3))
	}
	e, err := parseEvents(line)
	if err != nil {
		return err
	}
	h.stats.EventsReceived, h.stats.WatchersWithEvents, h.stats.LostWatchers = e.events, e.withEvents, e.lostWatchers
	if !h.stats.delivered() {
		return fmt.Errorf("watchers received %d of %d events within %v; %d watchers lost (log: %s)",
			e.events, want, timeout, e.lostWatchers, tail(h.logPath, 3))
	}
	return nil
}

// close ends the holder: it exits when its stdin closes.
func (h *holder) close() error {
	h.stdin.Close()
	select {
	case <-h.exited:
		if h.waitErr != nil {
			return fmt.Errorf("%s exited with %v (log: %s)", h.name, h.waitErr, tail(h.logPath, 3))
		}
		return nil
	case <-time.After(30 * time.Second):
		h.kill()
		return fmt.Errorf("%s did not exit within 30s of its stdin closing; killed", h.name)
	}
}

func (h *holder) kill() {
	h.stdin.Close()
	_ = h.cmd.Process.Kill()
	for range h.lines {
	}
	<-h.exited
}

// holdIdle is watchers-idle-100k: open the watchers, hold them idle, read
// the server's RSS, then put idleProbes of the watched keys and wait for
// their events.
func holdIdle(ctx context.Context, srv *server, spec holderSpec, logPath string) (*watchStats, error) {
	before, err := sampleProc(srv.pid())
	if err != nil {
		return nil, err
	}
	h, err := startHolder(ctx, srv.endpoint(), spec, logPath)
	if err != nil {
		return nil, err
	}
	defer h.close() //nolint:errcheck // the first error is the one to report
	h.stats.RSSBeforeBytes = before.rssBytes
	select {
	case <-time.After(idleSettle):
	case <-ctx.Done():
		return &h.stats, ctx.Err()
	}
	held, err := sampleProc(srv.pid())
	if err != nil {
		return &h.stats, err
	}
	h.stats.RSSWatchingBytes, h.stats.HWMWatchingBytes = held.rssBytes, held.hwmBytes
	probes := min(idleProbes, spec.watchers)
	err = withClient(ctx, srv.endpoint(), func(ctx context.Context, c *clientv3.Client) error {
		for i := 0; i < probes; i++ {
			if _, err := c.Put(ctx, watchKey(spec.prefix, i*spec.watchers/probes), "probe"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return &h.stats, fmt.Errorf("probe puts: %w", err)
	}
	if err := h.waitEvents(ctx, int64(probes), eventTimeout); err != nil {
		return &h.stats, err
	}
	s := h.stats
	return &s, h.close()
}

// probeWatch creates one watch on a fresh connection: a server without
// Watch fails it at once, where bin/benchmark watch-latency would wait
// for its events forever.
func probeWatch(ctx context.Context, endpoint string) error {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, watchProbeTimeout)
	defer cancel()
	st, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		return err
	}
	err = st.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("watch-probe")}}})
	// A stream the server has ended fails Send with io.EOF; Recv has the
	// server's error.
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	resp, err := st.Recv()
	if err != nil {
		return err
	}
	if !resp.Created || resp.Canceled {
		return fmt.Errorf("watch not created (canceled %v, reason %q)", resp.Canceled, resp.CancelReason)
	}
	return nil
}
