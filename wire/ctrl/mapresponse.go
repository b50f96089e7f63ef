package ctrl

import (
	"encoding/json"
	"time"
)

// MapResponse is one frame of a /machine/map stream (tailcfg.MapResponse).
// The first non-keepalive frame of a stream is the full state and must carry
// Node; later frames are deltas (control.md §3.3 says how each field applies).
//
// Nil versus empty: the protocol gives them different meanings —
// PacketFilter: [] drops all inbound while an absent PacketFilter keeps the
// old one; Health: [] means healthy; an empty map resets
// DERPHomeParams.RegionScore. tailcfg's omitempty cannot send "present but
// empty", so every slice and map here is tagged omitzero instead (Go ≥ 1.24):
// a nil slice or map is left out, a non-nil empty one is sent as [] or {}.
// Decoding keeps the distinction the same way (absent or null → nil, [] →
// empty non-nil). Build frames with that in mind: a nil PacketFilter means
// "unchanged", []FilterRule{} means "deny everything".
type MapResponse struct {
	// MapSessionHandle and Seq support session resumption; 1.102 never asks for it.
	MapSessionHandle string `json:",omitempty"`
	Seq              int64  `json:",omitempty"`

	// KeepAlive marks a keep-alive frame: the client ignores every field
	// except PingRequest, ControlTime, PopBrowserURL, ControlDialPlan and
	// ClientVersion. Exactly {"KeepAlive":true} hits the client's fast path.
	KeepAlive bool `json:",omitempty"`
	// PingRequest asks the client to ping something and report back.
	PingRequest *PingRequest `json:",omitempty"`
	// PopBrowserURL asks the client to open a URL (deduplicated by value).
	PopBrowserURL string `json:",omitempty"`

	// Node replaces the whole self node.
	Node *Node `json:",omitempty"`
	// DERPMap replaces the DERP map.
	DERPMap *DERPMap `json:",omitempty"`

	// Peers, when non-empty, replaces the whole peer set (sorted by ID) and
	// the other peer deltas in the frame are ignored. Empty means "no
	// change", so the last peer can only be removed with PeersRemoved.
	Peers []*Node `json:",omitzero"`
	// PeersChanged upserts complete peers by ID.
	PeersChanged []*Node `json:",omitzero"`
	// PeersRemoved deletes peers by ID.
	PeersRemoved []NodeID `json:",omitzero"`
	// PeersChangedPatch patches peers field by field.
	PeersChangedPatch []*PeerChange `json:",omitzero"`
	// PeerSeenChange: true sets LastSeen to now, false clears it.
	PeerSeenChange map[NodeID]bool `json:",omitzero"`
	// OnlineChange sets peers' Online.
	OnlineChange map[NodeID]bool `json:",omitzero"`

	// DNSConfig replaces the DNS configuration.
	DNSConfig *DNSConfig `json:",omitempty"`
	// Domain is the tailnet name; "" means unchanged.
	Domain string `json:",omitempty"`
	// CollectServices, when set, says whether clients report their services.
	CollectServices *bool `json:",omitempty"`

	// PacketFilter replaces the filter chunk named "base"; [] drops all inbound.
	PacketFilter []FilterRule `json:",omitzero"`
	// PacketFilters upserts named chunks; a null value deletes its chunk and
	// "*": null first clears all. The filter is the chunks in key order.
	PacketFilters map[string][]FilterRule `json:",omitzero"`

	// UserProfiles are upserted by ID (never deleted).
	UserProfiles []UserProfile `json:",omitzero"`
	// Health replaces the control-side health warnings; [] means healthy.
	Health []string `json:",omitzero"`
	// DisplayMessages patches the warnings shown to the user: a null value
	// deletes its ID, "*": null clears all.
	DisplayMessages map[string]*DisplayMessage `json:",omitzero"`

	// SSHPolicy replaces the Tailscale SSH policy.
	SSHPolicy *SSHPolicy `json:",omitempty"`
	// ControlTime is the server's clock, used to correct client skew.
	ControlTime *time.Time `json:",omitempty"`
	// TKAInfo is tailnet-lock state; weft passes it through untouched.
	TKAInfo json.RawMessage `json:",omitempty"`
	// DomainDataPlaneAuditLogID is the tailnet's data-plane audit log ID.
	DomainDataPlaneAuditLogID string `json:",omitempty"`
	// Debug carries instructions the client acts on at once.
	Debug *Debug `json:",omitempty"`
	// ControlDialPlan tells the client how to reach control (raw tailcfg.ControlDialPlan).
	ControlDialPlan json.RawMessage `json:",omitempty"`
	// ClientVersion describes available updates (raw tailcfg.ClientVersion).
	ClientVersion json.RawMessage `json:",omitempty"`
	// DefaultAutoUpdate is deprecated upstream: use the
	// "default-auto-update" node capability instead.
	DefaultAutoUpdate *bool `json:",omitempty"`
}

// DisplayMessage is a warning the client shows (tailcfg.DisplayMessage, capver ≥ 117).
type DisplayMessage struct {
	Title string
	Text  string
	// Severity is "high", "medium" or "low".
	Severity string
	// ImpactsConnectivity says the problem may break connectivity.
	ImpactsConnectivity bool `json:",omitempty"`
	// PrimaryAction is an optional button.
	PrimaryAction *DisplayMessageAction `json:",omitempty"`
}

// DisplayMessageAction is a button on a DisplayMessage.
type DisplayMessageAction struct {
	URL   string
	Label string
}

// Debug carries instructions from control (tailcfg.Debug).
type Debug struct {
	// SleepSeconds makes the client sleep before its next request (capped at 5 min).
	SleepSeconds float64 `json:",omitempty"`
	// DisableLogTail stops the client uploading logs to log.tailscale.com;
	// self-hosted servers normally set it.
	DisableLogTail bool `json:",omitempty"`
	// Exit makes the client process exit with this code. Dangerous.
	Exit *int `json:",omitempty"`
}

// KeepAliveJSON is the keep-alive frame payload, byte for byte what the
// 1.102 client recognises without decoding.
const KeepAliveJSON = `{"KeepAlive":true}`
