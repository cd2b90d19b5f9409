package test

// What the metastore binary says when it cannot or must not start: each
// case names its cause, never "corrupt", and the process exits instead of
// serving. etcd's own messages differ (these are MetaStore's start-up), so
// there is no etcd side.

import (
	"os/exec"
	"strings"
	"testing"
)

func TestStartupRefusals(t *testing.T) {
	t.Run("stray arguments", func(t *testing.T) {
		out, err := exec.Command(buildBinary(t, metastoreCmd), "--data-dir", t.TempDir(), "restore", "backup.db").CombinedOutput()
		if code := exitCode(err); code != 2 {
			t.Fatalf("exit code %d (%v), want 2; output:\n%s", code, err, out)
		}
		for _, want := range []string{`unexpected argument "restore"`, "snapshot subcommand", "-data-dir"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output does not say %q:\n%s", want, out)
			}
		}
	})
	t.Run("data dir locked by another process", func(t *testing.T) {
		dir := t.TempDir()
		durStart(t, durConfig(dir, 2))
		_, err := durTryStartProc(t, "--data-dir", dir)
		if err == nil || !strings.Contains(err.Error(), "locked by another process") || strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("second server on a data dir in use: %v", err)
		}
	})
}

// exitCode is the exit code of a finished command, 0 if it succeeded and
// -1 if it did not run.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
