// Package controlclient is the node side of the ts2021 control protocol
// (shared/protocol/control.md): it fetches the server's Noise key, dials
// /ts2021 (consuming the optional early payload), speaks HTTP/2 inside the
// Noise connection, registers (auth key, interactive AuthURL + Followup
// long-poll, restart, key rotation, logout with Expiry = Unix 123), follows
// the /machine/map long poll and turns its frames — full maps and every
// delta kind — into netmap.NetworkMap snapshots, and sends lite updates with
// endpoints and NetInfo.
//
// Auto runs all of that in one goroutine with backoff and jitter (capped at
// 30 s) and a 120 s stream watchdog, and reports to an Observer. It works
// against weft-control and headscale (capver ≥ 113, early payload always
// present, filters only as PacketFilters, raw JSON frames when Compress is
// empty).
//
// It imports node/netmap, node/engine (types only), noise and wire/*; never
// node/ipn or anything above it.
package controlclient
