package test

// Attacks on auth, against MetaStore and a real etcd: stale, stolen,
// expired, forged and missing tokens, tokens of users that lost their
// rights, password guessing, and requests built to learn or change what
// the user may not. Each attack asserts etcd's refusal, exactly, and then
// that it changed nothing and leaked nothing: the keyspace (revision,
// keys, values) as root sees it is the same, and the refused response
// carries no data. Raw gRPC calls send the stolen or stale token as they
// got it; clientv3 would quietly fetch a fresh one (auth_helpers_test.go).
// Attacks through leases (revoking, keeping alive or attaching a key to a
// lease holding keys the user may not write) are in TestAuthPermissionsLease.
//
// etcd has two kinds of token. A simple token is a random string the
// server remembers for its user: deleting the user or changing its
// password forgets it, auth off forgets them all, and one unused for
// --auth-token-ttl expires; it is checked against the user's permissions
// as they are now. A JWT is signed and remembered nowhere: it carries the
// auth revision it was issued at, and any later change to users, roles or
// permissions makes it stale ("revision of auth store is old"), which
// clientv3 answers by logging in again.

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"
)

// authNothingChanged runs attack, which must fail with want and return no
// response, and checks that the keyspace is as it was.
func authNothingChanged(t *testing.T, tg *Target, rootToken string, want error, attack func() (any, error)) {
	t.Helper()
	before := authKVState(t, tg, rootToken)
	resp, err := attack()
	wantRPCErr(t, err, want)
	if !isNilResponse(resp) {
		t.Fatalf("a refused request answered %v", resp)
	}
	if after := authKVState(t, tg, rootToken); after != before {
		t.Fatalf("a refused request changed the keyspace:\n%s\nwas\n%s", after, before)
	}
}

// isNilResponse reports whether a gRPC call's response is absent (a typed
// nil pointer counts).
func isNilResponse(resp any) bool {
	switch r := resp.(type) {
	case nil:
		return true
	case *pb.RangeResponse:
		return r == nil
	case *pb.PutResponse:
		return r == nil
	case *pb.DeleteRangeResponse:
		return r == nil
	case *pb.TxnResponse:
		return r == nil
	}
	return false
}

// authRangeAs is a raw Range of one key sent with token.
func authRangeAs(t *testing.T, tg *Target, token, key string) func() (any, error) {
	return func() (any, error) {
		return tg.KV.Range(tokenCtx(t, token), &pb.RangeRequest{Key: []byte(key)})
	}
}

// authPutAs is a raw Put sent with token.
func authPutAs(t *testing.T, tg *Target, token, key string) func() (any, error) {
	return func() (any, error) {
		return tg.KV.Put(tokenCtx(t, token), &pb.PutRequest{Key: []byte(key), Value: []byte("attack")})
	}
}

// authUserOn adds user with password and roles as root.
func authUserOn(t *testing.T, tg *Target, rootToken, user, password string, roles ...string) {
	t.Helper()
	a := authOf(tg)
	_, err := a.UserAdd(tokenCtx(t, rootToken), &pb.AuthUserAddRequest{Name: user, Password: password})
	authMust(t, "user add "+user, err)
	for _, r := range roles {
		_, err := a.UserGrantRole(tokenCtx(t, rootToken), &pb.AuthUserGrantRoleRequest{User: user, Role: r})
		authMust(t, "grant "+r+" to "+user, err)
	}
}

// TestAuthAttackStaleSimpleTokens: a simple token dies with its user's
// deletion or password change (replaying it gets "invalid auth token",
// for reads, writes and watches), and a token of a user whose role lost a
// permission stays valid but is held to the permissions as they are now.
func TestAuthAttackStaleSimpleTokens(t *testing.T) {
	invalid := rpctypes.ErrGRPCInvalidAuthToken
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		a := authOf(tg)

		t.Run("deleted user", func(t *testing.T) {
			authUserOn(t, tg, tok.root, "dave", "pw", "prefixer")
			dave := authToken(t, tg, "dave", "pw")
			_, err := a.UserDelete(tokenCtx(t, tok.root), &pb.AuthUserDeleteRequest{Name: "dave"})
			authMust(t, "delete dave", err)
			authNothingChanged(t, tg, tok.root, invalid, authRangeAs(t, tg, dave, "/perm/rw/x"))
			authNothingChanged(t, tg, tok.root, invalid, authPutAs(t, tg, dave, "/perm/rw/x"))
			ws := authWatch(t, tg, dave)
			ws.create(&pb.WatchCreateRequest{Key: []byte("/perm/rw/x")})
			if r := ws.recv(); !r.Canceled || r.WatchId != -1 || r.CancelReason != invalid.Error() {
				t.Fatalf("watch with a deleted user's token: %s", wtSummary(r))
			}
			// A user of the same name made again does not bring it back.
			authUserOn(t, tg, tok.root, "dave", "pw", "prefixer")
			authNothingChanged(t, tg, tok.root, invalid, authRangeAs(t, tg, dave, "/perm/rw/x"))
		})

		t.Run("password change", func(t *testing.T) {
			authUserOn(t, tg, tok.root, "erin", "old", "prefixer")
			erin := authToken(t, tg, "erin", "old")
			_, err := a.UserChangePassword(tokenCtx(t, tok.root), &pb.AuthUserChangePasswordRequest{Name: "erin", Password: "new"})
			authMust(t, "change erin's password", err)
			authNothingChanged(t, tg, tok.root, invalid, authRangeAs(t, tg, erin, "/perm/rw/x"))
			authNothingChanged(t, tg, tok.root, invalid, authPutAs(t, tg, erin, "/perm/rw/x"))
			_, err = a.Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: "erin", Password: "old"})
			wantRPCErr(t, err, rpctypes.ErrGRPCAuthFailed)
			authPut(t, tg, authToken(t, tg, "erin", "new"), "/perm/rw/x", "erin")
		})

		t.Run("revoked permission", func(t *testing.T) {
			a := authOf(tg)
			_, err := a.RoleAdd(tokenCtx(t, tok.root), &pb.AuthRoleAddRequest{Name: "cr"})
			authMust(t, "role add cr", err)
			_, err = a.RoleGrantPermission(tokenCtx(t, tok.root), &pb.AuthRoleGrantPermissionRequest{Name: "cr", Perm: authPerm(authpb.READWRITE, "/perm/c/", prefixEnd("/perm/c/"))})
			authMust(t, "grant to cr", err)
			authUserOn(t, tg, tok.root, "carol", "pw", "cr")
			carol := authToken(t, tg, "carol", "pw")
			cli := authUserClient(t, tg, "carol", "pw")
			authPut(t, tg, carol, "/perm/c/k", "carol")
			if _, err := cli.Get(reqCtx(t), "/perm/c/k"); err != nil {
				t.Fatalf("carol reads with clientv3: %v", err)
			}
			_, err = a.RoleRevokePermission(tokenCtx(t, tok.root), &pb.AuthRoleRevokePermissionRequest{Role: "cr", Key: []byte("/perm/c/"), RangeEnd: []byte(prefixEnd("/perm/c/"))})
			authMust(t, "revoke from cr", err)
			denied := rpctypes.ErrGRPCPermissionDenied
			authNothingChanged(t, tg, tok.root, denied, authRangeAs(t, tg, carol, "/perm/c/k"))
			authNothingChanged(t, tg, tok.root, denied, authPutAs(t, tg, carol, "/perm/c/k"))
			_, err = cli.Get(reqCtx(t), "/perm/c/k")
			wantRPCErr(t, err, denied)
			// Taking the role away instead has the same effect.
			_, err = a.RoleGrantPermission(tokenCtx(t, tok.root), &pb.AuthRoleGrantPermissionRequest{Name: "cr", Perm: authPerm(authpb.READWRITE, "/perm/c/", prefixEnd("/perm/c/"))})
			authMust(t, "grant to cr again", err)
			if _, err := authRangeAs(t, tg, carol, "/perm/c/k")(); err != nil {
				t.Fatalf("carol reads after the grant is back: %v", err)
			}
			_, err = a.UserRevokeRole(tokenCtx(t, tok.root), &pb.AuthUserRevokeRoleRequest{Name: "carol", Role: "cr"})
			authMust(t, "revoke cr from carol", err)
			authNothingChanged(t, tg, tok.root, denied, authRangeAs(t, tg, carol, "/perm/c/k"))
			_, err = cli.Put(reqCtx(t), "/perm/c/k", "x")
			wantRPCErr(t, err, denied)
		})

		t.Run("auth turned off and on", func(t *testing.T) {
			alice := authToken(t, tg, "alice", "alice-pw")
			_, err := a.AuthDisable(tokenCtx(t, tok.root), &pb.AuthDisableRequest{})
			authMust(t, "auth disable", err)
			_, err = a.AuthEnable(reqCtx(t), &pb.AuthEnableRequest{})
			authMust(t, "auth enable", err)
			root := authToken(t, tg, "root", authRootPassword)
			authNothingChanged(t, tg, root, invalid, authRangeAs(t, tg, alice, "/perm/r"))
			authNothingChanged(t, tg, root, invalid, authRangeAs(t, tg, tok.root, "/perm/r"))
		})
	})
}

// authJWTClaims are the claims etcd puts in its JWTs.
type authJWTClaims struct {
	Username string `json:"username"`
	Revision uint64 `json:"revision"`
	Exp      int64  `json:"exp"`
}

// authForgeJWT makes a JWT with claims, signed RS256 with key, or with
// alg "none" and no signature if key is nil.
func authForgeJWT(t *testing.T, claims authJWTClaims, key *rsa.PrivateKey) string {
	t.Helper()
	enc := base64.RawURLEncoding
	header := `{"alg":"none","typ":"JWT"}`
	if key != nil {
		header = `{"alg":"RS256","typ":"JWT"}`
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(payload)
	if key == nil {
		return signed + "."
	}
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + enc.EncodeToString(sig)
}

// authAlter changes the base64url character of token at i to another one
// (away from the last, whose low bits may be padding that decodes alike).
func authAlter(token string, i int) string {
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// TestAuthAttackJWT: with JWTs, every change to users, roles or
// permissions makes every token issued before it stale: the raw request
// is refused with "revision of auth store is old", and clientv3 logs in
// again and is then held to the new permissions. Forged tokens, signed
// with another key, unsigned, or with a real token's signature on other
// claims, are invalid.
func TestAuthAttackJWT(t *testing.T) {
	old, invalid := rpctypes.ErrGRPCAuthOldRevision, rpctypes.ErrGRPCInvalidAuthToken
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		a := authOf(tg)
		// root's own token goes stale with every change too: each check
		// of the keyspace logs in afresh.
		root := func() string { return authToken(t, tg, "root", authRootPassword) }
		if parts := strings.Split(tok.alice, "."); len(parts) != 3 {
			t.Fatalf("alice's token %q is no JWT", tok.alice)
		}

		t.Run("any auth change", func(t *testing.T) {
			alice := authToken(t, tg, "alice", "alice-pw")
			cli := authUserClient(t, tg, "alice", "alice-pw")
			authUserOn(t, tg, root(), "unrelated", "pw")
			authNothingChanged(t, tg, root(), old, authRangeAs(t, tg, alice, "/perm/r"))
			authNothingChanged(t, tg, root(), old, authPutAs(t, tg, alice, "/perm/rw/x"))
			ws := authWatch(t, tg, alice)
			ws.create(&pb.WatchCreateRequest{Key: []byte("/perm/r")})
			if r := ws.recv(); !r.Canceled || r.WatchId != -1 || r.CancelReason != old.Error() {
				t.Fatalf("watch with a stale token: %s", wtSummary(r))
			}
			// Admin checks look at the user alone.
			if _, err := a.UserGet(tokenCtx(t, alice), &pb.AuthUserGetRequest{Name: "alice"}); err != nil {
				t.Fatalf("alice reads herself with a stale token: %v", err)
			}
			if _, err := cli.Get(reqCtx(t), "/perm/r"); err != nil {
				t.Fatalf("clientv3 after an auth change: %v; it should log in again", err)
			}
		})

		t.Run("revoked permission", func(t *testing.T) {
			authUserOn(t, tg, root(), "carol", "pw", "prefixer")
			carol := authToken(t, tg, "carol", "pw")
			cli := authUserClient(t, tg, "carol", "pw")
			if _, err := cli.Get(reqCtx(t), "/perm/rw/x"); err != nil {
				t.Fatalf("carol reads with clientv3: %v", err)
			}
			_, err := a.UserRevokeRole(tokenCtx(t, root()), &pb.AuthUserRevokeRoleRequest{Name: "carol", Role: "prefixer"})
			authMust(t, "revoke prefixer from carol", err)
			authNothingChanged(t, tg, root(), old, authRangeAs(t, tg, carol, "/perm/rw/x"))
			_, err = cli.Get(reqCtx(t), "/perm/rw/x")
			wantRPCErr(t, err, rpctypes.ErrGRPCPermissionDenied)
		})

		t.Run("deleted user", func(t *testing.T) {
			authUserOn(t, tg, root(), "dave", "pw", "prefixer")
			dave := authToken(t, tg, "dave", "pw")
			_, err := a.UserDelete(tokenCtx(t, root()), &pb.AuthUserDeleteRequest{Name: "dave"})
			authMust(t, "delete dave", err)
			authNothingChanged(t, tg, root(), old, authRangeAs(t, tg, dave, "/perm/rw/x"))
			authNothingChanged(t, tg, root(), old, authPutAs(t, tg, dave, "/perm/rw/x"))
		})

		t.Run("password change", func(t *testing.T) {
			authUserOn(t, tg, root(), "erin", "old", "prefixer")
			erin := authToken(t, tg, "erin", "old")
			_, err := a.UserChangePassword(tokenCtx(t, root()), &pb.AuthUserChangePasswordRequest{Name: "erin", Password: "new"})
			authMust(t, "change erin's password", err)
			authNothingChanged(t, tg, root(), old, authPutAs(t, tg, erin, "/perm/rw/x"))
		})

		t.Run("forged", func(t *testing.T) {
			rootTok := root()
			alice := authToken(t, tg, "alice", "alice-pw")
			other, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			claims := authJWTClaims{Username: "root", Revision: authRev(t, tg, rootTok), Exp: time.Now().Add(time.Hour).Unix()}
			parts := strings.Split(alice, ".")
			payload, err := json.Marshal(claims)
			if err != nil {
				t.Fatal(err)
			}
			for name, forged := range map[string]string{
				"another key":          authForgeJWT(t, claims, other),
				"unsigned":             authForgeJWT(t, claims, nil),
				"other claims":         parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2],
				"truncated signature":  alice[:len(alice)-4],
				"no signature at all":  parts[0] + "." + parts[1] + ".",
				"alice's, one altered": authAlter(alice, len(alice)-10),
			} {
				t.Run(name, func(t *testing.T) {
					authNothingChanged(t, tg, rootTok, invalid, authPutAs(t, tg, forged, "/perm/other"))
					authNothingChanged(t, tg, rootTok, invalid, authRangeAs(t, tg, forged, "/perm/other"))
				})
			}
		})
	}, withAuthToken(authJWTSpec(t)))
}

// TestAuthAttackExpiredToken: a simple token unused for --auth-token-ttl
// is forgotten, while one in use lives on (each use restarts its time); a
// JWT expires at its "exp" claim (the spec's ttl), used or not.
func TestAuthAttackExpiredToken(t *testing.T) {
	const wait = 3 * time.Second // two of etcd's once-a-second sweeps after a 1 s TTL
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		jwt := connect(t, tg.Name, startBackend(t, tg.Name, withBcryptCost(authBcryptCost), withAuthToken(authJWTSpec(t)+",ttl=1s")))
		tok := authPermSetup(t, tg)
		jwtTok := authPermSetup(t, jwt)
		idle, busy := authToken(t, tg, "alice", "alice-pw"), authToken(t, tg, "bob", "bob-pw")
		for end := time.Now().Add(wait); time.Now().Before(end); {
			// bob's token is used all along: a refusal by permission
			// is still a use of a valid token.
			_, err := tg.KV.Range(tokenCtx(t, busy), &pb.RangeRequest{Key: []byte("/perm/r")})
			wantRPCErr(t, err, rpctypes.ErrGRPCPermissionDenied)
			time.Sleep(300 * time.Millisecond)
		}
		// root's token went unused too; a new login works.
		root := authToken(t, tg, "root", authRootPassword)
		authNothingChanged(t, tg, root, rpctypes.ErrGRPCInvalidAuthToken, authRangeAs(t, tg, tok.root, "/perm/r"))
		authNothingChanged(t, tg, root, rpctypes.ErrGRPCInvalidAuthToken, authRangeAs(t, tg, idle, "/perm/r"))
		authNothingChanged(t, tg, root, rpctypes.ErrGRPCPermissionDenied, authRangeAs(t, tg, busy, "/perm/r"))

		jwtRoot := authToken(t, jwt, "root", authRootPassword)
		authNothingChanged(t, jwt, jwtRoot, rpctypes.ErrGRPCInvalidAuthToken, authRangeAs(t, jwt, jwtTok.alice, "/perm/r"))
	}, withAuthTokenTTL(time.Second))
}

// TestAuthAttackPasswordGuessing: a run of wrong passwords is refused each
// time with the same error as an unknown user, changes nothing (not even
// the auth revision), and the right password still works after it: etcd
// neither locks the user out nor tells a wrong password from an unknown
// user.
func TestAuthAttackPasswordGuessing(t *testing.T) {
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		before, rev := authKVState(t, tg, tok.root), authRev(t, tg, tok.root)
		a := authOf(tg)
		for i, guess := range []string{"", "alice", "password", "alice-p", "alice-pw ", "ALICE-PW", "alice-pw\x00", strings.Repeat("x", 1000)} {
			for _, user := range []string{"alice", "root", "mallory"} {
				resp, err := a.Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: user, Password: guess})
				wantRPCErr(t, err, rpctypes.ErrGRPCAuthFailed)
				if resp != nil {
					t.Fatalf("guess %d for %s answered %v", i, user, resp)
				}
			}
		}
		for range 30 {
			_, err := a.Authenticate(reqCtx(t), &pb.AuthenticateRequest{Name: "alice", Password: "wrong"})
			wantRPCErr(t, err, rpctypes.ErrGRPCAuthFailed)
		}
		if after, r := authKVState(t, tg, tok.root), authRev(t, tg, tok.root); after != before || r != rev {
			t.Fatalf("guessing changed the state: %s (auth revision %d), was %s (%d)", after, r, before, rev)
		}
		authPut(t, tg, authToken(t, tg, "alice", "alice-pw"), "/perm/rw/x", "still alice")
	})
}

// TestAuthAttackTokens: with auth on, a request without a token is the
// user with no name; garbage is an invalid token; the token may come as
// metadata "token" or "authorization", with or without "Bearer " in front
// ("token" wins when both are sent); and a nested Txn cannot be used to
// learn a forbidden value by its effects.
func TestAuthAttackTokens(t *testing.T) {
	invalid := rpctypes.ErrGRPCInvalidAuthToken
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		authPut(t, tg, tok.root, "/perm/other", "secret")

		t.Run("no token", func(t *testing.T) {
			empty := rpctypes.ErrGRPCUserEmpty
			authNothingChanged(t, tg, tok.root, empty, authRangeAs(t, tg, "", "/perm/other"))
			authNothingChanged(t, tg, tok.root, empty, authPutAs(t, tg, "", "/perm/other"))
			authNothingChanged(t, tg, tok.root, empty, func() (any, error) {
				return tg.KV.DeleteRange(reqCtx(t), &pb.DeleteRangeRequest{Key: []byte("/perm/other")})
			})
			authNothingChanged(t, tg, tok.root, empty, func() (any, error) {
				return tg.KV.Txn(reqCtx(t), &pb.TxnRequest{Compare: []*pb.Compare{authVersionCmp("/perm/other")}})
			})
			// An empty "token" is a token, and not a valid one.
			authNothingChanged(t, tg, tok.root, invalid, func() (any, error) {
				return tg.KV.Range(metadata.AppendToOutgoingContext(reqCtx(t), "token", ""), &pb.RangeRequest{Key: []byte("/perm/other")})
			})
		})

		for _, garbage := range []string{"garbage", "a.b.c", "abcdefghijklmnop.1", tok.alice + "x", "x" + tok.alice, strings.ToUpper(tok.alice), ".", "Bearer "} {
			t.Run("garbage "+garbage, func(t *testing.T) {
				authNothingChanged(t, tg, tok.root, invalid, authRangeAs(t, tg, garbage, "/perm/other"))
				authNothingChanged(t, tg, tok.root, invalid, authPutAs(t, tg, garbage, "/perm/other"))
			})
		}

		t.Run("metadata", func(t *testing.T) {
			rng := func(kv ...string) (*pb.RangeResponse, error) {
				return tg.KV.Range(metadata.AppendToOutgoingContext(reqCtx(t), kv...), &pb.RangeRequest{Key: []byte("/perm/r")})
			}
			for _, md := range [][]string{
				{"token", tok.alice},
				{"token", "Bearer " + tok.alice},
				{"authorization", tok.alice},
				{"authorization", "Bearer " + tok.alice},
				{"token", tok.alice, "authorization", "garbage"},
			} {
				if resp, err := rng(md...); err != nil || len(resp.Kvs) != 1 {
					t.Errorf("range with metadata %q: %v, %v", md, resp, err)
				}
			}
			for _, md := range [][]string{
				{"authorization", "bearer " + tok.alice},
				{"authorization", "Bearer  " + tok.alice},
				{"authorization", "Basic " + tok.alice},
				{"token", "garbage", "authorization", tok.alice},
			} {
				resp, err := rng(md...)
				wantRPCErr(t, err, invalid)
				if resp != nil {
					t.Errorf("range with metadata %q answered %v", md, resp)
				}
			}
			// Another user's token in the other field lends no rights.
			resp, err := tg.KV.Range(metadata.AppendToOutgoingContext(reqCtx(t), "token", tok.bob, "authorization", tok.root), &pb.RangeRequest{Key: []byte("/perm/r")})
			wantRPCErr(t, err, rpctypes.ErrGRPCPermissionDenied)
			if resp != nil {
				t.Errorf("bob with root's token beside his answered %v", resp)
			}
		})

		t.Run("txn oracle", func(t *testing.T) {
			// If the compare on the secret ran, the flag would say what
			// the secret is.
			flag := authPutOp("/perm/rw/flag")
			secretIs := &pb.Compare{Key: []byte("/perm/other"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("secret")}}
			for name, txn := range map[string]*pb.TxnRequest{
				"compare":        {Compare: []*pb.Compare{secretIs}, Success: []*pb.RequestOp{flag}},
				"nested compare": {Success: []*pb.RequestOp{authTxnOp(&pb.TxnRequest{Compare: []*pb.Compare{secretIs}, Success: []*pb.RequestOp{flag}})}},
				"nested read":    {Success: []*pb.RequestOp{flag, authTxnOp(&pb.TxnRequest{Success: []*pb.RequestOp{authRangeOp("/perm/other", "")}})}},
				"read only":      {Success: []*pb.RequestOp{authRangeOp("/perm/r", ""), authRangeOp("/perm/other", "")}},
			} {
				t.Run(name, func(t *testing.T) {
					authNothingChanged(t, tg, tok.root, rpctypes.ErrGRPCPermissionDenied, func() (any, error) {
						return tg.KV.Txn(tokenCtx(t, tok.alice), txn)
					})
				})
			}
		})

		t.Run("watch", func(t *testing.T) {
			ws := authWatch(t, tg, tok.alice)
			h := authWtHeaders(t, tg, tok.root)
			rev := authPut(t, tg, tok.root, "/perm/other", "secret2").Header.Revision
			for _, cr := range []*pb.WatchCreateRequest{
				{Key: []byte("/perm/rw/"), RangeEnd: []byte("/perm/rx")},
				{Key: []byte("/perm/r"), RangeEnd: []byte("/perm/r2")},
				{Key: nil, RangeEnd: []byte{0}},
				{Key: []byte("/perm/other"), PrevKv: true, StartRevision: rev},
			} {
				ws.create(cr)
				ws.want(h.failed(rev, rpctypes.ErrGRPCPermissionDenied.Error()))
			}
			authPut(t, tg, tok.root, "/perm/other", "secret3")
			ws.quiet()
		})
	})
}

// TestAuthAttackWatchOutlivesRevoke: etcd checks a watcher's permission
// when it is created only: a watcher made while the user could read the
// range keeps sending its events after the permission is gone.
func TestAuthAttackWatchOutlivesRevoke(t *testing.T) {
	forEachAuthBackend(t, func(t *testing.T, tg *Target) {
		tok := authPermSetup(t, tg)
		h := authWtHeaders(t, tg, tok.root)
		ws := authWatch(t, tg, tok.alice)
		first := authPut(t, tg, tok.root, "/perm/rw/x", "1").Header.Revision
		ws.create(&pb.WatchCreateRequest{Key: []byte("/perm/rw/x"), PrevKv: true})
		ws.want(h.created(first, 0))
		_, err := authOf(tg).UserRevokeRole(tokenCtx(t, tok.root), &pb.AuthUserRevokeRoleRequest{Name: "alice", Role: "prefixer"})
		authMust(t, "revoke prefixer from alice", err)
		authNothingChanged(t, tg, tok.root, rpctypes.ErrGRPCPermissionDenied, authRangeAs(t, tg, tok.alice, "/perm/rw/x"))
		resp, err := tg.KV.Range(tokenCtx(t, tok.root), &pb.RangeRequest{Key: []byte("/perm/rw/x")})
		authMust(t, "range as root", err)
		prev := resp.Kvs[0]
		rev := authPut(t, tg, tok.root, "/perm/rw/x", "2").Header.Revision
		ws.want(h.events(rev, 0, wtWithPrev(wtPut("/perm/rw/x", "2", prev.CreateRevision, rev, prev.Version+1), prev)))
	})
}
