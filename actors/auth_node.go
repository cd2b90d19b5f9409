package actors

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/actors/auth"
)

// AuthState returns the newest durable auth state, to check a request
// against; it never waits.
func (n *Node) AuthState() *auth.State { return n.authState.State() }

// AuthWrite returns the newest auth state to check a write against, and
// done, to call once the write is answered (see auth.Published.Enter).
func (n *Node) AuthWrite() (*auth.State, func()) { return n.authState.Enter() }

// AuthToken returns who a token names, checked against auth state s
// (false: unknown, expired, ended, or badly signed).
func (n *Node) AuthToken(token string, s *auth.State) (auth.Info, bool) {
	return n.authState.Token(token, s)
}

// AuthChange makes one auth change (see auth.Change) for who and returns
// once it is durable and every later request is checked against it. If ctx
// ends first it returns ctx.Err(), and the change may still be made.
func (n *Node) AuthChange(ctx context.Context, who auth.Info, req proto.Message) error {
	if err := n.revs.Failure(); err != nil {
		return err
	}
	reply := make(chan error, 1)
	n.system.Root.Send(n.auth, &auth.Change{Req: req, Who: who, Reply: reply})
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AuthAssign issues a token for user, whose password the caller checked
// against the state at auth revision rev; auth.IsStale(err) says the state
// has changed since, and the check must be made again.
func (n *Node) AuthAssign(ctx context.Context, user string, rev uint64) (string, error) {
	reply := make(chan auth.Assigned, 1)
	n.system.Root.Send(n.auth, &auth.Assign{User: user, Revision: rev, Reply: reply})
	select {
	case a := <-reply:
		return a.Token, a.Err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
