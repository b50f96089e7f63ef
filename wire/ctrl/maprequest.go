package ctrl

import (
	"net/netip"
	"time"

	"weft.dev/weft/wire/key"
)

// MapRequest is the body of POST /machine/map (tailcfg.MapRequest). Its mode
// follows from Stream and OmitPeers (control.md §3.2): Stream=true is the long
// poll; Stream=false with OmitPeers=true is a lite (endpoint) update that gets
// an empty 200.
type MapRequest struct {
	// Version is the client's capability version.
	Version CapabilityVersion
	// Compress is "zstd" (always, from 1.102) or "" for raw JSON frames.
	Compress string `json:",omitzero"`
	// KeepAlive asks the server for keep-alive frames.
	KeepAlive bool `json:",omitzero"`
	// NodeKey identifies the node; it must belong to the Noise machine key.
	NodeKey key.NodePublic
	// DiscoKey is the node's current disco key (new at every daemon start).
	DiscoKey key.DiscoPublic

	// HardwareAttestationKey is the node's hardware-backed key in its text
	// form, only on TPM hosts.
	HardwareAttestationKey string `json:",omitzero"`
	// HardwareAttestationKeySignature signs "$UNIX_TIMESTAMP|$NODE_KEY".
	HardwareAttestationKeySignature []byte `json:",omitempty"`
	// HardwareAttestationKeySignatureTimestamp is when that signature was made.
	HardwareAttestationKeySignatureTimestamp time.Time `json:",omitzero"`

	// Stream asks for a long poll of MapResponse frames.
	Stream bool `json:",omitzero"`
	// Hostinfo is the client's full Hostinfo; may be ignored on Stream requests.
	Hostinfo *Hostinfo
	// MapSessionHandle and MapSessionSeq ask to resume a session; 1.102 does
	// not send them and servers may ignore them.
	MapSessionHandle string `json:",omitzero"`
	MapSessionSeq    int64  `json:",omitzero"`

	// Endpoints are the node's UDP endpoints; EndpointTypes is parallel to it.
	Endpoints     []netip.AddrPort `json:",omitempty"`
	EndpointTypes []EndpointType   `json:",omitempty"`

	// TKAHead is the tailnet-lock head hash, only with tailnet lock.
	TKAHead string `json:",omitzero"`
	// ReadOnly is deprecated: always false since capver 68.
	ReadOnly bool `json:",omitzero"`
	// OmitPeers lets the server leave out peers (lite updates).
	OmitPeers bool `json:",omitzero"`
	// DebugFlags are informational strings such as "warn-ip-forwarding-off".
	DebugFlags []string `json:",omitempty"`
	// ConnectionHandleForTest is an opaque debugging handle.
	ConnectionHandleForTest string `json:",omitzero"`
}

// EndpointType says how a MapRequest endpoint was learnt (tailcfg.EndpointType).
type EndpointType int

// The endpoint types tailscaled reports.
const (
	EndpointUnknownType    EndpointType = 0
	EndpointLocal          EndpointType = 1 // local interface address
	EndpointSTUN           EndpointType = 2 // public address found by STUN
	EndpointPortmapped     EndpointType = 3 // UPnP / NAT-PMP / PCP mapping
	EndpointSTUN4LocalPort EndpointType = 4 // hard NAT: STUN IPv4 address + local port
	EndpointExplicitConf   EndpointType = 5 // explicitly configured
)

// String returns the name tailscaled uses in logs.
func (t EndpointType) String() string {
	switch t {
	case EndpointUnknownType:
		return "?"
	case EndpointLocal:
		return "local"
	case EndpointSTUN:
		return "stun"
	case EndpointPortmapped:
		return "portmap"
	case EndpointSTUN4LocalPort:
		return "stun4localport"
	case EndpointExplicitConf:
		return "explicitconf"
	}
	return "other"
}
