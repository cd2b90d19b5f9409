package test

// The packages' import direction, as docs/design.md draws it: each layer
// imports only layers below it, so that the pure cores stay free of the
// wiring around them, and the watch actors and the lease actor sit beside
// the shards and the sequencer.

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/metastore/metastore/"

// layers ranks the server's packages by their path in the module, longest
// prefix first wins; a package may import only packages of a lower rank.
var layers = []struct {
	path string
	rank int
}{
	{"storage", 0},
	{"metrics", 0},
	{"snapshot", 1},
	{"actors/msg", 1},
	{"shards", 2},
	{"actors/sequencer", 2},
	{"actors/watch", 2},
	{"actors/lease", 2},
	{"actors/auth", 2},
	{"actors", 3},
	{"rpc", 4},
	{"cmd/metastore", 5},
}

// outside are the module's packages that are not part of the server: they
// may import any layer, and no layer may import them.
var outside = []string{"test", "bench", "cmd/etcd", "cmd/etcdctl", "cmd/etcdutl"}

// rankOf returns the rank of a package path inside the module, and false
// for a package outside the layers (tests, benchmarks, tools).
func rankOf(pkg string) (int, bool) {
	best, rank := -1, 0
	for _, l := range layers {
		if (pkg == l.path || strings.HasPrefix(pkg, l.path+"/")) && len(l.path) > best {
			best, rank = len(l.path), l.rank
		}
	}
	return rank, best >= 0
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		from, ok := rankOf(pkg)
		if !ok {
			if !slices.Contains(outside, pkg) {
				t.Errorf("package %s is in no layer: add it to layers (and to docs/design.md's table) or to outside", pkg)
			}
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			to, ok := rankOf(dep)
			switch {
			case !ok:
				t.Errorf("%s imports %s, which is outside the server's layers", pkg, dep)
			case to >= from:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports go only downwards", pkg, from, dep, to)
			}
		}
	}
	if checked < len(layers) {
		t.Fatalf("checked %d packages; go list found fewer than the layers name", checked)
	}
}
