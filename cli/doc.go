// Package cli is the weft command-line tool (the role of `tailscale`):
// the same verbs and flags, talking to weftd's LocalAPI over its unix
// socket. One file per verb; flags shared by `up` and `login` live in
// upflags.go. Run is the entry point; cmd/weft is a thin main and tests
// call Run as a function with their own Env.
//
// It imports node/ipn and node/localapi (client side) and wire/*; never the
// backend.
package cli
