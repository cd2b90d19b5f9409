package test

// The JSON gateway on the client URL, used as curl uses it: POST a JSON
// body, read JSON back (a streaming /v3/watch as newline-delimited JSON on
// a response that stays open, as `curl -N` shows it). Each scenario runs on
// both backends, asserts what etcd answers, and records every reply
// (status, headers, body with IDs masked) so that MetaStore's replies are
// compared byte for byte with etcd's. Both run in this one process, so
// protojson's per-binary whitespace is the same for both.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/rpc"
)

// gwSession talks HTTP to one backend's client URL and keeps the
// transcript of what came back.
type gwSession struct {
	t     *testing.T
	tg    *Target
	base  string
	steps []gwStep
}

// gwStep is one recorded reply: label says what was asked, got is the
// reply with what differs between servers (IDs, terms) masked.
type gwStep struct {
	label string
	got   string
}

// httpReply is one HTTP answer, read to its end.
type httpReply struct {
	status int
	header http.Header
	body   []byte
}

// gwEachBackend runs scenario against each selected backend (see
// forEachBackend), then checks that all recorded the same transcript.
func gwEachBackend(t *testing.T, scenario func(g *gwSession), opts ...serverOption) {
	t.Helper()
	var done []*gwSession
	forEachBackend(t, func(t *testing.T, tg *Target) {
		g := &gwSession{t: t, tg: tg, base: "http://" + tg.Endpoint}
		scenario(g)
		if !t.Failed() {
			done = append(done, g)
		}
	}, opts...)
	for _, other := range done[min(1, len(done)):] {
		gwCompare(t, done[0], other)
	}
}

// gwCompare reports the steps where two transcripts differ.
func gwCompare(t *testing.T, a, b *gwSession) {
	t.Helper()
	if len(a.steps) != len(b.steps) {
		t.Errorf("%s recorded %d steps, %s recorded %d", a.tg.Name, len(a.steps), b.tg.Name, len(b.steps))
	}
	for i := range min(len(a.steps), len(b.steps)) {
		sa, sb := a.steps[i], b.steps[i]
		if sa.got != sb.got {
			t.Errorf("step %d (%s) differs:\n  %s: %s\n  %s: %s", i, sa.label, a.tg.Name, sa.got, b.tg.Name, sb.got)
		}
	}
}

// do sends one request. A body goes with curl -d's content type: the
// gateway reads JSON whatever the type says.
func (g *gwSession) do(method, path, body string) httpReply {
	g.t.Helper()
	return httpDo(g.t, method, g.base+path, body)
}

func httpDo(t testing.TB, method, url, body string) httpReply {
	t.Helper()
	return httpDoWith(t, method, url, body, nil)
}

// httpDoWith is httpDo with extra request headers.
func httpDoWith(t testing.TB, method, url, body string, header http.Header) httpReply {
	t.Helper()
	req, err := http.NewRequestWithContext(reqCtx(t), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return httpReply{status: resp.StatusCode, header: resp.Header, body: b}
}

// gwAlwaysMasked are the fields whose values differ between any two
// servers: the IDs and the raft term (MetaStore has no raft).
var gwAlwaysMasked = []string{"cluster_id", "member_id", "raft_term"}

// gwMask replaces the values of the named JSON fields, wherever they are,
// by "<name>", leaving every other byte as it was.
func gwMask(body string, fields []string) string {
	quoted := make([]string, len(fields))
	for i, f := range fields {
		quoted[i] = regexp.QuoteMeta(f)
	}
	re := regexp.MustCompile(`"(` + strings.Join(quoted, "|") + `)":(\s*)("[^"]*"|\[[^\]]*\]|-?[0-9]+)`)
	return re.ReplaceAllString(body, `"$1":$2<$1>`)
}

// gwRender is r as recorded: status, content type, the names of the
// other headers (their values hold dates and lengths), and the body with
// gwAlwaysMasked and mask masked.
func gwRender(r httpReply, mask ...string) string {
	var names []string
	for name := range r.header {
		if name != "Date" && name != "Content-Length" && name != "Content-Type" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return fmt.Sprintf("%d %q %v %s", r.status, r.header.Get("Content-Type"), names,
		gwMask(string(r.body), slices.Concat(gwAlwaysMasked, mask)))
}

func (g *gwSession) record(label string, got string) {
	g.steps = append(g.steps, gwStep{label: label, got: got})
}

// call POSTs body to path, records the reply, requires 200 and decodes it
// into resp (a proto message, as the gateway's JSON is protojson).
func (g *gwSession) call(path, body string, resp proto.Message, mask ...string) {
	g.t.Helper()
	r := g.do(http.MethodPost, path, body)
	g.record(path+" "+body, gwRender(r, mask...))
	if r.status != http.StatusOK {
		g.t.Fatalf("POST %s %s: %d %s", path, body, r.status, r.body)
	}
	if err := protojson.Unmarshal(r.body, resp); err != nil {
		g.t.Fatalf("POST %s: decode %s: %v", path, r.body, err)
	}
}

// fail sends a request that must fail with status and etcd's gateway error
// body {"code":code,"message":message}, and records the reply. NB: the
// protobuf library writes the space after "proto:" in its errors as a
// no-break space in some builds, to keep programs from matching the text.
func (g *gwSession) fail(method, path, body string, status int, code int, message string) {
	g.t.Helper()
	r := g.do(method, path, body)
	g.record(method+" "+path+" "+body, gwRender(r))
	var got struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []any  `json:"details"`
	}
	err := json.Unmarshal(r.body, &got)
	got.Message = strings.ReplaceAll(got.Message, "\u00a0", " ")
	if err != nil || r.status != status || got.Code != code || got.Message != message || got.Details != nil {
		g.t.Errorf("%s %s %q: got %d %s, want %d {code %d, message %q}", method, path, body, r.status, r.body, status, code, message)
	}
}

// b64 is how the gateway's JSON carries bytes.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestGatewayKV(t *testing.T) {
	gwEachBackend(t, func(g *gwSession) {
		var put pb.PutResponse
		g.call("/v3/kv/put", fmt.Sprintf(`{"key":%q,"value":%q}`, b64("/gw/a"), b64("1")), &put)
		g.call("/v3/kv/put", fmt.Sprintf(`{"key":%q,"value":%q,"prev_kv":true}`, b64("/gw/a"), b64("2")), &put)
		if string(put.PrevKv.GetValue()) != "1" {
			g.t.Errorf("put prev_kv %v, want value 1", put.PrevKv)
		}
		g.call("/v3/kv/put", fmt.Sprintf(`{"key":%q,"value":%q}`, b64("/gw/b"), b64("3")), &put)

		var rng pb.RangeResponse
		g.call("/v3/kv/range", fmt.Sprintf(`{"key":%q}`, b64("/gw/a")), &rng)
		if len(rng.Kvs) != 1 || string(rng.Kvs[0].Value) != "2" || rng.Kvs[0].Version != 2 {
			g.t.Errorf("range /gw/a: %s, want value 2 at version 2", kvSummary(rng.Kvs))
		}
		// A prefix read, newest first, one at a time; int64 fields given
		// as JSON numbers or strings alike.
		g.call("/v3/kv/range", fmt.Sprintf(`{"key":%q,"range_end":%q,"sort_order":"DESCEND","sort_target":"KEY","limit":1}`,
			b64("/gw/"), b64(prefixEnd("/gw/"))), &rng)
		if len(rng.Kvs) != 1 || string(rng.Kvs[0].Key) != "/gw/b" || !rng.More || rng.Count != 2 {
			g.t.Errorf("descending prefix range: %s more=%v count=%d, want /gw/b, more, count 2", kvSummary(rng.Kvs), rng.More, rng.Count)
		}
		g.call("/v3/kv/range", fmt.Sprintf(`{"key":%q,"revision":"2","keys_only":true}`, b64("/gw/a")), &rng)
		g.call("/v3/kv/range", fmt.Sprintf(`{"key":%q,"range_end":"AA==","count_only":true}`, b64("/gw/")), &rng)
		if rng.Count != 2 || len(rng.Kvs) != 0 {
			g.t.Errorf("count_only from /gw/: count %d, %d kvs; want 2, none", rng.Count, len(rng.Kvs))
		}

		// A Txn whose compare holds runs its success ops, one that fails
		// its failure ops.
		var txn pb.TxnResponse
		g.call("/v3/kv/txn", fmt.Sprintf(`{"compare":[{"key":%q,"result":"EQUAL","target":"VALUE","value":%q}],`+
			`"success":[{"request_put":{"key":%q,"value":%q}},{"request_range":{"key":%q}}],`+
			`"failure":[{"request_delete_range":{"key":%q}}]}`,
			b64("/gw/a"), b64("2"), b64("/gw/c"), b64("4"), b64("/gw/a"), b64("/gw/a")), &txn)
		if !txn.Succeeded || len(txn.Responses) != 2 {
			g.t.Errorf("txn with a true compare: %v", &txn)
		}
		g.call("/v3/kv/txn", fmt.Sprintf(`{"compare":[{"key":%q,"result":"GREATER","target":"MOD","mod_revision":"100"}],`+
			`"success":[{"request_put":{"key":%q,"value":%q}}],"failure":[{"request_range":{"key":%q}}]}`,
			b64("/gw/a"), b64("/gw/a"), b64("5"), b64("/gw/c")), &txn)
		if txn.Succeeded {
			g.t.Errorf("txn with a false compare succeeded: %v", &txn)
		}

		var del pb.DeleteRangeResponse
		g.call("/v3/kv/deleterange", fmt.Sprintf(`{"key":%q,"range_end":%q,"prev_kv":true}`, b64("/gw/b"), b64(prefixEnd("/gw/"))), &del)
		if del.Deleted != 2 || len(del.PrevKvs) != 2 {
			g.t.Errorf("delete /gw/b..: deleted %d, prev %s; want 2 and 2", del.Deleted, kvSummary(del.PrevKvs))
		}

		var compact pb.CompactionResponse
		g.call("/v3/kv/compaction", `{"revision":"3","physical":true}`, &compact)
		g.fail(http.MethodPost, "/v3/kv/range", fmt.Sprintf(`{"key":%q,"revision":"2"}`, b64("/gw/a")),
			http.StatusBadRequest, 11, "etcdserver: mvcc: required revision has been compacted")
		g.fail(http.MethodPost, "/v3/kv/compaction", `{"revision":"1000"}`,
			http.StatusBadRequest, 11, "etcdserver: mvcc: required revision is a future revision")
		g.fail(http.MethodPost, "/v3/kv/put", `{"value":"eA=="}`, http.StatusBadRequest, 3, "etcdserver: key is not provided")
	})
}

func TestGatewayLease(t *testing.T) {
	gwEachBackend(t, func(g *gwSession) {
		var grant pb.LeaseGrantResponse
		g.call("/v3/lease/grant", `{"TTL":"60"}`, &grant, "ID")
		if grant.ID == 0 || grant.TTL != 60 {
			g.t.Fatalf("grant: %v, want an ID and TTL 60", &grant)
		}
		var fixed pb.LeaseGrantResponse
		g.call("/v3/lease/grant", `{"ID":"4242","TTL":30}`, &fixed)
		g.fail(http.MethodPost, "/v3/lease/grant", `{"ID":"4242","TTL":30}`, http.StatusBadRequest, 9, "etcdserver: lease already exists")

		var put pb.PutResponse
		g.call("/v3/kv/put", fmt.Sprintf(`{"key":%q,"value":%q,"lease":"%d"}`, b64("/gw/leased"), b64("v"), grant.ID), &put)
		var rng pb.RangeResponse
		g.call("/v3/kv/range", fmt.Sprintf(`{"key":%q}`, b64("/gw/leased")), &rng, "lease")
		if len(rng.Kvs) != 1 || rng.Kvs[0].Lease != grant.ID {
			g.t.Errorf("leased key: %s, want lease %d", kvSummary(rng.Kvs), grant.ID)
		}

		var ttl pb.LeaseTimeToLiveResponse
		g.call("/v3/lease/timetolive", fmt.Sprintf(`{"ID":"%d","keys":true}`, grant.ID), &ttl, "ID", "TTL")
		if ttl.GrantedTTL != 60 || ttl.TTL <= 0 || ttl.TTL > 60 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "/gw/leased" {
			g.t.Errorf("timetolive: %v, want granted 60, 0 < TTL <= 60, key /gw/leased", &ttl)
		}
		// etcd's second route for the same call.
		g.call("/v3/kv/lease/timetolive", `{"ID":"4242"}`, &ttl, "TTL")

		var leases pb.LeaseLeasesResponse
		g.call("/v3/lease/leases", `{}`, &leases, "ID")
		if len(leases.Leases) != 2 {
			g.t.Errorf("leases: %v, want 2", leases.Leases)
		}

		// A lock held under the lease, through the lock service's gateway.
		r := g.do(http.MethodPost, "/v3/lock/lock", fmt.Sprintf(`{"name":%q,"lease":"%d"}`, b64("/gw/lock"), grant.ID))
		g.record("/v3/lock/lock", gwRender(r, "key"))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"key":`) {
			g.t.Errorf("lock: %d %s, want 200 with the lock's key", r.status, r.body)
		}

		var revoke pb.LeaseRevokeResponse
		g.call("/v3/lease/revoke", fmt.Sprintf(`{"ID":"%d"}`, grant.ID), &revoke)
		g.call("/v3/kv/range", fmt.Sprintf(`{"key":%q,"range_end":%q}`, b64("/gw/"), b64(prefixEnd("/gw/"))), &rng)
		if len(rng.Kvs) != 0 {
			g.t.Errorf("keys left after the revoke: %s", kvSummary(rng.Kvs))
		}
		g.fail(http.MethodPost, "/v3/lease/revoke", fmt.Sprintf(`{"ID":"%d"}`, grant.ID), http.StatusNotFound, 5, "etcdserver: requested lease not found")
		g.call("/v3/lease/timetolive", fmt.Sprintf(`{"ID":"%d"}`, grant.ID), &ttl, "ID")
		if ttl.TTL != -1 {
			g.t.Errorf("timetolive of a revoked lease: %v, want TTL -1", &ttl)
		}
		g.call("/v3/kv/lease/revoke", `{"ID":"4242"}`, &revoke)
	})
}

// gwStream is a streaming response left open, read one JSON message (a
// line) at a time.
type gwStream struct {
	t     testing.TB
	lines *bufio.Reader
}

func (g *gwSession) openStream(path, body string) *gwStream {
	g.t.Helper()
	return openHTTPStream(g.t, g.base+path, body)
}

func openHTTPStream(t testing.TB, url, body string) *gwStream {
	t.Helper()
	req, err := http.NewRequestWithContext(reqCtx(t), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return &gwStream{t: t, lines: bufio.NewReader(resp.Body)}
}

// next is the next message, without its newline.
func (s *gwStream) next() string {
	s.t.Helper()
	line, err := s.lines.ReadString('\n')
	if err != nil {
		s.t.Fatalf("read the stream: %v (read %q)", err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

// watchMessage decodes one streamed watch message.
func watchMessage(t testing.TB, line string) *pb.WatchResponse {
	t.Helper()
	var msg struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(line), &msg); err != nil || msg.Result == nil {
		t.Fatalf("watch message %s: not a result (%v)", line, err)
	}
	var resp pb.WatchResponse
	if err := protojson.Unmarshal(msg.Result, &resp); err != nil {
		t.Fatalf("watch message %s: %v", line, err)
	}
	return &resp
}

// events reads messages from the watch stream s until it has n events,
// and records each event as the gateway wrote it. The events of several
// revisions may come in one message or in several (etcd and MetaStore
// both batch what is ready), so only the events are recorded.
func (g *gwSession) events(s *gwStream, n int) []*mvccpb.Event {
	g.t.Helper()
	var events []*mvccpb.Event
	for len(events) < n {
		line := s.next()
		var raw struct {
			Result struct {
				Events []json.RawMessage `json:"events"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			g.t.Fatalf("watch message %s: %v", line, err)
		}
		for _, ev := range raw.Result.Events {
			g.record("event", string(ev))
		}
		events = append(events, watchMessage(g.t, line).Events...)
	}
	if len(events) > n {
		g.t.Fatalf("%d events, want %d", len(events), n)
	}
	return events
}

func TestGatewayWatch(t *testing.T) {
	gwEachBackend(t, func(g *gwSession) {
		w := g.openStream("/v3/watch", fmt.Sprintf(`{"create_request":{"key":%q}}`, b64("/gw/w")))
		created := w.next()
		g.record("created", gwMask(created, gwAlwaysMasked))
		if !watchMessage(g.t, created).Created {
			g.t.Fatalf("first message %s, want created", created)
		}
		g.tg.put(g.t, "/gw/w", "1")
		g.tg.put(g.t, "/gw/other", "x")
		g.tg.put(g.t, "/gw/w", "2")
		if _, err := g.tg.KV.DeleteRange(reqCtx(g.t), &pb.DeleteRangeRequest{Key: []byte("/gw/w")}); err != nil {
			g.t.Fatal(err)
		}
		for i, ev := range g.events(w, 3) {
			want := []string{"PUT 1", "PUT 2", "DELETE "}[i]
			if got := fmt.Sprintf("%s %s", ev.Type, ev.Kv.Value); got != want {
				g.t.Errorf("event %d: %s, want %s", i, got, want)
			}
		}

		// A prefix watch from an old revision with previous values: the
		// history first, in order.
		h := g.openStream("/v3/watch", fmt.Sprintf(`{"create_request":{"key":%q,"range_end":%q,"start_revision":"2","prev_kv":true}}`,
			b64("/gw/"), b64(prefixEnd("/gw/"))))
		g.record("history created", gwMask(h.next(), gwAlwaysMasked))
		var got []string
		for _, ev := range g.events(h, 4) {
			got = append(got, fmt.Sprintf("%s %s@%d prev=%q", ev.Type, ev.Kv.Key, ev.Kv.ModRevision, ev.PrevKv.GetValue()))
		}
		want := []string{`PUT /gw/w@2 prev=""`, `PUT /gw/other@3 prev=""`, `PUT /gw/w@4 prev="1"`, `DELETE /gw/w@5 prev="2"`}
		if !slices.Equal(got, want) {
			g.t.Errorf("history: %q, want %q", got, want)
		}
	})
}

// TestGatewayWatchWebsocket holds /v3/watch open as a websocket, as a
// browser does: each websocket message is a request, each answer a
// message.
func TestGatewayWatchWebsocket(t *testing.T) {
	gwEachBackend(t, func(g *gwSession) {
		ctx := reqCtx(g.t)
		conn, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+g.tg.Endpoint+"/v3/watch", nil)
		if err != nil {
			g.t.Fatalf("websocket: %v", err)
		}
		resp.Body.Close()
		defer conn.Close()
		deadline, _ := ctx.Deadline()
		_ = conn.SetReadDeadline(deadline)
		read := func(label string) *pb.WatchResponse {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				g.t.Fatalf("websocket read: %v", err)
			}
			g.record(label, gwMask(string(msg), gwAlwaysMasked))
			return watchMessage(g.t, string(msg))
		}
		req := fmt.Sprintf(`{"create_request":{"key":%q}}`, b64("/gw/ws"))
		if err := conn.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
			g.t.Fatal(err)
		}
		if !read("created").Created {
			g.t.Fatal("first message is not created")
		}
		g.tg.put(g.t, "/gw/ws", "v")
		if ev := read("event").Events; len(ev) != 1 || string(ev[0].Kv.Value) != "v" {
			g.t.Errorf("event %v, want the put of v", ev)
		}
	})
}

// TestGatewayServices reads the member's status and its member list
// through the gateway.
func TestGatewayServices(t *testing.T) {
	gwEachBackend(t, func(g *gwSession) {
		// etcd reports its storage version as its version's major.minor
		// once it has settled it (after none, then its data's older one),
		// a moment after it starts.
		for deadline := time.Now().Add(opTimeout); ; time.Sleep(50 * time.Millisecond) {
			var status pb.StatusResponse
			r := g.do(http.MethodPost, "/v3/maintenance/status", "{}")
			if err := protojson.Unmarshal(r.body, &status); err != nil {
				g.t.Fatalf("status: %d %s: %v", r.status, r.body, err)
			}
			v := mustSemver(g.t, status.Version)
			if status.StorageVersion == fmt.Sprintf("%d.%d.0", v.Major, v.Minor) || time.Now().After(deadline) {
				break
			}
		}
		var status pb.StatusResponse
		g.call("/v3/maintenance/status", `{}`, &status,
			"version", "dbSize", "dbSizeInUse", "leader", "raftIndex", "raftTerm", "raftAppliedIndex")
		if status.Leader == 0 || status.Leader != status.Header.MemberId || status.DbSize == 0 {
			g.t.Errorf("status: leader %d, member %d, db size %d; want itself and a size", status.Leader, status.Header.MemberId, status.DbSize)
		}
		var members pb.MemberListResponse
		g.call("/v3/cluster/member/list", `{}`, &members, "ID", "peerURLs", "clientURLs")
		if len(members.Members) != 1 || !slices.Contains(members.Members[0].ClientURLs, g.base) {
			g.t.Errorf("members %v, want one serving %s", members.Members, g.base)
		}
	}, withDataDir())
}

// TestGatewayBadRequests sends what the gateway refuses, or ignores, and
// the paths it does not have.
func TestGatewayBadRequests(t *testing.T) {
	key := b64("/gw/k")
	gwEachBackend(t, func(g *gwSession) {
		g.fail(http.MethodPost, "/v3/kv/range", `{"key":`, http.StatusBadRequest, 3, "unexpected EOF")
		g.fail(http.MethodPost, "/v3/kv/put", `{"key":12}`, http.StatusBadRequest, 3, "proto: (line 1:8): invalid value for bytes field key: 12")
		g.fail(http.MethodPost, "/v3/kv/put", `not json`, http.StatusBadRequest, 3, "invalid character 'o' in literal null (expecting 'u')")
		g.fail(http.MethodPost, "/v3/kv/range", ``, http.StatusBadRequest, 3, "etcdserver: key is not provided")
		g.fail(http.MethodGet, "/v3/kv/range", ``, http.StatusNotImplemented, 12, "Method Not Allowed")
		g.fail(http.MethodPost, "/v3/kv/nothing", `{}`, http.StatusNotFound, 5, "Not Found")
		g.fail(http.MethodPost, "/v3/nothing", `{}`, http.StatusNotFound, 5, "Not Found")
		// Unknown fields are ignored; /v3beta/ is the old name of /v3/.
		var put pb.PutResponse
		g.call("/v3/kv/put", fmt.Sprintf(`{"key":%q,"value":"eA==","no_such_field":[1,2]}`, key), &put)
		var rng pb.RangeResponse
		g.call("/v3beta/kv/range", fmt.Sprintf(`{"key":%q}`, key), &rng)
		if len(rng.Kvs) != 1 {
			g.t.Errorf("/v3beta/kv/range: %s, want the key", kvSummary(rng.Kvs))
		}
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/nothing"},
			{http.MethodOptions, "/v3/kv/range"},
		} {
			r := g.do(c.method, c.path, "")
			g.record(c.method+" "+c.path, gwRender(r))
		}
		r := g.do(http.MethodOptions, "/v3/kv/put", "")
		if r.status != http.StatusOK || len(r.body) != 0 || r.header.Get("Access-Control-Allow-Origin") != "*" {
			g.t.Errorf("OPTIONS: %d %v %q, want 200 allowing any origin, no body", r.status, r.header, r.body)
		}
	})
}

// TestGatewayClose closes MetaStore with a JSON watch stream, a websocket
// watch and a connection that never said anything open: the stream is
// ended by the server (a last message, then a clean end of the response,
// not a cut connection), every connection is closed, and no goroutine of
// the rpc package outlives Close.
func TestGatewayClose(t *testing.T) {
	cfg := rpc.DefaultConfig()
	cfg.ListenClientURLs = []string{"http://127.0.0.1:0"}
	cfg.ListenMetricsURLs = []string{"http://127.0.0.1:0"}
	cfg.InMemory = true
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := rpc.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := strings.TrimPrefix(srv.ClientURLs()[0], "http://")
	metrics := strings.TrimPrefix(srv.MetricsURLs()[0], "http://")

	stream := openHTTPStream(t, "http://"+endpoint+"/v3/watch", fmt.Sprintf(`{"create_request":{"key":%q}}`, b64("k")))
	if !watchMessage(t, stream.next()).Created {
		t.Fatal("watch not created")
	}
	ws, resp, err := websocket.DefaultDialer.DialContext(reqCtx(t), "ws://"+endpoint+"/v3/watch", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	resp.Body.Close()
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"create_request":{"key":"aw=="}}`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || !watchMessage(t, string(msg)).Created {
		t.Fatalf("websocket watch not created: %s %v", msg, err)
	}
	var silent []net.Conn
	for _, addr := range []string{endpoint, metrics} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(opTimeout):
		t.Fatal("Close did not return")
	}

	last := stream.next()
	if !strings.Contains(last, `"error"`) || !strings.Contains(last, "etcdserver: server stopped") {
		t.Errorf("last message of the stream %s, want the server's stop", last)
	}
	if rest, err := io.ReadAll(stream.lines); err != nil || len(rest) != 0 {
		t.Errorf("after the last message: %q, %v; want a clean end", rest, err)
	}
	// The websocket gets the same last message, then is closed.
	_ = ws.SetReadDeadline(time.Now().Add(opTimeout))
	var wsLast string
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			break
		}
		wsLast = string(msg)
	}
	if wsLast != last {
		t.Errorf("last websocket message %s, want %s", wsLast, last)
	}
	for _, c := range silent {
		_ = c.SetReadDeadline(time.Now().Add(opTimeout))
		// Reset if Close came before the connection was accepted.
		if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection to %s still open after Close: read %d, %v", c.RemoteAddr(), n, err)
		}
	}
	if c, err := net.Dial("tcp", metrics); err == nil {
		c.Close()
		t.Errorf("metrics listener %s still accepts after Close", metrics)
	}
	waitNoGoroutines(t, "github.com/metastore/metastore/rpc.")
}

// waitNoGoroutines waits until no goroutine runs a function whose name
// starts with prefix, and fails with their stacks if some still do after
// opTimeout.
func waitNoGoroutines(t *testing.T, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	for {
		var left []string
		buf := make([]byte, 1<<22)
		for stack := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(stack, "\n"+prefix) && !strings.Contains(stack, "waitNoGoroutines") {
				left = append(left, stack)
			}
		}
		if len(left) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d goroutines of %s left after Close:\n%s", len(left), prefix, strings.Join(left, "\n\n"))
		case <-time.After(10 * time.Millisecond):
		}
	}
}
