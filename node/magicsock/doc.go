// Package magicsock is weft's data-plane socket: a wireguard-go conn.Bind
// that carries WireGuard over one UDP socket per address family and over
// DERP relays, and runs Tailscale's disco protocol to find and keep the best
// direct path to each peer (derp-disco.md §2–§4).
//
// It owns the UDP sockets, the DERP client table (home region chosen by
// STUN latency, other regions dialed on demand and closed when idle), the
// per-peer path state (candidates, best address, trust timers, heartbeats)
// and the STUN-based endpoint discovery reported through a callback. UDP is
// behind the small PacketConn/Network seam; MemNetwork is the in-memory
// implementation that lets several Conns and a relay's STUN server run in
// one test process.
//
// It imports wire/*, relay/derpclient, node/netmap, node/engine (for the
// LocalState type) and internal/clock. It must not import control, relay
// (server) or daemon packages.
package magicsock
