// Package ipnlocal is the node daemon's backend: the one owner of the
// current profile, its preferences, the control client and the latest
// netmap. It runs the state machine (NoState, NeedsLogin, NeedsMachineAuth,
// Stopped, Starting, Running), drives the Engine with each new netmap and
// config, keeps several login profiles and switches between them, answers
// status/whois/ping/netcheck, and publishes changes on a notify bus.
//
// Reachability: with a real data plane Running also needs a DERP or peer
// path (control.md §7.11). Engines that implement engine.Reachability
// hold the backend in Starting until they report one; for others Running
// is entered once a netmap with an authorized self node arrives.
//
// It imports node/ipn, node/state, node/controlclient, node/engine,
// node/netmap and wire/*; never node/localapi or cli.
package ipnlocal
