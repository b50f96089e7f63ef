package ctrl

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"weft.dev/weft/wire/key"
)

// Node is a node as the control server describes it: the self node in
// MapResponse.Node and peers in Peers/PeersChanged (tailcfg.Node). Always send
// complete nodes (control.md §3.3, §7.6); use PeerChange for partial updates.
//
// Omission follows tailcfg v1.102: zero KeyExpiry, Machine, DiscoKey, HomeDERP,
// Created, Cap are left out ("never expires" is the zero time, never the Unix
// epoch); Addresses is always sent; AllowedIPs is left out only when nil
// (which means "same as Addresses" since capver 112), so an explicit empty
// list can still be expressed.
//
// Endpoints is []netip.AddrPort as in tailcfg: a client fails to decode the
// whole MapResponse on one malformed endpoint, so a server has to hold valid
// values anyway and gets the check for free.
//
// The client-computed fields (ComputedName, ComputedNameWithHost) are absent
// on purpose: a server must not send them, and decoding ignores them.
type Node struct {
	ID       NodeID
	StableID StableNodeID
	// Name is the MagicDNS FQDN with a trailing dot, e.g. "host.weft.test.".
	Name string
	// User owns the node; it needs a UserProfiles entry.
	User UserID
	// Sharer, if non-zero, is the user who shared this node.
	Sharer UserID `json:",omitzero"`

	// Key is the node key (WireGuard static key).
	Key key.NodePublic
	// KeyExpiry is when Key expires; zero means never (and is omitted).
	KeyExpiry time.Time `json:",omitzero"`
	// KeySignature is the tailnet-lock signature of Key.
	KeySignature []byte `json:",omitempty"`
	// Machine is the node's machine (Noise) key.
	Machine key.MachinePublic `json:",omitzero"`
	// DiscoKey is the node's current disco key, from its latest MapRequest.
	DiscoKey key.DiscoPublic `json:",omitzero"`

	// Addresses are the node's own IPs (/32 and /128 prefixes).
	Addresses []netip.Prefix
	// AllowedIPs are routed to the node: Addresses plus approved routes.
	// Nil (omitted) means the same as Addresses.
	AllowedIPs []netip.Prefix `json:",omitzero"`
	// Endpoints are the node's UDP ip:port candidates.
	Endpoints []netip.AddrPort `json:",omitempty"`
	// DERP is the pre-capver-111 home region form "127.3.3.40:<region>";
	// clients convert it when HomeDERP is zero. See LegacyDERPString.
	DERP string `json:",omitzero"`
	// HomeDERP is the node's home DERP region ID (capver ≥ 111).
	HomeDERP int `json:",omitzero"`

	// Hostinfo is kept as raw JSON so a server can echo what the node sent
	// (including fields weft does not know) without re-encoding it. See
	// Hostinfo.Raw and MarshalHostinfo.
	Hostinfo json.RawMessage `json:",omitempty"`
	// Created is when the node was first registered.
	Created time.Time `json:",omitzero"`
	// Cap is the node's capability version.
	Cap CapabilityVersion `json:",omitzero"`
	// Tags are the ACL tags ("tag:x") the node holds.
	Tags []string `json:",omitempty"`
	// PrimaryRoutes are the subnet routes this node is primary for.
	PrimaryRoutes []netip.Prefix `json:",omitempty"`
	// LastSeen is when the node was last online; send it only while offline.
	LastSeen *time.Time `json:",omitempty"`
	// Online is whether the node has a live map stream. Nil shows as offline,
	// so send an explicit false rather than nothing.
	Online *bool `json:",omitempty"`
	// MachineAuthorized must be true for the self node to leave NeedsMachineAuth.
	MachineAuthorized bool `json:",omitempty"`
	// Capabilities is deprecated: clients convert it into CapMap.
	Capabilities []string `json:",omitempty"`
	// CapMap maps node capabilities to their raw JSON values; a capability
	// without values is sent as an empty list or null.
	CapMap map[string][]json.RawMessage `json:",omitempty"`
	// UnsignedPeerAPIOnly marks a node outside tailnet lock that may only reach peerapi.
	UnsignedPeerAPIOnly bool `json:",omitzero"`
	// DataPlaneAuditLogID is the node's logtail ID for data-plane audit logs.
	DataPlaneAuditLogID string `json:",omitzero"`
	// Expired tells the client the key has expired.
	Expired bool `json:",omitzero"`
	// SelfNodeV4MasqAddrForThisPeer is the IPv4 this peer knows the self node as.
	SelfNodeV4MasqAddrForThisPeer *netip.Addr `json:",omitzero"`
	// SelfNodeV6MasqAddrForThisPeer is the IPv6 this peer knows the self node as.
	SelfNodeV6MasqAddrForThisPeer *netip.Addr `json:",omitzero"`
	// IsWireGuardOnly marks a plain WireGuard peer (no disco, no DERP).
	IsWireGuardOnly bool `json:",omitzero"`
	// IsJailed forbids the node from initiating connections.
	IsJailed bool `json:",omitzero"`
	// ExitNodeDNSResolvers are used when this WireGuard-only node is the exit node.
	ExitNodeDNSResolvers []Resolver `json:",omitempty"`
}

// PeerChange is a partial update of one peer (tailcfg.PeerChange), sent in
// MapResponse.PeersChangedPatch. A nil or zero field means "unchanged".
//
// Endpoints and CapMap are omitted only when nil, so an explicit empty value
// (clearing them) can be sent; the 1.102 client applies any non-nil value.
type PeerChange struct {
	// NodeID names the peer; unknown IDs are ignored by the client.
	NodeID NodeID
	// DERPRegion is the new home DERP region (0 = unchanged).
	DERPRegion int `json:",omitzero"`
	// Cap is the new capability version (0 = unchanged).
	Cap CapabilityVersion `json:",omitzero"`
	// CapMap replaces the whole peer CapMap.
	CapMap map[string][]json.RawMessage `json:",omitzero"`
	// Endpoints replaces the peer's endpoints.
	Endpoints []netip.AddrPort `json:",omitzero"`
	// Key is the peer's new node key. Like the time fields below it is
	// omitzero, as upstream: a pointer to a zero value is left out too.
	Key *key.NodePublic `json:",omitzero"`
	// KeySignature is the new tailnet-lock signature.
	KeySignature []byte `json:",omitempty"`
	// DiscoKey is the peer's new disco key.
	DiscoKey *key.DiscoPublic `json:",omitzero"`
	// Online is the peer's new online state.
	Online *bool `json:",omitzero"`
	// LastSeen is the peer's new last-seen time.
	LastSeen *time.Time `json:",omitzero"`
	// KeyExpiry is the peer's new key expiry.
	KeyExpiry *time.Time `json:",omitzero"`
}

// LegacyDERPMagicIP is the fake IP of the pre-capver-111 Node.DERP string.
const LegacyDERPMagicIP = "127.3.3.40"

// LegacyDERPString returns the Node.DERP form of a home region, for clients
// older than capver 111.
func LegacyDERPString(region int) string {
	return LegacyDERPMagicIP + ":" + strconv.Itoa(region)
}

// ParseLegacyDERPString returns the region ID in a Node.DERP string.
func ParseLegacyDERPString(s string) (int, error) {
	port, ok := strings.CutPrefix(s, LegacyDERPMagicIP+":")
	if !ok {
		return 0, errors.New("legacy DERP string: want " + LegacyDERPMagicIP + ":<region>")
	}
	region, err := strconv.Atoi(port)
	if err != nil || region <= 0 || region > 65535 {
		return 0, errors.New("legacy DERP string: bad region in " + strconv.Quote(s))
	}
	return region, nil
}
