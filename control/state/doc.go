// Package state is the single owner of weft-control's live node table:
// users, nodes (durable fields from control/store plus the volatile ones a
// node reports on every map request: disco key, endpoints, home DERP,
// online), address allocation, names, pre-auth keys and pending interactive
// logins.
//
// Every mutation is written to the store and committed before it is applied
// in memory and acknowledged. Mutations are serialised by one mutex; each
// produces Change values that are handed, in order and while the lock is
// held, to the OnChange callback (control/mapper's batcher), which must only
// enqueue. Readers get immutable *Node values and sorted snapshots.
//
// state imports control/store, control/ipam, internal/clock and wire/key;
// it must not import HTTP or protocol-session code.
package state
