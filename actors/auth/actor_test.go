package auth

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors/msg"
)

// harness runs the auth actor against a fake sequencer that hands every
// LogAuth to the test, which answers it (the log made it durable, or
// failed) when it chooses.
type harness struct {
	t    *testing.T
	root *actor.RootContext
	pid  *actor.PID
	pub  *Published
	logs chan *msg.LogAuth
}

const wait = 10 * time.Second

func startActor(t *testing.T, ttl time.Duration) *harness {
	t.Helper()
	pub, err := NewPublished(nil, "simple", ttl)
	if err != nil {
		t.Fatal(err)
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	h := &harness{t: t, root: system.Root, pub: pub, logs: make(chan *msg.LogAuth, 64)}
	seq := h.root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*msg.LogAuth); ok {
			h.logs <- m
		}
	}))
	h.pid = h.root.Spawn(Props(Config{Published: pub, Sequencer: seq}))
	t.Cleanup(func() {
		_ = h.root.StopFuture(h.pid).Wait()
		_ = h.root.StopFuture(seq).Wait()
	})
	return h
}

// send sends a change as root and returns the channel of its answer.
func (h *harness) send(req proto.Message) chan error {
	return h.sendAs(Info{User: RootUser}, req)
}

// sendAs sends a change made by who.
func (h *harness) sendAs(who Info, req proto.Message) chan error {
	reply := make(chan error, 1)
	h.root.Send(h.pid, &Change{Req: req, Who: who, Reply: reply})
	return reply
}

// nextLog returns the next LogAuth the actor sent.
func (h *harness) nextLog() *msg.LogAuth {
	h.t.Helper()
	select {
	case m := <-h.logs:
		return m
	case <-time.After(wait):
		h.t.Fatal("no LogAuth")
		return nil
	}
}

func (h *harness) answer(reply chan error) error {
	h.t.Helper()
	select {
	case err := <-reply:
		return err
	case <-time.After(wait):
		h.t.Fatal("no answer")
		return nil
	}
}

// notYet checks that reply has no answer for a while.
func (h *harness) notYet(reply chan error) {
	h.t.Helper()
	select {
	case err := <-reply:
		h.t.Fatalf("answered (%v) before the log did", err)
	case <-time.After(50 * time.Millisecond):
	}
}

// do makes changes that must succeed, each made durable at once.
func (h *harness) do(reqs ...proto.Message) {
	h.t.Helper()
	for _, req := range reqs {
		reply := h.send(req)
		h.nextLog().Reply(nil)
		if err := h.answer(reply); err != nil {
			h.t.Fatalf("%T %v: %v", req, req, err)
		}
	}
}

func (h *harness) assign(user string, rev uint64) Assigned {
	h.t.Helper()
	reply := make(chan Assigned, 1)
	h.root.Send(h.pid, &Assign{User: user, Revision: rev, Reply: reply})
	select {
	case a := <-reply:
		return a
	case <-time.After(wait):
		h.t.Fatal("no answer to Assign")
		return Assigned{}
	}
}

// token returns a token for user at the published revision.
func (h *harness) token(user string) string {
	h.t.Helper()
	a := h.assign(user, h.pub.State().Revision())
	if a.Err != nil {
		h.t.Fatalf("Assign(%s): %v", user, a.Err)
	}
	return a.Token
}

func (h *harness) valid(token string) bool {
	_, ok := h.pub.Token(token, h.pub.State())
	return ok
}

// enabled sets up root, alice and bob, and turns auth on.
func (h *harness) enabled() {
	h.t.Helper()
	h.do(addRoot, grantRoot, addUser("alice"), addUser("bob"), enable)
}

// TestChangeAnsweredOnceDurable: a change is logged with its records and
// answered only once the log says they are durable; the published state
// changes then, not before, and changes publish in the order made.
func TestChangeAnsweredOnceDurable(t *testing.T) {
	h := startActor(t, 0)
	first, second := h.send(addUser("alice")), h.send(addRole("ro"))
	log1, log2 := h.nextLog(), h.nextLog()
	if len(log1.Records) != 2 || log1.Records[0].Key != "u/alice" || log1.Records[1].Key != keyRevision {
		t.Fatalf("first LogAuth %v, want alice and the revision", log1.Records)
	}
	if len(log2.Records) != 2 || log2.Records[0].Key != "r/ro" {
		t.Fatalf("second LogAuth %v, want ro and the revision", log2.Records)
	}
	h.notYet(first)
	if s := h.pub.State(); s.Revision() != 1 || len(s.Users()) != 0 {
		t.Fatalf("published before durable: revision %d, users %q", s.Revision(), s.Users())
	}
	log1.Reply(nil)
	if err := h.answer(first); err != nil {
		t.Fatal(err)
	}
	if s := h.pub.State(); s.Revision() != 2 || len(s.Users()) != 1 || len(s.Roles()) != 0 {
		t.Fatalf("after the first: revision %d, users %q, roles %q; want 2, alice, none", s.Revision(), s.Users(), s.Roles())
	}
	h.notYet(second)
	log2.Reply(nil)
	if err := h.answer(second); err != nil {
		t.Fatal(err)
	}
	if s := h.pub.State(); s.Revision() != 3 || len(s.Roles()) != 1 {
		t.Fatalf("after the second: revision %d, roles %q; want 3, ro", s.Revision(), s.Roles())
	}
}

func TestFailedLogKeepsPublishedState(t *testing.T) {
	h := startActor(t, 0)
	before := h.pub.State()
	reply := h.send(addUser("alice"))
	eio := errors.New("EIO")
	h.nextLog().Reply(eio)
	if err := h.answer(reply); err != eio {
		t.Fatalf("answer %v, want the log's %v", err, eio)
	}
	if s := h.pub.State(); s != before || s.Revision() != 1 || len(s.Users()) != 0 {
		t.Fatalf("published after a failed log: revision %d, users %q", s.Revision(), s.Users())
	}
}

// TestRefusedChangeIsNotLogged: a change the core refuses is answered at
// once with its error and sent to no log.
func TestRefusedChangeIsNotLogged(t *testing.T) {
	h := startActor(t, 0)
	if err := h.answer(h.send(&pb.AuthUserDeleteRequest{Name: "alice"})); err != ErrUserNotFound {
		t.Fatalf("%v, want %v", err, ErrUserNotFound)
	}
	if err := h.answer(h.send(enable)); err != ErrRootUserNotExist {
		t.Fatalf("%v, want %v", err, ErrRootUserNotExist)
	}
	select {
	case m := <-h.logs:
		t.Fatalf("logged %v", m.Records)
	default:
	}
}

// TestChangeCheckedInOrder: a change is checked against the state the
// changes before it leave, durable or not, as etcd checks at apply. While
// bob's demotion is being made durable (the published state still says he
// is root), bob cannot grant himself root again; nobody can change
// anything once an AuthEnable is under way.
func TestChangeCheckedInOrder(t *testing.T) {
	h := startActor(t, 0)
	h.enabled()
	h.do(&pb.AuthUserGrantRoleRequest{User: "bob", Role: RootRole})
	bob := Info{User: "bob", Revision: h.pub.State().Revision()}
	demoted := h.send(&pb.AuthUserRevokeRoleRequest{Name: "bob", Role: RootRole})
	held := h.nextLog()
	if !h.pub.State().HasRole("bob", RootRole) {
		t.Fatal("the demotion was published before it was durable")
	}
	if err := h.answer(h.sendAs(bob, &pb.AuthUserGrantRoleRequest{User: "bob", Role: RootRole})); err != ErrPermissionDenied {
		t.Fatalf("bob re-granting root while his demotion is logged: %v, want %v", err, ErrPermissionDenied)
	}
	if err := h.answer(h.sendAs(Info{}, &pb.AuthRoleAddRequest{Name: "r"})); err != ErrUserEmpty {
		t.Fatalf("nobody adding a role with auth on: %v, want %v", err, ErrUserEmpty)
	}
	held.Reply(nil)
	if err := h.answer(demoted); err != nil {
		t.Fatal(err)
	}
	if h.pub.State().HasRole("bob", RootRole) {
		t.Fatal("bob is root after his demotion")
	}
}

// TestChangeWaitsForWrites: a change is answered only once the writes
// checked against the state it replaces are done, so that none of them
// lands after the answer; writes checked after it was published do not
// hold it up.
func TestChangeWaitsForWrites(t *testing.T) {
	h := startActor(t, 0)
	h.enabled()
	before, done := h.pub.Enter()
	reply := h.send(&pb.AuthRoleAddRequest{Name: "r"})
	h.nextLog().Reply(nil)
	h.notYet(reply)
	after, doneAfter := h.pub.Enter()
	defer doneAfter()
	if after == before || after.Revision() != before.Revision()+1 {
		t.Fatalf("a write after the change is published is checked at revision %d, want %d", after.Revision(), before.Revision()+1)
	}
	h.notYet(reply)
	done()
	if err := h.answer(reply); err != nil {
		t.Fatal(err)
	}
}

// TestNoOpChangeWaitsForTheLog: a change that changes nothing is still
// answered only after the log, with nothing to log and nothing published.
func TestNoOpChangeWaitsForTheLog(t *testing.T) {
	h := startActor(t, 0)
	h.do(addUser("alice"), addRole("ro"), grantRole("alice", "ro"))
	before := h.pub.State()
	reply := h.send(grantRole("alice", "ro"))
	m := h.nextLog()
	if len(m.Records) != 0 {
		t.Fatalf("logged %v for a grant already held", m.Records)
	}
	h.notYet(reply)
	m.Reply(nil)
	if err := h.answer(reply); err != nil {
		t.Fatal(err)
	}
	if h.pub.State() != before {
		t.Fatal("a change that changed nothing published a new state")
	}
}

func TestAssign(t *testing.T) {
	h := startActor(t, 0)
	h.do(addRoot, grantRoot, addUser("alice"), &pb.AuthUserAddRequest{Name: "bot", Options: &authpb.UserAddOptions{NoPassword: true}})
	off := h.pub.State().Revision()
	if a := h.assign("alice", off); a.Err != ErrAuthNotEnabled {
		t.Fatalf("Assign with auth off: %+v, want %v", a, ErrAuthNotEnabled)
	}
	h.do(enable)
	rev := h.pub.State().Revision()
	tests := []struct {
		name string
		user string
		rev  uint64
		err  error
	}{
		{"alice", "alice", rev, nil},
		{"root", RootUser, rev, nil},
		{"unknown user", "carol", rev, ErrAuthFailed},
		{"no-password user", "bot", rev, ErrAuthFailed},
		{"stale revision", "alice", rev - 1, errStale},
		{"future revision", "alice", rev + 1, errStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.assign(tt.user, tt.rev)
			if a.Err != tt.err {
				t.Fatalf("%+v, want %v", a, tt.err)
			}
			if IsStale(a.Err) != (tt.err == errStale) {
				t.Fatalf("IsStale(%v) = %v", a.Err, IsStale(a.Err))
			}
			if tt.err != nil {
				if a.Token != "" {
					t.Fatalf("token %q with error %v", a.Token, a.Err)
				}
				return
			}
			if who, ok := h.pub.Token(a.Token, h.pub.State()); !ok || who != (Info{User: tt.user, Revision: rev}) {
				t.Fatalf("Token: %+v, %v; want %s at %d", who, ok, tt.user, rev)
			}
		})
	}
}

// TestChangesEndTokens: deleting a user or changing a password ends that
// user's tokens at once; turning auth off ends every token once durable;
// other changes end none.
func TestChangesEndTokens(t *testing.T) {
	tests := []struct {
		name       string
		req        proto.Message
		atOnce     map[string]bool // which users' tokens still work before the change is durable
		afterwards map[string]bool // and after
	}{
		{"user delete", &pb.AuthUserDeleteRequest{Name: "alice"},
			map[string]bool{"alice": false, "bob": true}, map[string]bool{"alice": false, "bob": true}},
		{"change password", &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hashOf("new")},
			map[string]bool{"alice": false, "bob": true}, map[string]bool{"alice": false, "bob": true}},
		{"grant role", grantRole("alice", RootRole),
			map[string]bool{"alice": true, "bob": true}, map[string]bool{"alice": true, "bob": true}},
		{"auth disable", disable,
			map[string]bool{"alice": true, "bob": true}, map[string]bool{"alice": false, "bob": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startActor(t, 0)
			h.enabled()
			tokens := map[string]string{"alice": h.token("alice"), "bob": h.token("bob")}
			reply := h.send(tt.req)
			m := h.nextLog()
			// The actor handled the change once it logged it.
			for user, token := range tokens {
				if got := h.valid(token); got != tt.atOnce[user] {
					t.Errorf("before durable: %s's token valid %v, want %v", user, got, tt.atOnce[user])
				}
			}
			m.Reply(nil)
			if err := h.answer(reply); err != nil {
				t.Fatal(err)
			}
			for user, token := range tokens {
				if got := h.valid(token); got != tt.afterwards[user] {
					t.Errorf("once durable: %s's token valid %v, want %v", user, got, tt.afterwards[user])
				}
			}
		})
	}
}

// TestTokenIssuedWhileAChangeIsLoggedEnds: a password checked against the
// published state while a change that ends the user's tokens is being
// logged gets a token (the published state has not changed yet); that
// token must end with the change, or an old password outlives its change.
func TestTokenIssuedWhileAChangeIsLoggedEnds(t *testing.T) {
	for _, req := range []proto.Message{
		&pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: hashOf("new")},
		&pb.AuthUserDeleteRequest{Name: "alice"},
	} {
		t.Run(string(req.ProtoReflect().Descriptor().Name()), func(t *testing.T) {
			h := startActor(t, 0)
			h.enabled()
			checkedAt := h.pub.State().Revision() // the password was checked here
			reply := h.send(req)
			m := h.nextLog()
			a := h.assign("alice", checkedAt)
			m.Reply(nil)
			if err := h.answer(reply); err != nil {
				t.Fatal(err)
			}
			if a.Err != nil {
				return // refused: as good
			}
			if who, ok := h.pub.Token(a.Token, h.pub.State()); ok {
				t.Fatalf("a token issued for the old password while %T was logged still names %+v", req, who)
			}
		})
	}
}

// TestTokensExpireOnTheActorsTick: unused tokens leave the table by the
// actor's own sweep.
func TestTokensExpireOnTheActorsTick(t *testing.T) {
	h := startActor(t, 50*time.Millisecond)
	h.enabled()
	h.token("alice")
	table := h.pub.tokens.(*simpleTokens).table
	deadline := time.Now().Add(wait)
	for table.Size() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d tokens still held", table.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNewPublished rebuilds the published state from stored records.
func TestNewPublished(t *testing.T) {
	c := freshCore(t)
	stored := map[string][]byte{}
	mustApply(t, c, stored, rootOn...)
	p, err := NewPublished(stored, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if s := p.State(); !s.Enabled() || s.Revision() != c.revision || !s.HasRole(RootUser, RootRole) {
		t.Fatalf("published: enabled %v, revision %d, users %q; want the stored state", s.Enabled(), s.Revision(), s.Users())
	}
	if _, ok := p.Token("nope.1", p.State()); ok {
		t.Fatal("an unknown token names someone")
	}
	if _, err := NewPublished(map[string][]byte{"revision": {1}}, "", 0); err == nil {
		t.Fatal("corrupt records: no error")
	}
	if _, err := NewPublished(nil, "paseto", 0); !errors.Is(err, ErrInvalidAuthOpts) {
		t.Fatalf("bad token spec: %v, want %v", err, ErrInvalidAuthOpts)
	}
}
