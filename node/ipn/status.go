package ipn

import (
	"encoding/json"
	"net/netip"
	"time"

	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// Status is the answer to `status --json`. Field names are those of
// ipnstate.Status in Tailscale v1.102 so that existing scripts keep
// working; fields weft cannot fill yet are present with zero values.
type Status struct {
	// Version is the daemon's version.
	Version string
	// TUN is whether a kernel TUN device is used (false: userspace networking).
	TUN bool
	// BackendState is a State name: "NoState", "NeedsLogin", "NeedsMachineAuth",
	// "Stopped", "Starting" or "Running".
	BackendState string
	// HaveNodeKey is whether the current profile has a node key.
	HaveNodeKey bool `json:",omitempty"`
	// AuthURL is the URL the user must visit to log in, if any.
	AuthURL string
	// TailscaleIPs are the node's tailnet addresses.
	TailscaleIPs []netip.Addr
	// Self is this node.
	Self *PeerStatus
	// ExitNodeStatus describes the exit node in use, if any.
	ExitNodeStatus *ExitNodeStatus `json:"ExitNodeStatus,omitempty"`
	// Health lists problems; empty means none known.
	Health []string
	// MagicDNSSuffix is the legacy copy of CurrentTailnet.MagicDNSSuffix.
	MagicDNSSuffix string
	// CurrentTailnet describes the tailnet; nil when not connected.
	CurrentTailnet *TailnetStatus
	// CertDomains are the names control will help get certificates for.
	CertDomains []string
	// ExtraRecords are extra DNS records from control.
	ExtraRecords []ctrl.DNSRecord
	// Peer is each peer's status keyed by its node key.
	Peer map[key.NodePublic]*PeerStatus
	// User holds the profiles of the users that PeerStatus.UserID refers to.
	User map[ctrl.UserID]ctrl.UserProfile
	// ClientVersion is update information; weft never sets it.
	ClientVersion json.RawMessage
}

// TailnetStatus describes the current tailnet (ipnstate.TailnetStatus).
type TailnetStatus struct {
	// Name is the tailnet's name.
	Name string
	// MagicDNSSuffix is the MagicDNS domain, without surrounding dots.
	MagicDNSSuffix string
	// MagicDNSEnabled says whether control turned MagicDNS on.
	MagicDNSEnabled bool
}

// ExitNodeStatus describes the exit node in use (ipnstate.ExitNodeStatus).
type ExitNodeStatus struct {
	ID           ctrl.StableNodeID
	Online       bool
	TailscaleIPs []netip.Prefix
}

// PeerStatus is one node's status (ipnstate.PeerStatus).
type PeerStatus struct {
	ID        ctrl.StableNodeID
	NodeID    ctrl.NodeID
	PublicKey key.NodePublic
	// HostName is Hostinfo's Hostname (not necessarily unique).
	HostName string
	// DNSName is the MagicDNS FQDN, with a trailing dot.
	DNSName string
	OS      string
	UserID  ctrl.UserID
	// AltSharerUserID is the sharer, when different from UserID.
	AltSharerUserID ctrl.UserID `json:",omitempty"`
	// TailscaleIPs are the node's addresses.
	TailscaleIPs []netip.Addr
	// AllowedIPs are the prefixes routed to the node.
	AllowedIPs []netip.Prefix `json:",omitempty"`
	// Tags are the node's ACL tags.
	Tags []string `json:",omitempty"`
	// PrimaryRoutes are the subnet routes the node is primary for.
	PrimaryRoutes []netip.Prefix `json:",omitempty"`
	// Addrs are the node's UDP endpoints.
	Addrs []string
	// CurAddr is the direct ip:port in use, "" when relayed.
	CurAddr string
	// Relay is the home DERP region code.
	Relay string
	// PeerRelay is the peer relay in use (ip:port:vni); weft has none yet.
	PeerRelay string
	RxBytes   int64
	TxBytes   int64
	// Created is when the node registered.
	Created time.Time
	// LastWrite is when a packet was last sent.
	LastWrite time.Time
	// LastSeen is when control last saw the node; only set while offline.
	LastSeen time.Time
	// LastHandshake is the last WireGuard handshake.
	LastHandshake time.Time
	// Online is whether the node is connected to control.
	Online bool
	// ExitNode is whether this is the exit node in use.
	ExitNode bool
	// ExitNodeOption is whether the node offers to be an exit node.
	ExitNodeOption bool
	// Active is whether there was traffic recently.
	Active bool
	// PeerAPIURL are the node's PeerAPI URLs.
	PeerAPIURL []string
	// TaildropTarget is upstream's TaildropTargetStatus number (0 unknown).
	TaildropTarget int
	// NoFileSharingReason says why files cannot be sent to the node.
	NoFileSharingReason string
	// Capabilities is deprecated upstream: the keys of CapMap.
	Capabilities []string `json:",omitempty"`
	// CapMap is the node's capability map.
	CapMap map[string][]json.RawMessage `json:",omitempty"`
	// SSH_HostKeys are the node's SSH host keys.
	SSH_HostKeys []string `json:"sshHostKeys,omitempty"`
	// ShareeNode marks a node only present because it was shared.
	ShareeNode bool `json:",omitempty"`
	// InNetworkMap, InMagicSock and InEngine say where the peer is known.
	InNetworkMap bool
	InMagicSock  bool
	InEngine     bool
	// Expired says the node key has expired.
	Expired bool `json:",omitempty"`
	// KeyExpiry is when the node key expires, if it does.
	KeyExpiry *time.Time `json:",omitempty"`
	// Location is the node's declared location.
	Location *ctrl.Location `json:",omitempty"`
}

// PingResult is the answer of a ping (ipnstate.PingResult).
type PingResult struct {
	IP             string
	NodeIP         string
	NodeName       string
	Err            string
	LatencySeconds float64
	Endpoint       string
	PeerRelay      string
	DERPRegionID   int
	DERPRegionCode string
	PeerAPIPort    uint16 `json:",omitempty"`
	PeerAPIURL     string `json:",omitempty"`
	IsLocalIP      bool   `json:",omitempty"`
}

// WhoIsResponse answers whois (apitype.WhoIsResponse upstream).
type WhoIsResponse struct {
	Node        *ctrl.Node
	UserProfile *ctrl.UserProfile
	// CapMap is the peer's capabilities towards this node; weft does not
	// compute peer capabilities yet, so it is empty.
	CapMap map[string][]json.RawMessage
}

// NetcheckReport is what `netcheck` prints (a subset of netcheck.Report).
type NetcheckReport struct {
	UDP                   bool
	IPv6                  bool
	IPv4                  bool
	IPv6CanSend           bool
	IPv4CanSend           bool
	OSHasIPv6             bool
	ICMPv4                bool
	MappingVariesByDestIP *bool
	HairPinning           *bool
	UPnP                  *bool
	PMP                   *bool
	PCP                   *bool
	PreferredDERP         int
	RegionLatency         map[int]time.Duration
	GlobalV4              string
	GlobalV6              string
	CaptivePortal         *bool
}
