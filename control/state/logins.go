package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"weft.dev/weft/wire/key"
)

// LoginTTL is how long an interactive login waits for approval (headscale's
// register_cache_expiration default).
const LoginTTL = 15 * time.Minute

// pendingLogin is an interactive registration waiting for an admin.
type pendingLogin struct {
	id      string
	params  RegisterParams // UserID filled on approval
	created time.Time
	done    chan struct{} // closed when node or err is set
	node    *Node
	err     error
}

// PendingLogin describes a login waiting for approval.
type PendingLogin struct {
	ID       string
	Hostname string
	NodeKey  key.NodePublic
	Created  time.Time
}

// StartLogin records an interactive login for p (UserID ignored) and returns
// its ID, used in the URL shown to the user. A node key that already has a
// live pending login gets the same ID back.
func (s *State) StartLogin(p RegisterParams) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	s.gcLoginsLocked(now)
	for _, l := range s.logins {
		if l.params.NodeKey == p.NodeKey && l.params.MachineKey == p.MachineKey && l.node == nil && l.err == nil {
			return l.id
		}
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	id := hex.EncodeToString(b)
	s.logins[id] = &pendingLogin{id: id, params: p, created: now, done: make(chan struct{})}
	return id
}

func (s *State) gcLoginsLocked(now time.Time) {
	for id, l := range s.logins {
		if now.Sub(l.created) > LoginTTL {
			delete(s.logins, id)
		}
	}
}

// WaitLogin blocks until login id is approved (returning the node), fails,
// or ctx ends. ok is false when the login is unknown or expired, or belongs
// to another machine.
func (s *State) WaitLogin(ctx context.Context, id string, machine key.MachinePublic) (n *Node, ok bool, err error) {
	s.mu.Lock()
	l := s.logins[id]
	s.mu.Unlock()
	if l == nil || l.params.MachineKey != machine {
		return nil, false, nil
	}
	select {
	case <-l.done:
		return l.node, true, l.err
	case <-ctx.Done():
		return nil, true, ctx.Err()
	}
}

// ApproveLogin registers the node of login id for the named user.
func (s *State) ApproveLogin(ctx context.Context, id, userName string) (*Node, error) {
	u, ok := s.UserByName(userName)
	if !ok {
		return nil, fmt.Errorf("user %q: %w (create it with: weft-control users create %s)", userName, ErrNotFound, userName)
	}
	s.mu.Lock()
	l := s.logins[id]
	if l != nil && (l.node != nil || l.err != nil) {
		l = nil
	}
	if l != nil {
		delete(s.logins, id) // nobody else may approve it concurrently
	}
	s.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("login %q: %w (it may have expired after %s; list waiting logins with: weft-control nodes pending)", id, ErrNotFound, LoginTTL)
	}
	p := l.params
	p.UserID = u.ID
	n, err := s.Register(ctx, p)
	l.node, l.err = n, err
	close(l.done)
	return n, err
}

// PendingLogins lists logins waiting for approval, oldest first.
func (s *State) PendingLogins() []PendingLogin {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gcLoginsLocked(s.cfg.Clock.Now())
	var out []PendingLogin
	for _, l := range s.logins {
		out = append(out, PendingLogin{ID: l.id, Hostname: l.params.Hostname, NodeKey: l.params.NodeKey, Created: l.created})
	}
	slices.SortFunc(out, func(a, b PendingLogin) int { return a.Created.Compare(b.Created) })
	return out
}
