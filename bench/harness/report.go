package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// results is the JSON document of one harness run.
type results struct {
	Started   time.Time       `json:"started"`
	Finished  time.Time       `json:"finished"`
	Command   string          `json:"command"`
	Machine   machine         `json:"machine"`
	Options   map[string]any  `json:"options"`
	Systems   []string        `json:"systems"`
	Workloads []workloadInfo  `json:"workloads"`
	Cells     []cellResult    `json:"cells"`
	Sweeps    []cellResult    `json:"sweep_cells,omitempty"`
	Secure    []cellResult    `json:"secure_cells,omitempty"`
	Restarts  []restartResult `json:"restarts,omitempty"`
	Notes     []string        `json:"notes,omitempty"`
}

type workloadInfo struct {
	Name    string `json:"name"`
	Desc    string `json:"description"`
	Clients int    `json:"clients"`
	Conns   int    `json:"conns"`
	Total   int    `json:"total"`
}

// machine describes where the numbers came from.
type machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	MemTotal   string `json:"mem_total"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go_version"`
	DataDir    string `json:"data_dir_parent"`
	Filesystem string `json:"data_dir_filesystem"`
	LoadAvg    string `json:"load_average_at_start"`
	Versions   string `json:"server_versions"`
}

func describeMachine(o *options) machine {
	m := machine{
		CPUs:      runtime.NumCPU(),
		CPUModel:  procField("/proc/cpuinfo", "model name"),
		MemTotal:  memTotal(),
		Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		GoVersion: runtime.Version(),
		DataDir:   o.workDir,
		LoadAvg:   strings.TrimSpace(readFile("/proc/loadavg")),
	}
	m.Filesystem = filesystemOf(o.workDir)
	var vs []string
	for _, b := range []string{"metastore", "etcd"} {
		out, err := exec.Command(filepath.Join(o.binDir, b), "--version").Output()
		if err == nil {
			vs = append(vs, strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0])
		}
	}
	vs = append(vs, "benchmark: etcd tools/benchmark v3.6.8 (bench/tools)")
	m.Versions = strings.Join(vs, "; ")
	return m
}

// memTotal is MemTotal of /proc/meminfo in GiB.
func memTotal() string {
	f := strings.Fields(procField("/proc/meminfo", "MemTotal"))
	if len(f) != 2 || f[1] != "kB" {
		return "unknown"
	}
	kb, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", kb/(1<<20))
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}

// filesystemOf finds the mount holding dir in /proc/mounts (the longest
// mount point that prefixes it) and says whether its disk is rotational.
func filesystemOf(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "unknown"
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	var dev, mnt, fstype, opts string
	for _, line := range strings.Split(readFile("/proc/mounts"), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		if (abs == f[1] || strings.HasPrefix(abs, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) >= len(mnt) {
			dev, mnt, fstype, opts = f[0], f[1], f[2], f[3]
		}
	}
	if mnt == "" {
		return "unknown"
	}
	s := fmt.Sprintf("%s on %s (%s, %s)", dev, mnt, fstype, opts)
	if name := filepath.Base(dev); strings.HasPrefix(dev, "/dev/") {
		if rot := strings.TrimSpace(readFile("/sys/class/block/" + name + "/queue/rotational")); rot == "0" {
			s += ", kernel reports non-rotational"
		} else if rot == "1" {
			s += ", kernel reports rotational"
		}
	}
	return s
}

func writeJSON(path string, r *results) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
