package auth

import (
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors/msg"
)

// expireEvery is how often unused simple tokens are looked for (etcd's TTL
// keeper looks every second).
const expireEvery = time.Second

// Published is what readers of the auth state use: the newest durable
// State and the tokens. The auth actor is the single writer of both.
type Published struct {
	state  atomic.Pointer[State]
	tokens tokens
	// core is handed to the actor by Props; nothing else touches it.
	core *core
}

// NewPublished rebuilds the auth state from its stored records and
// publishes it, with the tokens --auth-token names (see newTokens) and the
// simple tokens' TTL (0: DefaultTokenTTL).
func NewPublished(stored map[string][]byte, tokenSpec string, tokenTTL time.Duration) (*Published, error) {
	c, err := newCore(stored)
	if err != nil {
		return nil, err
	}
	t, err := newTokens(tokenSpec, tokenTTL)
	if err != nil {
		return nil, err
	}
	p := &Published{tokens: t, core: c}
	p.state.Store(c.state())
	return p, nil
}

// State returns the newest durable auth state.
func (p *Published) State() *State { return p.state.Load() }

// Enter returns the newest state for checking a write, and done, to call
// once the write is answered. Until then the change that replaces the
// state waits before it is answered: once an auth change is answered, no
// write allowed by the state before it is still on its way, and a write
// can be taken to have happened before the change (etcd gets the same by
// checking writes where it applies them, in log order).
func (p *Published) Enter() (*State, func()) {
	for {
		s := p.state.Load()
		s.writing.Inc()
		if p.state.Load() == s {
			return s, s.writing.Dec
		}
		// Replaced meanwhile: the change may already be draining it.
		s.writing.Dec()
	}
}

// Token returns who a token names, checked against s (the state the
// request is checked against); false for a token unknown, expired, ended
// by a change, or badly signed.
func (p *Published) Token(token string, s *State) (Info, bool) {
	return p.tokens.info(token, s.revision)
}

// The requests the auth actor takes. Each answers on a buffered channel.
type (
	// Change asks for one auth change: Req is one of etcd's Auth requests
	// that change something (AuthEnable, AuthDisable, UserAdd with its
	// password already hashed, UserDelete, UserChangePassword, UserGrantRole,
	// UserRevokeRole, RoleAdd, RoleDelete, RoleGrantPermission,
	// RoleRevokePermission). It is answered once the change is durable
	// and published, with nil or one of the package's errors.
	//
	// Who is the caller: the change is refused unless it may make it in
	// the state the changes before it left (see core.admin).
	Change struct {
		Req   proto.Message
		Who   Info
		Reply chan<- error
	}
	// Assign asks for a token for User, whose password the caller checked
	// against the published State at auth Revision.
	Assign struct {
		User     string
		Revision uint64
		Reply    chan<- Assigned
	}
	// Assigned answers Assign: a token, or ErrAuthNotEnabled, ErrAuthFailed,
	// or (the state changed since the password was checked) a stale
	// answer that IsStale recognises.
	Assigned struct {
		Token string
		Err   error
	}
)

// IsStale reports whether an Assign was refused because the auth state
// changed after the password was checked: check it again and retry.
func IsStale(err error) bool { return err == errStale }

// Config is what the auth actor is built from.
type Config struct {
	// Published is where it publishes; it is the single writer.
	Published *Published
	// Sequencer logs the changes.
	Sequencer *actor.PID
}

// logged reports a change made durable (or not) back to the actor.
type logged struct {
	state   *State // nil: the change changed nothing
	disable bool
	// invalidate names the user whose tokens end again once the change is
	// durable: a token issued meanwhile (its password checked against the
	// state still published) must not outlive the change.
	invalidate string
	err        error
	reply      chan<- error
}

type expireTick struct{}

type authActor struct {
	cfg  Config
	core *core
	root *actor.RootContext
	self *actor.PID
	stop func()
}

// Props returns the props of the auth actor.
func Props(cfg Config) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &authActor{cfg: cfg, core: cfg.Published.core} })
}

func (a *authActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.root, a.self = ctx.ActorSystem().Root, ctx.Self()
		a.stop = msg.Tick(a.root, a.self, expireEvery, expireTick{})
	case *actor.Stopped:
		a.stop()
	case *Change:
		a.change(m)
	case logged:
		if m.err != nil || m.state == nil {
			m.reply <- m.err
			return
		}
		old := a.cfg.Published.state.Swap(m.state)
		if m.disable {
			a.cfg.Published.tokens.disable()
		}
		if m.invalidate != "" {
			a.cfg.Published.tokens.invalidate(m.invalidate)
		}
		// Answered once the writes the old state allowed are done, off
		// the actor's goroutine: the next change need not wait.
		go func() {
			old.drain()
			m.reply <- nil
		}()
	case *Assign:
		m.Reply <- a.assign(m)
	case expireTick:
		a.cfg.Published.tokens.expire(time.Now())
	}
}

// change applies a change to the core and has the sequencer make its
// records durable; the answer comes back as logged. A change that changes
// nothing still goes through the sequencer, empty, so that it is answered
// after the changes before it are durable.
func (a *authActor) change(m *Change) {
	if err := a.core.admin(m.Who); err != nil {
		m.Reply <- err
		return
	}
	recs, invalidate, err := a.core.apply(m.Req)
	if err != nil {
		m.Reply <- err
		return
	}
	if invalidate != "" {
		// At once, not only once durable: a deleted user's or an old
		// password's tokens must not work a moment longer than the change
		// takes. Tokens issued until it is durable end then (logged).
		a.cfg.Published.tokens.invalidate(invalidate)
	}
	done := logged{reply: m.Reply, invalidate: invalidate}
	if len(recs) > 0 {
		done.state = a.core.state()
		_, done.disable = m.Req.(*pb.AuthDisableRequest)
	}
	root, self := a.root, a.self
	a.root.Send(a.cfg.Sequencer, &msg.LogAuth{
		Records: recs,
		Reply: func(err error) {
			done.err = err
			root.Send(self, done)
		},
	})
}

// assign issues a token if the password was checked against the state
// published now, as etcd's Authenticate does.
func (a *authActor) assign(m *Assign) Assigned {
	s := a.cfg.Published.State()
	switch {
	case s.revision != m.Revision:
		return Assigned{Err: errStale}
	case !s.enabled:
		return Assigned{Err: ErrAuthNotEnabled}
	}
	u, ok := s.User(m.User)
	if !ok || (u.Options != nil && u.Options.NoPassword) {
		return Assigned{Err: ErrAuthFailed}
	}
	token, err := a.cfg.Published.tokens.assign(m.User, s.revision)
	return Assigned{Token: token, Err: err}
}
