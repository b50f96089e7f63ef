// Package localapi is the daemon's local control surface: HTTP over a unix
// socket (paths under /localapi/v0/, as tailscaled's), used by the weft CLI.
// It owns the socket, the peer-credential check (SO_PEERCRED) and the
// decoding of requests; the backend (node/ipn/ipnlocal) does the work.
//
// Permissions: root, the daemon's own user and the --operator user may
// change state; any other local user may only read (status, prefs, whois,
// ping, netcheck, metrics, watch).
//
// Client is the CLI's side of the same API.
//
// It imports node/ipn, node/ipn/ipnlocal, node/engine (types) and wire/*.
package localapi
