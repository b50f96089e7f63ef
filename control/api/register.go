package api

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// followupWait bounds how long a Followup register request is held before
// the client gets a fresh AuthURL to wait on (headscale answers likewise).
const followupWait = 5 * time.Minute

// register decides what a RegisterRequest is (control.md §4.5) and answers it.
// Failures the user must see go in RegisterResponse.Error; err is only for
// internal failures.
func (s *Server) register(ctx context.Context, machine key.MachinePublic, req *ctrl.RegisterRequest) ctrl.RegisterResponse {
	now := s.state.Now()
	hostname, hostinfo, routes := hostinfoParts(req.Hostinfo)
	log := s.log.With("machine", machine.ShortString(), "nodekey", req.NodeKey.ShortString(), "host", hostname)
	s.metrics.registrations.Inc()

	if req.NodeKey.IsZero() {
		return errResp("register: empty node key")
	}

	// Logout (or "expire sooner"): a non-zero expiry. Checked before the
	// auth key, which a logout may still carry (control.md §4.3).
	if !req.Expiry.IsZero() {
		n, ok := s.state.NodeByKey(req.NodeKey)
		if !ok || n.MachineKey != machine {
			return ctrl.RegisterResponse{NodeKeyExpired: true}
		}
		if req.Expiry.After(now) {
			if !n.Expiry.IsZero() && req.Expiry.After(n.Expiry) {
				return errResp("extending the key expiry is not allowed")
			}
			if _, err := s.state.Expire(ctx, n.ID, req.Expiry); err != nil {
				return errResp(err.Error())
			}
			return s.success(n)
		}
		if n.Ephemeral {
			if err := s.state.Delete(ctx, n.ID); err != nil {
				log.Warn("logout: delete ephemeral node", "err", err)
			}
		} else if _, err := s.state.Expire(ctx, n.ID, now); err != nil {
			log.Warn("logout: expire node", "err", err)
		}
		log.Info("node logged out", "node", n.ID)
		return ctrl.RegisterResponse{NodeKeyExpired: true}
	}

	// Waiting on an interactive login.
	if req.Followup != "" {
		id := loginIDFromURL(req.Followup)
		wctx, cancel := context.WithTimeout(ctx, followupWait)
		n, ok, err := s.state.WaitLogin(wctx, id, machine)
		cancel()
		switch {
		case ok && err == nil && n != nil:
			return s.success(n)
		case ok && err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
			return errResp("login failed: " + err.Error())
		}
		if ctx.Err() != nil {
			return errResp("request cancelled")
		}
		// Expired, unknown, or still waiting: start (or reuse) a login and
		// hand out its URL again.
	}

	// Key rotation.
	if !req.OldNodeKey.IsZero() {
		if n, ok := s.state.NodeByKey(req.OldNodeKey); ok && n.MachineKey == machine {
			var useKey int64
			if n.IsExpired(now) || req.Auth != nil && req.Auth.AuthKey != "" {
				// An expired node needs fresh authorisation, and a key
				// that is presented must be valid (and is spent).
				if req.Auth == nil || req.Auth.AuthKey == "" {
					return s.startLogin(machine, req, hostname, hostinfo, routes)
				}
				k, err := s.state.CheckPreAuthKey(ctx, req.Auth.AuthKey)
				if err != nil {
					return errResp(authKeyMessage(err))
				}
				if k.UserID != n.UserID {
					return s.registerWithKey(ctx, machine, req, k, hostname, hostinfo, routes)
				}
				if !k.Reusable {
					useKey = k.ID
				}
			}
			n2, err := s.state.RotateKey(ctx, n.ID, req.NodeKey, s.newKeyExpiry(), useKey)
			if errors.Is(err, store.ErrConflict) && useKey != 0 {
				return errResp(authKeyMessage(state.ErrKeyUsed))
			}
			if err != nil {
				return errResp("rotate key: " + err.Error())
			}
			log.Info("node key rotated", "node", n.ID)
			return s.success(n2)
		}
	}

	// Restart of a known node.
	if n, ok := s.state.NodeByKey(req.NodeKey); ok {
		if n.MachineKey != machine {
			return errResp("this node key belongs to another machine")
		}
		if n.IsExpired(now) {
			return ctrl.RegisterResponse{NodeKeyExpired: true}
		}
		return s.success(n)
	}

	if req.Auth != nil && req.Auth.AuthKey != "" {
		k, err := s.state.CheckPreAuthKey(ctx, req.Auth.AuthKey)
		if err != nil {
			log.Info("registration refused", "err", err)
			return errResp(authKeyMessage(err))
		}
		return s.registerWithKey(ctx, machine, req, k, hostname, hostinfo, routes)
	}
	return s.startLogin(machine, req, hostname, hostinfo, routes)
}

func (s *Server) registerWithKey(ctx context.Context, machine key.MachinePublic, req *ctrl.RegisterRequest, k store.PreAuthKey, hostname string, hostinfo []byte, routes []netip.Prefix) ctrl.RegisterResponse {
	n, err := s.state.Register(ctx, state.RegisterParams{
		MachineKey: machine, NodeKey: req.NodeKey, UserID: k.UserID,
		Hostname: hostname, Hostinfo: hostinfo, Tags: k.Tags, Expiry: s.newKeyExpiry(),
		Ephemeral: k.Ephemeral, AuthKey: &k, AdvertisedRoutes: routes,
		RequestTags: requestTags(req.Hostinfo),
	})
	if errors.Is(err, store.ErrConflict) && !k.Reusable {
		return errResp(authKeyMessage(state.ErrKeyUsed))
	}
	if err != nil {
		return errResp("registration failed: " + err.Error())
	}
	return s.success(n)
}

func (s *Server) startLogin(machine key.MachinePublic, req *ctrl.RegisterRequest, hostname string, hostinfo []byte, routes []netip.Prefix) ctrl.RegisterResponse {
	id := s.state.StartLogin(state.RegisterParams{
		MachineKey: machine, NodeKey: req.NodeKey, Hostname: hostname,
		Hostinfo: hostinfo, AdvertisedRoutes: routes, Expiry: s.newKeyExpiry(),
	})
	s.log.Info("interactive login started", "id", id, "host", hostname, "approve", "weft-control nodes register --user USER "+id)
	return ctrl.RegisterResponse{AuthURL: s.cfg.ServerURL + "/register/" + id}
}

func (s *Server) success(n *state.Node) ctrl.RegisterResponse {
	u, _ := s.state.User(n.UserID)
	return ctrl.RegisterResponse{
		User:              ctrl.User{ID: ctrl.UserID(u.ID), DisplayName: u.DisplayName, Created: u.CreatedAt},
		Login:             ctrl.Login{ID: ctrl.LoginID(u.ID), Provider: "weft", LoginName: u.Name, DisplayName: u.DisplayName},
		MachineAuthorized: true,
	}
}

// newKeyExpiry is the expiry of a node key registered now: never (zero)
// unless --node-key-expiry is set. Tagged nodes expire likewise; Tailscale
// exempts them, but an admin who asks for expiry gets it everywhere.
func (s *Server) newKeyExpiry() time.Time {
	if s.cfg.NodeKeyExpiry <= 0 {
		return time.Time{}
	}
	return s.state.Now().Add(s.cfg.NodeKeyExpiry)
}

func errResp(msg string) ctrl.RegisterResponse { return ctrl.RegisterResponse{Error: msg} }

// authKeyMessage is what `tailscale up` prints for a refused key: what is
// wrong and what to do.
func authKeyMessage(err error) string {
	switch {
	case errors.Is(err, state.ErrKeyInvalid):
		return "invalid auth key: the key is unknown to this server; create one with: weft-control keys create --user USER"
	case errors.Is(err, state.ErrKeyExpired):
		return "auth key expired: create a new one with: weft-control keys create --user USER"
	case errors.Is(err, state.ErrKeyUsed):
		return "auth key already used: it was single-use; create a new one (or a --reusable one) with: weft-control keys create --user USER"
	}
	return "auth key check failed: " + err.Error()
}

func loginIDFromURL(u string) string {
	if i := strings.LastIndex(u, "/register/"); i >= 0 {
		return u[i+len("/register/"):]
	}
	return ""
}

// hostinfoParts extracts what the server stores from a client Hostinfo:
// the hostname, the JSON to echo to peers (without NetInfo, which changes
// constantly and is not needed by peers), and advertised routes.
func hostinfoParts(hi *ctrl.Hostinfo) (hostname string, raw []byte, routes []netip.Prefix) {
	if hi == nil {
		return "", nil, nil
	}
	c := *hi
	c.NetInfo = nil
	c.Raw = nil
	raw, err := c.JSON()
	if err != nil {
		raw = nil
	}
	routes = hi.RoutableIPs
	if routes == nil {
		routes = []netip.Prefix{}
	}
	return hi.Hostname, raw, routes
}

// requestTags returns the tags the client asks for with --advertise-tags.
func requestTags(hi *ctrl.Hostinfo) []string {
	if hi == nil {
		return nil
	}
	return hi.RequestTags
}

func stableID(id int64) ctrl.StableNodeID { return ctrl.StableNodeID(strconv.FormatInt(id, 10)) }
