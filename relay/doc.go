// Package relay is weft's DERP relay and STUN server: the role of
// Tailscale's derper, used standalone by cmd/weft-derp and embedded by
// weft-control.
//
// It owns the table of connected DERP clients, per-client send queues and
// writer goroutines, packet routing (local delivery, mesh forwarding),
// regional mesh (watchers, forwarders, the mesh dialer), client admission
// (the Verify callback and the verify-client-url/LocalAPI helpers), the
// auxiliary HTTP endpoints and the STUN responder.
//
// Wire formats come from weft.dev/weft/wire/derp and wire/stun. The package
// must not import node/ or control/ packages; weft-control plugs its node
// table in through Options.Verify.
package relay
