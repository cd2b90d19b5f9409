package rpc

import (
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/coreos/go-semver/semver"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/api/v3/version"

	"github.com/metastore/metastore/snapshot"
)

// healthNode is what the health endpoints ask of the node.
type healthNode interface {
	NoSpace() bool
	Failure() error
	Range(*pb.RangeRequest) (*pb.RangeResponse, error)
}

// health serves etcd's health endpoints for one member: /health (JSON, the
// alarms then a read) and /livez and /readyz (text, a list of named
// checks). A single member always has a leader (itself) and is never a
// learner, so etcd's checks for those always pass here.
type health struct {
	node   healthNode
	logger *slog.Logger
}

// healthCheck is one named check of /livez or /readyz.
type healthCheck struct {
	name string
	run  func() error
}

// livezChecks and readyzChecks are etcd's, in the order etcd registers
// them (etcd reports them in map order, so any order is etcd's).
func (h *health) livezChecks() []healthCheck {
	return []healthCheck{{"serializable_read", h.readCheck(true)}}
}

func (h *health) readyzChecks() []healthCheck {
	return []healthCheck{
		// MetaStore has no CORRUPT alarm: it checks its data as it
		// reads it and stops on damage instead.
		{"data_corruption", func() error { return nil }},
		{"serializable_read", h.readCheck(true)},
		{"linearizable_read", h.readCheck(false)},
		{"non_learner", func() error { return nil }},
	}
}

// register installs /health, /livez and /readyz with a path for each check
// (/readyz/linearizable_read), as etcd does.
func (h *health) register(mux *http.ServeMux) {
	mux.HandleFunc("/health", h.serveHealth)
	for root, checks := range map[string][]healthCheck{"/livez": h.livezChecks(), "/readyz": h.readyzChecks()} {
		mux.HandleFunc(root, func(w http.ResponseWriter, r *http.Request) {
			h.serveChecks(w, r, h.without(checks, querySet(r, "exclude")))
		})
		for _, c := range checks {
			mux.HandleFunc(root+"/"+c.name, func(w http.ResponseWriter, r *http.Request) {
				h.serveChecks(w, r, []healthCheck{c})
			})
		}
	}
}

// healthStatus is etcd's /health answer.
type healthStatus struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// serveHealth answers {"health":"true","reason":""}, or 503 with "false"
// and the first failure: an alarm not in ?exclude=, then a read (etcd's
// KeysOnly Limit 1 range; ?serializable=true asks a serializable one).
func (h *health) serveHealth(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	st := h.status(querySet(r, "exclude"), r.URL.Query().Get("serializable") == "true")
	body, err := json.Marshal(st)
	if err != nil {
		panic(fmt.Sprintf("rpc: marshal health status: %v", err)) // two strings always marshal
	}
	if st.Health != "true" {
		h.logger.Warn("/health false", "reason", st.Reason)
		http.Error(w, string(body), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write(body)
}

func (h *health) status(excluded map[string]bool, serializable bool) healthStatus {
	if h.node.NoSpace() && !excluded[pb.AlarmType_NOSPACE.String()] {
		return healthStatus{Health: "false", Reason: "ALARM NOSPACE"}
	}
	// A failed log leaves the member read-only until a restart: reads
	// still pass, but it cannot serve as a healthy etcd member would
	// (etcd itself exits then).
	if h.node.Failure() != nil {
		return healthStatus{Health: "false", Reason: "STORAGE ERROR:" + rpctypes.ErrorDesc(errLogFailed)}
	}
	if err := h.readCheck(serializable)(); err != nil {
		return healthStatus{Health: "false", Reason: "RANGE ERROR:" + err.Error()}
	}
	return healthStatus{Health: "true"}
}

// readCheck reads as etcd's health checks do, through the same path as a
// client's Range; its error has etcd's text ("etcdserver: ...").
func (h *health) readCheck(serializable bool) func() error {
	return func() error {
		_, err := h.node.Range(&pb.RangeRequest{KeysOnly: true, Limit: 1, Serializable: serializable})
		if err != nil {
			return errors.New(rpctypes.ErrorDesc(toGRPCError(err)))
		}
		return nil
	}
}

// without is checks less those named in excluded. As in etcd, naming a
// check that does not exist is no error (it is logged).
func (h *health) without(checks []healthCheck, excluded map[string]bool) []healthCheck {
	var unknown []string
	for name := range excluded {
		if !slices.ContainsFunc(checks, func(c healthCheck) bool { return c.name == name }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		h.logger.Warn("some health checks cannot be excluded", "missing-health-checks", strings.Join(unknown, ","))
	}
	return slices.DeleteFunc(slices.Clone(checks), func(c healthCheck) bool { return excluded[c.name] })
}

// serveChecks runs checks and answers "ok" (with each check's line first
// if ?verbose is set), or 503 with every check's line.
func (h *health) serveChecks(w http.ResponseWriter, r *http.Request, checks []healthCheck) {
	if !allowGet(w, r) {
		return
	}
	var report strings.Builder
	failed := false
	for _, c := range checks {
		if err := c.run(); err != nil {
			fmt.Fprintf(&report, "[-]%s failed: %v\n", c.name, err)
			failed = true
		} else {
			fmt.Fprintf(&report, "[+]%s ok\n", c.name)
		}
	}
	if failed {
		h.logger.Error("health check failed", "path", r.URL.Path, "reason", report.String())
		http.Error(w, report.String(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Has("verbose") {
		_, _ = fmt.Fprint(w, report.String())
	}
	_, _ = fmt.Fprint(w, "ok\n")
}

// querySet is the non-empty values of the query parameter name.
func querySet(r *http.Request, name string) map[string]bool {
	set := make(map[string]bool)
	for _, v := range r.URL.Query()[name] {
		if v != "" {
			set[v] = true
		}
	}
	return set
}

// allowGet answers anything but a GET with etcd's 405.
func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet {
		return true
	}
	w.Header().Set("Allow", http.MethodGet)
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// versions is the /version answer: the etcd API version MetaStore speaks
// as the server's; its major.minor as the cluster's, as etcd reports its
// cluster version; and the storage version of etcd's data format that
// Maintenance.Status reports too (that of its snapshots).
var versions = func() version.Versions {
	v := semver.New(APIVersion)
	cluster := semver.Version{Major: v.Major, Minor: v.Minor}
	return version.Versions{Server: APIVersion, Cluster: cluster.String(), Storage: snapshot.StorageVersion}
}()

func serveVersion(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	body, err := json.Marshal(versions)
	if err != nil {
		panic(fmt.Sprintf("rpc: marshal versions: %v", err)) // three strings always marshal
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// serveVars is expvar's JSON (the command line, Go's memory statistics),
// which etcd serves at /debug/vars.
func serveVars(w http.ResponseWriter, r *http.Request) {
	if allowGet(w, r) {
		expvar.Handler().ServeHTTP(w, r)
	}
}
