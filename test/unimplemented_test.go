package test

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
)

// TestUnimplementedServices checks that MetaStore, which serves the KV,
// Watch, Lease, Lock, Election, Maintenance and Cluster APIs, answers the
// Auth service with codes.Unimplemented rather than hanging or failing
// otherwise. etcd implements it, so this runs against MetaStore alone.
func TestUnimplementedServices(t *testing.T) {
	onlyBackend(t, "metastore", func(t *testing.T, tg *Target) {
		unary := []struct {
			name string
			call func() error
		}{
			{"Auth.AuthStatus", func() error {
				_, err := pb.NewAuthClient(tg.Conn).AuthStatus(reqCtx(t), &pb.AuthStatusRequest{})
				return err
			}},
			{"Auth.Authenticate", func() error {
				_, err := pb.NewAuthClient(tg.Conn).Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: "root", Password: "x"})
				return err
			}},
		}
		for _, tc := range unary {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), codes.Unimplemented) })
		}

		// The KV service still works on the same connection afterwards.
		p := keyPrefix(t)
		tg.put(t, p+"k", "v")
		if resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "k")}); len(resp.Kvs) != 1 {
			t.Fatalf("KV after unimplemented calls: %s", kvSummary(resp.Kvs))
		}
	})
}
