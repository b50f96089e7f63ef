package engine

// Reachability is implemented by engines that can tell whether peers can
// reach this node: it is connected to its home DERP region or has a live
// path to a peer. The backend stays in Starting until it is true, as
// tailscaled waits for a live DERP or peer before Running. It is optional
// so that existing Engine implementations keep compiling; engines without
// it are taken as reachable.
type Reachability interface {
	// Reachable reports the current reachability.
	Reachable() bool
	// SetReachableCallback registers fn, called (not under the engine's
	// locks) whenever Reachable changes.
	SetReachableCallback(fn func(reachable bool))
}

// Debugger is implemented by engines that support `weft debug restun` and
// `weft debug rebind`.
type Debugger interface {
	// ReSTUN starts a new endpoint-discovery round now.
	ReSTUN()
	// Rebind forgets every learned path, reconnects to DERP and
	// re-discovers endpoints, as after a network change.
	Rebind()
}
