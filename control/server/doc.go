// Package server assembles weft-control from its parts: it opens the store,
// loads or creates the Noise key, builds control/state, the mapper's
// Batcher, the ts2021 API, the admin API (on a unix socket in the state dir
// and, with bearer API keys, on the public listener), metrics, TLS (files
// reloaded on change, or ACME), the DERP map and the ephemeral-node
// collector, and serves them until its context ends.
//
// Only cmd/weft-control and tests import it.
package server
