// Package state is the single owner of weft-control's live node table:
// users, nodes (durable fields from control/store plus the volatile ones a
// node reports on every map request: disco key, endpoints, home DERP,
// online), address allocation, names, pre-auth keys and pending interactive
// logins, and the active tailnet policy.
//
// Every mutation is written to the store and committed before it is applied
// in memory and acknowledged. Mutations are serialised by one mutex; each
// produces Change values that are handed, in order and while the lock is
// held, to the OnChange callback (control/mapper's batcher), which must only
// enqueue. Readers get immutable *Node values and sorted snapshots.
//
// The policy (package policy) is compiled once and then updated node by
// node as nodes change; every node change that alters some nodes' packet
// filters or peer sets is followed, in the same OnChange call, by a
// PolicyChanged naming those nodes. Replacing the policy compiles and
// diffs outside the lock and emits one PolicyChanged for the nodes whose
// filters or peers differ. Tags requested at registration must be granted
// by tagOwners; autoApprovers approve advertised routes.
//
// state imports control/store, control/ipam, internal/clock, policy and
// wire/key; it must not import HTTP or protocol-session code.
package state
