package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dustin/go-humanize"
	etcdsnapshot "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/metastore/metastore/rpc"
	"github.com/metastore/metastore/snapshot"
)

const snapshotUsage = `Usage:
  metastore snapshot restore FILE --data-dir DIR [--shards N] [--skip-hash-check]
      Restores an etcd snapshot file (from "etcdctl snapshot save", against
      etcd or MetaStore) into a new MetaStore data dir.
  metastore snapshot status FILE [--write-out simple|json]
      Prints a snapshot file's hash, revision, total keys, total size and
      storage version, as "etcdutl snapshot status" does.
`

// snapshotMain runs `metastore snapshot ...` and returns the exit code.
func snapshotMain(args []string) int {
	return runSnapshot(args, os.Stdout, os.Stderr)
}

func runSnapshot(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, snapshotUsage)
		return 2
	}
	switch args[0] {
	case "restore":
		return snapshotRestore(args[1:], stdout, stderr)
	case "status":
		return snapshotStatus(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, snapshotUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "metastore snapshot: unknown command %q\n%s", args[0], snapshotUsage)
		return 2
	}
}

// newFlagSet makes the flag set of a snapshot command: -h prints the
// usage, and so does a bad flag, after saying what is wrong with it.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, snapshotUsage)
		fs.PrintDefaults()
	}
	return fs
}

// usageError reports err, with the usage, and returns the exit code for a
// bad command line: 0 for -h, which printed the usage already.
func usageError(name string, err error, stderr io.Writer) int {
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errBadFlag):
	default:
		fmt.Fprintf(stderr, "%s: %v\n%s", name, err, snapshotUsage)
	}
	return 2
}

// errBadFlag is a flag the flag package refused, and has reported.
var errBadFlag = errors.New("bad flag")

// parseWithFile parses flags given before or after the one file argument,
// as etcdutl accepts them.
func parseWithFile(fs *flag.FlagSet, args []string) (string, error) {
	var files []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return "", err
		} else if err != nil {
			return "", errBadFlag
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		return "", fmt.Errorf("expected one snapshot file, got %d", len(files))
	}
	return files[0], nil
}

func snapshotRestore(args []string, stdout, stderr io.Writer) int {
	const name = "metastore snapshot restore"
	fs := newFlagSet(name, stderr)
	dataDir := fs.String("data-dir", "", "the new data dir to restore into (must not exist, or be empty)")
	shards := fs.Int("shards", 0, fmt.Sprintf("shard count the new data dir records (default: one per core, at least two; %d here)", rpc.DefaultShards()))
	skip := fs.Bool("skip-hash-check", false, "accept a file without the sha256 that snapshots end with (a db file copied from an etcd data dir)")
	file, err := parseWithFile(fs, args)
	if err == nil && *dataDir == "" {
		err = errors.New("--data-dir is required")
	}
	if err == nil && *shards < 0 {
		err = fmt.Errorf("--shards must not be negative (0: the default), got %d", *shards)
	}
	if err != nil {
		return usageError(name, err, stderr)
	}
	if *shards == 0 {
		*shards = rpc.DefaultShards()
	}
	res, err := snapshot.Restore(file, *dataDir, snapshot.RestoreOptions{Shards: *shards, SkipHashCheck: *skip})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	checked := "sha256 checked"
	if !res.Verified {
		checked = "sha256 not checked (--skip-hash-check)"
	}
	fmt.Fprintf(stdout, "restored %s into %s (%s)\n", file, *dataDir, checked)
	fmt.Fprintf(stdout, "revision %d, compact revision %d, %d keys (%d records), %d leases, %d users, %d roles, %d shards\n",
		res.Revision, res.CompactRevision, res.Keys, res.Records, res.Leases, res.Users, res.Roles, *shards)
	fmt.Fprintf(stdout, "new cluster %x, member %x: start it with metastore --data-dir %s\n", res.ClusterID, res.MemberID, *dataDir)
	return 0
}

func snapshotStatus(args []string, stdout, stderr io.Writer) int {
	const name = "metastore snapshot status"
	fs := newFlagSet(name, stderr)
	format := fs.String("write-out", "simple", "output format: simple or json")
	file, err := parseWithFile(fs, args)
	if err == nil && *format != "simple" && *format != "json" {
		err = fmt.Errorf("--write-out must be simple or json, got %q", *format)
	}
	if err != nil {
		return usageError(name, err, stderr)
	}
	// etcdutl's own reader: the same checks, the same numbers.
	st, err := etcdsnapshot.NewV3(zap.NewNop()).Status(file)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if *format == "json" {
		b, err := json.Marshal(st)
		if err != nil {
			fmt.Fprintf(stderr, "metastore snapshot status: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, string(b))
		return 0
	}
	fmt.Fprintf(stdout, "%x, %d, %d, %s, %s\n", st.Hash, st.Revision, st.TotalKey, humanize.Bytes(uint64(st.TotalSize)), st.Version)
	return 0
}
