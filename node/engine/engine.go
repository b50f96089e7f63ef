package engine

import (
	"context"
	"net/netip"
	"time"

	"weft.dev/weft/node/netmap"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// Config is what the daemon tells the data plane besides the netmap.
type Config struct {
	// PrivateKey is the node key (WireGuard static key). Zero means
	// logged out: tear down all peers.
	PrivateKey key.NodePrivate
	// AcceptRoutes installs peers' subnet routes.
	AcceptRoutes bool
	// ExitNode is the exit node's stable ID, or "".
	ExitNode ctrl.StableNodeID
	// ShieldsUp blocks all inbound connections.
	ShieldsUp bool
	// AdvertiseRoutes are this node's advertised subnet/exit routes.
	AdvertiseRoutes []netip.Prefix
}

// Endpoint is one local UDP endpoint candidate, reported to control.
type Endpoint struct {
	Addr netip.AddrPort
	Type ctrl.EndpointType
}

// LocalState is what the data plane learnt about the local network, reported
// to control in lite map updates.
type LocalState struct {
	Endpoints []Endpoint
	// NetInfo carries PreferredDERP (home region), DERPLatency, WorkingUDP…
	NetInfo *ctrl.NetInfo
	// DiscoKey is the current disco public key.
	DiscoKey key.DiscoPublic
}

// PingType selects what `ping` sends.
type PingType string

// Ping types, as tailscale ping's flags.
const (
	PingDisco PingType = "disco"
	PingTSMP  PingType = "TSMP"
	PingICMP  PingType = "ICMP"
)

// PingResult is one ping's answer.
type PingResult struct {
	IP       netip.Addr
	NodeName string
	Latency  time.Duration
	// Endpoint is the direct ip:port the pong came from; empty when it
	// came via DERP.
	Endpoint string
	// DERPRegionID and DERPRegionCode are set when the pong came via DERP.
	DERPRegionID   int
	DERPRegionCode string
	// PeerAPIPort is the port a TSMP pong advertised for the peer's
	// PeerAPI on the pinged address; 0 when unknown or for other types.
	PeerAPIPort uint16
	Err         string
}

// PeerStatus is the data plane's view of one peer for `status`.
type PeerStatus struct {
	Key           key.NodePublic
	CurAddr       string // direct ip:port in use, "" if relayed
	Relay         string // DERP region code in use
	RxBytes       int64
	TxBytes       int64
	LastHandshake time.Time
	Active        bool
}

// Engine is a node's data plane. Implementations are safe for concurrent
// use.
type Engine interface {
	// Reconfig applies a new netmap and config. Peers whose keys did not
	// change keep their sessions.
	Reconfig(nm *netmap.NetworkMap, cfg Config) error
	// SetLocalStateCallback registers the function called whenever local
	// endpoints, home DERP or disco key change.
	SetLocalStateCallback(func(LocalState))
	// Ping pings a tailnet IP.
	Ping(ctx context.Context, ip netip.Addr, typ PingType) (PingResult, error)
	// PeerStatus reports per-peer path state.
	PeerStatus() []PeerStatus
	// Close stops the engine.
	Close() error
}
