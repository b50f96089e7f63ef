// Package key holds the Curve25519 keys of the Tailscale-compatible protocols
// (machine, node and disco keys) and their text forms ("mkey:", "nodekey:",
// "discokey:", "privkey:", "chalpub:").
//
// It is pure data: no I/O, no goroutines. It must not import any other weft
// package.
package key
