// Package ipam allocates tailnet addresses (one IPv4 and one IPv6 per node)
// from configurable prefixes, by default 100.64.0.0/10 and
// fd7a:115c:a1e0::/48 as Tailscale uses.
//
// An Allocator is not safe for concurrent use: its owner (control/state)
// calls it under the node-table lock, which is what makes concurrent
// registrations unable to receive the same address. It imports only the
// standard library.
package ipam
