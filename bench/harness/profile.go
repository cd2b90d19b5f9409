package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// cpuChunk is the length of one CPU profile request. net/http/pprof takes
// whole seconds and cannot be told to stop early (a cancelled request loses
// its profile), while a workload's length is not known in advance; so the
// profiler asks for back-to-back one-second profiles until the workload
// ends and merges them. Gaps between chunks are a round trip on loopback.
const cpuChunk = 1

// profilerFrames matches the stacks of profiling itself: the pprof
// handlers serving the harness (gRPC does not use net/http) and
// runtime/pprof's profile writer. Taking a CPU profile every second
// allocates megabytes (profile buffers, gzip) that would otherwise top the
// allocation profile of a short run.
const profilerFrames = `^(net/http|runtime/pprof)[./]`

// topNodes is how many functions the `go tool pprof -top` summaries list.
const topNodes = 15

// profiler records one MetaStore run's CPU and allocation profiles through
// the server's --pprof-addr and saves them as <dir>/<name>.cpu.pprof and
// <name>.allocs.pprof, each with a -top summary beside it (.top.txt).
type profiler struct {
	addr, dir, name string
	tmp             string // chunks and the allocation baseline
	stop            chan struct{}
	done            chan error
	chunks          []string // written by the CPU loop until done
}

// newProfiler takes the allocation baseline, so the saved allocation
// profile holds only what the workload allocated, not start-up and prefill.
func newProfiler(ctx context.Context, addr, dir, name, tmp string) (*profiler, error) {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	p := &profiler{addr: addr, dir: dir, name: name, tmp: tmp, stop: make(chan struct{}), done: make(chan error, 1)}
	if err := p.fetchAllocs(ctx, p.basePath()); err != nil {
		return nil, fmt.Errorf("allocation baseline: %w", err)
	}
	return p, nil
}

func (p *profiler) basePath() string { return filepath.Join(p.tmp, "allocs-base.pprof") }

// startCPU profiles in one-second chunks until finish is called.
func (p *profiler) startCPU(ctx context.Context) {
	go func() {
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				p.done <- nil
				return
			default:
			}
			path := filepath.Join(p.tmp, fmt.Sprintf("cpu-%04d.pprof", i))
			if err := p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", cpuChunk), path); err != nil {
				p.done <- fmt.Errorf("cpu profile: %w", err)
				return
			}
			p.chunks = append(p.chunks, path)
		}
	}()
}

// finish ends CPU profiling (waiting for the chunk in flight, at most
// cpuChunk seconds, which covers the workload's tail), saves both profiles
// and their summaries, and returns the files written. Both leave out the
// profiler's own work in the server (profilerFrames).
func (p *profiler) finish(ctx context.Context) ([]string, error) {
	close(p.stop)
	cpuErr := <-p.done
	var files []string
	var errs []error
	cpuPath := filepath.Join(p.dir, p.name+".cpu.pprof")
	if len(p.chunks) == 0 {
		errs = append(errs, errors.Join(cpuErr, errors.New("no CPU profile was taken")))
	} else {
		// A failed chunk (the server gone at the end, say) still leaves the
		// ones before it worth saving.
		errs = append(errs, cpuErr)
		if err := pprofTool(append([]string{"-proto", "-ignore=" + profilerFrames, "-output=" + cpuPath}, p.chunks...)...); err != nil {
			errs = append(errs, fmt.Errorf("merge CPU profiles: %w", err))
		} else {
			files = append(files, cpuPath)
			errs = append(errs, summarize(cpuPath))
		}
	}

	allocsPath := filepath.Join(p.dir, p.name+".allocs.pprof")
	final := filepath.Join(p.tmp, "allocs-final.pprof")
	if err := p.fetchAllocs(ctx, final); err != nil {
		errs = append(errs, fmt.Errorf("allocation profile: %w", err))
	} else if err := pprofTool("-proto", "-ignore="+profilerFrames, "-base="+p.basePath(), "-output="+allocsPath, final); err != nil {
		errs = append(errs, fmt.Errorf("allocation delta: %w", err))
	} else {
		files = append(files, allocsPath)
		errs = append(errs, summarize(allocsPath, "-sample_index=alloc_space"))
	}
	return files, errors.Join(errs...)
}

// fetchAllocs saves the allocation profile after a forced GC: the runtime
// publishes allocation samples at the end of a GC cycle, so without one
// the profile would miss whatever was allocated since the last.
func (p *profiler) fetchAllocs(ctx context.Context, path string) error {
	if err := p.fetch(ctx, "/debug/pprof/heap?gc=1", os.DevNull); err != nil {
		return err
	}
	return p.fetch(ctx, "/debug/pprof/allocs", path)
}

// fetch GETs one pprof endpoint into a file.
func (p *profiler) fetch(ctx context.Context, pathQuery, file string) error {
	ctx, cancel := context.WithTimeout(ctx, cpuChunk*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+pathQuery, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("GET %s: %s: %s", pathQuery, resp.Status, strings.TrimSpace(string(msg)))
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// summarize writes `go tool pprof -top` of a profile to <profile minus
// .pprof>.top.txt.
func summarize(profile string, flags ...string) error {
	args := append([]string{"-top", fmt.Sprintf("-nodecount=%d", topNodes)}, flags...)
	out, err := pprofOutput(append(args, profile)...)
	if err != nil {
		return fmt.Errorf("summarize %s: %w", filepath.Base(profile), err)
	}
	return os.WriteFile(strings.TrimSuffix(profile, ".pprof")+".top.txt", out, 0o644)
}

func pprofTool(args ...string) error {
	_, err := pprofOutput(args...)
	return err
}

// pprofOutput runs `go tool pprof` and returns its standard output; its
// standard error ("Main binary filename not available", and real errors)
// goes into the error.
func pprofOutput(args ...string) ([]byte, error) {
	cmd := exec.Command("go", append([]string{"tool", "pprof"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go tool pprof %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 3))
	}
	return stdout.Bytes(), nil
}
