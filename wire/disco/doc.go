// Package disco is the codec of Tailscale's "disco" path-discovery messages
// (derp-disco.md §3): the outer packet (magic "TS💬", sender disco key,
// nonce, NaCl box) and the Ping, Pong and CallMeMaybe bodies. Types 4–9
// (peer relays) are recognised as unknown and dropped by callers.
//
// It is pure codec code: no I/O, no goroutines, no logging. Parsers treat
// their input as hostile (length checks before slicing, no allocation
// proportional to attacker-chosen lengths beyond the input itself). It
// imports only wire/key.
package disco
