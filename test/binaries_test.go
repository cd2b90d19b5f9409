package test

// Binaries built from this checkout for the tests that run a real process:
// the metastore server (durability and crash tests) and etcdctl (the
// etcdctl tests). Building cmd/etcdctl rather than using one from PATH or
// bin/ keeps `go test ./test/` working on a fresh clone and pins the exact
// etcdctl version in go.mod.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// The main packages the tests build.
const (
	metastoreCmd = "github.com/metastore/metastore/cmd/metastore"
	etcdctlCmd   = "github.com/metastore/metastore/cmd/etcdctl"
	etcdutlCmd   = "github.com/metastore/metastore/cmd/etcdutl"
)

// builtBinary is the one build of a package that all tests of a package run
// share.
type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// builtBinaries maps a package's import path to its *builtBinary.
var builtBinaries sync.Map

// buildBinary returns the path of the binary of the main package pkg (an
// import path), built from this checkout once per package run.
//
// The binary goes to a fixed per-user directory under os.TempDir and is
// rebuilt every run (compilation is served from the go build cache, so this
// costs a link, about a second or two). A fixed place rather than a fresh
// MkdirTemp, because without a TestMain there is nowhere to delete a fresh
// directory, a binary leaked per run would pile up, and a test's t.TempDir
// would vanish while later tests still need the binary. The build writes a
// unique temporary name and renames it into place, so concurrent `go test`
// runs never execute a partial file.
func buildBinary(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builtBinaries.LoadOrStore(pkg, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() {
		b.path, b.err = goBuild(pkg)
	})
	if b.err != nil {
		t.Fatalf("build %s: %v", pkg, b.err)
	}
	return b.path
}

func goBuild(pkg string) (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("metastore-test-bin-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := path.Base(pkg)
	tmp, err := os.CreateTemp(dir, name+"-*.tmp")
	if err != nil {
		return "", err
	}
	tmpName := tmp.Name()
	_ = tmp.Close()
	defer os.Remove(tmpName) // a no-op once renamed

	// The go command of the toolchain running this test, so the binary is
	// built with the same Go version and module settings; PATH may hold
	// another go, or none.
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			return "", fmt.Errorf("no go command: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmpName, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %v\n%s", cmd.Args, err, out)
	}
	p := filepath.Join(dir, name)
	if err := os.Rename(tmpName, p); err != nil {
		return "", err
	}
	return p, nil
}
