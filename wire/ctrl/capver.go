package ctrl

// CapabilityVersion is the client's protocol capability version (tailcfg.CapabilityVersion).
// It is sent in /key?v=, the Noise initiation header and prologue, and in the
// Version fields of register, map and set-dns requests.
type CapabilityVersion int

const (
	// CurrentCapabilityVersion is what Tailscale v1.102.x sends, and what weftd declares.
	CurrentCapabilityVersion CapabilityVersion = 142

	// MinCapabilityVersion is weft-control's floor; older clients get 400.
	// Same floor as headscale (v1.80), see control.md §6.
	MinCapabilityVersion CapabilityVersion = 113
)

// Capability versions at which the protocol semantics weft relies on appeared
// (tailcfg/tailcfg.go history; control.md §6).
const (
	CapVerNoiseAnyPort      CapabilityVersion = 39  // Noise on any HTTPS port
	CapVerEarlyNoise        CapabilityVersion = 49  // early payload understood
	CapVerStreamReadOnly    CapabilityVersion = 68  // stream request may be treated read-only
	CapVerCapMap            CapabilityVersion = 74  // Node.CapMap
	CapVerPacketFilters     CapabilityVersion = 81  // MapResponse.PacketFilters
	CapVerHomeDERP          CapabilityVersion = 111 // Node.HomeDERP
	CapVerAllowedIPsNil     CapabilityVersion = 112 // Node.AllowedIPs null means Addresses
	CapVerNoMeasureNoHome   CapabilityVersion = 115 // DERPRegion.NoMeasureNoHome
	CapVerDisplayMessages   CapabilityVersion = 117 // MapResponse.DisplayMessages
	CapVerRegisterRetryLate CapabilityVersion = 137 // 429 on /machine/register honoured
)

// NodeID is a node's integer ID: unique, never reused, > 0 and at most 2^53-1
// so that JavaScript clients can hold it.
type NodeID int64

// StableNodeID is the string form of a node's ID that clients store (exit-node
// prefs, expiry tracking). weft uses the decimal NodeID, as headscale does.
type StableNodeID string

// UserID is a user's integer ID.
type UserID int64

// LoginID is a login's integer ID (unused by clients).
type LoginID int64

// MaxSafeNodeID is the largest NodeID a server may allocate (JavaScript's
// Number.MAX_SAFE_INTEGER).
const MaxSafeNodeID NodeID = 1<<53 - 1
