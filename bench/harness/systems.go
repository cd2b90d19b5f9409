package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// system is one server under test. Every cell of the comparison starts a
// fresh process with a fresh data directory, so no workload sees the keys
// or the heap of an earlier one and VmHWM is the peak of that cell alone.
type system struct {
	// name identifies the system in flags, JSON and tables.
	name string
	// label is the human-readable name used in docs/benchmarks.md.
	label string
	// diesBySIGTERM: the server re-raises SIGTERM after a clean shutdown
	// (etcd's osutil.HandleInterrupts does), so "killed by SIGTERM" is its
	// normal exit status.
	diesBySIGTERM bool
	// durable says whether the system writes (and fsyncs) a data directory;
	// only durable systems take part in the restart measurement.
	durable bool
	// metastore: the system is bin/metastore, which takes the knobs and
	// --pprof-addr of a launch (the others ignore them).
	metastore bool
	// noWatch: the system serves no Watch (the ceiling); the watch
	// workloads skip it.
	noWatch bool
	// noLease: the system serves no Lease (the ceiling); the lease
	// workloads skip it.
	noLease bool
	// noSecurity: the system serves neither auth nor TLS (the ceiling);
	// a secure run (--secure) refuses it.
	noSecurity bool
	// command builds the server's command line for one launch.
	command func(o *options, l launch) (string, []string)
}

// launch is one start of a server: its ports, data directory and, for
// MetaStore, the design knobs and profiler address of that cell.
type launch struct {
	port      int // client port; 0 picks a free one
	peer      int // a spare port (etcd's peer port); 0 picks a free one
	dataDir   string
	knobs     knobs
	pprofAddr string // MetaStore's --pprof-addr; empty: no profiler
	// sec is how clients reach the server: its zero value is plain gRPC
	// without auth.
	sec security
}

// knobs are MetaStore's research flags; 0 leaves a flag out so the server
// uses its own default.
type knobs struct {
	Shards   int `json:"shards,omitempty"`
	MaxBatch int `json:"max_batch,omitempty"`
	// Mailbox is "dispatcher/queue", e.g. "goroutine/mpsc" (see
	// mailboxSettings); empty leaves both flags out.
	Mailbox string `json:"mailbox,omitempty"`
}

// systemNames is the default order; workloads run the systems in this order
// each time (A,B,C,D,A,B,...) so slow drift of the machine hits all alike.
var systemNames = []string{"metastore", "metastore-mem", "etcd", "ceiling"}

func systems() map[string]system {
	return map[string]system{
		"metastore": {
			name: "metastore", label: "MetaStore (durable)", durable: true, metastore: true,
			command: func(o *options, l launch) (string, []string) {
				return metastoreArgs(o, l, false)
			},
		},
		"metastore-mem": {
			name: "metastore-mem", label: "MetaStore (--in-memory)", metastore: true,
			command: func(o *options, l launch) (string, []string) {
				return metastoreArgs(o, l, true)
			},
		},
		"etcd": {
			name: "etcd", label: "etcd v3.7 (durable)", durable: true, diesBySIGTERM: true,
			command: func(o *options, l launch) (string, []string) {
				client := l.sec.clientURL(l.port)
				peerURL := fmt.Sprintf("http://127.0.0.1:%d", l.peer)
				return filepath.Join(o.binDir, "etcd"), []string{
					"--data-dir", l.dataDir,
					"--listen-client-urls", client,
					"--advertise-client-urls", client,
					"--listen-peer-urls", peerURL,
					"--initial-advertise-peer-urls", peerURL,
					"--initial-cluster", "default=" + peerURL,
					"--log-level", "error",
				}
			},
		},
		"ceiling": {
			name: "ceiling", label: "ceiling (no storage)", noWatch: true, noLease: true, noSecurity: true,
			command: func(o *options, l launch) (string, []string) {
				// The harness re-executes itself: the ceiling must be its own
				// process so its CPU and RSS are measured like the others'.
				self, err := os.Executable()
				if err != nil {
					self = os.Args[0]
				}
				return self, []string{ceilingSubcommand, "--listen", fmt.Sprintf("127.0.0.1:%d", l.port), fmt.Sprintf("--val-size=%d", o.valSize)}
			},
		},
	}
}

// serves says whether the system serves what w needs.
func (s system) serves(w workload) bool {
	return !(w.watch && s.noWatch) && !(w.lease && s.noLease)
}

func metastoreArgs(o *options, l launch, inMemory bool) (string, []string) {
	args := []string{"--data-dir", l.dataDir, "--listen-client-urls", l.sec.clientURL(l.port)}
	if inMemory {
		args = append(args, "--in-memory")
	}
	if l.knobs.Shards > 0 {
		args = append(args, "--shards", strconv.Itoa(l.knobs.Shards))
	}
	if l.knobs.MaxBatch > 0 {
		args = append(args, "--max-batch", strconv.Itoa(l.knobs.MaxBatch))
	}
	if dispatcher, queue, ok := strings.Cut(l.knobs.Mailbox, "/"); ok {
		args = append(args, "--mailbox-dispatcher", dispatcher, "--mailbox-queue", queue)
	}
	if l.pprofAddr != "" {
		args = append(args, "--pprof-addr", l.pprofAddr)
	}
	return filepath.Join(o.binDir, "metastore"), args
}

// server is one running server process.
type server struct {
	sys     system
	sec     security
	cmd     *exec.Cmd
	port    int
	peer    int
	dataDir string
	logPath string
	log     *os.File
	exited  chan struct{} // closed when the process has exited
	waitErr error         // set before exited is closed
	// logAtStop is the log's size when SIGTERM was sent: what follows is
	// shutdown chatter, not trouble under load. -1 until stop.
	logAtStop int64
}

// endpoint is the host:port bin/benchmark and the probes dial.
func (s *server) endpoint() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// benchEndpoint is the endpoint bin/benchmark is given: the URL over TLS,
// where the https:// says so, else the bare host:port.
func (s *server) benchEndpoint() string {
	if s.sec.tls != nil {
		return s.sec.clientURL(s.port)
	}
	return s.endpoint()
}

// clientConfig configures a clientv3 client of the server; with user it
// logs in as root in auth mode.
func (s *server) clientConfig(user bool) clientv3.Config { return s.sec.clientConfig(s.port, user) }

func (s *server) pid() int { return s.cmd.Process.Pid }

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// startServer starts sys as l says (ports of 0 are picked free) and waits
// until it answers a Get. It returns the time from exec to the first
// answered Get, which is the restart time when l.dataDir already holds data.
func startServer(o *options, sys system, l launch, logPath string) (*server, time.Duration, error) {
	var err error
	if l.port == 0 {
		if l.port, err = freePort(); err != nil {
			return nil, 0, err
		}
	}
	if l.peer == 0 {
		if l.peer, err = freePort(); err != nil {
			return nil, 0, err
		}
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, err
	}
	bin, args := sys.command(o, l)
	args = append(args, l.sec.serverFlags()...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a ^C to the harness must not reach the server
	// before the harness has stopped it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s := &server{sys: sys, sec: l.sec, cmd: cmd, port: l.port, peer: l.peer, dataDir: l.dataDir, logPath: logPath, log: logf, exited: make(chan struct{}), logAtStop: -1}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, 0, fmt.Errorf("start %s: %w", sys.name, err)
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := waitReady(s, o.startTimeout); err != nil {
		s.kill()
		return nil, 0, fmt.Errorf("%s did not become ready: %w (log: %s)", sys.name, err, tail(logPath, 5))
	}
	return s, time.Since(start), nil
}

// waitReady polls until the server answers a Range. TCP connects are polled
// first and every gRPC attempt uses a new connection: a reused connection
// would sit in gRPC's reconnect backoff (1s and growing) and inflate the
// measured restart time.
func waitReady(s *server, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if !s.alive() {
			return fmt.Errorf("process exited: %v", s.waitErr)
		}
		c, err := net.DialTimeout("tcp", s.endpoint(), 100*time.Millisecond)
		if err != nil {
			last = err
			time.Sleep(2 * time.Millisecond)
			continue
		}
		c.Close()
		if last = probeGet(s.endpoint(), s.sec.transportCredentials(), 2*time.Second); last == nil {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %v: %v", timeout, last)
}

// probeGet sends one linearizable Get on a fresh connection.
func probeGet(endpoint string, creds credentials.TransportCredentials, timeout time.Duration) error {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = pb.NewKVClient(conn).Range(ctx, &pb.RangeRequest{Key: []byte("health")})
	return err
}

// stop asks the server to shut down cleanly (SIGTERM, which MetaStore,
// etcd and the ceiling all handle) and waits; it kills it after timeout.
// The returned duration is how long the clean shutdown took.
func (s *server) stop(timeout time.Duration) (time.Duration, error) {
	defer s.log.Close()
	if !s.alive() {
		return 0, fmt.Errorf("%s had already exited: %v (log: %s)", s.sys.name, s.waitErr, tail(s.logPath, 5))
	}
	if info, err := os.Stat(s.logPath); err == nil {
		s.logAtStop = info.Size()
	}
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-s.exited:
		took := time.Since(start)
		if s.waitErr != nil && !(s.sys.diesBySIGTERM && killedBy(s.waitErr, syscall.SIGTERM)) {
			return took, fmt.Errorf("%s exited with %v after SIGTERM (log: %s)", s.sys.name, s.waitErr, tail(s.logPath, 5))
		}
		return took, nil
	case <-time.After(timeout):
		s.kill()
		return timeout, fmt.Errorf("%s did not stop within %v of SIGTERM; killed", s.sys.name, timeout)
	}
}

// killedBy reports whether a Wait error says the process died of sig.
func killedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.log.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a file, joined with " | ", for error
// messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// logProblems returns the lines of a server log that report errors or
// warnings, so trouble under load shows in the results even when every
// client request succeeded.
// Only bytes [from, upTo) are read (to the end when upTo < 0).
func logProblems(path string, from, upTo int64, max int) (count int, samples []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil
	}
	if upTo >= 0 && upTo < int64(len(b)) {
		b = b[:upTo]
	}
	if from > 0 && from <= int64(len(b)) {
		b = b[from:]
	}
	for _, line := range strings.Split(string(b), "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "level=error") || strings.Contains(l, "level=warn") ||
			strings.Contains(l, `"level":"error"`) || strings.Contains(l, `"level":"warn"`) ||
			strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			count++
			if len(samples) < max {
				samples = append(samples, truncate(line, 300))
			}
		}
	}
	return count, samples
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
