package rpc

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors"
	"github.com/metastore/metastore/actors/auth"
)

// Leases of guardNode: one with a key alice may only read, one with a key
// she may write.
const (
	readOnlyLease  = 101
	readWriteLease = 102
)

// guardNode starts an in-memory node where alice has role "r":
// read-write on rw/, read on ro/, write on wo/. With on, auth is enabled.
func guardNode(t *testing.T, on bool) (*actors.Node, *guard) {
	t.Helper()
	node, err := actors.Start(actors.Config{InMemory: true, DefaultShards: 2, Logger: slog.New(slog.DiscardHandler), Auth: actors.AuthConfig{BcryptCost: 4}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	ctx := t.Context()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(h)
	}
	perm := func(typ authpb.Permission_Type, prefix string) proto.Message {
		end := []byte(prefix)
		end[len(end)-1]++
		return &pb.AuthRoleGrantPermissionRequest{Name: "r", Perm: &authpb.Permission{PermType: typ, Key: []byte(prefix), RangeEnd: end}}
	}
	for _, req := range []proto.Message{
		&pb.AuthUserAddRequest{Name: auth.RootUser, HashedPassword: hash("root")},
		&pb.AuthUserGrantRoleRequest{User: auth.RootUser, Role: auth.RootRole},
		&pb.AuthUserAddRequest{Name: "alice", HashedPassword: hash("alice")},
		&pb.AuthRoleAddRequest{Name: "r"},
		perm(authpb.Permission_READWRITE, "rw/"), perm(authpb.Permission_READ, "ro/"), perm(authpb.Permission_WRITE, "wo/"),
		&pb.AuthUserGrantRoleRequest{User: "alice", Role: "r"},
	} {
		if err := node.AuthChange(ctx, auth.Info{}, req); err != nil {
			t.Fatalf("%T %v: %v", req, req, err)
		}
	}
	for id, key := range map[int64]string{readOnlyLease: "ro/leased", readWriteLease: "rw/leased"} {
		if _, err := node.LeaseGrant(ctx, id, 60); err != nil {
			t.Fatal(err)
		}
		if _, err := node.Put(ctx, &pb.PutRequest{Key: []byte(key), Value: []byte("v"), Lease: id}); err != nil {
			t.Fatal(err)
		}
	}
	if on {
		if err := node.AuthChange(ctx, auth.Info{}, &pb.AuthEnableRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	return node, &guard{node: node}
}

func tokenFor(t *testing.T, node *actors.Node, user string) string {
	t.Helper()
	token, err := node.AuthAssign(t.Context(), user, node.AuthState().Revision())
	if err != nil {
		t.Fatalf("AuthAssign(%s): %v", user, err)
	}
	return token
}

func withMD(kv ...string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(kv...))
}

// TestGuardAuthOff: with auth off no token is looked at, even garbage, and
// every check passes.
func TestGuardAuthOff(t *testing.T) {
	_, g := guardNode(t, false)
	for _, ctx := range []context.Context{context.Background(), withMD("token", "garbage"), withMD("authorization", "Bearer garbage")} {
		c, err := g.caller(ctx)
		if err != nil {
			t.Fatalf("caller: %v", err)
		}
		if c.on() || c.who != (auth.Info{}) {
			t.Fatalf("caller %+v with auth off", c.who)
		}
		for name, err := range map[string]error{
			"read": c.read([]byte("x"), nil), "write": c.write([]byte("\x00"), []byte("\x00")), "admin": c.admin(), "known": c.known(),
			"root": g.root(ctx), "someone": g.someone(ctx), "still": c.still(g),
			"txn": g.txn(ctx, c, &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("x")}}, Success: []*pb.RequestOp{putOp("x", 0, true)}}),
		} {
			if err != nil {
				t.Errorf("%s with auth off: %v", name, err)
			}
		}
		if !c.admitted() {
			t.Error("not admitted with auth off")
		}
	}
}

// TestGuardCaller: the token comes from "token", else "authorization";
// "Bearer " is stripped from either; a token that names no one is etcd's
// invalid auth token, and no token is nobody.
func TestGuardCaller(t *testing.T) {
	node, g := guardNode(t, true)
	tok := tokenFor(t, node, "alice")
	rev := node.AuthState().Revision()
	alice := auth.Info{User: "alice", Revision: rev}
	tests := []struct {
		name string
		ctx  context.Context
		who  auth.Info
		err  error
	}{
		{"no metadata", context.Background(), auth.Info{}, nil},
		{"other metadata", withMD("x-other", tok), auth.Info{}, nil},
		{"token", withMD("token", tok), alice, nil},
		{"authorization", withMD("authorization", tok), alice, nil},
		{"authorization with Bearer", withMD("authorization", "Bearer "+tok), alice, nil},
		{"token with Bearer", withMD("token", "Bearer "+tok), alice, nil},
		{"lower-case bearer", withMD("authorization", "bearer "+tok), auth.Info{}, rpctypes.ErrGRPCInvalidAuthToken},
		{"garbage token", withMD("token", "garbage"), auth.Info{}, rpctypes.ErrGRPCInvalidAuthToken},
		{"empty token", withMD("token", ""), auth.Info{}, rpctypes.ErrGRPCInvalidAuthToken},
		{"token wins over authorization", withMD("token", "garbage", "authorization", tok), auth.Info{}, rpctypes.ErrGRPCInvalidAuthToken},
		{"a valid token wins too", withMD("token", tok, "authorization", "garbage"), alice, nil},
		{"first token only", withMD("token", "garbage", "token", tok), auth.Info{}, rpctypes.ErrGRPCInvalidAuthToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := g.caller(tt.ctx)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err == nil && (c.who != tt.who || !c.on()) {
				t.Fatalf("who %+v (auth on %v), want %+v", c.who, c.on(), tt.who)
			}
		})
	}
}

// TestGuardRootAndSomeone covers the checks of calls for root and for any
// user.
func TestGuardRootAndSomeone(t *testing.T) {
	node, g := guardNode(t, true)
	rootCtx := withMD("token", tokenFor(t, node, auth.RootUser))
	aliceCtx := withMD("token", tokenFor(t, node, "alice"))
	tests := []struct {
		name          string
		ctx           context.Context
		root, someone error
	}{
		{"root", rootCtx, nil, nil},
		{"alice", aliceCtx, rpctypes.ErrGRPCPermissionDenied, nil},
		{"nobody", context.Background(), rpctypes.ErrGRPCUserEmpty, rpctypes.ErrGRPCUserEmpty},
		{"bad token", withMD("token", "x"), rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := g.root(tt.ctx); !sameErr(err, tt.root) {
				t.Errorf("root: %v, want %v", err, tt.root)
			}
			if err := g.someone(tt.ctx); !sameErr(err, tt.someone) {
				t.Errorf("someone: %v, want %v", err, tt.someone)
			}
		})
	}
}

func sameErr(got, want error) bool { return (got == nil) == (want == nil) && errors.Is(got, want) }

func rangeOp(key, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(key), RangeEnd: []byte(end)}}}
}

func putOp(key string, lease int64, prevKV bool) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key), Lease: lease, PrevKv: prevKV}}}
}

func deleteOp(key, end string, prevKV bool) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end), PrevKv: prevKV}}}
}

func txnOp(r *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
}

// TestGuardKeyChecks checks alice's Puts, Deletes and Txns as etcd's apply
// does: Txn compares are reads, both branches are checked, nested Txns
// too; prev_kv needs read; a Put's lease needs write on its keys.
func TestGuardKeyChecks(t *testing.T) {
	node, g := guardNode(t, true)
	ctx := withMD("token", tokenFor(t, node, "alice"))
	c, err := g.caller(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rootCtx := withMD("token", tokenFor(t, node, auth.RootUser))
	root, err := g.caller(rootCtx)
	if err != nil {
		t.Fatal(err)
	}
	denied := rpctypes.ErrGRPCPermissionDenied
	txn := func(r *pb.TxnRequest) func(*guard, caller) error {
		return func(g *guard, c caller) error { return g.txn(ctx, c, r) }
	}
	put := func(r *pb.PutRequest) func(*guard, caller) error {
		return func(g *guard, c caller) error { return g.put(ctx, c, r) }
	}
	del := func(r *pb.DeleteRangeRequest) func(*guard, caller) error {
		return func(_ *guard, c caller) error { return c.deleteRange(r) }
	}
	cmp := func(key, end string) *pb.Compare { return &pb.Compare{Key: []byte(key), RangeEnd: []byte(end)} }
	tests := []struct {
		name  string
		check func(*guard, caller) error
		want  error
	}{
		{"put", put(&pb.PutRequest{Key: []byte("wo/a")}), nil},
		{"put read-only key", put(&pb.PutRequest{Key: []byte("ro/a")}), denied},
		{"put with prev_kv needs read", put(&pb.PutRequest{Key: []byte("wo/a"), PrevKv: true}), denied},
		{"put with prev_kv", put(&pb.PutRequest{Key: []byte("rw/a"), PrevKv: true}), nil},
		{"put on a lease of keys she may write", put(&pb.PutRequest{Key: []byte("rw/a"), Lease: readWriteLease}), nil},
		{"put on a lease of a key she may not write", put(&pb.PutRequest{Key: []byte("rw/a"), Lease: readOnlyLease}), denied},
		{"put on a lease that does not exist", put(&pb.PutRequest{Key: []byte("rw/a"), Lease: 999}), nil},
		{"delete", del(&pb.DeleteRangeRequest{Key: []byte("wo/"), RangeEnd: []byte("wo0")}), nil},
		{"delete beyond her range", del(&pb.DeleteRangeRequest{Key: []byte("wo/"), RangeEnd: []byte("wp")}), denied},
		{"delete with prev_kv needs read", del(&pb.DeleteRangeRequest{Key: []byte("wo/a"), PrevKv: true}), denied},
		{"delete with prev_kv", del(&pb.DeleteRangeRequest{Key: []byte("rw/"), RangeEnd: []byte("rw0"), PrevKv: true}), nil},
		{"txn", txn(&pb.TxnRequest{
			Compare: []*pb.Compare{cmp("ro/a", ""), cmp("rw/", "rw0")},
			Success: []*pb.RequestOp{rangeOp("ro/", "ro0"), putOp("wo/a", 0, false), deleteOp("rw/a", "", true)},
			Failure: []*pb.RequestOp{putOp("rw/b", readWriteLease, true), deleteOp("wo/", "wo0", false)},
		}), nil},
		{"txn compare on a key she may not read", txn(&pb.TxnRequest{Compare: []*pb.Compare{cmp("wo/a", "")}}), denied},
		{"txn compare on a range beyond hers", txn(&pb.TxnRequest{Compare: []*pb.Compare{cmp("ro/", "rp")}}), denied},
		{"txn range on a key she may not read", txn(&pb.TxnRequest{Success: []*pb.RequestOp{rangeOp("wo/a", "")}}), denied},
		{"txn failure branch checked too", txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("rw/a", 0, false)}, Failure: []*pb.RequestOp{putOp("ro/a", 0, false)}}), denied},
		{"txn put with prev_kv needs read", txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("wo/a", 0, true)}}), denied},
		{"txn put on a lease of a key she may not write", txn(&pb.TxnRequest{Success: []*pb.RequestOp{putOp("rw/a", readOnlyLease, false)}}), denied},
		{"txn delete with prev_kv needs read", txn(&pb.TxnRequest{Failure: []*pb.RequestOp{deleteOp("wo/a", "", true)}}), denied},
		{"txn delete with prev_kv of a key she may only read", txn(&pb.TxnRequest{Failure: []*pb.RequestOp{deleteOp("ro/a", "", true)}}), denied},
		{"nested txn", txn(&pb.TxnRequest{Success: []*pb.RequestOp{txnOp(&pb.TxnRequest{
			Compare: []*pb.Compare{cmp("rw/a", "")}, Success: []*pb.RequestOp{rangeOp("ro/a", "")}, Failure: []*pb.RequestOp{putOp("wo/a", 0, false)},
		})}}), nil},
		{"nested txn reads a forbidden key", txn(&pb.TxnRequest{Success: []*pb.RequestOp{txnOp(&pb.TxnRequest{
			Failure: []*pb.RequestOp{rangeOp("wo/a", "")},
		})}}), denied},
		{"nested txn compares a forbidden key", txn(&pb.TxnRequest{Failure: []*pb.RequestOp{txnOp(&pb.TxnRequest{
			Compare: []*pb.Compare{cmp("wo/a", "")},
		})}}), denied},
		{"txn nested three deep", txn(&pb.TxnRequest{Success: []*pb.RequestOp{txnOp(&pb.TxnRequest{
			Success: []*pb.RequestOp{txnOp(&pb.TxnRequest{Success: []*pb.RequestOp{deleteOp("wo/a", "", true)}})},
		})}}), denied},
		{"empty op skipped", txn(&pb.TxnRequest{Success: []*pb.RequestOp{{}}}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(g, c); !sameErr(err, tt.want) {
				t.Fatalf("alice: %v, want %v", err, tt.want)
			}
			if err := tt.check(g, root); err != nil {
				t.Fatalf("root: %v", err)
			}
		})
	}
}

// TestGuardStill: a read checked before an auth change is refused after
// it, as etcd's serialized reads are; the same simple token, looked at
// again, names its user at the new revision.
func TestGuardStill(t *testing.T) {
	node, g := guardNode(t, true)
	ctx := withMD("token", tokenFor(t, node, "alice"))
	c, err := g.caller(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.still(g); err != nil {
		t.Fatalf("before a change: %v", err)
	}
	nobody, err := g.caller(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := node.AuthChange(t.Context(), auth.Info{User: "root", Revision: 1}, &pb.AuthRoleAddRequest{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	if err := c.still(g); !sameErr(err, rpctypes.ErrGRPCAuthOldRevision) {
		t.Fatalf("after a change: %v, want %v", err, rpctypes.ErrGRPCAuthOldRevision)
	}
	if err := nobody.still(g); err != nil {
		t.Fatalf("nobody after a change: %v (nobody is refused elsewhere)", err)
	}
	again, err := g.caller(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.who.Revision != node.AuthState().Revision() || again.still(g) != nil || again.read([]byte("ro/a"), nil) != nil {
		t.Fatalf("the token after the change: %+v at revision %d", again.who, node.AuthState().Revision())
	}
}
