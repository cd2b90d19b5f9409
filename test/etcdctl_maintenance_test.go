package test

// The operator's commands, run with the real etcdctl (and etcdutl) against
// MetaStore on a data dir and against etcd: endpoint status, health and
// hashkv, member list, alarm list and disarm, defrag and snapshot save.
// Member IDs, ports and sizes differ between servers: the transcript
// records them normalized.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// ctlStatusJSON is `etcdctl endpoint status -w json`: the StatusResponse
// under etcdctl's "Status".
type ctlStatusJSON []struct {
	Endpoint string `json:"Endpoint"`
	Status   struct {
		Header           *ctlHeader `json:"header"`
		Version          string     `json:"version"`
		DbSize           int64      `json:"dbSize"`
		Leader           uint64     `json:"leader"`
		RaftIndex        uint64     `json:"raftIndex"`
		RaftTerm         uint64     `json:"raftTerm"`
		RaftAppliedIndex uint64     `json:"raftAppliedIndex"`
		Errors           []string   `json:"errors"`
		DbSizeInUse      int64      `json:"dbSizeInUse"`
		IsLearner        bool       `json:"isLearner"`
		StorageVersion   string     `json:"storageVersion"`
		DbSizeQuota      int64      `json:"dbSizeQuota"`
	} `json:"Status"`
}

// ctlStatus runs `endpoint status -w json`, checks it as one single
// member's, and returns it (unrecorded: its numbers differ by server).
func (c *ctl) ctlStatus() ctlStatusJSON {
	c.t.Helper()
	var st ctlStatusJSON
	c.jsonOut(&st, "endpoint", "status")
	if len(st) != 1 || st[0].Endpoint != c.endpoint || st[0].Status.Header == nil {
		c.t.Fatalf("endpoint status: %+v; want this endpoint's", st)
	}
	return st
}

// ctlSelf replaces the member's ID in s, in decimal and in hex, so that
// transcripts of different servers compare.
func (c *ctl) ctlSelf(s string, id uint64) string {
	s = strings.ReplaceAll(s, strconv.FormatUint(id, 10), "<self>")
	s = strings.ReplaceAll(s, strconv.FormatUint(id, 16), "<self>")
	return strings.ReplaceAll(s, c.endpoint, "<endpoint>")
}

// TestEtcdctlMaintenance runs the operator's commands in turn.
func TestEtcdctlMaintenance(t *testing.T) {
	ctlEachBackendWith(t, []serverOption{withDataDir()}, func(c *ctl) {
		// etcd records its storage version (which snapshots carry) a
		// second or two after it starts.
		var st ctlStatusJSON
		mtWaitFor(c.t, "storage version 3.7.0", func() bool { st = c.ctlStatus(); return st[0].Status.StorageVersion == "3.7.0" })
		s := st[0].Status
		self := s.Header.MemberID
		c.record("endpoint status -w json", map[string]any{
			"version 3.7":          strings.HasPrefix(s.Version, "3.7."),
			"storage version":      s.StorageVersion,
			"leader is itself":     s.Leader == self,
			"learner":              s.IsLearner,
			"raft applied = index": s.RaftAppliedIndex == s.RaftIndex && s.RaftIndex > 0 && s.RaftTerm > 0,
			"sizes":                s.DbSize > 0 && s.DbSizeInUse > 0 && s.DbSizeInUse <= s.DbSize,
			"quota":                s.DbSizeQuota,
			"errors":               s.Errors,
		})
		// The table and simple forms print the same row.
		row := c.exec("", "endpoint", "status")
		if fields := strings.Split(strings.TrimSuffix(row.stdout, "\n"), ", "); row.code != 0 || len(fields) != 16 || fields[1] != strconv.FormatUint(self, 16) || fields[8] != "true" {
			c.t.Errorf("endpoint status: %q (exit %d); want one row of 16 fields for leader %x", row.stdout, row.code, self)
		}

		p := "/ctl-maint/"
		for i := range 5 {
			c.putJSON(fmt.Sprintf("%sk%d", p, i), strings.Repeat("v", 100*i))
		}
		c.putJSON(p+"k1", "again")
		c.delJSON(p + "k2")

		healthy := regexp.MustCompile(`^` + regexp.QuoteMeta(c.endpoint) + ` is healthy: successfully committed proposal: took = \S+\n$`)
		if out := c.exec("", "endpoint", "health"); out.code != 0 || !healthy.MatchString(out.stdout) {
			c.t.Errorf("endpoint health: %q (exit %d, stderr %q)", out.stdout, out.code, out.stderr)
		}
		var health []struct {
			Endpoint string `json:"endpoint"`
			Health   bool   `json:"health"`
			Error    string `json:"error"`
		}
		c.jsonOut(&health, "endpoint", "health")
		c.record("endpoint health -w json", c.ctlSelf(fmt.Sprintf("%+v", health), self))

		var hashes []struct {
			Endpoint string `json:"Endpoint"`
			HashKV   struct {
				Header          *ctlHeader `json:"header"`
				Hash            uint32     `json:"hash"`
				CompactRevision int64      `json:"compact_revision"`
				HashRevision    int64      `json:"hash_revision"`
			} `json:"HashKV"`
		}
		c.jsonOut(&hashes, "endpoint", "hashkv")
		if len(hashes) != 1 {
			c.t.Fatalf("endpoint hashkv: %+v", hashes)
		}
		h := hashes[0].HashKV
		// The same history hashes the same on both servers.
		c.record("endpoint hashkv -w json", map[string]int64{"hash": int64(h.Hash), "compact": h.CompactRevision, "rev": h.HashRevision - c.base, "header rev": c.hdrRev(h.Header)})

		var members struct {
			Header  *ctlHeader `json:"header"`
			Members []struct {
				ID         uint64   `json:"ID"`
				Name       string   `json:"name"`
				PeerURLs   []string `json:"peerURLs"`
				ClientURLs []string `json:"clientURLs"`
			} `json:"members"`
		}
		c.jsonOut(&members, "member", "list")
		if len(members.Members) != 1 || members.Members[0].ID != self || len(members.Members[0].PeerURLs) != 1 {
			c.t.Fatalf("member list -w json: %+v; want this member with one peer URL", members)
		}
		m := members.Members[0]
		c.record("member list -w json", c.ctlSelf(fmt.Sprintf("%s %q", m.Name, m.ClientURLs), self))
		want := fmt.Sprintf("%x, started, default, %s, http://%s, false\n", self, m.PeerURLs[0], c.endpoint)
		if got := c.exec("", "member", "list"); got.code != 0 || got.stdout != want {
			c.t.Errorf("member list: %q (exit %d), want %q", got.stdout, got.code, want)
		}

		c.want("", "alarm", "list")
		c.ctlRaiseNoSpace(self)
		alarm := c.ctlNormalized(self, "alarm", "list")
		if !strings.HasPrefix(alarm, "memberID:<self> ") || !strings.HasSuffix(alarm, "alarm:NOSPACE\n") {
			c.t.Errorf("alarm list: %q; want this member's NOSPACE", alarm)
		}
		out := c.exec("", "endpoint", "health", "-w", "json")
		c.decode(out.stdout, &health, []string{"endpoint", "health", "-w", "json"})
		c.record("endpoint health under the alarm", c.ctlSelf(fmt.Sprintf("exit %d: %+v", out.code, health), self))
		if out.code == 0 || len(health) != 1 || health[0].Error != "Active Alarm(s): NOSPACE " {
			c.t.Errorf("endpoint health under NOSPACE: exit %d, %q", out.code, out.stdout)
		}
		if st := c.ctlStatus(); len(st[0].Status.Errors) != 1 || !strings.Contains(st[0].Status.Errors[0], "NOSPACE") {
			c.t.Errorf("endpoint status errors under the alarm: %q", st[0].Status.Errors)
		}
		c.fails(1, "Error: etcdserver: mvcc: database space exceeded", "put", p+"refused", "x")
		if got := c.ctlNormalized(self, "alarm", "disarm"); got != alarm {
			c.t.Errorf("alarm disarm: %q, want the alarm it cleared, %q", got, alarm)
		}
		c.want("", "alarm", "list")
		c.putJSON(p+"after", "x")

		finished := regexp.MustCompile(`^Finished defragmenting etcd member\[` + regexp.QuoteMeta(c.endpoint) + `\]\. took \S+\n$`)
		if out := c.exec("", "defrag"); out.code != 0 || !finished.MatchString(out.stdout) {
			c.t.Errorf("defrag: %q (exit %d, stderr %q)", out.stdout, out.code, out.stderr)
		}
		c.getJSON(p, "--prefix")

		file := filepath.Join(c.t.TempDir(), "backup.db")
		saved := c.exec("", "snapshot", "save", file)
		c.record("snapshot save", fmt.Sprintf("exit %d: %s", saved.code, strings.ReplaceAll(saved.stdout, file, "<file>")))
		if saved.stdout != fmt.Sprintf("Snapshot saved at %s\nServer version 3.7.0\n", file) {
			c.t.Errorf("snapshot save: %q (exit %d, stderr %q)", saved.stdout, saved.code, saved.stderr)
		}
		if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
			c.t.Fatalf("snapshot file: %v", err)
		}
		status := snapStatus(c.t, file)
		c.record("etcdutl snapshot status", map[string]any{"rev": status.Revision - c.base, "version": status.Version, "keys": status.TotalKey > 0})
		if status.Revision != c.currentRev() {
			c.t.Errorf("snapshot at revision %d, want %d", status.Revision, c.currentRev())
		}
	})
}

// ctlNormalized runs etcdctl, requires success, records stdout with the
// member's ID and the endpoint replaced, and returns it.
func (c *ctl) ctlNormalized(self uint64, args ...string) string {
	c.t.Helper()
	out := c.exec("", args...)
	if out.code != 0 {
		c.t.Fatalf("etcdctl %q: exit %d, stderr:\n%s", args, out.code, out.stderr)
	}
	s := c.ctlSelf(out.stdout, self)
	c.record(strings.Join(args, " "), s)
	return s
}

// ctlRaiseNoSpace raises this member's NOSPACE alarm, which etcdctl cannot.
func (c *ctl) ctlRaiseNoSpace(self uint64) {
	c.t.Helper()
	conn, err := grpc.NewClient(c.endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	_, err = pb.NewMaintenanceClient(conn).Alarm(reqCtx(c.t), &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, Alarm: pb.AlarmType_NOSPACE, MemberID: self})
	if err != nil {
		c.t.Fatal(err)
	}
}

// TestEtcdctlEndpointStatusTable: endpoint status in its simple and table
// forms, which divide by the size, on an in-memory MetaStore too.
func TestEtcdctlEndpointStatusTable(t *testing.T) {
	ctlEachBackend(t, func(c *ctl) {
		for _, format := range []string{"simple", "table"} {
			out := c.exec("", "endpoint", "status", "-w", format)
			c.record("endpoint status -w "+format, fmt.Sprintf("exit %d, %d lines", out.code, strings.Count(out.stdout, "\n")))
			if out.code != 0 || !strings.Contains(out.stdout, c.endpoint) {
				c.t.Errorf("endpoint status -w %s: exit %d, %q (stderr %q)", format, out.code, out.stdout, out.stderr)
			}
		}
	})
}
