// Package engine defines the seam between a node's control plane (the
// daemon: control client, prefs, LocalAPI) and its data plane (WireGuard,
// magicsock's UDP + DERP paths, disco, TUN or netstack). The daemon drives
// an Engine; the data-plane issue provides the real implementation and
// this package provides Fake for tests and for running the control plane
// alone.
//
// It imports node/netmap and wire/*, nothing else of weft.
package engine
