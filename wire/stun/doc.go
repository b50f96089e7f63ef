// Package stun is the STUN (RFC 5389) subset that Tailscale-compatible relays
// and nodes speak: the Binding Request that tailscaled sends (SOFTWARE
// "tailnode" plus FINGERPRINT) and the Binding Success response carrying one
// XOR-MAPPED-ADDRESS.
//
// It owns both sides: [ParseBindingRequest] and [AppendResponse] for servers,
// [AppendRequest] and [ParseResponse] for clients. It is pure codec code: no
// I/O, no goroutines, no allocation on the server path. It must not import any
// other weft package.
package stun
