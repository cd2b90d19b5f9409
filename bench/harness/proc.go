package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// procSample is what /proc says about a process at one moment.
type procSample struct {
	cpuSeconds float64 // utime+stime of all its threads
	rssBytes   int64   // VmRSS
	hwmBytes   int64   // VmHWM: peak RSS since the process started
}

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. It is
// 100 on every Linux this runs on; getconf confirms it when present. Asked
// once, on first use (not at start-up: the ceiling process never needs it).
var clockTicks = sync.OnceValue(func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
})

func sampleProc(pid int) (procSample, error) {
	var ps procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// The command name (field 2) may hold spaces; fields after it start
	// after the last ')'. utime and stime are fields 14 and 15.
	rest := string(stat)
	i := strings.LastIndexByte(rest, ')')
	if i < 0 {
		return ps, errors.New("malformed /proc stat")
	}
	f := strings.Fields(rest[i+1:])
	if len(f) < 13 {
		return ps, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return ps, err
	}
	ps.cpuSeconds = (utime + stime) / clockTicks()

	st, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	defer st.Close()
	sc := bufio.NewScanner(st)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			ps.rssBytes = kbField(line)
		case strings.HasPrefix(line, "VmHWM:"):
			ps.hwmBytes = kbField(line)
		}
	}
	return ps, sc.Err()
}

// kbField parses "VmRSS:	  12345 kB" into bytes.
func kbField(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	v, _ := strconv.ParseInt(f[1], 10, 64)
	return v * 1024
}

// dirSize is the bytes of regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
