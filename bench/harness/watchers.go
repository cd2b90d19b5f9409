package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// watchersSubcommand makes the harness binary hold watchers on a server:
// `harness watchers` opens them with clientv3, says when all are created,
// counts the events they receive and answers questions about the count on
// stdin. It is its own process, like the ceiling, so its CPU and memory
// are not the harness's; bin/benchmark has no mode that holds watchers
// while another workload runs.
//
// The protocol is one line each way:
//
//	holder: ready <watchers> <seconds to create them>
//	harness: wait <events> <seconds>
//	holder: events <received> <watchers that received any> <watchers lost>
//
// "wait" answers once the holder has received at least that many events,
// or after that many seconds. The holder exits when its stdin closes.
const watchersSubcommand = "watchers"

// holderSpec is what a holder opens: watchers on streams (one
// clientv3.Watcher each) over connections (one clientv3.Client each), and
// the keys they watch.
type holderSpec struct {
	watchers, streams, conns int
	// keySize and keySpace > 0: the watchers split the keys bin/benchmark
	// put --key-size --key-space-size writes into contiguous ranges, so
	// that every put is seen by exactly one watcher. Otherwise watcher i
	// watches the single key prefix+i (see watchKey).
	keySize, keySpace int
	prefix            string
}

// args are the holder's flags for spec.
func (s holderSpec) args(endpoint string) []string {
	a := []string{
		"--endpoint", endpoint,
		"--watchers", strconv.Itoa(s.watchers), "--streams", strconv.Itoa(s.streams), "--conns", strconv.Itoa(s.conns),
	}
	if s.keySpace > 0 {
		return append(a, "--key-size", strconv.Itoa(s.keySize), "--key-space", strconv.Itoa(s.keySpace))
	}
	return append(a, "--prefix", s.prefix)
}

// watchTarget is what one watcher watches: key alone when end is empty,
// [key, end) otherwise, and every key from key on when end is "\x00"
// (etcd's convention, clientv3.WithFromKey).
type watchTarget struct{ key, end string }

// watchKey is the key watcher i of a prefix holder watches.
func watchKey(prefix string, i int) string { return fmt.Sprintf("%s%07d", prefix, i) }

// watchTargets are the targets of spec's watchers, in order.
func watchTargets(s holderSpec) ([]watchTarget, error) {
	if s.watchers < 1 {
		return nil, errors.New("no watchers")
	}
	if s.keySpace <= 0 {
		t := make([]watchTarget, s.watchers)
		for i := range t {
			t[i] = watchTarget{key: watchKey(s.prefix, i)}
		}
		return t, nil
	}
	return benchmarkKeyRanges(s.keySize, s.keySpace, s.watchers)
}

// benchmarkKeyRanges splits every key into n contiguous ranges, each
// holding an equal share of the keys bin/benchmark put writes with
// --key-size and --key-space-size: binary.PutVarint of a number below
// keySpace into a buffer of keySize bytes. (bin/benchmark reuses the
// buffer, so a short varint keeps bytes of the key before it; such a key
// still falls in exactly one range, as every key does.)
func benchmarkKeyRanges(keySize, keySpace, n int) ([]watchTarget, error) {
	if keySpace < n {
		return nil, fmt.Errorf("a key space of %d cannot give %d watchers a key each", keySpace, n)
	}
	if keySize < binary.MaxVarintLen64 && keySize < varintLen(int64(keySpace-1)) {
		return nil, fmt.Errorf("--key-size %d is too small for the varint of %d", keySize, keySpace-1)
	}
	keys := make([]string, keySpace)
	for i := range keys {
		k := make([]byte, keySize)
		binary.PutVarint(k, int64(i))
		keys[i] = string(k)
	}
	sort.Strings(keys)
	t := make([]watchTarget, n)
	for i := range t {
		if i == 0 {
			t[i].key = "\x00" // the smallest key there is
		} else {
			t[i].key = keys[i*keySpace/n]
		}
		if i > 0 {
			t[i-1].end = t[i].key
		}
	}
	t[n-1].end = "\x00"
	return t, nil
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}

// contains reports whether k is one the target sees.
func (t watchTarget) contains(k string) bool {
	switch t.end {
	case "":
		return k == t.key
	case "\x00":
		return k >= t.key
	}
	return k >= t.key && k < t.end
}

func (t watchTarget) opts() []clientv3.OpOption {
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	switch t.end {
	case "":
	case "\x00":
		opts = append(opts, clientv3.WithFromKey())
	default:
		opts = append(opts, clientv3.WithRange(t.end))
	}
	return opts
}

// runWatchers is `harness watchers`.
func runWatchers(args []string) error {
	var s holderSpec
	var endpoint string
	fs := flag.NewFlagSet(watchersSubcommand, flag.ContinueOnError)
	fs.StringVar(&endpoint, "endpoint", "127.0.0.1:2379", "server to watch")
	fs.IntVar(&s.watchers, "watchers", 1000, "watchers to open")
	fs.IntVar(&s.streams, "streams", 10, "gRPC watch streams (clientv3 Watchers) to open them over")
	fs.IntVar(&s.conns, "conns", 10, "gRPC connections (clientv3 Clients) to spread the streams over")
	fs.IntVar(&s.keySize, "key-size", 8, "with --key-space: bin/benchmark put's --key-size")
	fs.IntVar(&s.keySpace, "key-space", 0, "split bin/benchmark put's keys of this --key-space-size among the watchers, a range each (0: one key each, see --prefix)")
	fs.StringVar(&s.prefix, "prefix", "watched/", "without --key-space: watcher i watches the key <prefix><i, 7 digits>")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.streams < 1 || s.conns < 1 {
		return errors.New("--streams and --conns must be positive")
	}
	targets, err := watchTargets(s)
	if err != nil {
		return err
	}
	// SIGTERM or ^C end the holder like a closed stdin does.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := &holding{counts: make([]atomic.Int64, len(targets))}
	clients := make([]*clientv3.Client, min(s.conns, s.streams))
	for i := range clients {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		defer c.Close()
		clients[i] = c
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	if err := h.open(wctx, clients, s.streams, targets); err != nil {
		return err
	}
	fmt.Printf("ready %d %.6f\n", len(targets), time.Since(start).Seconds())
	return h.serve(ctx, os.Stdin, os.Stdout)
}

// holding is the watchers of one holder and what they received.
type holding struct {
	counts []atomic.Int64 // events per watcher
	events atomic.Int64
	lost   atomic.Int64
	closed atomic.Bool // set before the watchers are cancelled on purpose
}

// open creates every watcher, target i on stream i % streams, the streams
// in parallel. clientv3 creates a stream's watchers one after another
// (Watch returns once the server has created the watch), so this is how
// a client with that many streams would open them.
func (h *holding) open(ctx context.Context, clients []*clientv3.Client, streams int, targets []watchTarget) error {
	var created sync.WaitGroup
	created.Add(len(targets))
	errc := make(chan error, len(targets)+streams)
	var wg sync.WaitGroup
	for s := 0; s < streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := clientv3.NewWatcher(clients[s%len(clients)])
			for i := s; i < len(targets); i += streams {
				if ctx.Err() != nil {
					created.Done()
					continue
				}
				wch := w.Watch(ctx, targets[i].key, targets[i].opts()...)
				go h.consume(wch, i, &created, errc)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); created.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// consume reads one watcher's channel: first its creation, then events.
func (h *holding) consume(wch clientv3.WatchChan, i int, created *sync.WaitGroup, errc chan<- error) {
	first := true
	for resp := range wch {
		if first {
			first = false
			created.Done()
			if err := resp.Err(); err != nil || !resp.Created {
				errc <- fmt.Errorf("watcher %d not created: %v (canceled %v, reason %q)", i, err, resp.Canceled, resp.CancelReason)
				return
			}
		}
		if err := resp.Err(); err != nil && !h.closed.Load() {
			h.lost.Add(1)
			fmt.Fprintf(os.Stderr, "watcher %d: %v\n", i, err)
			return
		}
		if n := int64(len(resp.Events)); n > 0 {
			h.counts[i].Add(n)
			h.events.Add(n)
		}
	}
	if first {
		created.Done()
		errc <- fmt.Errorf("watcher %d: channel closed before it was created", i)
		return
	}
	if !h.closed.Load() {
		h.lost.Add(1)
		fmt.Fprintf(os.Stderr, "watcher %d: channel closed\n", i)
	}
}

// serve answers "wait" lines until in closes or ctx ends.
func (h *holding) serve(ctx context.Context, in io.Reader, out io.Writer) error {
	defer h.closed.Store(true)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			want, timeout, err := parseWait(line)
			if err != nil {
				return err
			}
			deadline := time.Now().Add(timeout)
			for h.events.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			with := 0
			for i := range h.counts {
				if h.counts[i].Load() > 0 {
					with++
				}
			}
			if _, err := fmt.Fprintf(out, "events %d %d %d\n", h.events.Load(), with, h.lost.Load()); err != nil {
				return err
			}
		}
	}
}

// parseWait reads "wait <events> <seconds>".
func parseWait(line string) (int64, time.Duration, error) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "wait" {
		return 0, 0, fmt.Errorf("want \"wait <events> <seconds>\", got %q", line)
	}
	n, err1 := strconv.ParseInt(f[1], 10, 64)
	secs, err2 := strconv.ParseFloat(f[2], 64)
	if err := errors.Join(err1, err2); err != nil || n < 0 || secs < 0 {
		return 0, 0, fmt.Errorf("bad wait line %q", line)
	}
	return n, time.Duration(secs * float64(time.Second)), nil
}

// holderReady is the holder's "ready" line.
type holderReady struct {
	count   int // watchers, or leases
	seconds float64
}

func parseReady(line string) (holderReady, error) {
	var r holderReady
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ready" {
		return r, fmt.Errorf("want \"ready <count> <seconds>\", got %q", line)
	}
	var err1, err2 error
	r.count, err1 = strconv.Atoi(f[1])
	r.seconds, err2 = strconv.ParseFloat(f[2], 64)
	if err := errors.Join(err1, err2); err != nil {
		return r, fmt.Errorf("bad ready line %q: %w", line, err)
	}
	return r, nil
}

// holderEvents is the holder's answer to "wait".
type holderEvents struct {
	events       int64
	withEvents   int
	lostWatchers int64
}

func parseEvents(line string) (holderEvents, error) {
	var e holderEvents
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "events" {
		return e, fmt.Errorf("want \"events <received> <watchers with events> <lost>\", got %q", line)
	}
	var err1, err2, err3 error
	e.events, err1 = strconv.ParseInt(f[1], 10, 64)
	e.withEvents, err2 = strconv.Atoi(f[2])
	e.lostWatchers, err3 = strconv.ParseInt(f[3], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return e, fmt.Errorf("bad events line %q: %w", line, err)
	}
	return e, nil
}
