// Package state persists what a node daemon must remember across restarts:
// its machine key and, per login profile, the node key, the login identity
// and the preferences.
//
// The state is one versioned JSON document (File) kept by a Backend: a file
// written atomically (temp file, fsync, rename, fsync of the directory), or
// memory for --state=mem:. The Backend interface is small so that
// --state=kube:<secret> can be added without touching callers. A state that
// exists but cannot be decoded is an error naming where it lives; it is never
// overwritten.
//
// It imports node/ipn and wire/* only.
package state
