package ctrl

import "net/netip"

// PingRequest asks a client to ping something and report back (tailcfg.PingRequest;
// control.md §3.6). The client ignores a request whose URL equals the last
// one it saw, so use a unique URL each time.
type PingRequest struct {
	// URL is where the client reports: HEAD when Types is empty, else a POST
	// of a PingResponse (or, for "c2n", the raw HTTP response).
	URL string
	// URLIsNoise sends the report over the Noise connection.
	URLIsNoise bool `json:",omitzero"`
	// Log asks the client to log the request.
	Log bool `json:",omitzero"`
	// Types is a comma list of "disco", "TSMP", "ICMP", "peerapi", or "c2n".
	Types string `json:",omitzero"`
	// IP is the address to ping.
	IP netip.Addr `json:",omitzero"`
	// Payload is the serialized HTTP request for "c2n".
	Payload []byte `json:",omitempty"`
}

// Ping types for PingRequest.Types and PingResponse.Type.
const (
	PingDisco   = "disco"
	PingTSMP    = "TSMP"
	PingICMP    = "ICMP"
	PingPeerAPI = "peerapi"
	PingC2N     = "c2n"
)

// PingResponse is what a client POSTs to PingRequest.URL (tailcfg.PingResponse).
type PingResponse struct {
	// Type is the ping type that was done.
	Type string
	// IP is the ping destination.
	IP string `json:",omitempty"`
	// NodeIP is the Tailscale IP of the node that handled IP.
	NodeIP string `json:",omitempty"`
	// NodeName is that node's DNS base name or host name.
	NodeName string `json:",omitempty"`
	// Err is the error, if the ping failed.
	Err string `json:",omitempty"`
	// LatencySeconds is the round-trip time.
	LatencySeconds float64 `json:",omitempty"`
	// Endpoint is the direct ip:port used, if any.
	Endpoint string `json:",omitempty"`
	// PeerRelay is the peer relay ip:port:vni used, if any.
	PeerRelay string `json:",omitempty"`
	// DERPRegionID and DERPRegionCode name the relay region used, if any.
	DERPRegionID   int    `json:",omitempty"`
	DERPRegionCode string `json:",omitempty"`
	// PeerAPIPort is the peer's peerapi port ("peerapi" pings).
	PeerAPIPort uint16 `json:",omitempty"`
	// IsLocalIP says IP is one of this node's own addresses.
	IsLocalIP bool `json:",omitempty"`
}
