package netmap

import (
	"net/netip"
	"strings"
	"time"

	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// NetworkMap is a complete, immutable snapshot. Producers build a new value
// for every change; consumers must not modify it.
type NetworkMap struct {
	// SelfNode is the node itself as control describes it.
	SelfNode *ctrl.Node
	// NodeKey is this node's current node (WireGuard) public key.
	NodeKey key.NodePublic
	// Peers are the other nodes, sorted by ID.
	Peers []*ctrl.Node
	// DERPMap is the relay map (never nil once a map has been received).
	DERPMap *ctrl.DERPMap
	// DNS is the DNS configuration (may be nil).
	DNS *ctrl.DNSConfig
	// Domain is the tailnet's MagicDNS domain.
	Domain string
	// PacketFilter is the effective inbound filter (the PacketFilters
	// chunks concatenated in key order). Nil means none was ever sent,
	// which blocks all inbound traffic.
	PacketFilter []ctrl.FilterRule
	// SSHPolicy is the Tailscale SSH policy, if any.
	SSHPolicy *ctrl.SSHPolicy
	// UserProfiles maps user IDs to profiles.
	UserProfiles map[ctrl.UserID]ctrl.UserProfile
	// Expiry is the self node key's expiry (zero: never).
	Expiry time.Time
	// CollectServices says whether control wants service reports.
	CollectServices bool
}

// Addresses returns the self node's tailnet addresses.
func (nm *NetworkMap) Addresses() []netip.Prefix {
	if nm == nil || nm.SelfNode == nil {
		return nil
	}
	return nm.SelfNode.Addresses
}

// PeerByKey finds a peer by node key.
func (nm *NetworkMap) PeerByKey(k key.NodePublic) *ctrl.Node {
	for _, p := range nm.Peers {
		if p.Key == k {
			return p
		}
	}
	return nil
}

// PeerByIP finds the peer whose addresses or allowed IPs contain ip.
func (nm *NetworkMap) PeerByIP(ip netip.Addr) *ctrl.Node {
	for _, p := range nm.Peers {
		for _, a := range p.Addresses {
			if a.Contains(ip) {
				return p
			}
		}
	}
	for _, p := range nm.Peers {
		for _, a := range p.AllowedIPs {
			if a.Contains(ip) {
				return p
			}
		}
	}
	return nil
}

// MagicDNSSuffix returns the MagicDNS domain: the self node's name minus
// its first label, without dots (as upstream's netmap does). It differs
// from Domain, the tailnet's name, which headscale sets to its server's
// host name.
func (nm *NetworkMap) MagicDNSSuffix() string {
	if nm == nil || nm.SelfNode == nil {
		return ""
	}
	name := strings.TrimSuffix(nm.SelfNode.Name, ".")
	if _, rest, ok := strings.Cut(name, "."); ok {
		return rest
	}
	return ""
}
