// Package ipn holds the node daemon's user-facing types, shared by the
// backend (node/ipn/ipnlocal), the LocalAPI (node/localapi) and the CLI
// (cli/): preferences, backend states, bus notifications, status, login
// profiles and whois answers. JSON field names follow Tailscale's ipn and
// ipn/ipnstate packages so that scripts written for `tailscale status --json`
// and friends keep working.
//
// It is pure data: no I/O, no goroutines. It imports node/netmap and wire/*
// only.
package ipn
