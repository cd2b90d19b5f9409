package rpc

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/actors/msg"
)

// fakeHealthNode is a node whose alarm and reads a test sets.
type fakeHealthNode struct {
	noSpace bool
	failure error
	readErr error
}

func (n fakeHealthNode) NoSpace() bool { return n.noSpace }

func (n fakeHealthNode) Failure() error { return n.failure }

func (n fakeHealthNode) Range(*pb.RangeRequest) (*pb.RangeResponse, error) {
	return &pb.RangeResponse{}, n.readErr
}

// TestHealthFailures covers the failures the integration tests cannot
// cause on demand: a read that fails and a failed log, beside the alarm.
func TestHealthFailures(t *testing.T) {
	for _, c := range []struct {
		name       string
		node       fakeHealthNode
		path       string
		wantStatus int
		wantBody   string
	}{
		{"healthy", fakeHealthNode{}, "/health", http.StatusOK, `{"health":"true","reason":""}`},
		{"alarm", fakeHealthNode{noSpace: true}, "/health", http.StatusServiceUnavailable, `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"},
		{"alarm excluded", fakeHealthNode{noSpace: true}, "/health?exclude=NOSPACE", http.StatusOK, `{"health":"true","reason":""}`},
		{"alarm before read", fakeHealthNode{noSpace: true, readErr: errors.New("disk gone")}, "/health", http.StatusServiceUnavailable, `{"health":"false","reason":"ALARM NOSPACE"}` + "\n"},
		{"log failed", fakeHealthNode{failure: errors.New("EIO")}, "/health", http.StatusServiceUnavailable, `{"health":"false","reason":"STORAGE ERROR:etcdserver: storage failed; writes are refused until the server restarts (see its log)"}` + "\n"},
		{"read fails", fakeHealthNode{readErr: errors.New("disk gone")}, "/health", http.StatusServiceUnavailable, `{"health":"false","reason":"RANGE ERROR:disk gone"}` + "\n"},
		{"read fails with etcd's error", fakeHealthNode{readErr: msg.ErrTooManyRequests}, "/health?serializable=true", http.StatusServiceUnavailable, `{"health":"false","reason":"RANGE ERROR:etcdserver: too many requests"}` + "\n"},
		{"livez read fails", fakeHealthNode{readErr: errors.New("disk gone")}, "/livez", http.StatusServiceUnavailable, "[-]serializable_read failed: disk gone\n\n"},
		{"readyz read fails", fakeHealthNode{readErr: errors.New("disk gone")}, "/readyz?verbose", http.StatusServiceUnavailable,
			"[+]data_corruption ok\n[-]serializable_read failed: disk gone\n[-]linearizable_read failed: disk gone\n[+]non_learner ok\n\n"},
		{"readyz read excluded", fakeHealthNode{readErr: errors.New("disk gone")}, "/readyz?exclude=serializable_read&exclude=linearizable_read&verbose", http.StatusOK,
			"[+]data_corruption ok\n[+]non_learner ok\nok\n"},
		{"readyz alarm", fakeHealthNode{noSpace: true}, "/readyz", http.StatusOK, "ok\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mux := http.NewServeMux()
			(&health{node: c.node, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).register(mux)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
			if rec.Code != c.wantStatus || rec.Body.String() != c.wantBody {
				t.Errorf("GET %s: %d %q, want %d %q", c.path, rec.Code, rec.Body, c.wantStatus, c.wantBody)
			}
		})
	}
}
