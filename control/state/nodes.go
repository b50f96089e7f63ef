package state

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"weft.dev/weft/control/store"
	"weft.dev/weft/wire/key"
)

// RegisterParams describe a node login that control/api has authorised.
type RegisterParams struct {
	MachineKey key.MachinePublic
	NodeKey    key.NodePublic
	UserID     int64
	Hostname   string
	Hostinfo   json.RawMessage
	Tags       []string
	Ephemeral  bool
	Expiry     time.Time // zero: never
	// AuthKey is the pre-auth key used, if any; a single-use key is marked
	// used in the same transaction that creates the node.
	AuthKey *store.PreAuthKey
	// AdvertisedRoutes are the routes from Hostinfo.RoutableIPs.
	AdvertisedRoutes []netip.Prefix
	// RequestTags are the tags the client asks for (--advertise-tags,
	// Hostinfo.RequestTags). With Tags, they must be granted to the user
	// by the policy's tagOwners.
	RequestTags []string
}

// Register creates a node, or — when this machine already has a node of the
// same user (a re-login after logout or expiry) — gives that node the new key,
// keeping its ID, addresses and name.
func (s *State) Register(ctx context.Context, p RegisterParams) (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.byNodeKey[p.NodeKey]; ok && other.MachineKey != p.MachineKey {
		return nil, fmt.Errorf("node key %s is already in use by another machine", p.NodeKey.ShortString())
	}
	if _, ok := s.users[p.UserID]; !ok {
		return nil, fmt.Errorf("user %d: %w", p.UserID, ErrNotFound)
	}
	tags, err := s.nodeTagsLocked(p)
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", p.NodeKey.ShortString(), err)
	}
	p.Tags = tags
	useKey := int64(0)
	if p.AuthKey != nil && !p.AuthKey.Reusable {
		useKey = p.AuthKey.ID
	}
	now := s.cfg.Clock.Now()
	if old := s.reusableNodeLocked(p); old != nil {
		n := old.clone()
		n.NodeKey = p.NodeKey
		n.Expiry = p.Expiry
		n.Hostname = p.Hostname
		if p.Hostinfo != nil {
			n.Hostinfo = p.Hostinfo
		}
		if p.AdvertisedRoutes != nil {
			n.AdvertisedRoutes = p.AdvertisedRoutes
			s.autoApproveLocked(n)
		}
		if err := s.cfg.Store.UpdateNode(ctx, &n.Node, useKey); err != nil {
			return nil, fmt.Errorf("re-register node %d: %w", n.ID, err)
		}
		s.putLocked(n)
		s.emitLocked(Change{Kind: NodeChanged, NodeID: n.ID, Node: n, Old: old})
		s.log.Info("node re-registered", "node", n.ID, "name", n.GivenName, "nodekey", p.NodeKey.ShortString())
		return n, nil
	}
	v4, v6, err := s.ipam.Next()
	if err != nil {
		return nil, fmt.Errorf("allocate addresses: %w", err)
	}
	n := &Node{Node: store.Node{
		MachineKey:       p.MachineKey,
		NodeKey:          p.NodeKey,
		UserID:           p.UserID,
		Hostname:         p.Hostname,
		GivenName:        s.uniqueNameLocked(SanitizeLabel(p.Hostname), 0),
		IPv4:             v4,
		IPv6:             v6,
		Hostinfo:         p.Hostinfo,
		Tags:             slices.Clone(p.Tags),
		Ephemeral:        p.Ephemeral,
		Expiry:           p.Expiry,
		AdvertisedRoutes: p.AdvertisedRoutes,
		CreatedAt:        now,
		LastSeen:         now,
	}}
	if p.AuthKey != nil {
		n.AuthKeyID = p.AuthKey.ID
	}
	s.autoApproveLocked(n)
	if err := s.cfg.Store.CreateNode(ctx, &n.Node, useKey); err != nil {
		s.ipam.Release(v4)
		s.ipam.Release(v6)
		return nil, fmt.Errorf("register %s: %w", p.NodeKey.ShortString(), err)
	}
	s.putLocked(n)
	s.emitLocked(Change{Kind: NodeAdded, NodeID: n.ID, Node: n})
	s.log.Info("node registered", "node", n.ID, "name", n.GivenName, "ipv4", v4, "ipv6", v6, "nodekey", p.NodeKey.ShortString())
	return n, nil
}

// reusableNodeLocked finds this machine's existing node for the same owner.
func (s *State) reusableNodeLocked(p RegisterParams) *Node {
	var best *Node
	for _, n := range s.nodes {
		if n.MachineKey != p.MachineKey || n.UserID != p.UserID || n.IsTagged() != (len(p.Tags) > 0) {
			continue
		}
		if best == nil || n.ID > best.ID {
			best = n
		}
	}
	return best
}

// update applies f to a copy of node id, persists it when persist is set,
// publishes it and emits a change of the given kind.
func (s *State) update(ctx context.Context, id int64, kind ChangeKind, persist bool, f func(n *Node) error) (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(ctx, id, kind, persist, f)
}

func (s *State) updateLocked(ctx context.Context, id int64, kind ChangeKind, persist bool, f func(n *Node) error) (*Node, error) {
	old, ok := s.nodes[id]
	if !ok {
		return nil, fmt.Errorf("node %d: %w", id, ErrNotFound)
	}
	n := old.clone()
	if err := f(n); err != nil {
		return nil, err
	}
	if persist {
		if err := s.cfg.Store.UpdateNode(ctx, &n.Node, 0); err != nil {
			return nil, fmt.Errorf("update node %d: %w", id, err)
		}
	}
	s.putLocked(n)
	if kind != 0 {
		s.emitLocked(Change{Kind: kind, NodeID: id, Node: n, Old: old})
	}
	return n, nil
}

// RotateKey replaces node id's node key (OldNodeKey flow), keeping its ID,
// addresses and name. A single-use pre-auth key presented with the rotation
// (useKeyID non-zero) is spent in the same transaction.
func (s *State) RotateKey(ctx context.Context, id int64, newKey key.NodePublic, expiry time.Time, useKeyID int64) (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.byNodeKey[newKey]; ok && other.ID != id {
		return nil, fmt.Errorf("node key %s is already in use by node %d", newKey.ShortString(), other.ID)
	}
	return s.updateKeyLocked(ctx, id, useKeyID, func(n *Node) error {
		n.NodeKey = newKey
		n.Expiry = expiry
		return nil
	})
}

// updateKeyLocked is updateLocked for a whole-node change that may spend a
// single-use pre-auth key atomically with the node write.
func (s *State) updateKeyLocked(ctx context.Context, id, useKeyID int64, f func(n *Node) error) (*Node, error) {
	old, ok := s.nodes[id]
	if !ok {
		return nil, fmt.Errorf("node %d: %w", id, ErrNotFound)
	}
	n := old.clone()
	if err := f(n); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.UpdateNode(ctx, &n.Node, useKeyID); err != nil {
		return nil, fmt.Errorf("update node %d: %w", id, err)
	}
	s.putLocked(n)
	s.emitLocked(Change{Kind: NodeChanged, NodeID: id, Node: n, Old: old})
	return n, nil
}

// Expire sets node id's key expiry to at (admin "expire", client logout).
func (s *State) Expire(ctx context.Context, id int64, at time.Time) (*Node, error) {
	return s.update(ctx, id, NodeChanged, true, func(n *Node) error {
		n.Expiry = at
		return nil
	})
}

// Delete removes node id; its ID is never reused.
func (s *State) Delete(ctx context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[id]
	if !ok {
		return fmt.Errorf("node %d: %w", id, ErrNotFound)
	}
	if err := s.cfg.Store.DeleteNode(ctx, id); err != nil {
		return fmt.Errorf("delete node %d: %w", id, err)
	}
	s.removeLocked(n)
	s.emitLocked(Change{Kind: NodeRemoved, NodeID: id, Old: n})
	s.log.Info("node deleted", "node", id, "name", n.GivenName)
	return nil
}

// Rename gives node id a new DNS label; it fails if the name is invalid or
// taken.
func (s *State) Rename(ctx context.Context, id int64, name string) (*Node, error) {
	if !ValidLabel(name) {
		return nil, fmt.Errorf("invalid name %q: use lower-case letters, digits and '-' (at most 63), e.g. %q", name, SanitizeLabel(name))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.names[name]; ok && other != id {
		return nil, fmt.Errorf("name %q is already used by node %d", name, other)
	}
	return s.updateLocked(ctx, id, NodeChanged, true, func(n *Node) error {
		n.GivenName = name
		return nil
	})
}

// SetIP pins node id to ip (v4 or v6), releasing its previous address of that
// family. The address must be inside the configured prefix and free.
func (s *State) SetIP(ctx context.Context, id int64, ip netip.Addr) (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.nodes[id]
	if !ok {
		return nil, fmt.Errorf("node %d: %w", id, ErrNotFound)
	}
	cur := old.IPv6
	if ip.Is4() {
		cur = old.IPv4
	}
	if cur == ip {
		return old, nil
	}
	if err := s.ipam.Reserve(ip, false); err != nil {
		return nil, err
	}
	n, err := s.updateLocked(ctx, id, NodeChanged, true, func(n *Node) error {
		if ip.Is4() {
			n.IPv4 = ip
		} else {
			n.IPv6 = ip
		}
		return nil
	})
	if err != nil {
		s.ipam.Release(ip)
		return nil, err
	}
	s.ipam.Release(cur)
	return n, nil
}

// SetTags replaces node id's tags (validated by the caller against policy).
func (s *State) SetTags(ctx context.Context, id int64, tags []string) (*Node, error) {
	return s.update(ctx, id, NodeChanged, true, func(n *Node) error {
		n.Tags = slices.Clone(tags)
		return nil
	})
}

// SetApprovedRoutes replaces node id's approved routes.
func (s *State) SetApprovedRoutes(ctx context.Context, id int64, routes []netip.Prefix) (*Node, error) {
	return s.update(ctx, id, NodeChanged, true, func(n *Node) error {
		n.ApprovedRoutes = slices.Clone(routes)
		return nil
	})
}

// MapUpdate is what a node reports on a map request. Nil/zero fields mean
// "not reported".
type MapUpdate struct {
	DiscoKey  key.DiscoPublic
	Endpoints []netip.AddrPort // nil: unchanged
	HomeDERP  int
	Cap       int
	// Hostinfo (without NetInfo), Hostname and AdvertisedRoutes are durable.
	Hostinfo         json.RawMessage
	Hostname         string
	AdvertisedRoutes []netip.Prefix
}

// ApplyMapUpdate records what node id reported. Volatile fields stay in
// memory; Hostinfo and advertised routes are persisted only when they change.
func (s *State) ApplyMapUpdate(ctx context.Context, id int64, u MapUpdate) (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.nodes[id]
	if !ok {
		return nil, fmt.Errorf("node %d: %w", id, ErrNotFound)
	}
	full := u.Hostinfo != nil && !bytes.Equal(u.Hostinfo, old.Hostinfo) ||
		u.Hostname != "" && u.Hostname != old.Hostname ||
		u.Hostinfo != nil && !slices.Equal(u.AdvertisedRoutes, old.AdvertisedRoutes)
	patch := !u.DiscoKey.IsZero() && u.DiscoKey != old.DiscoKey ||
		u.Endpoints != nil && !slices.Equal(u.Endpoints, old.Endpoints) ||
		u.HomeDERP != 0 && u.HomeDERP != old.HomeDERP ||
		u.Cap != 0 && u.Cap != old.Cap
	if !full && !patch {
		return old, nil
	}
	kind := NodePatched
	if full {
		kind = NodeChanged
	}
	return s.updateLocked(ctx, id, kind, full, func(n *Node) error {
		if !u.DiscoKey.IsZero() {
			n.DiscoKey = u.DiscoKey
		}
		if u.Endpoints != nil {
			n.Endpoints = slices.Clone(u.Endpoints)
		}
		if u.HomeDERP != 0 {
			n.HomeDERP = u.HomeDERP
		}
		if u.Cap != 0 {
			n.Cap = u.Cap
		}
		if u.Hostinfo != nil {
			n.Hostinfo = u.Hostinfo
			n.AdvertisedRoutes = slices.Clone(u.AdvertisedRoutes)
			s.autoApproveLocked(n)
		}
		if u.Hostname != "" {
			n.Hostname = u.Hostname
		}
		return nil
	})
}

// SetOnline marks node id online or offline. Going offline records LastSeen
// durably.
func (s *State) SetOnline(ctx context.Context, id int64, online bool) (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.nodes[id]
	if !ok {
		return nil, fmt.Errorf("node %d: %w", id, ErrNotFound)
	}
	if old.Online == online {
		return old, nil
	}
	return s.updateLocked(ctx, id, NodeOnline, !online, func(n *Node) error {
		n.Online = online
		n.LastSeen = s.cfg.Clock.Now()
		return nil
	})
}

// ExpireInactiveEphemeral deletes ephemeral nodes that have been offline for
// longer than timeout, returning how many were removed.
func (s *State) ExpireInactiveEphemeral(ctx context.Context, timeout time.Duration) int {
	now := s.cfg.Clock.Now()
	var victims []int64
	s.mu.Lock()
	for _, n := range s.nodes {
		if n.Ephemeral && !n.Online && now.Sub(n.LastSeen) > timeout {
			victims = append(victims, n.ID)
		}
	}
	s.mu.Unlock()
	removed := 0
	for _, id := range victims {
		if err := s.Delete(ctx, id); err != nil {
			s.log.Warn("ephemeral cleanup", "node", id, "err", err)
			continue
		}
		removed++
	}
	return removed
}
