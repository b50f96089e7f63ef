// Package mapper turns control/state's node table into MapResponse frames
// and delivers them to long-poll sessions.
//
// The Batcher receives state changes, waits a short window, and then
// computes one delta for the whole batch: PeersChanged for added or changed
// nodes, PeersRemoved, PeersChangedPatch for endpoint/DERP/disco/key/online
// changes. That delta is encoded (JSON, and zstd once) a single time and the
// same bytes are queued to every session not itself in the batch; sessions
// whose own node changed get a frame of their own. A change therefore costs
// one encode plus one queue operation per session, never a rebuild of every
// map. Peer JSON is cached per immutable node version, so a new session's
// full map concatenates cached bytes instead of re-encoding every peer.
//
// That shared-frame path is used while every node may reach every other.
// While a policy restricts traffic (state.Snapshot.Policy), each session
// instead tracks the peers and filter its client holds, full maps list only
// visible peers with the node's own PacketFilter, and a flush sends each
// session exactly what changed for it: changes of nodes it has, peers that
// became visible or invisible, a new filter. Sessions needing the same
// frame share one encoding. See policy.go.
//
// Ordering: each flush pairs the drained changes with the state snapshot
// they produced (state.SnapshotWith); a new session builds its first map
// from the latest flushed snapshot and then receives every later delta, so
// no change is lost or applied out of order.
//
// Sessions register under the flush lock, so a session's first map and the
// deltas after it are computed against the same view.
//
// mapper imports control/state, policy and wire/*; it must not import HTTP
// handlers.
package mapper
