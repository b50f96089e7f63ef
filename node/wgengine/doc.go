// Package wgengine is weft's data plane: the engine.Engine implementation
// that runs a wireguard-go device over magicsock's Bind, with either a
// kernel TUN (addresses, routes and MTU set through netlink) or the gVisor
// userspace stack of node/netstack. Reconfig turns each network map into
// incremental wireguard-go configuration (node keys as static keys, allowed
// IPs from the map), so unchanged peers keep their sessions.
//
// It imports node/engine, node/netmap, node/magicsock, node/netstack,
// wire/* and internal/clock. It must not import control, relay or daemon
// packages (node/state, node/controlclient, node/ipn, ...).
package wgengine
