package test

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
)

// TestUnimplementedServices checks that MetaStore, which serves the KV,
// Watch, Lease, Lock and Election APIs, answers the other etcd services with codes.Unimplemented,
// both for unary calls and for streams, rather than hanging or failing
// otherwise.
// One representative call per service; etcd implements them all, so this
// runs against MetaStore alone.
func TestUnimplementedServices(t *testing.T) {
	onlyBackend(t, "metastore", func(t *testing.T, tg *Target) {
		unary := []struct {
			name string
			call func() error
		}{
			{"Cluster.MemberList", func() error {
				_, err := pb.NewClusterClient(tg.Conn).MemberList(reqCtx(t), &pb.MemberListRequest{})
				return err
			}},
			{"Maintenance.Defragment", func() error {
				_, err := pb.NewMaintenanceClient(tg.Conn).Defragment(reqCtx(t), &pb.DefragmentRequest{})
				return err
			}},
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

		// A stream's status arrives on the first Recv.
		t.Run("Maintenance.Snapshot", func(t *testing.T) {
			stream, err := pb.NewMaintenanceClient(tg.Conn).Snapshot(reqCtx(t), &pb.SnapshotRequest{})
			if err != nil {
				wantCode(t, err, codes.Unimplemented)
				return
			}
			_, err = stream.Recv()
			wantCode(t, err, codes.Unimplemented)
		})

		// The KV service still works on the same connection afterwards.
		p := keyPrefix(t)
		tg.put(t, p+"k", "v")
		if resp := tg.rangeKV(t, &pb.RangeRequest{Key: []byte(p + "k")}); len(resp.Kvs) != 1 {
			t.Fatalf("KV after unimplemented calls: %s", kvSummary(resp.Kvs))
		}
	})
}
