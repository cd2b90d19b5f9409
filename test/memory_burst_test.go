package test

// A burst of large values must cost bounded memory, and the memory must come
// back once the burst is over (issue 9). The server runs in this process
// (rpc.Start, durable, in a temp dir) so that its runtime.MemStats are the
// test's own; the clients run in a child process (this test binary again,
// as TestMemoryBurstLoadGen), so that their buffers do not count.
//
// MetaStore only: how much memory a server spends on a burst is not part of
// etcd's API, and refusing with "too many requests" at a byte bound is
// MetaStore's own answer (etcd bounds only the count of entries between
// commit and apply), so there is nothing to compare against etcd here.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metastore/metastore/rpc"
	"github.com/metastore/metastore/shards"
)

const (
	// burstLoadEnv, in the child, holds the load to generate (JSON).
	burstLoadEnv = "METASTORE_BURST_LOAD"
	// burstMeasureEnv runs TestMemoryBurstMeasure: the load (500
	// clients, 1 MiB values) with a table of samples, for the record.
	burstMeasureEnv = "METASTORE_MEMORY_MEASURE"
	// burstProfileEnv names a directory for TestMemoryBurstMeasure's
	// profiles: cpu.pprof of the whole run, heap-peak.pprof at the
	// highest heap, heap.pprof after the idle time.
	burstProfileEnv = "METASTORE_MEMORY_PROFILE"
)

// burstLoad is what the child does: Clients goroutines over Conns gRPC
// connections each put ValueBytes-sized values to a key of their own, one
// after another; none starts a put after Duration, and those in flight
// finish.
type burstLoad struct {
	Endpoint   string
	Clients    int
	Conns      int
	ValueBytes int
	Duration   time.Duration
}

// burstResult is what the child reports on its last line.
type burstResult struct {
	OK, TooMany, Other int64
	FirstOther         string
}

const burstResultPrefix = "BURST-RESULT "

// TestMemoryBurstLoadGen is the child process's load generator; it does
// nothing unless run by runBurstLoad.
func TestMemoryBurstLoadGen(t *testing.T) {
	env := os.Getenv(burstLoadEnv)
	if env == "" {
		t.Skip("the load generator of the memory burst tests; they run it")
	}
	var l burstLoad
	if err := json.Unmarshal([]byte(env), &l); err != nil {
		t.Fatal(err)
	}
	conns := make([]pb.KVClient, l.Conns)
	for i := range conns {
		c, err := grpc.NewClient(l.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = pb.NewKVClient(c)
	}
	value := bytes.Repeat([]byte{'v'}, l.ValueBytes)
	var res burstResult
	var firstOther sync.Once
	end := time.Now().Add(l.Duration)
	var wg sync.WaitGroup
	for i := range l.Clients {
		kv := conns[i%len(conns)]
		key := []byte(fmt.Sprintf("burst/%05d", i))
		wg.Go(func() {
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				_, err := kv.Put(ctx, &pb.PutRequest{Key: key, Value: value})
				cancel()
				switch {
				case err == nil:
					atomic.AddInt64(&res.OK, 1)
				case rpctypes.ErrorDesc(err) == rpctypes.ErrTooManyRequests.Error():
					atomic.AddInt64(&res.TooMany, 1)
					time.Sleep(10 * time.Millisecond) // back off a little
				default:
					atomic.AddInt64(&res.Other, 1)
					firstOther.Do(func() { res.FirstOther = err.Error() })
				}
			}
		})
	}
	wg.Wait()
	out, _ := json.Marshal(&res)
	fmt.Printf("\n%s%s\n", burstResultPrefix, out)
}

// runBurstLoad runs l in a child process and returns, once it is done,
// what it reports.
func runBurstLoad(l burstLoad) (burstResult, error) {
	env, _ := json.Marshal(&l)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryBurstLoadGen$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), burstLoadEnv+"="+string(env))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var res burstResult
	found := false
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), burstResultPrefix); ok {
			found = json.Unmarshal([]byte(s), &res) == nil
		}
	}
	if err != nil || !found {
		return res, fmt.Errorf("load generator: %v; output:\n%s", err, out.String())
	}
	return res, nil
}

// memSample is this process's memory at one moment.
type memSample struct {
	at    time.Duration
	phase string
	// live is the heap the last GC found reachable; the others are
	// runtime.MemStats' fields, and the resident set size.
	live, heapAlloc, heapInuse, heapSys, heapReleased, nextGC, rss uint64
	numGC                                                          uint32
}

func sampleMem(start time.Time, phase string) memSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	return memSample{
		at: time.Since(start), phase: phase, live: live[0].Value.Uint64(),
		heapAlloc: ms.HeapAlloc, heapInuse: ms.HeapInuse, heapSys: ms.HeapSys, heapReleased: ms.HeapReleased,
		nextGC: ms.NextGC, numGC: ms.NumGC, rss: rssBytes(),
	}
}

// rssBytes is this process's resident set size, or 0 where /proc is not.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func mib(b uint64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }

func (s memSample) String() string {
	return fmt.Sprintf("%6.1fs %-8s live %5s heapAlloc %5s heapInuse %5s heapSys %5s heapReleased %5s nextGC %5s numGC %4d RSS %5s MiB",
		s.at.Seconds(), s.phase, mib(s.live), mib(s.heapAlloc), mib(s.heapInuse), mib(s.heapSys), mib(s.heapReleased), mib(s.nextGC), s.numGC, mib(s.rss))
}

// startBurstServer starts a durable server in this process on a temp dir.
func startBurstServer(t testing.TB, cfg rpc.Config) string {
	t.Helper()
	cfg.ListenClientURLs = []string{"http://127.0.0.1:0"}
	cfg.DataDir = t.TempDir()
	cfg.InMemory = false
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := rpc.Start(cfg)
	if err != nil {
		t.Fatalf("start metastore: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return strings.TrimPrefix(srv.ClientURLs()[0], "http://")
}

// burstRun is one burst against a server in this process, sampled every
// period while the load runs and for idle after it.
type burstRun struct {
	base             memSample
	samples          []memSample
	peakInuse        memSample // the sample with the most heapInuse
	peakLive         memSample // the sample with the most live heap
	res              burstResult
	onPeak           func() // called at each new heapInuse peak, if set
	logSample        func(memSample)
	period, idleTime time.Duration
}

func (r *burstRun) run(t testing.TB, l burstLoad) {
	t.Helper()
	start := time.Now()
	runtime.GC()
	debug.FreeOSMemory()
	r.base = sampleMem(start, "base")
	r.log(r.base)
	var loadErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.res, loadErr = runBurstLoad(l)
	}()
	tick := time.NewTicker(r.period)
	defer tick.Stop()
	phase := "load"
	var idleEnd time.Time
	for idleEnd.IsZero() || time.Now().Before(idleEnd) {
		select {
		case <-done:
			done = nil
			phase = "idle"
			idleEnd = time.Now().Add(r.idleTime)
		case <-tick.C:
			s := sampleMem(start, phase)
			r.samples = append(r.samples, s)
			if s.heapInuse > r.peakInuse.heapInuse {
				r.peakInuse = s
				if r.onPeak != nil {
					r.onPeak()
				}
			}
			if s.live > r.peakLive.live {
				r.peakLive = s
			}
			r.log(s)
		}
	}
	if loadErr != nil {
		t.Fatal(loadErr)
	}
}

func (r *burstRun) log(s memSample) {
	if r.logSample != nil {
		r.logSample(s)
	}
}

// TestMemoryBurstIsBounded puts 1 MiB values from 100 clients for 3 s to a
// durable server, then checks that (a) its live heap never passed what the
// byte bounds of the shards, the coordinator and gRPC's requests in flight
// allow, whether or not some writes were refused for them, and (b) once
// the writes are answered and a GC ran, the heap is back near where it
// started: nothing holds a burst's values after it.
//
// Before the byte bounds and the shards' wake-up once their values are
// visible, (b) failed: 760 MiB stayed live after such a burst, the last
// batch of each shard held in Values' recent map until that shard's next
// write.
func TestMemoryBurstIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a burst of 1 MiB values takes several seconds")
	}
	const (
		clients    = 200
		valueBytes = 1 << 20
		shardCount = 2
	)
	cfg := rpc.DefaultConfig()
	cfg.Shards = shardCount
	endpoint := startBurstServer(t, cfg)
	r := &burstRun{period: 20 * time.Millisecond, idleTime: 0}
	r.run(t, burstLoad{Endpoint: endpoint, Clients: clients, Conns: 4, ValueBytes: valueBytes, Duration: 500 * time.Millisecond})
	t.Logf("load %+v", r.res)
	t.Logf("before  %v", r.base)
	t.Logf("peak    %v", r.peakInuse)
	t.Logf("peak    %v", r.peakLive)
	if r.res.Other > 0 {
		t.Errorf("%d puts failed other than with %q, the first: %s", r.res.Other, rpctypes.ErrTooManyRequests, r.res.FirstOther)
	}
	if r.res.OK == 0 {
		t.Errorf("no put succeeded")
	}

	// (a) What may be live at once, over the heap before: every client's
	// request in flight, twice (gRPC's receive buffer and the decoded
	// request); what the shards and the coordinator may queue and batch;
	// and what they may have written but not seen durable, five times:
	// the value itself, its record encoded for pebble, pebble's batch
	// (which grows by doubling, so up to twice) and its WAL blocks.
	request := uint64(valueBytes + 64)
	queued := uint64(shardCount*(shards.DefaultMaxQueuedBytes+shards.DefaultMaxBatchBytes) + shards.DefaultMaxCoordinatedBytes)
	unsettled := uint64(shardCount*(shards.DefaultMaxUnsettledBytes+shards.DefaultMaxBatchBytes) + shards.DefaultMaxUnsettledBytes)
	bound := r.base.live + 2*clients*request + queued + 5*unsettled
	if r.peakLive.live > bound {
		t.Errorf("(a) the live heap reached %s MiB, past the %s MiB the bounds allow (%d writes refused)",
			mib(r.peakLive.live), mib(bound), r.res.TooMany)
	}

	// (b) Every write is answered; once the shards have settled what is
	// visible (their wake-up is a message away) and a GC ran, the heap is
	// back near where it started. Near: pebble keeps its last commit's
	// batch (up to twice the sequencer's 64 MiB group, as it grows by
	// doubling) until its next flush, and the value cache may hold up to
	// its 64 MiB.
	slack := uint64(2*64<<20 + 16<<20)
	var after memSample
	for i := 0; i < 40; i++ {
		runtime.GC()
		runtime.GC() // sync.Pools keep their contents through one GC
		after = sampleMem(time.Now(), "after")
		if after.heapInuse <= r.base.heapInuse+slack {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("after   %v", after)
	if after.heapInuse > r.base.heapInuse+slack {
		t.Errorf("(b) after the burst and a GC the heap in use is %s MiB, %s MiB more than before it (allowed: %s)",
			mib(after.heapInuse), mib(after.heapInuse-r.base.heapInuse), mib(slack))
	}
}

// TestMemoryBurstMeasure is the load, for the record: 500 clients
// put 1 MiB values to a durable server for 20 s, then it idles for 60 s;
// every second the server's heap and RSS are logged, then once more after
// a GC and after debug.FreeOSMemory. Run it with
//
//	METASTORE_MEMORY_MEASURE=1 go test -run TestMemoryBurstMeasure -v -timeout 10m ./test/
//
// METASTORE_MEMORY_MEASURE may also be "clients,valueBytes,loadSeconds,idleSeconds".
func TestMemoryBurstMeasure(t *testing.T) {
	env := os.Getenv(burstMeasureEnv)
	if env == "" {
		t.Skipf("set %s=1 to measure", burstMeasureEnv)
	}
	clients, valueBytes, loadS, idleS := 500, 1<<20, 20, 60
	if f := strings.Split(env, ","); len(f) == 4 {
		clients, _ = strconv.Atoi(f[0])
		valueBytes, _ = strconv.Atoi(f[1])
		loadS, _ = strconv.Atoi(f[2])
		idleS, _ = strconv.Atoi(f[3])
	}
	endpoint := startBurstServer(t, rpc.DefaultConfig())
	r := &burstRun{period: time.Second, idleTime: time.Duration(idleS) * time.Second, logSample: func(s memSample) { t.Log(s) }}
	profDir := os.Getenv(burstProfileEnv)
	if profDir != "" {
		f, err := os.Create(profDir + "/cpu.pprof")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		r.onPeak = func() { writeHeapProfile(t, profDir+"/heap-peak.pprof") }
	}
	r.run(t, burstLoad{Endpoint: endpoint, Clients: clients, Conns: 10, ValueBytes: valueBytes, Duration: time.Duration(loadS) * time.Second})
	if profDir != "" {
		pprof.StopCPUProfile()
		runtime.GC()
		writeHeapProfile(t, profDir+"/heap.pprof")
	}
	t.Logf("load: %+v", r.res)
	t.Logf("peak: %v", r.peakInuse)
	t.Logf("peak: %v", r.peakLive)
	runtime.GC()
	t.Log(sampleMem(time.Now(), "GC"))
	debug.FreeOSMemory()
	t.Log(sampleMem(time.Now(), "Free"))
}

// writeHeapProfile writes the heap profile: what was live at the last GC.
func writeHeapProfile(t testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_ = pprof.Lookup("heap").WriteTo(f, 0)
}
