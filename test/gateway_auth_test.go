package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestGatewayAuth is the JSON gateway with auth on, as curl uses it: a
// token from /v3/auth/authenticate goes in the Authorization header, with
// or without "Bearer ", and every call is checked as the same call over
// gRPC; no header, a bad token or a forbidden key get etcd's errors, and
// change nothing. The transcripts of both servers must match.
func TestGatewayAuth(t *testing.T) {
	gwEachBackend(t, func(g *gwSession) {
		p := keyPrefix(g.t)
		root := authSetup(g.t, g.tg, []authRole{{name: "app", perms: []*authpb.Permission{
			authPerm(authpb.Permission_READWRITE, p+"app/", prefixEnd(p+"app/")),
		}}}, []authUser{{name: "alice", password: "alicepw", roles: []string{"app"}}})

		r := g.do(http.MethodPost, "/v3/auth/authenticate", `{"name":"alice","password":"alicepw"}`)
		var auth struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(r.body, &auth); err != nil || r.status != http.StatusOK || auth.Token == "" {
			g.t.Fatalf("authenticate: %d %s (%v)", r.status, r.body, err)
		}
		g.record("authenticate", gwRender(r, "token"))
		g.fail(http.MethodPost, "/v3/auth/authenticate", `{"name":"alice","password":"wrong"}`,
			http.StatusBadRequest, 3, "etcdserver: authentication failed, invalid user ID or password")

		put := fmt.Sprintf(`{"key":%q,"value":%q}`, b64(p+"app/x"), b64("1"))
		for _, bearer := range []string{"", "Bearer "} {
			r := gwDoWith(g, http.MethodPost, "/v3/kv/put", put, bearer+auth.Token)
			g.record("put with Authorization: "+bearer+"<token>", gwRender(r))
			if r.status != http.StatusOK {
				g.t.Errorf("put with Authorization: %s<token>: %d %s", bearer, r.status, r.body)
			}
		}
		rev := revisionAs(g.t, g.tg, root)

		// Refusals: no user, a bad token, a key outside alice's range, a
		// compaction (root only). None changes the revision.
		refused := []struct {
			label, path, body, header string
			status, code              int
			message                   string
		}{
			{"no header", "/v3/kv/put", put, "", http.StatusBadRequest, 3, "etcdserver: user name is empty"},
			{"bad token", "/v3/kv/put", put, "garbage.1", http.StatusUnauthorized, 16, "etcdserver: invalid auth token"},
			{"forbidden put", "/v3/kv/put", fmt.Sprintf(`{"key":%q,"value":%q}`, b64(p+"other"), b64("1")), auth.Token,
				http.StatusForbidden, 7, "etcdserver: permission denied"},
			{"forbidden range", "/v3/kv/range", fmt.Sprintf(`{"key":%q}`, b64(p+"other")), auth.Token,
				http.StatusForbidden, 7, "etcdserver: permission denied"},
			{"compaction", "/v3/kv/compaction", `{"revision":1}`, auth.Token,
				http.StatusForbidden, 7, "etcdserver: permission denied"},
		}
		for _, tc := range refused {
			r := gwDoWith(g, http.MethodPost, tc.path, tc.body, tc.header)
			g.record(tc.label, gwRender(r))
			var got struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(r.body, &got); err != nil || r.status != tc.status || got.Code != tc.code || got.Message != tc.message {
				g.t.Errorf("%s: got %d %s, want %d {code %d, message %q}", tc.label, r.status, r.body, tc.status, tc.code, tc.message)
			}
		}
		if now := revisionAs(g.t, g.tg, root); now != rev {
			g.t.Errorf("refused calls moved the revision from %d to %d", rev, now)
		}

		r = gwDoWith(g, http.MethodPost, "/v3/kv/range", fmt.Sprintf(`{"key":%q}`, b64(p+"app/x")), auth.Token)
		g.record("range", gwRender(r, "key"))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), b64("1")) {
			g.t.Errorf("range with the token: %d %s", r.status, r.body)
		}
	}, withBcryptCost(authBcryptCost))
}

// gwDoWith is gwSession.do with an Authorization header ("" sends none).
func gwDoWith(g *gwSession, method, path, body, authorization string) httpReply {
	g.t.Helper()
	h := http.Header{}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	return httpDoWith(g.t, method, g.base+path, body, h)
}

// revisionAs is the store's revision, read with token.
func revisionAs(t testing.TB, tg *Target, token string) int64 {
	t.Helper()
	resp, err := pb.NewKVClient(tg.Conn).Range(tokenCtx(t, token), &pb.RangeRequest{Key: []byte("\x00"), Limit: 1})
	if err != nil {
		t.Fatalf("read the revision: %v", err)
	}
	return resp.Header.Revision
}

// TestGatewayNotServerCertName: with --client-cert-auth the JSON gateway
// presents the server's own certificate to the gRPC server, whose common
// name ("server") is here also a user with the root role. A gateway
// request without a token, and without an Accept header, must not be made
// by that user. etcd takes it as that user (it looks only for the
// grpcgateway-accept metadata, which such a request does not bring), so
// this runs against MetaStore alone; docs/compatibility.md lists the
// difference.
func TestGatewayNotServerCertName(t *testing.T) {
	f := newTLSFiles(t)
	endpoint, _ := startTLSBackend(t, "metastore", f, withBcryptCost(authBcryptCost))
	cli := tlsClient(t, endpoint, f.clientTLS(true))
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(reqCtx(t), "root", authRootPassword); return err },
		func() error { _, err := cli.UserGrantRole(reqCtx(t), "root", "root"); return err },
		func() error { _, err := cli.UserAdd(reqCtx(t), "server", "x"); return err },
		func() error { _, err := cli.UserGrantRole(reqCtx(t), "server", "root"); return err },
		func() error { _, err := cli.AuthEnable(reqCtx(t)); return err },
	} {
		authMust(t, "set up auth", step())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: f.clientTLS(true)}}
	req, err := http.NewRequestWithContext(reqCtx(t), http.MethodPost, "https://"+endpoint+"/v3/kv/put", strings.NewReader(fmt.Sprintf(`{"key":%q,"value":%q}`, b64("k"), b64("v"))))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusBadRequest || got.Message != "etcdserver: user name is empty" {
		t.Fatalf("put through the gateway with no token: %d %+v (%v), want 400 %q", resp.StatusCode, got, err, "etcdserver: user name is empty")
	}
}

// TestGatewayWebsocketNoCookie: a websocket through the gateway is checked
// with the token it names as its subprotocol ("Bearer, <token>", as etcd's
// websocket proxy takes it), never with a cookie named "token", which
// etcd's proxy also takes (and, since it accepts websockets from any
// origin, a page of another site could use a token a browser holds). The
// watch of a key only root may read is refused when the token comes as a
// cookie, and allowed when it comes as the subprotocol. etcd allows both,
// so this runs against MetaStore alone.
func TestGatewayWebsocketNoCookie(t *testing.T) {
	onlyBackend(t, "metastore", func(t *testing.T, tg *Target) {
		root := authSetup(t, tg, nil, nil)
		watch := func(h http.Header, subprotocols ...string) *pb.WatchResponse {
			t.Helper()
			ctx := reqCtx(t)
			dialer := websocket.Dialer{Subprotocols: subprotocols}
			conn, resp, err := dialer.DialContext(ctx, "ws://"+tg.Endpoint+"/v3/watch", h)
			if err != nil {
				t.Fatalf("websocket: %v", err)
			}
			resp.Body.Close()
			defer conn.Close()
			deadline, _ := ctx.Deadline()
			_ = conn.SetReadDeadline(deadline)
			if err := conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"create_request":{"key":%q}}`, b64("secret")))); err != nil {
				t.Fatal(err)
			}
			_, msg, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("websocket read: %v", err)
			}
			return watchMessage(t, string(msg))
		}
		if r := watch(http.Header{"Cookie": {"token=" + root}}); !r.Canceled || !strings.Contains(r.CancelReason, "etcdserver: user name is empty") {
			t.Errorf("watch with the token as a cookie: %v, want refused (user name is empty)", r)
		}
		if r := watch(nil, "Bearer", root); !r.Created || r.Canceled {
			t.Errorf("watch with the token as the subprotocol: %v, want created", r)
		}
	}, withBcryptCost(authBcryptCost))
}
