package test

// Helpers shared by the durability tests (durability_test.go) and the crash
// test (crash_test.go): a durable in-process server that can be closed and
// started again on its data dir, a byte-for-byte picture of a data dir, and
// the metastore binary run as a child process that can be killed.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metastore/metastore/rpc"
)

// durLog collects a server's log lines; the server may log from any
// goroutine while the test reads.
type durLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *durLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *durLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// durConfig is the configuration of an on-disk in-process server on dir.
func durConfig(dir string, shards int) rpc.Config {
	cfg := rpc.DefaultConfig()
	cfg.ListenClientURLs = []string{"http://127.0.0.1:0"}
	cfg.DataDir = dir
	cfg.Shards = shards
	cfg.InMemory = false
	return cfg
}

// durServer is one run of an in-process server. Unlike startMetaStore
// it can be closed in the middle of a test, so that the next run starts on
// the same data dir, and it keeps the server's log.
type durServer struct {
	*Target
	srv  *rpc.Server
	log  *durLog
	once sync.Once
}

// durStart starts a server with cfg (its logger is replaced by one that
// keeps the lines in ds.log) and connects to it. The test's cleanup closes
// it if the test has not.
func durStart(t testing.TB, cfg rpc.Config) *durServer {
	t.Helper()
	ds, err := durTryStart(t, cfg)
	if err != nil {
		t.Fatalf("start metastore on %s: %v", cfg.DataDir, err)
	}
	return ds
}

// durTryStart is durStart for a start that may fail. A panic inside
// rpc.Start is returned as an error starting with "panic: ", so that a test
// of a bad data dir fails by itself rather than taking down the package.
func durTryStart(t testing.TB, cfg rpc.Config) (ds *durServer, err error) {
	t.Helper()
	ds = &durServer{log: &durLog{}}
	cfg.Logger = slog.New(slog.NewTextHandler(ds.log, nil))
	srv, err := func() (srv *rpc.Server, err error) {
		defer func() {
			if r := recover(); r != nil {
				// The first line says what; pebble's errors go on with
				// a stack trace.
				msg, _, _ := strings.Cut(fmt.Sprint(r), "\n")
				err = fmt.Errorf("panic: %s", msg)
			}
		}()
		return rpc.Start(cfg)
	}()
	if err != nil {
		return nil, err
	}
	ds.srv = srv
	t.Cleanup(func() { ds.close(t) })
	ds.Target = connect(t, "metastore", strings.TrimPrefix(srv.ClientURLs()[0], "http://"))
	return ds, nil
}

// close closes the clients first, so that none of them redials the port
// after the server is gone (the next run may get the same port), then the
// server. It runs once however often it is called.
func (ds *durServer) close(t testing.TB) {
	ds.once.Do(func() {
		if ds.Target != nil {
			_ = ds.Client.Close()
			_ = ds.Conn.Close()
		}
		if err := ds.srv.Close(); err != nil {
			t.Errorf("close metastore: %v", err)
		}
	})
}

// durDirFiles reads every regular file under dir, by path relative to dir, so
// that a data dir can be compared byte for byte before and after a start
// that must not touch it.
func durDirFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			files[rel+"/"] = nil
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[rel] = b
		return nil
	})
	if err != nil {
		t.Fatalf("read data dir %s: %v", dir, err)
	}
	return files
}

// durDiffFiles describes how after differs from before: files changed, added
// and removed. Empty means identical.
func durDiffFiles(before, after map[string][]byte) string {
	var out []string
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			out = append(out, "removed "+name)
		case !bytes.Equal(a, b):
			out = append(out, fmt.Sprintf("changed %s (%d bytes, was %d)", name, len(a), len(b)))
		}
	}
	for name, a := range after {
		if _, ok := before[name]; !ok {
			out = append(out, fmt.Sprintf("added %s (%d bytes)", name, len(a)))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// durFreePort returns a loopback port that was free a moment ago. Another
// process may take it before the server binds it; durStartProc retries then.
func durFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// durProc is one metastore process.
type durProc struct {
	cmd      *exec.Cmd
	endpoint string        // 127.0.0.1:port
	startup  string        // the line that says what it serves
	output   *durLog       // everything it wrote to stderr and stdout
	exited   chan struct{} // closed once Wait has returned
	waitErr  error
}

// durErrPortTaken means the process could not bind its port: try another one.
var durErrPortTaken = errors.New("client port taken")

// durStartProc runs the metastore binary with args (plus a fresh loopback
// --listen-client-urls) and returns once it says it is serving. A start
// that loses its port to another process is retried on a new port; any
// other failure to start fails the test with the process's output.
func durStartProc(t testing.TB, args ...string) *durProc {
	t.Helper()
	for attempt := 0; ; attempt++ {
		p, err := durTryStartProc(t, args...)
		if errors.Is(err, durErrPortTaken) && attempt < 5 {
			continue
		}
		if err != nil {
			t.Fatalf("start metastore %v: %v", args, err)
		}
		return p
	}
}

// durTryStartProc runs the binary once. It returns durErrPortTaken if the port was
// taken, and any other start failure (with the output) as an error, so a
// test can also check that a start fails.
func durTryStartProc(t testing.TB, args ...string) (*durProc, error) {
	t.Helper()
	port := durFreePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	p := &durProc{endpoint: "127.0.0.1:" + strconv.Itoa(port), output: &durLog{}, exited: make(chan struct{})}
	p.cmd = exec.Command(buildBinary(t, metastoreCmd), append(slices.Clone(args), "--listen-client-urls", url)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("run %v: %v", p.cmd.Args, err)
	}
	// Whatever happens to the test, the child must not outlive it.
	t.Cleanup(p.kill)
	serving := make(chan string, 1)
	go func() {
		// Drain stderr to the end, so the child never blocks on a full
		// pipe, keeping it all for failure messages.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		want := "serving " + url
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.output, line)
			if strings.Contains(line, want) {
				select {
				case serving <- line:
				default:
				}
			}
		}
		_, _ = io.Copy(p.output, stderr)
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case line := <-serving:
		p.startup = line
		return p, nil
	case <-p.exited:
		out := p.output.String()
		if strings.Contains(out, "address already in use") {
			return nil, durErrPortTaken
		}
		return nil, fmt.Errorf("exited before serving (%v); output:\n%s", p.waitErr, out)
	case <-time.After(30 * time.Second):
		p.kill()
		return nil, fmt.Errorf("not serving after 30s; output:\n%s", p.output.String())
	}
}

// kill sends SIGKILL, the crash the crash test simulates, and waits for
// the process to be gone.
func (p *durProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop asks for a graceful shutdown (SIGTERM) and waits up to 20s for it.
func (p *durProc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Errorf("metastore exited with %v after SIGTERM; output:\n%s", p.waitErr, p.output.String())
		}
	case <-time.After(20 * time.Second):
		p.kill()
		t.Errorf("metastore still running 20s after SIGTERM; output:\n%s", p.output.String())
	}
}

// kvClient dials p with a plain gRPC connection: no clientv3 retries, so a
// write that fails is reported as failed, never silently sent again to the
// next process.
func (p *durProc) kvClient(t testing.TB) (pb.KVClient, func()) {
	t.Helper()
	conn, err := grpc.NewClient(p.endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc client for %s: %v", p.endpoint, err)
	}
	return pb.NewKVClient(conn), func() { _ = conn.Close() }
}
