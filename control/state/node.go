package state

import (
	"net/netip"
	"slices"
	"time"

	"weft.dev/weft/control/store"
	"weft.dev/weft/wire/key"
)

// Node is an immutable view of one node. Mutations replace the pointer in
// the table; a *Node handed out is never modified afterwards.
type Node struct {
	store.Node

	// Volatile fields, reported by the node on its map requests.
	DiscoKey  key.DiscoPublic
	Endpoints []netip.AddrPort
	HomeDERP  int
	Cap       int // capability version of the client
	Online    bool
}

// clone returns a deep copy that can be modified before publication.
func (n *Node) clone() *Node {
	c := *n
	c.Hostinfo = slices.Clone(n.Hostinfo)
	c.Tags = slices.Clone(n.Tags)
	c.AdvertisedRoutes = slices.Clone(n.AdvertisedRoutes)
	c.ApprovedRoutes = slices.Clone(n.ApprovedRoutes)
	c.Endpoints = slices.Clone(n.Endpoints)
	return &c
}

// IsExpired reports whether the node key has expired at now.
func (n *Node) IsExpired(now time.Time) bool {
	return !n.Expiry.IsZero() && !n.Expiry.After(now)
}

// IsTagged reports whether the node is owned by tags rather than its user.
func (n *Node) IsTagged() bool { return len(n.Tags) > 0 }

// Addresses returns the node's tailnet addresses as host prefixes, v4 first.
func (n *Node) Addresses() []netip.Prefix {
	var out []netip.Prefix
	if n.IPv4.IsValid() {
		out = append(out, netip.PrefixFrom(n.IPv4, 32))
	}
	if n.IPv6.IsValid() {
		out = append(out, netip.PrefixFrom(n.IPv6, 128))
	}
	return out
}

// PrimaryRoutes returns the approved subnet routes that are also advertised,
// excluding exit routes (0.0.0.0/0, ::/0), sorted.
func (n *Node) PrimaryRoutes() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range n.ApprovedRoutes {
		if r.Bits() == 0 || !slices.Contains(n.AdvertisedRoutes, r) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// ServedRoutes returns approved routes the node also advertises, including
// exit routes, for AllowedIPs.
func (n *Node) ServedRoutes() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range n.ApprovedRoutes {
		if slices.Contains(n.AdvertisedRoutes, r) {
			out = append(out, r)
		}
	}
	return out
}
